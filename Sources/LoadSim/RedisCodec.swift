/// Redis RESP3 (after `HELLO 3`), so one connection can both SUBSCRIBE and PUBLISH:
/// PUBLISH is answered in order with an integer (counted as an acknowledgement, though
/// Redis pub/sub stores nothing), messages arrive as `>3 message CHANNEL PAYLOAD` pushes.
/// No history.
final class RedisCodec: TargetCodec {
    var supportsAcks: Bool { true }
    var supportsHistory: Bool { false }
    var hasOffsets: Bool { false }
    private var pending = PendingBytes()
    private var greeted = false

    func greeting() -> [UInt8] { command(["HELLO", "3"]) }

    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8] {
        command(["SUBSCRIBE", channel])
    }

    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8]) {
        buffer.append(ascii: "*3\r\n$7\r\nPUBLISH\r\n$\(channel.utf8.count)\r\n\(channel)\r\n$\(payload.count)\r\n")
        buffer.append(contentsOf: payload)
        buffer.append(13)
        buffer.append(10)
    }

    func flushMarker(publishes: Int) -> [UInt8]? { nil }

    private func command(_ parts: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.append(ascii: "*\(parts.count)\r\n")
        for part in parts { bytes.append(ascii: "$\(part.utf8.count)\r\n\(part)\r\n") }
        return bytes
    }

    /// One parsed RESP value; bulk strings borrow the buffer.
    private enum Value {
        case simple(UnsafeRawBufferPointer)
        case error(String)
        case integer
        case bulk(UnsafeRawBufferPointer)
        case aggregate([Value], push: Bool)
        case other
    }

    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError) {
        try pending.feed(bytes) { (buffer) throws(CodecError) in
            var position = 0
            while position < buffer.count {
                if let (payload, next) = Self.fastMessage(buffer, at: position) {
                    // The hot path: a pub/sub message, read in place without building values.
                    handle(.message(offset: nil, payload: payload))
                    position = next
                    continue
                }
                guard let (value, next) = try parse(buffer, at: position) else { break }
                position = next
                dispatch(value, handle)
            }
            return position
        }
    }

    private func dispatch(_ value: Value, _ handle: (CodecEvent) -> Void) {
        switch value {
        case .aggregate(let items, let push) where push || greeted:
            guard case .bulk(let kind)? = items.first else {
                if !greeted { greeted = true; handle(.ready) }
                return
            }
            if kind.elementsEqual("message".utf8), items.count == 3, case .bulk(let payload) = items[2] {
                handle(.message(offset: nil, payload: payload))
            } else if kind.elementsEqual("subscribe".utf8), items.count >= 2, case .bulk(let channel) = items[1] {
                handle(.subscribed(channel: String(decoding: channel, as: UTF8.self), next: nil))
            }
        case .aggregate:
            // The HELLO reply (a map).
            greeted = true
            handle(.ready)
        case .integer:
            handle(.acked(correlation: nil, offset: nil))
        case .error(let text):
            handle(.failure(text, correlation: nil))
        default:
            break
        }
    }

    private static let messagePrefix = Array(">3\r\n$7\r\nmessage\r\n$".utf8)

    /// `>3 $7 message $N channel $M payload`, entirely present at `start`: the payload and
    /// the position after it. Nil for anything else (the general parser takes over).
    static func fastMessage(_ b: UnsafeRawBufferPointer, at start: Int) -> (UnsafeRawBufferPointer, Int)? {
        let prefix = messagePrefix
        guard b.count - start > prefix.count else { return nil }
        for index in 0..<prefix.count where b[start + index] != prefix[index] { return nil }
        let channelHeader = start + prefix.count
        guard let channelEnd = findLineEnd(b, from: channelHeader),
              let channelCount = parseDecimal(b, channelHeader..<channelEnd)
        else { return nil }
        let payloadHeader = channelEnd + 2 + channelCount + 2
        guard payloadHeader < b.count, b[payloadHeader] == UInt8(ascii: "$"),
              let payloadEnd = findLineEnd(b, from: payloadHeader + 1),
              let payloadCount = parseDecimal(b, (payloadHeader + 1)..<payloadEnd)
        else { return nil }
        let payloadStart = payloadEnd + 2
        guard b.count >= payloadStart + payloadCount + 2 else { return nil }
        return (UnsafeRawBufferPointer(rebasing: b[payloadStart..<(payloadStart + payloadCount)]), payloadStart + payloadCount + 2)
    }

    /// Parses one value at `start`; nil when it has not fully arrived.
    private func parse(_ b: UnsafeRawBufferPointer, at start: Int) throws(CodecError) -> (Value, Int)? {
        guard let end = findLineEnd(b, from: start + 1) else { return nil }
        let type = b[start]
        let header = (start + 1)..<end
        let next = end + 2
        switch type {
        case UInt8(ascii: "+"): return (.simple(UnsafeRawBufferPointer(rebasing: b[header])), next)
        case UInt8(ascii: "-"), UInt8(ascii: "!"):
            return (.error(String(decoding: UnsafeRawBufferPointer(rebasing: b[header]), as: UTF8.self)), next)
        case UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "#"), UInt8(ascii: "_"), UInt8(ascii: "("):
            return (type == UInt8(ascii: ":") ? .integer : .other, next)
        case UInt8(ascii: "$"), UInt8(ascii: "="):
            if b[header.lowerBound] == UInt8(ascii: "-") { return (.other, next) }  // null bulk
            guard let count = parseDecimal(b, header) else { throw CodecError(description: "malformed RESP length") }
            guard b.count >= next + count + 2 else { return nil }
            return (.bulk(UnsafeRawBufferPointer(rebasing: b[next..<(next + count)])), next + count + 2)
        case UInt8(ascii: "*"), UInt8(ascii: ">"), UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            if b[header.lowerBound] == UInt8(ascii: "-") { return (.other, next) }
            guard var count = parseDecimal(b, header) else { throw CodecError(description: "malformed RESP aggregate") }
            if type == UInt8(ascii: "%") || type == UInt8(ascii: "|") { count *= 2 }
            var items: [Value] = []
            var position = next
            for _ in 0..<count {
                guard let (item, after) = try parse(b, at: position) else { return nil }
                items.append(item)
                position = after
            }
            if type == UInt8(ascii: "|") { return try parse(b, at: position) }  // attributes precede the value
            return (.aggregate(items, push: type == UInt8(ascii: ">")), position)
        default:
            throw CodecError(description: "unknown RESP type byte \(type)")
        }
    }
}
