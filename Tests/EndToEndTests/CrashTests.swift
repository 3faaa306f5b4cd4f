import ChaparCore
import Client
import Foundation
import Synchronization
import Testing
import Transport
import Wire

@Suite(.serialized) struct CrashTests {
    /// Publishes continuously, kills the node with SIGKILL mid-stream, restarts it on the
    /// same data: every acknowledged message is there with its payload, and offsets
    /// continue densely after the recovered head.
    @Test func killNineLosesNothingAcknowledged() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let acknowledged = Locked<[UInt64: String]>([:])
        let publisher = try await ChaparClient.connect(to: address)
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<64 {
                    group.addTask {
                        var sequence = 0
                        while true {
                            let text = "w\(worker)-\(sequence)"
                            let ack = try await publisher.publish("crash", Array(text.utf8))
                            acknowledged.withLock { $0[ack.offset] = text }
                            sequence += 1
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await waitUntilAsync("2,000 acknowledgements") { acknowledged.withLock { $0.count } >= 2000 }
        node.kill9()
        _ = await publishing.result  // every worker fails once the connection drops
        publisher.close()
        let survivors = acknowledged.withLock { $0 }

        try node.start()
        let client = try await ChaparClient.connect(to: SocketAddress(parsing: node.address))
        defer { client.close() }
        var stored: [UInt64: String] = [:]
        var next: UInt64 = 1
        var head: UInt64 = 0
        repeat {
            let batch = try await client.fetch("crash", from: next, maxMessages: 5000, maxBytes: 1 << 20)
            head = batch.head
            for record in batch.records {
                #expect(record.offset == next, "offsets are dense")
                stored[record.offset] = String(decoding: record.payload, as: UTF8.self)
                next += 1
            }
            if batch.records.isEmpty { break }
        } while next <= head
        #expect(next == head + 1)
        for (offset, text) in survivors {
            #expect(stored[offset] == text, "acknowledged offset \(offset) must survive")
        }
        #expect(head >= survivors.keys.max() ?? 0)
        let after = try await client.publish("crash", Array("after restart".utf8))
        #expect(after.offset == head + 1)
    }

    /// SIGTERM stops the node gracefully (exit 0) and nothing acknowledged is lost.
    @Test func gracefulStopKeepsEverything() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let client = try await ChaparClient.connect(to: SocketAddress(parsing: node.address))
        let offsets = try await publishPipelined(client, channel: "calm", count: 500) { Array("c\($0)".utf8) }
        client.close()
        #expect(node.stop() == 0)
        #expect(node.log().contains("msg=stopped"))
        try node.start()
        let again = try await ChaparClient.connect(to: SocketAddress(parsing: node.address))
        defer { again.close() }
        let batch = try await again.fetch("calm", from: 1, maxMessages: 1000)
        #expect(batch.records.count == offsets.count)
    }
}
