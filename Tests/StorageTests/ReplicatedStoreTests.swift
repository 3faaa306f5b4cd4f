import ChaparCore
import FoundationEssentials
@testable import Storage
import Testing

@Suite struct ReplicatedStoreTests {
    func entry(_ index: UInt64, _ term: UInt64, _ text: String) -> StoredRaftEntry {
        StoredRaftEntry(term: term, index: index, kind: 0, data: Array(text.utf8))
    }

    /// Raft entries, hard state, applied records and the applied index all survive a
    /// reopen; a conflicting suffix replaces the old one from its first index.
    @Test func persistApplyAndReload() throws {
        let temp = TempDirectory("replicated")
        defer { temp.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            _ = try store.commit(
                persist: [RaftPersist(shard: 3, hardState: (term: 1, vote: 7, commit: 0), entries: [entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")])],
                apply: [], appliedThrough: [:], now: 1000)
            let (outcomes, appended) = try store.commit(
                persist: [RaftPersist(shard: 3, hardState: (term: 2, vote: nil, commit: 2), entries: [entry(3, 2, "C"), entry(4, 2, "D")])],
                apply: [AppendInput(channel: "news", producer: nil, payload: Array("a".utf8), timestamp: 500),
                        AppendInput(channel: "news", producer: nil, payload: Array("b".utf8), timestamp: 400)],
                appliedThrough: [3: 2], now: 1000)
            #expect(outcomes == [.stored(offset: 1, timestamp: 500), .stored(offset: 2, timestamp: 500)])
            #expect(appended.first?.records.map(\.offset) == [1, 2])
        }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let loaded = try #require(try store.load()[3])
        #expect(loaded.state == StoredRaftState(term: 2, vote: nil, commit: 2, applied: 2))
        #expect(loaded.entries == [entry(3, 2, "C"), entry(4, 2, "D")])
        #expect(loaded.lastApplied == entry(2, 1, "b"))
        #expect(try store.entries(shard: 3, from: 1, through: 4) == [entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "C"), entry(4, 2, "D")])
        #expect(store.channelBounds()["news"] == ChannelBounds(earliest: 1, head: 2))
        let reader = try DataDirectory.readerFor(temp.path)
        #expect(try reader.read("news", from: 1, maxMessages: 10, maxBytes: 1 << 20).map(\.timestamp) == [500, 500])
    }

    /// A flipped byte in a stored Raft entry is found on load, not replicated onwards.
    @Test func corruptEntryIsDetectedOnLoad() throws {
        let temp = TempDirectory("replicated-corrupt")
        defer { temp.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            _ = try store.commit(
                persist: [RaftPersist(shard: 0, hardState: (term: 1, vote: nil, commit: 0), entries: [entry(1, 1, "hello")])],
                apply: [], appliedThrough: [:], now: 0)
        }
        let db = try Database(path: temp.path + "/" + Schema.fileName, readOnly: false)
        try db.execute("UPDATE raft_log SET data = X'68656C6C70' WHERE shard = 0 AND idx = 1")
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        #expect(throws: StorageError.corruptRecord(channel: "raft log of shard 0", offset: 1)) { try store.load() }
    }
}

extension DataDirectory {
    /// A reader on a directory another test object holds locked (reading needs no lock).
    static func readerFor(_ path: String) throws -> LogReader { try LogReader(path: path + "/" + Schema.fileName) }
}
