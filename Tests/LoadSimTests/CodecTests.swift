import Testing
@testable import LoadSim

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

    @Test func targetURLsAreChecked() throws {
        #expect(try Target(parsing: "chapar://127.0.0.1:1,127.0.0.2:2").addresses.count == 2)
        #expect(try Target(parsing: "nats://127.0.0.1:4222").kind == .nats)
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "kafka://127.0.0.1:1") }
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "redis://a:1,b:2") }
        #expect(throws: CodecErrorPublic.self) { _ = try Target(parsing: "127.0.0.1:1") }
    }
}
