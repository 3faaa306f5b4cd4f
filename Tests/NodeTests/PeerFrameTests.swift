import ChaparCore
import Consensus
@testable import Node
import Testing

@Suite struct PeerFrameTests {
    /// Every shard's catch-up append (1 MiB each) in one cycle: split into RAFT frames the
    /// receiver accepts, in order, none lost.
    @Test func raftBatchesAreSplitIntoAcceptableFrames() throws {
        let items = (0..<16).map { shard in
            let entries = (1...16).map { RaftEntry(term: 1, index: UInt64($0), data: [UInt8](repeating: UInt8(shard), count: 64 << 10)) }
            return ShardEnvelope(shard: UInt32(shard), envelope: RaftEnvelope(
                from: 1, to: 2, message: .append(term: 1, prevIndex: 0, prevTerm: 0, entries: entries, commit: 0)))
        }
        let frames = PeerFrame.raftFrames(items)
        #expect(frames.count > 1)
        var decoded: [ShardEnvelope] = []
        for frame in frames {
            let bytes = frame.encoded()
            #expect(bytes.count - 4 <= PeerFrame.frameBytesMax)
            let back = try bytes.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
            guard case .raft(let list) = back else { Issue.record("not a RAFT frame"); return }
            decoded += list
        }
        #expect(decoded == items)
    }

    /// An entry's publishes decode back with where each payload starts; a channel name
    /// that breaks the rules (from a damaged or hostile entry) is refused, not applied.
    @Test func entriesOfPublishesDecodeAndBadNamesAreRefused() throws {
        // Runs of one channel (decoded once), and channels that come back.
        let publishes = [
            ReplicatedPublish(channel: "خبر", producer: ProducerStamp(id: 1, sequence: 2), timestamp: 5, payload: [1, 2, 3]),
            ReplicatedPublish(channel: "خبر", producer: nil, timestamp: 5, payload: [4]),
            ReplicatedPublish(channel: "news", producer: nil, timestamp: 6, payload: []),
            ReplicatedPublish(channel: "news2", producer: nil, timestamp: 6, payload: [5]),
            ReplicatedPublish(channel: "خبر", producer: nil, timestamp: 7, payload: [6]),
        ]
        let entry = publishes.flatMap(\.encoded)
        let decoded = try ReplicatedPublish.decodeEntry(entry)
        #expect(decoded.map(\.publish) == publishes)
        #expect(Array(entry[decoded[0].payloadStart..<decoded[0].payloadStart + 3]) == [1, 2, 3])
        // Payloads are slices of the entry, not copies: their indices are the entry's.
        #expect(decoded.allSatisfy { $0.publish.payload.startIndex == $0.payloadStart })
        // A payload length running past the entry's end is refused, not sliced.
        #expect(throws: DecodeFailure.self) { _ = try ReplicatedPublish.decodeEntry(Array(entry.dropLast())) }
        // A leader applies what it proposed without decoding it: the starts it noted while
        // encoding must be the ones a follower decodes.
        var writer = ByteWriter()
        let starts = publishes.map { $0.encodeInEntry(&writer) }
        #expect(writer.finish() == entry)
        #expect(starts == decoded.map(\.payloadStart))
        for bad in ["a b", ""] {
            let damaged = ReplicatedPublish(channel: bad, producer: nil, timestamp: 1, payload: [9]).encoded
            #expect(throws: DecodeFailure.self) { _ = try ReplicatedPublish.decodeEntry(damaged) }
            // Also after a valid publish: a bad name is checked, not taken for the last one.
            #expect(throws: DecodeFailure.self) { _ = try ReplicatedPublish.decodeEntry(publishes[0].encoded + damaged) }
        }
    }
}

@Suite struct SnapshotFrameTests {
    func decode(_ frame: PeerFrame) throws -> PeerFrame {
        let bytes = frame.encoded()
        return try bytes.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
    }

    @Test func snapshotFramesRoundTrip() throws {
        let chunk = PeerFrame.snapshotChunk(shard: 3, index: 99, offset: 256, total: 300, data: Array(repeating: 7, count: 44))
        #expect(try decode(chunk) == chunk)
        let ack = PeerFrame.snapshotAck(shard: 3, index: 99, received: 300, ok: true)
        #expect(try decode(ack) == ack)
    }

    /// A chunk reaching past its own total, or a flag other than 0/1, is refused.
    @Test func hostileSnapshotFramesAreRefused() {
        #expect(throws: DecodeFailure.self) {
            _ = try decode(.snapshotChunk(shard: 0, index: 1, offset: 290, total: 300, data: Array(repeating: 0, count: 11)))
        }
        #expect(throws: DecodeFailure.self) {
            _ = try decode(.snapshotChunk(shard: 0, index: 1, offset: 301, total: 300, data: []))
        }
        var bytes = PeerFrame.snapshotAck(shard: 0, index: 1, received: 0, ok: false).encoded()
        bytes[bytes.count - 1] = 2
        #expect(throws: DecodeFailure.self) {
            _ = try bytes.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
        }
    }
}
