import ChaparCore
import FoundationEssentials
@testable import Storage
import Testing

/// Trimming a replica's stored log, and snapshots: written from one store, checked, and
/// installed into another.
@Suite struct ShardSnapshotTests {
    /// Entry `index` of shard 2 carrying one publish of `text` to `channel` (a 3-byte
    /// header before the payload, as the node's entries have).
    func publish(_ index: UInt64, _ channel: String, _ text: String) -> (StoredRaftEntry, AppendInput) {
        let entry = StoredRaftEntry(term: 1, index: index, kind: 0, data: [9, 9, 9] + Array(text.utf8))
        let input = AppendInput(channel: channel, producer: ProducerStamp(id: 5, sequence: index), payload: Array(text.utf8),
                                timestamp: 100 + Int64(index), reference: PayloadReference(shard: 2, index: index, skip: 3))
        return (entry, input)
    }

    /// A store with entries 1…6 of shard 2 applied: `a` gets 1…3, `b` 4…6; entry 7 is a
    /// configuration entry, stored and applied.
    func filledStore(_ temp: TempDirectory) throws -> ReplicatedStore {
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let items = (1...6).map { publish(UInt64($0), $0 <= 3 ? "a" : "b", "m\($0)") }
        let configuration = StoredRaftEntry(term: 1, index: 7, kind: 1, data: [1, 0, 0, 0, 0, 0, 0, 0, 1])
        _ = try store.commit(
            persist: [RaftPersist(shard: 2, hardState: (term: 1, vote: nil, commit: 7, repairing: nil), entries: items.map(\.0) + [configuration])],
            apply: items.map(\.1), appliedThrough: [2: 7], now: 1)
        return store
    }

    /// A filled store's snapshot of shard 2 (every channel), written into its directory.
    func snapshotOfFilledStore(_ source: TempDirectory) throws -> String {
        let store = try filledStore(source)
        let path = source.path + "/2.snapshot"
        _ = try SnapshotProducer.write(directory: store.directory, shard: 2, controller: false, owns: { _ in true }, to: path)
        return path
    }

    @Test func trimmingStopsAtTheOldestEntryARecordStillPointsInto() throws {
        let temp = TempDirectory("trim")
        defer { temp.remove() }
        do {
            let store = try filledStore(temp)
            #expect(try store.trim(shard: 2, upTo: 7).map(\.index) == nil, "record 1 still lies in entry 1")
            // Retention drops channel a's records: entries 1…3 are free.
            try store.applyRetention(RetentionRules(channels: ["a": RetentionPolicy(maxMessages: 0)]), now: 1_000)
            let trimmed = try store.trim(shard: 2, upTo: 7)
            #expect(trimmed?.index == 3 && trimmed?.term == 1)
            #expect(try store.entries(shard: 2, from: 4, through: 7).count == 4)
            #expect(try store.entries(shard: 2, from: 1, through: 3).isEmpty)
        }
        // Reloaded: the log starts after the trimmed prefix, nothing reads as damage.
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let loaded = try #require(try store.load()[2])
        #expect(loaded.damaged == nil)
        #expect(loaded.state.snapshotIndex == 3 && loaded.state.snapshotTerm == 1)
        #expect(loaded.lastApplied?.index == 7)
        let reader = try DataDirectory.readerFor(temp.path)
        #expect(try reader.read("b", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == ["m4", "m5", "m6"].map { Array($0.utf8) })
    }

    @Test func aSnapshotCarriesTheShardToAnotherStore() throws {
        let source = TempDirectory("snap-source"), target = TempDirectory("snap-target"), files = TempDirectory("snap-files")
        defer { [source, target, files].forEach { $0.remove() } }
        let filled = try filledStore(source)
        try FileManager.default.createDirectory(atPath: files.path, withIntermediateDirectories: true)
        let path = files.path + "/2-7.snapshot"
        let header = try SnapshotProducer.write(
            directory: filled.directory, shard: 2, controller: false, owns: { $0 == "a" || $0 == "b" }, to: path)
        #expect(header == SnapshotHeader(shard: 2, index: 7, term: 1, configuration: [1, 0, 0, 0, 0, 0, 0, 0, 1]))
        #expect(try ReplicatedStore.verifySnapshot(path: path) == header)
        do {
            // The target held an older, different history of the shard.
            let store = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
            let (old, input) = publish(1, "a", "stale")
            _ = try store.commit(persist: [RaftPersist(shard: 2, hardState: (term: 1, vote: nil, commit: 1, repairing: nil), entries: [old])],
                                 apply: [input], appliedThrough: [2: 1], now: 1)
            // Copied in one record per transaction; invisible until installed.
            let staging = try store.beginStaging(path: path, owns: { $0 == "a" || $0 == "b" }, controller: false)
            var copies = 0
            while !staging.isComplete {
                _ = try store.commit(persist: [], apply: [], appliedThrough: [:], staging: [staging], stagingBytesMax: 1, now: 2)
                copies += 1
                #expect(store.channelBounds() == ["a": ChannelBounds(earliest: 1, head: 1)])
                #expect(try DataDirectory.readerFor(target.path).read("a", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == [Array("stale".utf8)])
            }
            #expect(staging.failure == nil && copies >= 6, "\(copies) copies")
            _ = try store.commit(
                persist: [RaftPersist(shard: 2, hardState: (term: 2, vote: nil, commit: 7, repairing: nil), entries: [])], apply: [],
                appliedThrough: [:], installs: [SnapshotInstall(staging: staging)], now: 2)
            // The replaced channel's records go a bounded number at a time.
            #expect(try store.collectDropped(rowsMax: 10) == 1)
            #expect(try store.collectDropped(rowsMax: 10) == 0)
            #expect(store.channelBounds() == ["a": ChannelBounds(earliest: 1, head: 3), "b": ChannelBounds(earliest: 1, head: 3)])
            // A retried publish of a producer is still recognised after the move.
            let retry = AppendInput(channel: "b", producer: ProducerStamp(id: 5, sequence: 6), payload: [1])
            let (outcomes, _) = try store.commit(persist: [], apply: [retry], appliedThrough: [:], now: 3)
            #expect(outcomes == [.duplicate(offset: 3)])
        }
        let store = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
        let loaded = try #require(try store.load()[2])
        #expect(loaded.state.applied == 7 && loaded.state.snapshotIndex == 7 && loaded.entries.isEmpty)
        #expect(loaded.lastApplied?.index == 7 && loaded.lastApplied?.term == 1)
        #expect(loaded.configuration?.data == [1, 0, 0, 0, 0, 0, 0, 0, 1])
        let reader = try DataDirectory.readerFor(target.path)
        #expect(try reader.read("a", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == ["m1", "m2", "m3"].map { Array($0.utf8) })
        #expect(try reader.read("a", from: 1, maxMessages: 10, maxBytes: 1 << 20).map(\.timestamp) == [101, 102, 103])
    }

    /// One entry's publishes of a channel are one run; retention that hides part of it
    /// leaves the snapshot only the retained records, which the other store serves alone.
    @Test func aSnapshotCarriesOnlyTheRetainedPartOfARun() throws {
        let source = TempDirectory("snap-run-source"), target = TempDirectory("snap-run-target")
        defer { [source, target].forEach { $0.remove() } }
        let texts = (1...5).map { "r\($0)" }
        var data: [UInt8] = []
        var inputs: [AppendInput] = []
        for text in texts {
            data += [9, 9, 9]
            inputs.append(AppendInput(channel: "c", producer: nil, payload: Array(text.utf8), timestamp: 100,
                                      reference: PayloadReference(shard: 2, index: 1, skip: data.count)))
            data += Array(text.utf8)
        }
        let store = try ReplicatedStore(directory: try DataDirectory(path: source.path), durability: .fsync)
        _ = try store.commit(
            persist: [RaftPersist(shard: 2, hardState: (term: 1, vote: nil, commit: 1, repairing: nil),
                                  entries: [StoredRaftEntry(term: 1, index: 1, kind: 0, data: data)])],
            apply: inputs, appliedThrough: [2: 1], now: 100)
        try store.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 2)), now: 200)
        let path = source.path + "/2.snapshot"
        _ = try SnapshotProducer.write(directory: store.directory, shard: 2, controller: false, owns: { _ in true }, to: path)
        let copy = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
        let staging = try copy.beginStaging(path: path, owns: { _ in true }, controller: false)
        while !staging.isComplete {
            _ = try copy.commit(persist: [], apply: [], appliedThrough: [:], staging: [staging], stagingBytesMax: 1 << 20, now: 300)
        }
        _ = try copy.commit(persist: [], apply: [], appliedThrough: [:], installs: [SnapshotInstall(staging: staging)], now: 300)
        #expect(copy.channelBounds() == ["c": ChannelBounds(earliest: 4, head: 5)])
        let records = try DataDirectory.readerFor(target.path).read("c", from: 1, maxMessages: 10, maxBytes: 1 << 20)
        #expect(records.map(\.offset) == [4, 5])
        #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == ["r4", "r5"])
    }

    /// A node's readers live as long as the node: one that read a channel before a snapshot
    /// replaced it (new row ids) must read the installed records, before and after the
    /// replaced rows are deleted.
    @Test func aLongLivedReaderReadsTheInstalledChannel() throws {
        let source = TempDirectory("snap-reader-source"), target = TempDirectory("snap-reader-target")
        defer { [source, target].forEach { $0.remove() } }
        let path = try snapshotOfFilledStore(source)
        let store = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
        let (old, input) = publish(1, "a", "m1")
        _ = try store.commit(persist: [RaftPersist(shard: 2, hardState: (term: 1, vote: nil, commit: 1, repairing: nil), entries: [old])],
                             apply: [input], appliedThrough: [2: 1], now: 1)
        let reader = try DataDirectory.readerFor(target.path)
        let expected = ["m1", "m2", "m3"].map { Array($0.utf8) }
        #expect(try reader.read("a", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == [expected[0]])
        let staging = try store.beginStaging(path: path, owns: { _ in true }, controller: false)
        while !staging.isComplete {
            _ = try store.commit(persist: [], apply: [], appliedThrough: [:], staging: [staging], stagingBytesMax: 1 << 20, now: 2)
        }
        _ = try store.commit(
            persist: [RaftPersist(shard: 2, hardState: (term: 2, vote: nil, commit: 7, repairing: nil), entries: [])], apply: [],
            appliedThrough: [:], installs: [SnapshotInstall(staging: staging)], now: 2)
        #expect(try reader.read("a", from: 1, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == expected)
        #expect(try store.collectDropped(rowsMax: 100) == 1)
        #expect(try reader.read("a", from: 2, maxMessages: 10, maxBytes: 1 << 20).map { Array($0.payload) } == Array(expected[1...]))
        #expect(try reader.bounds("a") == ChannelBounds(earliest: 1, head: 3))
    }

    /// A copy that never installs (its transfer was dropped, or the node restarted) leaves
    /// nothing visible, and its rows are deleted like a dropped channel's.
    @Test func anAbandonedCopyIsCollected() throws {
        let source = TempDirectory("snap-abandon-source"), target = TempDirectory("snap-abandon-target")
        defer { [source, target].forEach { $0.remove() } }
        let path = try snapshotOfFilledStore(source)
        func rows() throws -> Int {
            Int(try Database(path: target.path + "/" + Schema.fileName, readOnly: true).scalarText("SELECT count(*) FROM record_runs") ?? "") ?? -1
        }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
            var staging: SnapshotStaging? = try store.beginStaging(path: path, owns: { _ in true }, controller: false)
            // Two cycles' copies: a's 1…2, then a's 3 and b's 4 (a run per channel per cycle).
            for now in Int64(2)...3 {
                _ = try store.commit(persist: [], apply: [], appliedThrough: [:], staging: [staging!], stagingBytesMax: 40, now: now)
            }
            #expect(try rows() == 3)
            #expect(try store.collectDropped(rowsMax: 100) == 0, "a copy in progress is kept")
            staging = nil
            #expect(try store.collectDropped(rowsMax: 1) == 1)
            // Another copy goes on, and the node stops half-way through it.
            let again = try store.beginStaging(path: path, owns: { _ in true }, controller: false)
            _ = try store.commit(persist: [], apply: [], appliedThrough: [:], staging: [again], stagingBytesMax: 40, now: 4)
            #expect(try rows() == 3)
            #expect(store.channelBounds().isEmpty)
        }
        let store = try ReplicatedStore(directory: try DataDirectory(path: target.path), durability: .fsync)
        #expect(store.channelBounds().isEmpty)
        #expect(try store.collectDropped(rowsMax: 100) == 3)
        #expect(try rows() == 0)
        #expect(try store.collectDropped(rowsMax: 100) == 0)
    }

    @Test func aDamagedSnapshotFileIsRefused() throws {
        let source = TempDirectory("snap-damaged")
        defer { source.remove() }
        let path = try snapshotOfFilledStore(source)
        var bytes = try #require(FileManager.default.contents(atPath: path))
        for position in [bytes.count / 2, bytes.count - 1] {
            var damaged = bytes
            damaged[position] ^= 0x20
            try damaged.write(to: URL(fileURLWithPath: path))
            #expect(throws: StorageError.self) { try ReplicatedStore.verifySnapshot(path: path) }
        }
        bytes.removeLast(3)
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { try ReplicatedStore.verifySnapshot(path: path) }
    }
}
