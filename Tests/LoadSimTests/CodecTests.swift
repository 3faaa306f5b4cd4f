import Testing
@testable import LoadSim
import Wire

/// Feeds `bytes` to `codec` split at `cut` and collects a summary of the events.
func events(_ codec: TargetCodec, _ bytes: [UInt8], cut: Int) throws -> [String] {
    var out: [String] = []
    let handle: (CodecEvent) -> Void = { event in
        switch event {
        case .ready: out.append("ready")
        case .subscribed(let channel, _): out.append("subscribed \(channel)")
        case .acked: out.append("acked")
        case .flushed(let count): out.append("flushed \(count)")
        case .message(_, let payload): out.append("message \(String(decoding: payload, as: UTF8.self))")
        case .reply(let bytes): out.append("reply \(String(decoding: bytes, as: UTF8.self))")
        case .failure(let text, _): out.append("failure \(text)")
        case .subscriptionEnded(let channel): out.append("ended \(channel)")
        case .located(let address, let replicas): out.append("located \(address ?? "-") via \(replicas.joined(separator: ","))")
        }
    }
    try bytes.withUnsafeBytes { raw in
        try codec.consume(UnsafeRawBufferPointer(rebasing: raw[..<cut]), handle)
        try codec.consume(UnsafeRawBufferPointer(rebasing: raw[cut...]), handle)
    }
    return out
}

@Suite struct CodecTests {
    @Test func natsParsesAtEverySplit() throws {
        let stream = Array("INFO {\"x\":1}\r\nPONG\r\n+OK\r\nMSG a.b 1 5\r\nhe\r\no\r\nPING\r\nPONG\r\nMSG a.b 1 reply.to 2\r\nhi\r\n".utf8)
        for cut in 0...stream.count {
            let codec = NatsCodec()
            _ = codec.greeting()
            _ = codec.subscribe("a.b", correlation: 1, from: nil)
            let got = try events(codec, stream, cut: cut)
            #expect(got == ["ready", "message he\r\no", "reply PONG\r\n", "subscribed a.b", "message hi"], "cut \(cut)")
        }
    }

    @Test func redisParsesAtEverySplit() throws {
        let hello = "%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"
        let subscribed = ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        let ack = ":1\r\n"
        let message = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nab\r\n\r\n"
        let error = "-ERR nope\r\n"
        let stream = Array((hello + subscribed + ack + message + error).utf8)
        for cut in 0...stream.count {
            let got = try events(RedisCodec(), stream, cut: cut)
            #expect(got == ["ready", "subscribed ch", "acked", "message ab\r\n", "failure ERR nope"], "cut \(cut)")
        }
    }

    /// The stream-create answer makes the connection ready; PubAcks in the inbox name their
    /// publish; a JetStream error fails that publish; other subjects are deliveries.
    @Test func jetStreamParsesAtEverySplit() throws {
        let probe = JetStreamCodec(replicas: 3)
        let greeting = String(decoding: probe.greeting(), as: UTF8.self)
        #expect(greeting.contains("$JS.API.STREAM.CREATE.CHAPARLS \(probe.inbox).create"))
        #expect(greeting.contains(#""num_replicas":3"#) && greeting.contains(#""storage":"file""#))
        var publish: [UInt8] = []
        Array("xy".utf8).withUnsafeBytes { probe.publish("ls.a", payload: $0, correlation: 7, into: &publish) }
        #expect(String(decoding: publish, as: UTF8.self) == "PUB ls.a \(probe.inbox).7 2\r\nxy\r\n")
        for cut in [0, 5, 40, 80, 120, 160, 200] {
            let codec = JetStreamCodec(replicas: 3)
            let inbox = codec.inbox
            let created = #"{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{}}"#
            let ack = #"{"stream":"CHAPARLS","seq":1}"#
            let refused = #"{"error":{"code":503,"description":"no responders"}}"#
            let text = "INFO {}\r\nMSG \(inbox).create 1 \(created.utf8.count)\r\n\(created)\r\n"
                + "MSG \(inbox).7 1 \(ack.utf8.count)\r\n\(ack)\r\nMSG ls.a 2 2\r\nhi\r\n"
                + "MSG \(inbox).8 1 \(refused.utf8.count)\r\n\(refused)\r\n"
            let stream = Array(text.utf8)
            let got = try events(codec, stream, cut: min(cut, stream.count))
            #expect(got == ["ready", "acked", "message hi", "failure JetStream: \(refused)"], "cut \(cut)")
        }
    }

    /// Only the run's setup connection creates the stream; the others are ready when the
    /// server answers their first PING, and still confirm subscriptions in order.
    @Test func jetStreamConnectionsOtherThanTheSetupOneCreateNoStream() throws {
        let probe = JetStreamCodec(replicas: 3, createsStream: false)
        let greeting = String(decoding: probe.greeting(), as: UTF8.self)
        #expect(!greeting.contains("STREAM.CREATE") && greeting.hasSuffix("PING\r\n"))
        let stream = Array("INFO {}\r\nPONG\r\nPONG\r\n".utf8)
        for cut in 0...stream.count {
            let codec = JetStreamCodec(replicas: 3, createsStream: false)
            _ = codec.greeting()
            _ = codec.subscribe("ls.a", correlation: 1, from: nil)
            #expect(try events(codec, stream, cut: cut) == ["ready", "subscribed ls.a"], "cut \(cut)")
        }
    }

    /// A subscription the server ends (ERROR then UNSUBSCRIBED, both with correlation 0)
    /// surfaces as a failure and then `subscriptionEnded`, for the simulator to resubscribe.
    @Test func chaparReportsSubscriptionsTheServerEnded() throws {
        var stream: [UInt8] = []
        stream += FrameEncoder.encode(Envelope(.subscribed(Subscribed(channel: "a", nextOffset: 4, head: 3)), correlation: 9))
        stream += FrameEncoder.encode(Envelope(.error(ErrorReply(code: .replicaMoved, message: "moved")), correlation: 0))
        stream += FrameEncoder.encode(Envelope(.unsubscribed(channel: "a"), correlation: 0))
        for cut in 0...stream.count {
            let got = try events(ChaparCodec(), stream, cut: cut)
            #expect(got == ["subscribed a", "failure replicaMoved: moved", "ended a"], "cut \(cut)")
        }
    }

    /// LOCATION names the leader's address (or none) for a publisher to move to, and the
    /// replicas' addresses (those it lacks left out) to ask when there is none.
    @Test func chaparReportsWhereAChannelIsLed() throws {
        let nodes = [
            Location.Node(id: "n1", address: "127.0.0.1:1"), Location.Node(id: "n2", address: "127.0.0.2:2"),
            Location.Node(id: "n3", address: ""),
        ]
        var stream: [UInt8] = []
        stream += FrameEncoder.encode(Envelope(.location(Location(channel: "a", shard: 1, leader: 1, nodes: nodes)), correlation: 5))
        stream += FrameEncoder.encode(Envelope(.location(Location(channel: "a", shard: 1, leader: nil, nodes: nodes)), correlation: 6))
        for cut in 0...stream.count {
            #expect(try events(ChaparCodec(), stream, cut: cut) == ["located 127.0.0.2:2 via 127.0.0.1:1,127.0.0.2:2", "located - via 127.0.0.1:1,127.0.0.2:2"], "cut \(cut)")
        }
        #expect(NatsCodec().locate("a", correlation: 1) == nil)
    }

    @Test func targetURLsAreChecked() throws {
        #expect(try Target(parsing: "jetstream://127.0.0.1:1,127.0.0.2:2,127.0.0.3:3").kind == .jetstream)
        #expect(try Target(parsing: "chapar://127.0.0.1:1,127.0.0.2:2").addresses.count == 2)
        #expect(try Target(parsing: "nats://127.0.0.1:4222").kind == .nats)
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "kafka://127.0.0.1:1") }
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "redis://a:1,b:2") }
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "127.0.0.1:1") }
    }
}
