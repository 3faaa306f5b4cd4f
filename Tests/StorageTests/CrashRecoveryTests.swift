import ChaparCore
import Foundation
@testable import Storage
import Testing

/// Path of an executable built beside the test bundle.
func builtProduct(_ name: String) -> String {
    if let directory = ProcessInfo.processInfo.environment["CHAPAR_BIN_DIR"] { return directory + "/" + name }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/" + name
}

@Suite(.serialized) struct CrashRecoveryTests {
    /// Kills a writer with SIGKILL while it commits, several times over the same store;
    /// every acknowledged offset must survive with its payload and checksum, offsets
    /// stay dense, and the next run continues after the recovered head.
    @Test func acknowledgedAppendsSurviveSigkill() throws {
        let temp = TempDirectory("crash")
        defer { temp.remove() }
        var acknowledged: UInt64 = 0
        for round in 1...3 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: builtProduct("StoreCrashHelper"))
            child.arguments = [temp.path]
            let pipe = Pipe()
            child.standardOutput = pipe
            try child.run()
            // Read acknowledgements until this round has seen 2,000 more, or 60 s pass.
            let target = acknowledged + 2000
            let deadline = Date().addingTimeInterval(60)
            var buffer = Data()
            var highest = acknowledged
            while highest < target && Date() < deadline {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                if let lastNewline = buffer.lastIndex(of: UInt8(ascii: "\n")) {
                    let lines = String(decoding: buffer[..<lastNewline], as: UTF8.self).split(separator: "\n")
                    buffer.removeSubrange(...lastNewline)
                    for line in lines { highest = max(highest, UInt64(line) ?? highest) }
                }
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal, "round \(round): the helper must die by the signal")
            #expect(highest >= target, "round \(round): only \(highest) acknowledged before the deadline")
            acknowledged = highest

            let directory = try DataDirectory(path: temp.path)
            let reader = try directory.makeReader()
            let bounds = try reader.bounds("crash")
            #expect(bounds.earliest == 1)
            #expect(bounds.head >= acknowledged, "round \(round): head \(bounds.head) < acknowledged \(acknowledged)")
            var next: UInt64 = 1
            while next <= bounds.head {
                let records = try reader.read("crash", from: next, maxMessages: 5000, maxBytes: 1 << 24)
                for record in records {
                    #expect(record.offset == next)
                    #expect(String(decoding: record.payload, as: UTF8.self) == "m\(record.offset)")
                    next += 1
                }
                if records.isEmpty { break }
            }
            #expect(next == bounds.head + 1, "round \(round): offsets must be dense up to the head")
            acknowledged = bounds.head
        }
    }
}
