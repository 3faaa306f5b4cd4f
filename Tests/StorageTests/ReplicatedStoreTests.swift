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
                persist: [RaftPersist(shard: 3, hardState: (term: 1, vote: 7, commit: 0, repairing: nil), entries: [entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")])],
                apply: [], appliedThrough: [:], now: 1000)
            let (outcomes, appended) = try store.commit(
                persist: [RaftPersist(shard: 3, hardState: (term: 2, vote: nil, commit: 2, repairing: nil), entries: [entry(3, 2, "C"), entry(4, 2, "D")])],
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

    /// A clustered record points into its Raft entry: its payload is stored once, read back
    /// through the entry, and checked against the record's checksum.
    @Test func recordsReferenceTheirRaftEntry() throws {
        let temp = TempDirectory("replicated-ref")
        defer { temp.remove() }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        // One entry carrying two publishes: each record points at its own slice.
        let header: [UInt8] = [9, 9, 9]
        let raft = [StoredRaftEntry(term: 1, index: 1, kind: 0, data: header + Array("hello".utf8) + header + Array("world!".utf8))]
        let inputs = [
            AppendInput(channel: "news", producer: nil, payload: Array("hello".utf8), timestamp: 7,
                        reference: PayloadReference(shard: 2, index: 1, skip: 3)),
            AppendInput(channel: "news", producer: nil, payload: Array("world!".utf8), timestamp: 7,
                        reference: PayloadReference(shard: 2, index: 1, skip: 11)),
        ]
        _ = try store.commit(
            persist: [RaftPersist(shard: 2, hardState: (term: 1, vote: nil, commit: 1, repairing: nil), entries: raft)],
            apply: inputs, appliedThrough: [2: 1], now: 7)
        let reader = try DataDirectory.readerFor(temp.path)
        #expect(try reader.read("news", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) }
            == [Array("hello".utf8), Array("world!".utf8)])
        let db = try Database(path: temp.path + "/" + Schema.fileName, readOnly: true)
        #expect(try db.scalarText("SELECT sum(length(payload)) FROM record_runs") == "0", "no second copy")
        // Damage the entry: the record fails its checksum rather than read wrong bytes.
        try overwriteEntry(temp.path, shard: 2, index: 1, with: header + Array("hellp".utf8) + header + Array("world!".utf8))
        #expect(throws: StorageError.corruptRecord(channel: "news", offset: 1)) {
            try reader.read("news", from: 1, maxMessages: 10, maxBytes: 1 << 20)
        }
    }

    /// A flipped byte in a stored Raft entry is found on load: the log is cut from there
    /// (rows deleted, never replicated onwards) and the replica reported damaged, with the
    /// base of its tail moved below the damage.
    @Test func damagedEntriesAreCutOnLoad() throws {
        let temp = TempDirectory("replicated-corrupt")
        defer { temp.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            let entries = (1...6).map { entry(UInt64($0), 1, "e\($0)") }
            _ = try store.commit(
                persist: [RaftPersist(shard: 0, hardState: (term: 1, vote: nil, commit: 6, repairing: nil), entries: entries)],
                apply: [], appliedThrough: [0: 5], now: 0)
        }
        try overwriteEntry(temp.path, shard: 0, index: 4, with: Array("e3".utf8))
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let loaded = try #require(try store.load()[0])
        #expect(loaded.damaged?.from == 4 && loaded.damaged?.lastStored == 6)
        #expect(loaded.lastApplied == entry(3, 1, "e3"), "the base moves below the damage")
        #expect(loaded.entries.isEmpty)
        #expect(try store.entries(shard: 0, from: 1, through: 10).map(\.index) == [1, 2, 3])
        // Restarting before the repair finished: the applied entries 4 and 5 are still
        // missing, so the replica is still damaged, from the same place.
        let again = try #require(try store.load()[0])
        #expect(again.damaged?.from == 4 && again.lastApplied == entry(3, 1, "e3"))
    }
}

extension DataDirectory {
    /// A reader on a directory another test object holds locked (reading needs no lock).
    static func readerFor(_ path: String) throws -> LogReader { try LogReader(path: path + "/" + Schema.fileName, entriesPath: path + "/entries", pins: SegmentPins()) }
}
