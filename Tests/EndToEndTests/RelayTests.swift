import ChaparCore
import Client
import Foundation
import Testing
import Transport
import Wire

/// Publishes `count` messages with up to `window` unacknowledged at a time; returns the
/// acknowledged offset of each, in publish order.
func publishPipelined(
    _ client: ChaparClient, channel: String, count: Int, window: Int = 512, payload: @escaping @Sendable (Int) -> [UInt8]
) async throws -> [UInt64] {
    var offsets = [UInt64](repeating: 0, count: count)
    try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
        var next = 0
        while next < min(window, count) {
            let index = next
            group.addTask { (index, try await client.publish(channel, payload(index)).offset) }
            next += 1
        }
        while let (index, offset) = try await group.next() {
            offsets[index] = offset
            if next < count {
                let index = next
                group.addTask { (index, try await client.publish(channel, payload(index)).offset) }
                next += 1
            }
        }
    }
    return offsets
}

@Suite(.serialized) struct RelayTests {
    @Test func tenThousandAcknowledgedPublishesReachASubscriberInOrder() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let publisher = try await ChaparClient.connect(to: address, clientName: "publisher")
        defer { publisher.close() }
        let offsets = try await publishPipelined(publisher, channel: "bulk", count: 10_000) { Array("message \($0)".utf8) }
        #expect(Set(offsets) == Set(1...10_000))

        let subscriber = try await ChaparClient.connect(to: address, clientName: "subscriber")
        defer { subscriber.close() }
        let stream = try await subscriber.subscribe("bulk", from: .offset(1))
        #expect(stream.nextOffset == 1)
        #expect(stream.head == 10_000)
        var expected: UInt64 = 1
        var payloadByOffset: [UInt64: String] = [:]
        for (index, offset) in offsets.enumerated() { payloadByOffset[offset] = "message \(index)" }
        for try await message in stream {
            #expect(message.offset == expected)
            #expect(String(decoding: message.payload, as: UTF8.self) == payloadByOffset[message.offset])
            if message.offset == 10_000 { break }
            expected += 1
        }
        #expect(expected == 10_000)
    }

    /// A subscriber that starts from history while publishes continue switches from the
    /// log to live delivery with no gap and no duplicate.
    @Test func catchUpThenLiveHasNoGapOrDuplicate() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let publisher = try await ChaparClient.connect(to: address)
        defer { publisher.close() }
        _ = try await publishPipelined(publisher, channel: "mixed", count: 3000) { Array("h\($0)".utf8) }
        let subscriber = try await ChaparClient.connect(to: address)
        defer { subscriber.close() }
        let stream = try await subscriber.subscribe("mixed", from: .earliest)
        async let live = publishPipelined(publisher, channel: "mixed", count: 3000) { Array("l\($0)".utf8) }
        var expected: UInt64 = 1
        for try await message in stream {
            #expect(message.offset == expected)
            if message.offset == 6000 { break }
            expected += 1
        }
        #expect(expected == 6000)
        _ = try await live
    }

    /// A subscriber that stops reading falls out of the live stream; the publisher is not
    /// held back, and when the subscriber reads again it gets everything in order.
    @Test func slowSubscriberNeverStallsThePublisherAndLosesNothing() async throws {
        let node = NodeProcess(extraArguments: ["--outbound-bytes-max", "131072", "--tail-cache-bytes", "262144"])
        defer { node.cleanUp() }
        try node.start()
        let address = try SocketAddress(parsing: node.address)
        let slow = try await ChaparClient.connect(to: address, clientName: "slow")
        defer { slow.close() }
        let stream = try await slow.subscribe("firehose", from: .latest, bufferMessagesMax: 16)
        let publisher = try await ChaparClient.connect(to: address, clientName: "fast")
        defer { publisher.close() }
        let payload = [UInt8](repeating: 0x5A, count: 1024)
        let count = 8000  // ~8 MiB: far beyond the slow reader's buffers and the node's queue for it
        let offsets = try await publishPipelined(publisher, channel: "firehose", count: count) { _ in payload }
        #expect(offsets.count == count)
        var expected: UInt64 = 1
        for try await message in stream {
            #expect(message.offset == expected)
            #expect(message.payload.count == 1024)
            if message.offset == UInt64(count) { break }
            expected += 1
        }
        #expect(expected == UInt64(count))
    }

    @Test func producerRetryIsAcknowledgedAsDuplicate() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let client = try await ChaparClient.connect(to: SocketAddress(parsing: node.address))
        defer { client.close() }
        let stamp = ProducerStamp(id: 0xC0FFEE, sequence: 1)
        let first = try await client.publish("dedup", Array("once".utf8), producer: stamp)
        let retry = try await client.publish("dedup", Array("once".utf8), producer: stamp)
        #expect(!first.duplicate)
        #expect(retry.duplicate)
        #expect(retry.offset == first.offset)
        do {
            _ = try await client.publish("dedup", Array("skip".utf8), producer: ProducerStamp(id: 0xC0FFEE, sequence: 5))
            Issue.record("a sequence gap must be refused")
        } catch ClientError.server(let reply) {
            #expect(reply.knownCode == .sequenceGap)
        }
        let batch = try await client.fetch("dedup", from: 1)
        #expect(batch.records.count == 1)
    }

    @Test func fetchReturnsBoundsAndRespectsLimits() async throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let client = try await ChaparClient.connect(to: SocketAddress(parsing: node.address))
        defer { client.close() }
        _ = try await publishPipelined(client, channel: "history", count: 50) { Array("r\($0)".utf8) }
        let batch = try await client.fetch("history", from: 11, maxMessages: 5)
        #expect(batch.records.map(\.offset) == [11, 12, 13, 14, 15])
        #expect(batch.earliest == 1)
        #expect(batch.head == 50)
        let empty = try await client.fetch("nothing-here", from: 1)
        #expect(empty.records.isEmpty)
        #expect(empty.head == 0)
    }
}
