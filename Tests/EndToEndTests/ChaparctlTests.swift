import Foundation
import Testing

/// Runs chaparctl and returns (exit status, stdout, stderr).
func chaparctl(_ arguments: [String], seconds: Double = 30) throws -> (Int32, String, String) {
    try runTool("chaparctl", arguments, seconds: seconds)
}

@Suite(.serialized) struct ChaparctlTests {
    @Test func pubPrintsOffsetsAndSubPrintsThem() throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        for index in 1...3 {
            let (status, out, _) = try chaparctl(["pub", "--server", node.address, "ctl", "hello \(index)"])
            #expect(status == 0)
            #expect(out == "\(index)\n")
        }
        let (status, out, _) = try chaparctl(["sub", "--server", node.address, "ctl", "--from", "2", "--count", "2"])
        #expect(status == 0)
        #expect(out == "2 hello 2\n3 hello 3\n")
    }

    @Test func unreachableServerFailsWithAMessage() throws {
        let (status, _, errors) = try chaparctl(["pub", "--server", "127.0.0.1:1", "ctl", "x"])
        #expect(status == 1)
        #expect(errors.contains("cannot connect"))
    }

    @Test func serverErrorFailsWithTheCode() throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let (status, _, errors) = try chaparctl(["pub", "--server", node.address, "bad name", "x"])
        #expect(status == 1)
        #expect(errors.contains("channel name"))
        let (usageStatus, _, usage) = try chaparctl(["sub", "--server", node.address])
        #expect(usageStatus == 2)
        #expect(usage.contains("sub needs CHANNEL"))
    }
}

@Suite(.serialized) struct TokenTests {
    /// A node started with a token secret refuses HELLO without a valid token (ERROR
    /// unauthorized, connection closed) and serves clients whose token it signed.
    @Test func nodeRequiresAValidToken() throws {
        let secretPath = FileManager.default.temporaryDirectory.path + "/chapar-secret-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: secretPath) }
        let (_, secret, _) = try chaparctl(["secret"])
        #expect(secret.count == 65)
        try Data(secret.utf8).write(to: URL(fileURLWithPath: secretPath))
        let node = NodeProcess(extraArguments: ["--token-secret-file", secretPath])
        defer { node.cleanUp() }
        try node.start()

        let (refused, _, why) = try chaparctl(["pub", "--server", node.address, "secure", "x"])
        #expect(refused == 1)
        #expect(why.contains("unauthorized"), "\(why)")
        let (_, forged, _) = try chaparctl(["pub", "--server", node.address, "--token", "v1:eve:9999999999:" + String(repeating: "0", count: 64), "secure", "x"])
        #expect(forged.isEmpty)

        let (status, token, _) = try chaparctl(["token", "--secret-file", secretPath, "--subject", "alice", "--ttl", "600"])
        #expect(status == 0)
        let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
        let (published, offset, errors) = try chaparctl(["pub", "--server", node.address, "--token", trimmed, "secure", "hello"])
        #expect(published == 0, "\(errors)")
        #expect(offset == "1\n")
    }
}
