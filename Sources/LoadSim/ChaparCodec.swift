import ChaparCore
import Wire

/// The native protocol: HELLO/WELCOME, SUBSCRIBE with a start offset, PUBLISH with a
/// correlation id answered by ACK, MESSAGE frames read in place.
final class ChaparCodec: TargetCodec {
    var supportsAcks: Bool { true }
    var supportsHistory: Bool { true }
    var hasOffsets: Bool { true }
    private var frames = FrameReader()
    private let token: [UInt8]?

    init(token: [UInt8]? = nil) {
        self.token = token
    }

    func greeting() -> [UInt8] {
        FrameEncoder.encode(Envelope(.hello(Hello(clientName: "chapar-loadsim", token: token)), correlation: 0xFFFF_FFFF))
    }

    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8] {
        FrameEncoder.encode(Envelope(.subscribe(Subscribe(channel: channel, from: from.map { .offset($0) } ?? .latest)),
                                     correlation: correlation))
    }

    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8]) {
        // Written field by field straight into the caller's buffer: this runs for every
        // publish of a run (docs/PROTOCOL.md, PUBLISH).
        let channelCount = channel.utf8.count
        let length = UInt32(1 + 4 + 1 + channelCount + 1 + 4 + payload.count)
        appendBigEndian(length, to: &buffer)
        buffer.append(FrameType.publish.rawValue)
        appendBigEndian(correlation, to: &buffer)
        buffer.append(UInt8(channelCount))
        buffer.append(contentsOf: channel.utf8)
        buffer.append(0)
        appendBigEndian(UInt32(payload.count), to: &buffer)
        buffer.append(contentsOf: payload)
    }

    private func appendBigEndian(_ value: UInt32, to buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: value >> 24))
        buffer.append(UInt8(truncatingIfNeeded: value >> 16))
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value))
    }

    func flushMarker(publishes: Int) -> [UInt8]? { nil }

    func locate(_ channel: String, correlation: UInt32) -> [UInt8]? {
        FrameEncoder.encode(Envelope(.locate(channel: channel), correlation: correlation))
    }

    /// The offset of an ACK body (`channel:str8 offset:u64 flags:u8`) read in place.
    static func ackOffset(_ body: UnsafeRawBufferPointer) -> UInt64? {
        guard body.count >= 1 else { return nil }
        let channelCount = Int(body[0])
        guard body.count == 1 + channelCount + 8 + 1 else { return nil }
        return UInt64(bigEndian: body.loadUnaligned(fromByteOffset: 1 + channelCount, as: UInt64.self))
    }

    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError) {
        do throws(ProtocolViolation) {
            try frames.feedRaw(bytes) { (type, correlation, body) throws(ProtocolViolation) in
                if type == FrameType.message.rawValue, let message = MessageView(body: body) {
                    handle(.message(offset: message.offset, payload: message.payload))
                    return
                }
                if type == FrameType.ack.rawValue, let offset = Self.ackOffset(body) {
                    handle(.acked(correlation: correlation, offset: offset))
                    return
                }
                switch try FrameDecoder.decode(typeByte: type, correlation: correlation, body: body).frame {
                case .ack(let ack): handle(.acked(correlation: correlation, offset: ack.offset))
                case .welcome: handle(.ready)
                case .subscribed(let subscribed): handle(.subscribed(channel: subscribed.channel, next: subscribed.nextOffset))
                case .unsubscribed(let channel) where correlation == 0: handle(.subscriptionEnded(channel: channel))
                case .location(let location):
                    handle(.located(address: location.leaderNode?.address, replicas: location.nodes.map(\.address).filter { !$0.isEmpty }))
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
