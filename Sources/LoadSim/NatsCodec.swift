/// NATS core text protocol: INFO, CONNECT, SUB, PUB, MSG, PING/PONG, +OK/-ERR.
/// No history and no per-message acknowledgements; PING/PONG marks how far the server
/// has processed, which the simulator uses for subscription confirmation and as a
/// publish window (counted as "flushed", never as acknowledged).
final class NatsCodec: TargetCodec {
    var supportsAcks: Bool { false }
    var supportsHistory: Bool { false }
    var hasOffsets: Bool { false }
    private var pending = PendingBytes()
    private enum PongPurpose {
        case ready
        case subscribed(String)
        case flushed(Int)
    }
    private var pongs: [PongPurpose] = []
    private var pongHead = 0
    private var subscriptions = 0

    func greeting() -> [UInt8] {
        pongs.append(.ready)
        return Array(#"CONNECT {"verbose":false,"pedantic":false,"lang":"swift","version":"1","protocol":1,"name":"chapar-loadsim","headers":false}"#.utf8)
            + Array("\r\nPING\r\n".utf8)
    }

    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8] {
        subscriptions += 1
        pongs.append(.subscribed(channel))
        return Array("SUB \(channel) \(subscriptions)\r\nPING\r\n".utf8)
    }

    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8]) {
        NatsMessage.appendPublish(channel, reply: nil, payload: payload, into: &buffer)
    }

    func flushMarker(publishes: Int) -> [UInt8]? {
        pongs.append(.flushed(publishes))
        return Array("PING\r\n".utf8)
    }

    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError) {
        try pending.feed(bytes) { (buffer) throws(CodecError) in
            var position = 0
            while let end = findLineEnd(buffer, from: position) {
                let line = UnsafeRawBufferPointer(rebasing: buffer[position..<end])
                if line.starts(with: "MSG ".utf8) {
                    guard let message = try NatsMessage(buffer, line: position..<end) else { break }
                    handle(.message(offset: nil, payload: UnsafeRawBufferPointer(rebasing: buffer[message.payload])))
                    position = message.next
                    continue
                }
                if line.starts(with: "PING".utf8) {
                    handle(.reply(Array("PONG\r\n".utf8)))
                } else if line.starts(with: "PONG".utf8) {
                    if pongHead < pongs.count {
                        let purpose = pongs[pongHead]
                        pongHead += 1
                        if pongHead > 1024 { pongs.removeFirst(pongHead); pongHead = 0 }
                        switch purpose {
                        case .ready: handle(.ready)
                        case .subscribed(let channel): handle(.subscribed(channel: channel, next: nil))
                        case .flushed(let count): handle(.flushed(count: count))
                        }
                    }
                } else if line.starts(with: "-ERR".utf8) {
                    handle(.failure(String(decoding: line, as: UTF8.self), correlation: nil))
                }
                // INFO and +OK need no action.
                position = end + 2
            }
            return position
        }
    }
}

/// A NATS `MSG <subject> <sid> [reply-to] <#bytes>` line and where its payload lies.
struct NatsMessage {
    var subject: Range<Int>
    var payload: Range<Int>
    /// Where the next line starts.
    var next: Int

    /// `PUB <subject> [reply-to] <#bytes>`, the payload and CRLF.
    static func appendPublish(_ subject: String, reply: String?, payload: UnsafeRawBufferPointer, into buffer: inout [UInt8]) {
        buffer.append(ascii: "PUB \(subject) \(reply.map { $0 + " " } ?? "")\(payload.count)\r\n")
        buffer.append(contentsOf: payload)
        buffer.append(13)
        buffer.append(10)
    }

    /// Nil while the payload has not fully arrived.
    init?(_ buffer: UnsafeRawBufferPointer, line: Range<Int>) throws(CodecError) {
        var lastSpace = line.upperBound - 1
        while lastSpace > line.lowerBound && buffer[lastSpace] != 32 { lastSpace -= 1 }
        var subjectEnd = line.lowerBound + 4
        while subjectEnd < line.upperBound && buffer[subjectEnd] != 32 { subjectEnd += 1 }
        guard let count = parseDecimal(buffer, (lastSpace + 1)..<line.upperBound) else {
            throw CodecError(description: "malformed NATS MSG line")
        }
        let start = line.upperBound + 2
        guard buffer.count >= start + count + 2 else { return nil }
        subject = (line.lowerBound + 4)..<subjectEnd
        payload = start..<(start + count)
        next = start + count + 2
    }
}
