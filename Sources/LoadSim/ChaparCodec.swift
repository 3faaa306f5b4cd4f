import ChaparCore
import Wire

/// The native protocol: HELLO/WELCOME, SUBSCRIBE with a start offset, PUBLISH with a
/// correlation id answered by ACK, MESSAGE frames read in place.
final class ChaparCodec: TargetCodec {
    var supportsAcks: Bool { true }
    var supportsHistory: Bool { true }
    var hasOffsets: Bool { true }
    private var frames = FrameReader()

    func greeting() -> [UInt8] {
        FrameEncoder.encode(Envelope(.hello(Hello(clientName: "chapar-loadsim")), correlation: 0xFFFF_FFFF))
    }

    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8] {
        FrameEncoder.encode(Envelope(.subscribe(Subscribe(channel: channel, from: from.map { .offset($0) } ?? .latest)),
                                     correlation: correlation))
    }

    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8]) {
        var writer = ByteWriter(capacity: payload.count + channel.utf8.count + 20)
        let start = FrameEncoder.beginFrame(.publish, correlation: correlation, into: &writer)
        writer.writeShortBytes(Array(channel.utf8))
        writer.write(UInt8(0))
        writer.writeLongBytes(payload)
        FrameEncoder.endFrame(start: start, into: &writer)
        buffer.append(contentsOf: writer.bytes)
    }

    func flushMarker(publishes: Int) -> [UInt8]? { nil }

    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError) {
        do throws(ProtocolViolation) {
            try frames.feedRaw(bytes) { (type, correlation, body) throws(ProtocolViolation) in
                if type == FrameType.message.rawValue, let message = MessageView(body: body) {
                    handle(.message(offset: message.offset, payload: message.payload))
                    return
                }
                switch try FrameDecoder.decode(typeByte: type, correlation: correlation, body: body).frame {
                case .ack(let ack): handle(.acked(correlation: correlation, offset: ack.offset))
                case .welcome: handle(.ready)
                case .subscribed(let subscribed): handle(.subscribed(channel: subscribed.channel, next: subscribed.nextOffset))
                case .error(let error):
                    let code = error.knownCode.map { "\($0)" } ?? "\(error.code)"
                    handle(.failure("\(code): \(error.message)", correlation: correlation == 0 ? nil : correlation))
                default: break
                }
            }
        } catch {
            throw CodecError(description: "protocol violation from server: \(error)")
        }
    }
}
