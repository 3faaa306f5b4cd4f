import ChaparCore
import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Storage
import Testing

@Suite struct EntryLogTests {
    func entry(_ index: UInt64, _ term: UInt64, _ text: String, kind: UInt8 = 0) -> StoredRaftEntry {
        StoredRaftEntry(term: term, index: index, kind: kind, data: Array(text.utf8))
    }

    func persist(_ shard: Int, term: UInt64, commit: UInt64, _ entries: [StoredRaftEntry]) -> RaftPersist {
        RaftPersist(shard: shard, hardState: (term: term, vote: 2, commit: commit, repairing: nil), entries: entries)
    }

    /// Replaces `to`'s SQLite files with `from`'s: what SQLite holds after a power loss
    /// that took the transactions since `from` was saved.
    func copySQLite(from: TempDirectory, to: TempDirectory) throws {
        try FileManager.default.createDirectory(atPath: to.path, withIntermediateDirectories: true)
        for file in [Schema.fileName, Schema.fileName + "-wal", Schema.fileName + "-shm"] {
            try? FileManager.default.removeItem(atPath: to.path + "/" + file)
            if file.hasSuffix("-shm") { continue }
            try FileManager.default.copyItem(atPath: from.path + "/" + file, toPath: to.path + "/" + file)
        }
    }

    @Test func aRecordDecodesToWhatWasWrittenAndADamagedOneDoesNot() throws {
        let item = RaftPersist(
            shard: 7, hardState: (term: 9, vote: nil, commit: 4, repairing: 12),
            entries: [entry(5, 9, "five"), entry(6, 9, "", kind: 0), entry(7, 9, "conf", kind: 1)])
        let buffer = AlignedBytes()
        buffer.write(contentsOf: [1, 2, 3])  // the record starts at 3 in its buffer, at 103 in its segment
        let placed = EntryLogRecord.append(item, to: buffer, base: 100, segment: 4)
        let written = Array(buffer.bytes())
        let bytes = Array(written.dropFirst(3))
        let decoded = try #require(bytes.withUnsafeBytes { EntryLogRecord.decode($0, base: 103, segment: 4) })
        #expect(decoded.size == bytes.count)
        #expect(decoded.record.item.shard == 7 && decoded.record.item.entries == item.entries)
        #expect(decoded.record.item.hardState?.term == 9 && decoded.record.item.hardState?.vote == nil)
        #expect(decoded.record.item.hardState?.commit == 4 && decoded.record.item.hardState?.repairing == 12)
        #expect(decoded.record.positions == placed.map(\.position))
        #expect(decoded.record.crcs == placed.map(\.crc))
        #expect(Array(written[Int(placed[0].position.offset - 100)..<Int(placed[0].position.offset - 100) + 4]) == Array("five".utf8))
        for index in [0, 9, 30, bytes.count - 1] {
            var damaged = bytes
            damaged[index] ^= 0x40
            #expect(damaged.withUnsafeBytes { EntryLogRecord.decode($0, base: 103, segment: 4) } == nil, "byte \(index)")
        }
        #expect(Array(bytes.dropLast()).withUnsafeBytes { EntryLogRecord.decode($0, base: 103, segment: 4) } == nil, "torn")
    }

    /// Entries' data goes to the entry log, configuration entries stay in their rows.
    @Test func entriesLieInTheLogAndReadBack() throws {
        let temp = TempDirectory("entrylog")
        defer { temp.remove() }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let entries = [entry(1, 1, "one"), entry(2, 1, "conf", kind: 1), entry(3, 1, "three")]
        _ = try store.commit(persist: [persist(5, term: 1, commit: 0, entries)], apply: [], appliedThrough: [:], now: 0)
        #expect(try store.entries(shard: 5, from: 1, through: 3) == entries)
        let db = try Database(path: temp.path + "/" + Schema.fileName, readOnly: true)
        #expect(try db.scalarText("SELECT group_concat(idx || ':' || length(data) || ':' || ifnull(seg, '-'), ' ') FROM raft_log") == "1:0:1 2:4:- 3:0:1")
        #expect(try EntryLog.segments(in: temp.path + "/entries") == [1])
    }

    /// After a power loss SQLite may come back without its last, unsynced transactions;
    /// the entry log, synced every cycle, has them: opening replays its records past the
    /// watermark SQLite kept — entries, a replaced suffix and hard states.
    @Test func aStoreThatLostItsLastTransactionsReplaysThemFromTheLog() throws {
        let temp = TempDirectory("replay"), saved = TempDirectory("replay-saved")
        defer { temp.remove(); saved.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            _ = try store.commit(
                persist: [persist(1, term: 1, commit: 0, [entry(1, 1, "a"), entry(2, 1, "b")])],
                apply: [], appliedThrough: [:], now: 0)
            // What SQLite holds after a power loss here: this commit and nothing later.
            try copySQLite(from: temp, to: saved)
            _ = try store.commit(
                persist: [persist(1, term: 2, commit: 1, [entry(2, 2, "B"), entry(3, 2, "C")]),
                          persist(4, term: 1, commit: 0, [entry(1, 1, "x")])],
                apply: [], appliedThrough: [:], now: 0)
            _ = try store.commit(
                persist: [RaftPersist(shard: 1, hardState: (term: 3, vote: nil, commit: 3, repairing: nil), entries: [])],
                apply: [], appliedThrough: [:], now: 0)
        }
        try copySQLite(from: saved, to: temp)
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let loaded = try store.load()
        #expect(loaded[1]?.state == StoredRaftState(term: 3, vote: nil, commit: 3, applied: 0))
        #expect(loaded[1]?.entries == [entry(1, 1, "a"), entry(2, 2, "B"), entry(3, 2, "C")])
        #expect(loaded[4]?.entries == [entry(1, 1, "x")])
        #expect(loaded.values.allSatisfy { $0.damaged == nil })
        // Appending goes on after the replayed records.
        _ = try store.commit(persist: [persist(4, term: 1, commit: 1, [entry(2, 1, "y")])], apply: [], appliedThrough: [:], now: 0)
        #expect(try store.entries(shard: 4, from: 1, through: 2) == [entry(1, 1, "x"), entry(2, 1, "y")])
    }

    /// A hard state that moved only its commit index is recorded by the transaction alone:
    /// the entry log gets no record (nor a sync), and a power loss that takes SQLite's last
    /// transaction moves the commit index back to what the log holds — Raft learns it again.
    @Test func aCommitIndexAloneIsNotWrittenToTheLog() throws {
        let temp = TempDirectory("commit-only"), saved = TempDirectory("commit-only-saved")
        defer { temp.remove(); saved.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            _ = try store.commit(persist: [persist(1, term: 1, commit: 0, [entry(1, 1, "a"), entry(2, 1, "b")])], apply: [], appliedThrough: [:], now: 0)
            try copySQLite(from: temp, to: saved)
            let logEnd = store.entryLog.watermark
            _ = try store.commit(persist: [], commitsOnly: [persist(1, term: 1, commit: 2, [])], apply: [], appliedThrough: [:], now: 0)
            #expect(store.entryLog.watermark.segment == logEnd.segment && store.entryLog.watermark.offset == logEnd.offset)
            #expect(try store.load()[1]?.state == StoredRaftState(term: 1, vote: 2, commit: 2, applied: 0))
        }
        try copySQLite(from: saved, to: temp)
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let loaded = try store.load()
        #expect(loaded[1]?.state == StoredRaftState(term: 1, vote: 2, commit: 0, applied: 0))
        #expect(loaded[1]?.entries == [entry(1, 1, "a"), entry(2, 1, "b")])
    }

    /// A cycle whose write never finished leaves a partial record: it is cut on open (it
    /// was never synced, so nothing it held was promised) and the log goes on from there.
    @Test func aTornLastRecordIsCutOff() throws {
        let temp = TempDirectory("torn")
        defer { temp.remove() }
        let segment = EntryLog.name(1, in: temp.path + "/entries")
        var intactSize: UInt64 = 0
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
            _ = try store.commit(persist: [persist(2, term: 1, commit: 0, [entry(1, 1, "kept")])], apply: [], appliedThrough: [:], now: 0)
            intactSize = store.entryLog.watermark.offset
        }
        // Half of a record, as a crash in the middle of its write leaves it (over the zeros
        // that pad a direct write's last block).
        let partial = AlignedBytes()
        _ = EntryLogRecord.append(persist(2, term: 1, commit: 1, [entry(2, 1, "lost")]), to: partial, base: intactSize, segment: 1)
        let handle = try #require(FileHandle(forWritingAtPath: segment))
        try handle.seek(toOffset: intactSize)
        try handle.write(contentsOf: Data(Array(partial.bytes()).prefix(partial.count / 2)))
        try handle.close()
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        #expect(try fileSize(segment) == intactSize)
        #expect(try store.load()[2]?.entries == [entry(1, 1, "kept")])
        _ = try store.commit(persist: [persist(2, term: 1, commit: 1, [entry(2, 1, "next")])], apply: [], appliedThrough: [:], now: 0)
        #expect(try store.entries(shard: 2, from: 1, through: 2) == [entry(1, 1, "kept"), entry(2, 1, "next")])
    }

    /// A cycle's entries are written while its SQLite statements run; `synced` comes after
    /// the outcomes are staged, once the record is in the segment file, and before the
    /// transaction commits (promises may go out before SQLite's commit, never before the log).
    @Test func syncedRunsOnceTheLogHoldsTheEntriesAndBeforeTheTransactionCommits() throws {
        let temp = TempDirectory("synced")
        defer { temp.remove() }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync)
        let segment = EntryLog.name(1, in: temp.path + "/entries")
        let reader = try Database(path: temp.path + "/" + Schema.fileName, readOnly: true)
        var events: [String] = []
        _ = try store.commit(
            persist: [persist(4, term: 2, commit: 0, [entry(1, 2, "first"), entry(2, 2, "second")])], apply: [], appliedThrough: [:], now: 0,
            staged: { _ in events.append("staged") },
            synced: {
                events.append("synced")
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: segment))).map { Array($0) } ?? []
                let record = bytes.withUnsafeBytes { EntryLogRecord.decode($0, base: 0, segment: 1) }
                if record?.record.item.entries.map(\.index) == [1, 2] { events.append("in the log") }
                if (try? reader.scalarText("SELECT count(*) FROM raft_log")) == "0" { events.append("not yet in SQLite") }
            })
        #expect(events == ["staged", "synced", "in the log", "not yet in SQLite"])
        #expect(try reader.scalarText("SELECT count(*) FROM raft_log") == "2")
    }

    /// A record that fails its checks with a later segment after it is not a torn end:
    /// records after it were synced, so the store refuses to open rather than drop them.
    @Test func damageBeforeALaterSegmentRefusesToOpen() throws {
        let temp = TempDirectory("damaged"), saved = TempDirectory("damaged-saved")
        defer { temp.remove(); saved.remove() }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 2048)
            _ = try store.commit(persist: [persist(1, term: 1, commit: 0, [entry(1, 1, "first")])], apply: [], appliedThrough: [:], now: 0)
            try copySQLite(from: temp, to: saved)
            for index in 2...6 {
                _ = try store.commit(
                    persist: [persist(1, term: 1, commit: 0, [entry(UInt64(index), 1, String(repeating: "d", count: 1000))])],
                    apply: [], appliedThrough: [:], now: 0)
            }
        }
        #expect(try EntryLog.segments(in: temp.path + "/entries").count >= 2)
        try copySQLite(from: saved, to: temp)
        // One byte of the second record's body (after the watermark, in segment 1).
        let segment = EntryLog.name(1, in: temp.path + "/entries")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        let firstRecord = try #require(bytes.withUnsafeBytes { EntryLogRecord.decode($0, base: 0, segment: 1) })
        bytes[firstRecord.size + 12] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        #expect(throws: StorageError.damagedEntryLog(file: segment, offset: UInt64(firstRecord.size))) {
            _ = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 2048)
        }
    }

    /// Direct appends pad each segment's last block with zeros, and a rolled-over segment
    /// keeps its padding: records replayed across several segments come back whole, and
    /// appending after a reopen continues inside the last, partial block.
    @Test func paddedSegmentsReplayAndAppendingContinuesInTheirLastBlock() throws {
        let temp = TempDirectory("padded"), saved = TempDirectory("padded-saved")
        defer { temp.remove(); saved.remove() }
        let written = (1...9).map { entry(UInt64($0), 1, String(repeating: Character(UnicodeScalar(96 + $0)!), count: 300 * $0)) }
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 3000)
            _ = try store.commit(persist: [persist(1, term: 1, commit: 0, [written[0]])], apply: [], appliedThrough: [:], now: 0)
            try copySQLite(from: temp, to: saved)
            for item in written.dropFirst() {
                _ = try store.commit(persist: [persist(1, term: 1, commit: 0, [item])], apply: [], appliedThrough: [:], now: 0)
            }
        }
        let entries = temp.path + "/entries"
        let segments = try EntryLog.segments(in: entries)
        #expect(segments.count >= 3)
        for number in segments {
            #expect(try fileSize(EntryLog.name(number, in: entries)) % UInt64(DirectAppender.blockBytes) == 0, "segment \(number)")
        }
        try copySQLite(from: saved, to: temp)
        do {
            let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 3000)
            #expect(try store.load()[1]?.entries == written)
            _ = try store.commit(persist: [persist(1, term: 1, commit: 0, [entry(10, 1, "ten")])], apply: [], appliedThrough: [:], now: 0)
        }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 3000)
        #expect(try store.entries(shard: 1, from: 1, through: 10) == written + [entry(10, 1, "ten")])
    }

    /// Where the file system refuses direct I/O, the log appends buffered: the records of
    /// many appends, across segments, are found again when it is reopened.
    @Test func bufferedAppendsReadBackAcrossSegments() throws {
        let temp = TempDirectory("buffered")
        defer { temp.remove() }
        try FileManager.default.createDirectory(atPath: temp.path, withIntermediateDirectories: true)
        let entries = temp.path + "/entries"
        var items: [RaftPersist] = []
        for cycle in 1...15 {
            let first = entry(UInt64(2 * cycle - 1), 1, String(repeating: "b", count: 150 * cycle))
            let second = entry(UInt64(2 * cycle), 1, String(repeating: "c", count: 150 * cycle + 1))
            items.append(persist(3, term: 1, commit: UInt64(cycle), [first, second]))
        }
        var placed: [[(position: EntryPosition, crc: UInt32)]] = []
        do {
            let log = try EntryLog(path: entries, segmentBytesMax: 4096, after: nil, directIO: false)
            for item in items {
                placed += try log.begin([item], sync: true)
                try log.finish()
            }
        }
        #expect(try EntryLog.segments(in: entries).count >= 3)
        let reopened = try EntryLog(path: entries, segmentBytesMax: 4096, after: (segment: 1, offset: 0), directIO: false)
        #expect(reopened.replayed.map(\.item.entries) == items.map(\.entries))
        #expect(reopened.replayed.map(\.positions) == placed.map { $0.map(\.position) })
        #expect(reopened.replayed.last?.item.hardState?.commit == 15)
    }

    /// Segments roll over at their size bound; once trimming frees a whole segment it is
    /// deleted — but not while a reader that may still see its rows is inside.
    @Test func freedSegmentsAreDeletedOnceNoReaderCanReachThem() throws {
        let temp = TempDirectory("segments")
        defer { temp.remove() }
        let store = try ReplicatedStore(directory: try DataDirectory(path: temp.path), durability: .fsync, segmentBytesMax: 4096)
        let payload = String(repeating: "p", count: 1000)
        for index in 1...20 {
            _ = try store.commit(
                persist: [persist(3, term: 1, commit: UInt64(index), [entry(UInt64(index), 1, payload)])],
                apply: [], appliedThrough: [3: UInt64(index)], now: 0)
        }
        let entries = temp.path + "/entries"
        let before = try EntryLog.segments(in: entries)
        #expect(before.count >= 5, "4 KiB segments of ~1 KiB records: \(before)")
        #expect(try store.collectSegments() == 0, "every segment still holds entries")
        let reader = store.directory.segmentPins.enter()
        #expect(try store.trim(shard: 3, upTo: 16)?.index == 16)
        #expect(try store.collectSegments() == 0, "a reader entered before the trim")
        #expect(try EntryLog.segments(in: entries) == before)
        store.directory.segmentPins.leave(reader.epoch)
        let removed = try store.collectSegments()
        let after = try EntryLog.segments(in: entries)
        #expect(removed > 0 && after.count == before.count - removed)
        #expect(try store.entries(shard: 3, from: 17, through: 20).map(\.index) == [17, 18, 19, 20])
        // Reopened, the watermark's segment and everything after it are still there.
        let loaded = try #require(try store.load()[3])
        #expect(loaded.damaged == nil && loaded.lastApplied?.index == 20)
    }

    func fileSize(_ path: String) throws -> UInt64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
    }
}

@Suite struct DirectAppenderTests {
    /// Appends of every size, across block boundaries, leave the file holding exactly
    /// what was appended, then zeros to the end of the last block; an appender started
    /// on the last partial block (as a reopened log does) continues where it ended.
    @Test func appendsOfAnySizeLandWhereTheyBelong() throws {
        let temp = TempDirectory("direct")
        defer { temp.remove() }
        let name = temp.path + "/file"
        try FileManager.default.createDirectory(atPath: temp.path, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: name, contents: nil))
        let fd = open(name, O_RDWR | O_CLOEXEC | CLINUX_O_DIRECT)
        try #require(fd >= 0, "the test directory's file system takes O_DIRECT")
        var random = SeededRandom(seed: 11)
        var expected: [UInt8] = []
        var appender = DirectAppender(tail: [])
        for round in 0..<40 {
            if round == 20 {
                // Reopened: the kept block comes from the file.
                let kept = expected.count % DirectAppender.blockBytes
                appender = DirectAppender(tail: Array(expected.suffix(kept)))
            }
            let size = [0, 1, 4095, 4096, 4097, 100, 70_000, 1_500_000][Int(random.next() % 8)]
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            appender.buffer.write(contentsOf: bytes)
            let failure = appender.appendBuffered(fd: fd, at: UInt64(expected.count))
            #expect(failure == nil)
            expected += bytes
        }
        close(fd)
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: name)))
        let padded = (expected.count + DirectAppender.blockBytes - 1) / DirectAppender.blockBytes * DirectAppender.blockBytes
        #expect(file.count == padded)
        #expect(Array(file.prefix(expected.count)) == expected)
        #expect(file.dropFirst(expected.count).allSatisfy { $0 == 0 })
    }
}

