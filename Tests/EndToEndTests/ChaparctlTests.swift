import Foundation
import Testing

/// Runs chaparctl and returns (exit status, stdout, stderr).
func chaparctl(_ arguments: [String], seconds: Double = 30) throws -> (Int32, String, String) {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: builtProduct("chaparctl"))
    child.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    child.standardOutput = output
    child.standardError = errors
    try child.run()
    let deadline = Date().addingTimeInterval(seconds)
    while child.isRunning && Date() < deadline { usleep(5_000) }
    if child.isRunning { kill(child.processIdentifier, SIGKILL) }
    child.waitUntilExit()
    return (child.terminationStatus,
            String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
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
