import ChaparCore
@testable import Storage
import Testing

/// `ReplicatedStore.commit(whileWriting:)`: committed entries applied while the cycle's
/// entry-log write is in flight join the cycle's transaction and follow what it applied.
@Suite struct WhileWritingTests {
    func input(_ channel: String, _ text: String, producer: ProducerStamp? = nil) -> AppendInput {
        AppendInput(channel: channel, producer: producer, payload: Array(text.utf8), timestamp: 1)
    }

    func persist(_ index: UInt64) -> RaftPersist {
        RaftPersist(shard: 1, hardState: (term: 1, vote: 2, commit: 0, repairing: nil),
                    entries: [StoredRaftEntry(term: 1, index: index, kind: 0, data: Array("entry \(index)".utf8))])
    }

    @Test func appliesWhileWritingFollowTheCycleAndCommitWithIt() throws {
        let temp = TempDirectory("whilewriting")
        defer { temp.remove() }
        let producer = ProducerStamp(id: 7, sequence: 1)
        var calls = 0
        var early: [AppendOutcome] = []
        var later: [AppendOutcome] = []
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            let (_, appended) = try store.commit(
                persist: [persist(1)], apply: [input("a", "one", producer: producer)], appliedThrough: [1: 1], now: 0,
                staged: { early = $0 },
                whileWriting: {
                    calls += 1
                    guard calls == 1 else { return nil }
                    // The same producer's retry, its next publish, and a channel new in this step.
                    let more = [
                        input("a", "one again", producer: producer), input("a", "two", producer: ProducerStamp(id: 7, sequence: 2)),
                        input("b", "first"),
                    ]
                    return AppliedWhileWriting(apply: more, appliedThrough: [1: 3]) { later = $0 }
                })
            #expect(calls >= 1)
            #expect(early == [.stored(offset: 1, timestamp: 1)])
            #expect(later == [.duplicate(offset: 1), .stored(offset: 2, timestamp: 1), .stored(offset: 1, timestamp: 1)])
            #expect(appended.map(\.channel) == ["a", "a", "b"])
            #expect(appended.flatMap(\.records).map(\.offset) == [1, 2, 1])
            #expect(store.head(of: "a") == 2 && store.head(of: "b") == 1)
            // The next cycle goes on from both steps.
            let (outcomes, _) = try store.commit(
                persist: [persist(2)], apply: [input("b", "second"), input("a", "three", producer: ProducerStamp(id: 7, sequence: 3))],
                appliedThrough: [1: 4], now: 0)
            #expect(outcomes == [.stored(offset: 2, timestamp: 1), .stored(offset: 3, timestamp: 1)])
        }
        let reopened = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        #expect(reopened.head(of: "a") == 3 && reopened.head(of: "b") == 2)
        #expect(try reopened.load()[1]?.state.applied == 4)
    }

    /// Without entries to persist there is no write to wait for: `whileWriting` is not asked.
    @Test func aCycleWithoutAWriteDoesNotAsk() throws {
        let temp = TempDirectory("whilewriting-none")
        defer { temp.remove() }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        var asked = false
        _ = try store.commit(persist: [], apply: [input("a", "x")], appliedThrough: [:], now: 0, whileWriting: {
            asked = true
            return nil
        })
        #expect(!asked)
        #expect(store.head(of: "a") == 1)
    }
}
