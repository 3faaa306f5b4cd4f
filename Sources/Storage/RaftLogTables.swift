/// The Raft tables of a clustered node, next to the channel logs in the same database
/// so that persisting entries and applying committed ones share one transaction.
///
/// An entry's data is either in its row (`data`: configuration entries, and entries
/// stored before layout 3) or in the entry log (`seg`, `pos`, `len`; `data` empty).
/// `entry_log` holds the watermark: the end of the entry log's records this database
/// reflects.
final class RaftLogTables {
    static let create = """
        CREATE TABLE IF NOT EXISTS raft_state(
            shard INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            vote INTEGER,
            commit_index INTEGER NOT NULL,
            applied INTEGER NOT NULL,
            repairing INTEGER,
            snap_idx INTEGER NOT NULL DEFAULT 0,
            snap_term INTEGER NOT NULL DEFAULT 0,
            snap_conf BLOB);
        CREATE TABLE IF NOT EXISTS raft_log(
            shard INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            term INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            crc INTEGER NOT NULL,
            data BLOB NOT NULL,
            seg INTEGER,
            pos INTEGER,
            len INTEGER);
        CREATE UNIQUE INDEX IF NOT EXISTS raft_log_position ON raft_log(shard, idx);
        CREATE INDEX IF NOT EXISTS raft_log_segment ON raft_log(seg) WHERE seg IS NOT NULL;
        CREATE TABLE IF NOT EXISTS entry_log(
            id INTEGER PRIMARY KEY CHECK(id = 1),
            seg INTEGER NOT NULL,
            pos INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS cluster_state(
            id INTEGER PRIMARY KEY CHECK(id = 1),
            data BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS cluster_map(
            id INTEGER PRIMARY KEY CHECK(id = 1),
            data BLOB NOT NULL);
        """

    /// The columns every entry query selects, in this order (`entry(_:shard:)`).
    static let columns = "shard, idx, term, kind, crc, data, seg, pos, len"

    private let db: Database
    let segments: SegmentReader
    private let insertEntry: Statement
    private let insertPlaced: Statement
    private let saveWatermark: Statement
    private let truncate: Statement
    private let upsertHard: Statement
    private let updateApplied: Statement
    private let saveState: Statement
    private let saveLearned: Statement

    init(db: Database, segments: SegmentReader) throws(StorageError) {
        self.db = db
        self.segments = segments
        // The tables themselves are created (and migrated) by `Schema.openWriter`.
        insertEntry = try db.prepare("INSERT INTO raft_log(shard, idx, term, kind, crc, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        insertPlaced = try db.prepare(
            "INSERT INTO raft_log(shard, idx, term, kind, crc, data, seg, pos, len) VALUES(?1, ?2, ?3, ?4, ?5, X'', ?6, ?7, ?8)")
        saveWatermark = try db.prepare("INSERT INTO entry_log(id, seg, pos) VALUES(1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET seg=?1, pos=?2")
        truncate = try db.prepare("DELETE FROM raft_log WHERE shard=?1 AND idx>=?2")
        upsertHard = try db.prepare("""
            INSERT INTO raft_state(shard, term, vote, commit_index, applied, repairing) VALUES(?1, ?2, ?3, ?4, 0, ?5)
            ON CONFLICT(shard) DO UPDATE SET term=?2, vote=?3, commit_index=?4, repairing=?5
            """)
        updateApplied = try db.prepare("""
            INSERT INTO raft_state(shard, term, vote, commit_index, applied) VALUES(?1, 0, NULL, 0, ?2)
            ON CONFLICT(shard) DO UPDATE SET applied=?2
            """)
        saveState = try db.prepare("INSERT INTO cluster_state(id, data) VALUES(1, ?1) ON CONFLICT(id) DO UPDATE SET data=?1")
        saveLearned = try db.prepare("INSERT INTO cluster_map(id, data) VALUES(1, ?1) ON CONFLICT(id) DO UPDATE SET data=?1")
    }

    /// Every replica's state and the part of its log after its applied index (the
    /// applied prefix stays on disk, read back by `entries` when a follower needs it),
    /// with the entry at the base of that tail and the newest configuration entry before it.
    /// Every stored entry is verified; from the first one that fails its checksum (or is
    /// missing) the log is cut — those rows are deleted — and the replica is reported as
    /// damaged, to repair itself from the others (`LoadedReplica.damaged`).
    func load(only: Int? = nil) throws(StorageError) -> [Int: LoadedReplica] {
        var replicas: [Int: LoadedReplica] = [:]
        let states = try db.prepare(
            "SELECT shard, term, vote, commit_index, applied, repairing, snap_idx, snap_term, snap_conf FROM raft_state")
        while try states.step() {
            if let only, Int(states.int64(0)) != only { continue }
            let vote: UInt64? = states.isNull(2) ? nil : UInt64(bitPattern: states.int64(2))
            let repairing: UInt64? = states.isNull(5) ? nil : UInt64(states.int64(5))
            var state = StoredRaftState(
                term: UInt64(states.int64(1)), vote: vote, commit: UInt64(states.int64(3)), applied: UInt64(states.int64(4)),
                repairing: repairing)
            state.snapshotIndex = UInt64(states.int64(6))
            state.snapshotTerm = UInt64(states.int64(7))
            state.snapshotConfiguration = states.isNull(8) ? nil : Array(states.blob(8))
            replicas[Int(states.int64(0))] = LoadedReplica(state: state, entries: [])
        }
        let all = try db.prepare("SELECT \(Self.columns) FROM raft_log WHERE shard=?1 ORDER BY idx")
        for (shard, replica) in replicas {
            var loaded = replica
            var valid: [StoredRaftEntry] = []  // the tail after the applied index, plus its base
            var configuration: StoredRaftEntry?
            var baseEntry: StoredRaftEntry?
            let snapshot = replica.state.snapshotIndex
            var expected = snapshot + 1
            var damagedFrom: UInt64?
            var lastStored: UInt64 = 0
            all.bind(1, Int64(shard))
            while try all.step() {
                lastStored = UInt64(all.int64(1))
                guard damagedFrom == nil else { continue }
                let (entry, intact) = try self.entry(all, shard: shard)
                guard entry.index == expected, intact else {
                    damagedFrom = expected
                    continue
                }
                expected += 1
                if entry.index <= replica.state.applied {
                    baseEntry = entry
                    if entry.kind == 1 { configuration = entry }
                } else {
                    valid.append(entry)
                }
            }
            all.reset()
            // Applied entries that are missing altogether (cut by an earlier repair that has
            // not finished) are damage too.
            if damagedFrom == nil && expected <= replica.state.applied { damagedFrom = expected }
            if let from = damagedFrom {
                // Cut the damaged suffix; the replica's base moves below it if needed.
                try db.execute("DELETE FROM raft_log WHERE shard=\(shard) AND idx>=\(from)")
                loaded.damaged = (from: from, lastStored: max(lastStored, replica.state.repairing ?? 0, from - 1))
                if from <= replica.state.applied {
                    valid = []
                    if let base = baseEntry, base.index >= from { baseEntry = nil }
                }
            }
            let base = min(replica.state.applied, damagedFrom.map { $0 - 1 } ?? UInt64.max)
            if base > 0 && base == snapshot {
                loaded.lastApplied = StoredRaftEntry(term: replica.state.snapshotTerm, index: base, kind: 0, data: [])
            } else if base > 0 {
                let stored = baseEntry == nil ? try entries(shard: shard, from: base, through: base).first : baseEntry
                guard let entry = stored, entry.index == base else {
                    throw .corruptRecord(channel: "raft log of shard \(shard)", offset: base)
                }
                loaded.lastApplied = entry
            }
            if let entry = configuration, entry.index <= base { loaded.configuration = entry } else if base > 0 {
                loaded.configuration = try newestConfiguration(shard: shard, through: base)
            }
            if loaded.configuration == nil, let bytes = replica.state.snapshotConfiguration {
                // Set in the trimmed prefix: the snapshot keeps it.
                loaded.configuration = StoredRaftEntry(term: replica.state.snapshotTerm, index: snapshot, kind: 1, data: bytes)
            }
            loaded.entries = valid.filter { $0.index > base }
            replicas[shard] = loaded
        }
        return replicas
    }

    private func newestConfiguration(shard: Int, through index: UInt64) throws(StorageError) -> StoredRaftEntry? {
        let statement = try db.prepare(
            "SELECT \(Self.columns) FROM raft_log WHERE shard=?1 AND kind=1 AND idx<=?2 ORDER BY idx DESC LIMIT 1")
        statement.bind(1, Int64(shard))
        statement.bind(2, Int64(index))
        return try read(statement, shard: shard).first
    }

    private lazy var range: Statement? = try? db.prepare(
        "SELECT \(Self.columns) FROM raft_log WHERE shard=?1 AND idx>=?2 AND idx<=?3 ORDER BY idx")

    /// Entries `from...through` of `shard` that are stored, checksums verified.
    func entries(shard: Int, from: UInt64, through: UInt64) throws(StorageError) -> [StoredRaftEntry] {
        guard let range else { throw .closed }
        defer { range.reset() }
        range.bind(1, Int64(shard))
        range.bind(2, Int64(from))
        range.bind(3, Int64(min(through, UInt64(Int64.max))))
        return try read(range, shard: shard)
    }

    private func read(_ statement: Statement, shard: Int) throws(StorageError) -> [StoredRaftEntry] {
        var result: [StoredRaftEntry] = []
        while try statement.step() {
            let (entry, intact) = try entry(statement, shard: shard)
            guard intact else { throw .corruptRecord(channel: "raft log of shard \(shard)", offset: entry.index) }
            result.append(entry)
        }
        return result
    }

    /// The entry of the row `statement` is on (selecting `columns`), its data read from
    /// the row or the entry log, and whether it matches its checksum (data that cannot be
    /// read back does not).
    func entry(_ statement: Statement, shard: Int) throws(StorageError) -> (entry: StoredRaftEntry, intact: Bool) {
        var data: [UInt8]
        if statement.isNull(6) {
            data = Array(statement.blob(5))
        } else {
            let position = EntryPosition(
                segment: UInt64(statement.int64(6)), offset: UInt64(statement.int64(7)), length: Int(statement.int64(8)))
            data = try segments.read(position) ?? []
        }
        let entry = StoredRaftEntry(
            term: UInt64(statement.int64(2)), index: UInt64(statement.int64(1)), kind: UInt8(statement.int64(3)), data: data)
        return (entry, UInt32(truncatingIfNeeded: statement.int64(4)) == Self.checksum(shard: shard, entry))
    }

    /// Whether an entry's row points into the entry log instead of holding its data:
    /// every entry but configurations, which stay in their rows for the queries that
    /// read them (trimming, snapshots).
    static func placedInLog(_ entry: StoredRaftEntry) -> Bool { entry.kind != 1 && !entry.data.isEmpty }

    /// Inside an open transaction: `item`'s hard state and entries; `placed` tells where
    /// the entry log holds each entry (nil: every entry's data goes into its row).
    func persist(_ item: RaftPersist, placed: [(position: EntryPosition, crc: UInt32)]? = nil) throws(StorageError) {
        if let hard = item.hardState {
            upsertHard.bind(1, Int64(item.shard))
            upsertHard.bind(2, Int64(hard.term))
            if let vote = hard.vote { upsertHard.bind(3, Int64(bitPattern: vote)) } else { upsertHard.bindNull(3) }
            upsertHard.bind(4, Int64(hard.commit))
            if let until = hard.repairing { upsertHard.bind(5, Int64(until)) } else { upsertHard.bindNull(5) }
            try upsertHard.run()
        }
        guard let first = item.entries.first else { return }
        truncate.bind(1, Int64(item.shard))
        truncate.bind(2, Int64(first.index))
        try truncate.run()
        for (number, entry) in item.entries.enumerated() {
            if let placed, Self.placedInLog(entry) {
                let (position, crc) = placed[number]
                insertPlaced.bind(1, Int64(item.shard))
                insertPlaced.bind(2, Int64(entry.index))
                insertPlaced.bind(3, Int64(entry.term))
                insertPlaced.bind(4, Int64(entry.kind))
                insertPlaced.bind(5, Int64(crc))
                insertPlaced.bind(6, Int64(position.segment))
                insertPlaced.bind(7, Int64(position.offset))
                insertPlaced.bind(8, Int64(position.length))
                try insertPlaced.run()
                continue
            }
            insertEntry.bind(1, Int64(item.shard))
            insertEntry.bind(2, Int64(entry.index))
            insertEntry.bind(3, Int64(entry.term))
            insertEntry.bind(4, Int64(entry.kind))
            insertEntry.bind(5, Int64(Self.checksum(shard: item.shard, entry)))
            try insertEntry.run(binding: entry.data, at: 6)
        }
    }

    /// Inside an open transaction: the entry log's records through `watermark` are in.
    func setWatermark(_ watermark: (segment: UInt64, offset: UInt64)) throws(StorageError) {
        saveWatermark.bind(1, Int64(watermark.segment))
        saveWatermark.bind(2, Int64(watermark.offset))
        try saveWatermark.run()
    }

    /// The end of the entry log's records this database reflects (nil: none recorded yet).
    func watermark() throws(StorageError) -> (segment: UInt64, offset: UInt64)? {
        let statement = try db.prepare("SELECT seg, pos FROM entry_log WHERE id=1")
        guard try statement.step() else { return nil }
        return (UInt64(statement.int64(0)), UInt64(statement.int64(1)))
    }

    /// The oldest entry-log segment a stored entry lies in (nil: none).
    func oldestSegment() throws(StorageError) -> UInt64? {
        let statement = try db.prepare("SELECT min(seg) FROM raft_log WHERE seg IS NOT NULL")
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return UInt64(statement.int64(0))
    }

    /// Inside an open transaction.
    func setApplied(shard: Int, index: UInt64) throws(StorageError) {
        updateApplied.bind(1, Int64(shard))
        updateApplied.bind(2, Int64(index))
        try updateApplied.run()
    }

    /// Inside an open transaction: the controller's state, as its log applied it.
    func saveClusterState(_ bytes: [UInt8]) throws(StorageError) {
        saveState.bind(1, bytes)
        try saveState.run()
    }

    /// Inside an open transaction: this node no longer replicates the controller.
    func forgetClusterState() throws(StorageError) {
        try db.execute("DELETE FROM cluster_state")
    }

    /// Inside an open transaction: a newer state learned from a peer.
    func saveLearnedClusterState(_ bytes: [UInt8]) throws(StorageError) {
        saveLearned.bind(1, bytes)
        try saveLearned.run()
    }

    func loadClusterStates() throws(StorageError) -> (controller: [UInt8]?, learned: [UInt8]?) {
        func load(_ table: String) throws(StorageError) -> [UInt8]? {
            let statement = try db.prepare("SELECT data FROM \(table) WHERE id=1")
            guard try statement.step() else { return nil }
            return Array(statement.blob(0))
        }
        return (try load("cluster_state"), try load("cluster_map"))
    }

    /// Inside an open transaction: forgets a replica entirely.
    func drop(shard: Int) throws(StorageError) {
        try db.execute("DELETE FROM raft_log WHERE shard=\(shard)")
        try db.execute("DELETE FROM raft_state WHERE shard=\(shard)")
    }

    // Asked every second per replica by trimming.
    private lazy var selectState: Statement? = try? db.prepare("SELECT applied, snap_idx FROM raft_state WHERE shard=?1")
    private lazy var selectOldestReference: Statement? = try? db.prepare(
        "SELECT min(ref_idx) FROM record_runs WHERE ref_shard=?1 AND ref_idx IS NOT NULL")

    /// How far `shard` applied and where its stored log starts.
    func state(shard: Int) throws(StorageError) -> (applied: UInt64, snapshotIndex: UInt64)? {
        guard let statement = selectState else { throw .closed }
        defer { statement.reset() }
        statement.bind(1, Int64(shard))
        guard try statement.step() else { return nil }
        return (UInt64(statement.int64(0)), UInt64(statement.int64(1)))
    }

    /// The oldest entry of `shard` that a retained record's payload still lies in.
    func oldestReferenced(shard: Int) throws(StorageError) -> UInt64? {
        guard let statement = selectOldestReference else { throw .closed }
        defer { statement.reset() }
        statement.bind(1, Int64(shard))
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return UInt64(statement.int64(0))
    }

    /// Inside an open transaction: deletes `shard`'s entries through `index`; the log's new
    /// base keeps that entry's term and the configuration in force there. Returns the term.
    func trim(shard: Int, through index: UInt64) throws(StorageError) -> UInt64 {
        let term = try db.prepare("SELECT term FROM raft_log WHERE shard=?1 AND idx=?2")
        term.bind(1, Int64(shard))
        term.bind(2, Int64(index))
        guard try term.step() else { throw .corruptRecord(channel: "raft log of shard \(shard)", offset: index) }
        let baseTerm = UInt64(term.int64(0))
        let configuration = try newestConfiguration(shard: shard, through: index)?.data
        try db.execute("DELETE FROM raft_log WHERE shard=\(shard) AND idx<=\(index)")
        let update = try db.prepare("UPDATE raft_state SET snap_idx=?2, snap_term=?3, snap_conf=coalesce(?4, snap_conf) WHERE shard=?1")
        update.bind(1, Int64(shard))
        update.bind(2, Int64(index))
        update.bind(3, Int64(baseTerm))
        if let configuration { update.bind(4, configuration) } else { update.bindNull(4) }
        try update.run()
        return baseTerm
    }

    /// Inside an open transaction: `shard`'s log is replaced by a snapshot through `index`
    /// (applied there; the stored log starts after it).
    func replaceWithSnapshot(shard: Int, index: UInt64, term: UInt64, configuration: [UInt8]) throws(StorageError) {
        try db.execute("DELETE FROM raft_log WHERE shard=\(shard)")
        let upsert = try db.prepare("""
            INSERT INTO raft_state(shard, term, vote, commit_index, applied, snap_idx, snap_term, snap_conf)
            VALUES(?1, 0, NULL, ?2, ?2, ?2, ?3, ?4)
            ON CONFLICT(shard) DO UPDATE SET commit_index=max(commit_index, ?2), applied=?2, snap_idx=?2, snap_term=?3, snap_conf=?4
            """)
        upsert.bind(1, Int64(shard))
        upsert.bind(2, Int64(index))
        upsert.bind(3, Int64(term))
        if configuration.isEmpty { upsert.bindNull(4) } else { upsert.bind(4, configuration) }
        try upsert.run()
    }

    static func checksum(shard: Int, _ entry: StoredRaftEntry) -> UInt32 {
        var header: [UInt8] = []
        for value in [UInt64(shard), entry.term, entry.index] { withUnsafeBytes(of: value.bigEndian) { header.append(contentsOf: $0) } }
        header.append(entry.kind)
        let crc = header.withUnsafeBytes { Checksum.crc32c(0, $0) }
        return entry.data.withUnsafeBytes { Checksum.crc32c(crc, $0) }
    }
}
