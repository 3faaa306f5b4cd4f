/// NATS JetStream: the core NATS text protocol plus a stream that stores every `ls.>`
/// subject (file storage, R replicas), created on greeting by one connection of the run
/// (creating an identical stream again is accepted). One creator, not every connection:
/// a hundred simultaneous create requests overflow the JetStream API queue, whose server
/// drops the excess without an answer. The run starts publishing only once every
/// connection is ready, so the stream exists by then. Publishes carry a reply subject in
/// the connection's inbox; the stream's PubAck arrives there, so every acknowledgement
/// names its publish. Deliveries are core NATS messages (no offsets, no history).
final class JetStreamCodec: TargetCodec {
    var supportsAcks: Bool { true }
    var supportsHistory: Bool { false }
    var hasOffsets: Bool { false }
    var acksCarryCorrelation: Bool { true }
    static let stream = "CHAPARLS"
    let replicas: Int
    let createsStream: Bool
    let inbox: String
    private var pending = PendingBytes()
    private var subscriptions = 1
    /// What each PING sent is waiting for: readiness (a connection that creates no
    /// stream) or a subscription's confirmation.
    private var pongs: [String?] = []
    private var pongHead = 0
    private var ready = false

    init(replicas: Int, createsStream: Bool = true) {
        self.replicas = replicas
        self.createsStream = createsStream
        inbox = "_INBOX.ls\(UInt64.random(in: 0...UInt64.max))"
    }

    func greeting() -> [UInt8] {
        let config = #"{"name":"\#(Self.stream)","subjects":["ls.>"],"storage":"file","num_replicas":\#(replicas),"retention":"limits","discard":"old","max_msgs":-1,"max_bytes":-1}"#
        var bytes = Array(#"CONNECT {"verbose":false,"pedantic":false,"lang":"swift","version":"1","protocol":1,"name":"chapar-loadsim","headers":false}"#.utf8)
        bytes.append(ascii: "\r\nSUB \(inbox).* 1\r\n")
        if createsStream {
            bytes.append(ascii: "PUB $JS.API.STREAM.CREATE.\(Self.stream) \(inbox).create \(config.utf8.count)\r\n\(config)\r\n")
        } else {
            bytes.append(ascii: "PING\r\n")
            pongs.append(nil)
        }
        return bytes
    }

    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8] {
        subscriptions += 1
        pongs.append(channel)
        return Array("SUB \(channel) \(subscriptions)\r\nPING\r\n".utf8)
    }

    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8]) {
        NatsMessage.appendPublish(channel, reply: "\(inbox).\(correlation)", payload: payload, into: &buffer)
    }

    func flushMarker(publishes: Int) -> [UInt8]? { nil }

    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError) {
        try pending.feed(bytes) { (buffer) throws(CodecError) in
            var position = 0
            while let end = findLineEnd(buffer, from: position) {
                let line = UnsafeRawBufferPointer(rebasing: buffer[position..<end])
                if line.starts(with: "MSG ".utf8) {
                    guard let message = try NatsMessage(buffer, line: position..<end) else { break }
                    let subject = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[message.subject]), as: UTF8.self)
                    let payload = UnsafeRawBufferPointer(rebasing: buffer[message.payload])
                    if subject.hasPrefix(inbox + ".") {
                        reply(to: String(subject.dropFirst(inbox.count + 1)), payload, handle)
                    } else {
                        handle(.message(offset: nil, payload: payload))
                    }
                    position = message.next
                    continue
                }
                if line.starts(with: "PING".utf8) {
                    handle(.reply(Array("PONG\r\n".utf8)))
                } else if line.starts(with: "PONG".utf8), pongHead < pongs.count {
                    let channel = pongs[pongHead]
                    pongHead += 1
                    if let channel { handle(.subscribed(channel: channel, next: nil)) }
                    else if !ready { ready = true; handle(.ready) }
                } else if line.starts(with: "-ERR".utf8) {
                    handle(.failure(String(decoding: line, as: UTF8.self), correlation: nil))
                }
                position = end + 2
            }
            return position
        }
    }

    /// A message in our inbox: the stream-create answer, or a PubAck (or its error).
    private func reply(to token: String, _ payload: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) {
        let text = String(decoding: payload, as: UTF8.self)
        if token == "create" {
            // An identical stream that exists already is fine; anything else is reported.
            if text.contains("\"error\"") && !text.contains("already in use") {
                handle(.failure("stream create: \(text)", correlation: nil))
            }
            if !ready { ready = true; handle(.ready) }
            return
        }
        guard let correlation = UInt32(token) else { return }
        if text.contains("\"error\"") { handle(.failure("JetStream: \(text)", correlation: correlation)) }
        else { handle(.acked(correlation: correlation, offset: nil)) }
    }
}
