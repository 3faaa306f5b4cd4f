import ChaparCore
import Client
import Foundation
import Testing
import Transport
import Wire

/// One class of bad input: the bytes to send (after HELLO, unless `greet` is false) and
/// the error code the node must answer with before closing.
struct BadInput: CustomStringConvertible, Sendable {
    var description: String
    var greet: Bool = true
    var bytes: [UInt8]
    var expected: ErrorCode
    var halfClose = false
}

func frame(length: UInt32? = nil, type: UInt8, correlation: UInt32 = 7, body: [UInt8]) -> [UInt8] {
    var writer = ByteWriter()
    writer.write(length ?? UInt32(5 + body.count))
    writer.write(type)
    writer.write(correlation)
    writer.write(contentsOf: body)
    return writer.finish()
}

func publishBody(channel: [UInt8], declaredPayload: Int? = nil, payload: [UInt8]) -> [UInt8] {
    var writer = ByteWriter()
    writer.write(UInt8(channel.count))
    writer.write(contentsOf: channel)
    writer.write(UInt8(0))
    writer.write(UInt32(declaredPayload ?? payload.count))
    writer.write(contentsOf: payload)
    return writer.finish()
}

let badInputs: [BadInput] = [
    BadInput(description: "truncated frame then end of stream",
             bytes: Array(frame(type: 0x03, body: publishBody(channel: Array("c".utf8), payload: [1, 2, 3])).prefix(10)),
             expected: .malformedFrame, halfClose: true),
    BadInput(description: "oversized length", bytes: [0xFF, 0xFF, 0xFF, 0xF0, 0x03], expected: .frameTooLarge),
    BadInput(description: "negative length as int32", bytes: [0x80, 0, 0, 0], expected: .frameTooLarge),
    BadInput(description: "length below the header", bytes: [0, 0, 0, 2, 0x0C, 0], expected: .malformedFrame),
    BadInput(description: "inner length disagrees with frame",
             bytes: frame(type: 0x03, body: publishBody(channel: Array("c".utf8), declaredPayload: 500, payload: [1])),
             expected: .malformedFrame),
    BadInput(description: "trailing bytes after the body",
             bytes: frame(type: 0x0C, body: [0, 0, 0, 0, 0, 0, 0, 1, 9]), expected: .malformedFrame),
    BadInput(description: "unknown frame type", bytes: frame(type: 0x66, body: []), expected: .unknownFrameType),
    BadInput(description: "wrong protocol version", greet: false,
             bytes: frame(type: 0x01, body: [0, 99, 0, 0, 0]), expected: .unsupportedVersion),
    BadInput(description: "invalid channel name",
             bytes: frame(type: 0x03, body: publishBody(channel: Array("a b".utf8), payload: [1])), expected: .invalidChannel),
    BadInput(description: "over-long channel name",
             bytes: frame(type: 0x03, body: publishBody(channel: Array(repeating: 0x61, count: 201), payload: [1])),
             expected: .invalidChannel),
    BadInput(description: "payload over the limit",
             bytes: frame(type: 0x03, body: publishBody(
                channel: Array("c".utf8), payload: Array(repeating: 1, count: Limits.payloadBytesMax + 1))),
             expected: .payloadTooLarge),
    BadInput(description: "frame before HELLO", greet: false,
             bytes: frame(type: 0x03, body: publishBody(channel: Array("c".utf8), payload: [1])), expected: .helloRequired),
    BadInput(description: "second HELLO", bytes: frame(type: 0x01, body: [0, 1, 0, 0, 0]), expected: .unexpectedFrame),
    BadInput(description: "server frame sent by a client",
             bytes: frame(type: 0x04, body: [1, 0x63, 0, 0, 0, 0, 0, 0, 0, 1, 0]), expected: .unexpectedFrame),
]

@Suite(.serialized) struct BadInputTests {
    /// Every class of bad input is answered with an ERROR carrying its stable code, then
    /// the connection closes; a well-behaved client on the same node is unaffected and
    /// nothing it had acknowledged is lost.
    @Test func badInputIsAnsweredAndOnlyItsConnectionCloses() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let bystander = try await ChaparClient.connect(to: address)
        defer { bystander.close() }
        // A single node stores every channel itself.
        let here = try await bystander.locate("bystander")
        #expect(here.leader == 0 && here.nodes.map(\.address) == [node.address])
        let stream = try await bystander.subscribe("bystander", from: .earliest)
        var iterator = stream.makeAsyncIterator()
        var expectedOffset: UInt64 = 1
        for bad in badInputs {
            let ack = try await bystander.publish("bystander", Array("before \(bad)".utf8))
            #expect(ack.offset == expectedOffset)

            let socket = try RawSocket(node.address)
            if bad.greet { try socket.hello() }
            socket.send(bad.bytes)
            if bad.halfClose { shutdown(socket.fd, Int32(SHUT_WR)) }
            let reply = try socket.next()
            guard case .error(let error) = reply.frame else {
                Issue.record("\(bad): expected ERROR, got \(reply)")
                continue
            }
            #expect(error.knownCode == bad.expected, "\(bad): \(error.message)")
            #expect(!error.message.isEmpty)
            try socket.waitForClose()

            let delivered = try await iterator.next()
            #expect(delivered?.offset == expectedOffset, "\(bad): the bystander's subscription still flows")
            expectedOffset += 1
        }
        let batch = try await bystander.fetch("bystander", from: 1, maxMessages: 1000)
        #expect(batch.records.count == badInputs.count)
        #expect(batch.records.map(\.offset) == Array(1...UInt64(badInputs.count)))
    }

    @Test func silentConnectionIsClosedAfterTheHelloTimeout() throws {
        let node = NodeProcess(extraArguments: ["--hello-timeout-ms", "300"])
        defer { node.cleanUp() }
        try node.start()
        let socket = try RawSocket(node.address)
        let reply = try socket.next()
        guard case .error(let error) = reply.frame else { Issue.record("expected ERROR, got \(reply)"); return }
        #expect(error.knownCode == .helloRequired)
        try socket.waitForClose()
    }

    @Test func requestErrorsLeaveTheConnectionOpen() throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let socket = try RawSocket(node.address)
        try socket.hello()
        socket.send(.unsubscribe(channel: "never"), correlation: 5)
        let reply = try socket.next()
        #expect(reply.correlation == 5)
        if case .error(let error) = reply.frame { #expect(error.knownCode == .notSubscribed) } else {
            Issue.record("expected ERROR, got \(reply)")
        }
        socket.send(.ping(nonce: 42), correlation: 6)
        #expect(try socket.next() == Envelope(.pong(nonce: 42), correlation: 6))
    }

    @Test func badFlagsAndConfigAreRefusedWithAClearMessage() throws {
        for (arguments, fragment) in [
            (["--listen", "127.0.0.1:0"], "data directory is required"),
            (["--data", "/tmp/x", "--listen", "nowhere"], "listen"),
            (["--data", "/tmp/x", "--durability", "sometimes"], "durability"),
            (["--data", "/tmp/x", "--frobnicate", "1"], "unknown flag --frobnicate"),
            (["--data", "/tmp/x", "--loops", "-3"], "loops"),
        ] {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: builtProduct("chapard"))
            child.arguments = arguments
            let errors = Pipe()
            child.standardError = errors
            child.standardOutput = Pipe()
            try child.run()
            child.waitUntilExit()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(child.terminationStatus == 2, "\(arguments)")
            #expect(text.contains(fragment), "\(arguments): \(text)")
        }
    }

    @Test func badConfigFileNamesTheField() throws {
        let path = FileManager.default.temporaryDirectory.path + "/chapar-bad-config-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"data": "/tmp/x", "retention": {"default": {"max-mesages": 5}}}"#.utf8).write(to: URL(fileURLWithPath: path))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: builtProduct("chapard"))
        child.arguments = ["--config", path]
        let errors = Pipe()
        child.standardError = errors
        try child.run()
        child.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(child.terminationStatus == 2)
        #expect(text.contains("retention.default.max-mesages"), "\(text)")
    }
}

@Suite(.serialized) struct ReplyBackPressureTests {
    /// A client that pipelines FETCHes for ~200 MiB of replies and never reads them costs
    /// the node a bounded queue (it stops reading that client), serves everyone else, and
    /// still answers every request, in order, once the client reads.
    @Test func unreadRepliesAreBoundedAndNothingIsDropped() async throws {
        let node = NodeProcess(extraArguments: ["--outbound-bytes-max", "1048576"])
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let writer = try await ChaparClient.connect(to: address)
        defer { writer.close() }
        let payload = [UInt8](repeating: 7, count: 64 << 10)
        _ = try await publishPipelined(writer, channel: "big", count: 32) { _ in payload }  // 2 MiB of history

        let baseline = node.residentBytes()
        let hog = try RawSocket(node.address)
        try hog.hello()
        let fetches = 100
        var requests: [UInt8] = []
        for index in 0..<fetches {
            requests += FrameEncoder.encode(Envelope(
                .fetch(Fetch(channel: "big", from: 1, maxMessages: 32, maxBytes: 4 << 20)), correlation: UInt32(100 + index)))
        }
        hog.send(requests)
        // Everyone else is still served while the hog's replies wait.
        let ack = try await writer.publish("other", Array("still here".utf8))
        #expect(ack.offset == 1)
        let grown = node.residentBytes() - baseline
        #expect(grown < 64 << 20, "node grew by \(grown) bytes for ~\(fetches * 2) MiB of unread replies")

        for index in 0..<fetches {
            let reply = try hog.next(seconds: 30)
            #expect(reply.correlation == UInt32(100 + index))
            guard case .batch(let batch) = reply.frame else { Issue.record("expected BATCH, got \(reply.frame.type)"); return }
            #expect(batch.records.count == 15)  // 15 × 64 KiB fit the 1 MiB payload budget
        }
    }
}
