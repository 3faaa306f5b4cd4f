/// The store's tables. `user_version` records the layout; a mismatch refuses to open.
enum Schema {
    static let version: Int32 = 1
    static let fileName = "chapar.db"
    /// WAL pages after which the writer checkpoints by itself (64 MiB of 4 KiB pages):
    /// reached only when the Checkpointer falls behind or is not running.
    static let writerCheckpointPages = 16_384

    static let create = """
        CREATE TABLE IF NOT EXISTS channels(
            id INTEGER PRIMARY KEY,
            name BLOB NOT NULL UNIQUE,
            head INTEGER NOT NULL,
            earliest INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            last_ts INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS messages(
            channel INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            crc INTEGER NOT NULL,
            payload BLOB NOT NULL,
            ref_shard INTEGER,
            ref_idx INTEGER,
            ref_skip INTEGER,
            bytes INTEGER);
        CREATE UNIQUE INDEX IF NOT EXISTS messages_position ON messages(channel, offset);
        CREATE TABLE IF NOT EXISTS producers(
            channel INTEGER NOT NULL,
            producer INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            updated_ts INTEGER NOT NULL,
            PRIMARY KEY(channel, producer)) WITHOUT ROWID;
        """

    /// Opens the writing connection, creating or checking the schema.
    static func openWriter(path: String, durability: Durability) throws(StorageError) -> Database {
        let db = try Database(path: path, readOnly: false)
        _ = try db.scalarText("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=\(durability == .fsync ? "FULL" : "NORMAL")")
        // The Checkpointer thread normally keeps the WAL short; this is only the backstop.
        try db.execute("PRAGMA wal_autocheckpoint=\(writerCheckpointPages)")
        try db.execute("PRAGMA journal_size_limit=\(64 << 20)")
        let found = Int32(try db.scalarText("PRAGMA user_version") ?? "0") ?? 0
        // The log is open now (a transaction ran). A commit's frames then cost one pwrite
        // instead of two per page; safe because this connection syncs at every commit.
        if durability == .fsync { try db.coalesceLog() }
        if found == 0 {
            try db.execute(create)
            try db.execute("PRAGMA user_version=\(version)")
        } else if found != version {
            throw .incompatibleSchema(found: found, expected: version)
        }
        // Added within version 1 (older stores gain them here): Raft tables, and rows that
        // keep their payload in a Raft log entry rather than a second copy.
        try db.execute(RaftLogTables.create)
        if try db.scalarText("SELECT count(*) FROM pragma_table_info('raft_state') WHERE name='repairing'") == "0" {
            try db.execute("ALTER TABLE raft_state ADD COLUMN repairing INTEGER")
        }
        // The snapshot a replica's trimmed log starts after: its index and term, and the
        // configuration in force there (NULL: the bootstrap one).
        if try db.scalarText("SELECT count(*) FROM pragma_table_info('raft_state') WHERE name='snap_idx'") == "0" {
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_idx INTEGER NOT NULL DEFAULT 0")
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_term INTEGER NOT NULL DEFAULT 0")
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_conf BLOB")
        }
        if try db.scalarText("SELECT count(*) FROM pragma_table_info('messages') WHERE name='ref_idx'") == "0" {
            for column in ["ref_shard", "ref_idx", "ref_skip", "bytes"] {
                try db.execute("ALTER TABLE messages ADD COLUMN \(column) INTEGER")
            }
        }
        // Which Raft entries retained records still point into (the oldest bounds trimming).
        try db.execute("CREATE INDEX IF NOT EXISTS messages_ref ON messages(ref_shard, ref_idx) WHERE ref_idx IS NOT NULL")
        // Channel row ids whose records are not live: a dropped channel's, deleted a bounded
        // number per transaction, and a snapshot's being copied in before it is installed.
        try db.execute("CREATE TABLE IF NOT EXISTS dropped_channels(id INTEGER PRIMARY KEY)")
        return db
    }
}
