/// The Raft tables of a clustered node, next to the channel logs in the same database
/// so that persisting entries and applying committed ones share one transaction.
final class RaftLogTables {
    static let create = """
        CREATE TABLE IF NOT EXISTS raft_state(
            shard INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            vote INTEGER,
            commit_index INTEGER NOT NULL,
            applied INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS raft_log(
            shard INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            term INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            crc INTEGER NOT NULL,
            data BLOB NOT NULL);
        CREATE UNIQUE INDEX IF NOT EXISTS raft_log_position ON raft_log(shard, idx);
        """

    private let db: Database
    private let insertEntry: Statement
    private let truncate: Statement
    private let upsertHard: Statement
    private let updateApplied: Statement

    init(db: Database) throws(StorageError) {
        self.db = db
        try db.execute(Self.create)
        insertEntry = try db.prepare("INSERT INTO raft_log(shard, idx, term, kind, crc, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        truncate = try db.prepare("DELETE FROM raft_log WHERE shard=?1 AND idx>=?2")
        upsertHard = try db.prepare("""
            INSERT INTO raft_state(shard, term, vote, commit_index, applied) VALUES(?1, ?2, ?3, ?4, 0)
            ON CONFLICT(shard) DO UPDATE SET term=?2, vote=?3, commit_index=?4
            """)
        updateApplied = try db.prepare("""
            INSERT INTO raft_state(shard, term, vote, commit_index, applied) VALUES(?1, 0, NULL, 0, ?2)
            ON CONFLICT(shard) DO UPDATE SET applied=?2
            """)
    }

    /// Every replica's state and the part of its log after its applied index (the
    /// applied prefix stays on disk, read back by `entries` when a follower needs it),
    /// with the last applied entry and the newest configuration entry of the prefix.
    /// Fails on an entry whose checksum does not match.
    func load() throws(StorageError) -> [Int: LoadedReplica] {
        var replicas: [Int: LoadedReplica] = [:]
        let states = try db.prepare("SELECT shard, term, vote, commit_index, applied FROM raft_state")
        while try states.step() {
            let vote: UInt64? = states.isNull(2) ? nil : UInt64(bitPattern: states.int64(2))
            let state = StoredRaftState(
                term: UInt64(states.int64(1)), vote: vote, commit: UInt64(states.int64(3)), applied: UInt64(states.int64(4)))
            replicas[Int(states.int64(0))] = LoadedReplica(state: state, entries: [])
        }
        let configuration = try db.prepare(
            "SELECT shard, idx, term, kind, crc, data FROM raft_log WHERE shard=?1 AND kind=1 AND idx<=?2 ORDER BY idx DESC LIMIT 1")
        for (shard, replica) in replicas {
            var loaded = replica
            let applied = replica.state.applied
            loaded.entries = try entries(shard: shard, from: applied == 0 ? 1 : applied, through: UInt64(Int64.max))
            if applied > 0 {
                guard loaded.entries.first?.index == applied else {
                    throw .corruptRecord(channel: "raft log of shard \(shard)", offset: applied)
                }
                loaded.lastApplied = loaded.entries.removeFirst()
            }
            configuration.bind(1, Int64(shard))
            configuration.bind(2, Int64(applied))
            loaded.configuration = try read(configuration, shard: shard).first
            configuration.reset()
            replicas[shard] = loaded
        }
        return replicas
    }

    private lazy var range: Statement? = try? db.prepare(
        "SELECT shard, idx, term, kind, crc, data FROM raft_log WHERE shard=?1 AND idx>=?2 AND idx<=?3 ORDER BY idx")

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
            let entry = StoredRaftEntry(
                term: UInt64(statement.int64(2)), index: UInt64(statement.int64(1)), kind: UInt8(statement.int64(3)),
                data: Array(statement.blob(5)))
            guard UInt32(truncatingIfNeeded: statement.int64(4)) == Self.checksum(shard: shard, entry) else {
                throw .corruptRecord(channel: "raft log of shard \(shard)", offset: entry.index)
            }
            result.append(entry)
        }
        return result
    }

    /// Inside an open transaction.
    func persist(_ item: RaftPersist) throws(StorageError) {
        if let hard = item.hardState {
            upsertHard.bind(1, Int64(item.shard))
            upsertHard.bind(2, Int64(hard.term))
            if let vote = hard.vote { upsertHard.bind(3, Int64(bitPattern: vote)) } else { upsertHard.bindNull(3) }
            upsertHard.bind(4, Int64(hard.commit))
            try upsertHard.run()
        }
        guard let first = item.entries.first else { return }
        truncate.bind(1, Int64(item.shard))
        truncate.bind(2, Int64(first.index))
        try truncate.run()
        for entry in item.entries {
            insertEntry.bind(1, Int64(item.shard))
            insertEntry.bind(2, Int64(entry.index))
            insertEntry.bind(3, Int64(entry.term))
            insertEntry.bind(4, Int64(entry.kind))
            insertEntry.bind(5, Int64(Self.checksum(shard: item.shard, entry)))
            insertEntry.bind(6, entry.data)
            try insertEntry.run()
        }
    }

    /// Inside an open transaction.
    func setApplied(shard: Int, index: UInt64) throws(StorageError) {
        updateApplied.bind(1, Int64(shard))
        updateApplied.bind(2, Int64(index))
        try updateApplied.run()
    }

    static func checksum(shard: Int, _ entry: StoredRaftEntry) -> UInt32 {
        var header: [UInt8] = []
        for value in [UInt64(shard), entry.term, entry.index] { withUnsafeBytes(of: value.bigEndian) { header.append(contentsOf: $0) } }
        header.append(entry.kind)
        let crc = header.withUnsafeBytes { Checksum.crc32c(0, $0) }
        return entry.data.withUnsafeBytes { Checksum.crc32c(crc, $0) }
    }
}
