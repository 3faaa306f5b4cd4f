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
}
