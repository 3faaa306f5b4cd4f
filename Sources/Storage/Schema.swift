/// The store's tables. `user_version` records the layout: an older one is migrated
/// (`SchemaMigration`), a newer one refuses to open.
enum Schema {
    static let version: Int32 = 3
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
        CREATE TABLE IF NOT EXISTS record_runs(
            channel INTEGER NOT NULL,
            first INTEGER NOT NULL,
            last INTEGER NOT NULL,
            records BLOB NOT NULL,
            payload BLOB NOT NULL,
            ref_shard INTEGER,
            ref_idx INTEGER);
        CREATE UNIQUE INDEX IF NOT EXISTS record_runs_position ON record_runs(channel, last);
        CREATE INDEX IF NOT EXISTS record_runs_ref ON record_runs(ref_shard, ref_idx) WHERE ref_idx IS NOT NULL;
        CREATE TABLE IF NOT EXISTS producers(
            channel INTEGER NOT NULL,
            producer INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            updated_ts INTEGER NOT NULL,
            PRIMARY KEY(channel, producer)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS dropped_channels(id INTEGER PRIMARY KEY);
        """

    /// Opens the writing connection, creating or checking the schema. `syncsCommits`
    /// false: the caller makes its commits durable another way (the entry log) and its
    /// commits are not synced (`synchronous=NORMAL`) even with `.fsync` durability.
    static func openWriter(path: String, durability: Durability, syncsCommits: Bool = true) throws(StorageError) -> Database {
        let db = try Database(path: path, readOnly: false)
        _ = try db.scalarText("PRAGMA journal_mode=WAL")
        let fullSync = durability == .fsync && syncsCommits
        try db.execute("PRAGMA synchronous=\(fullSync ? "FULL" : "NORMAL")")
        // The Checkpointer thread normally keeps the WAL short; this is only the backstop.
        try db.execute("PRAGMA wal_autocheckpoint=\(writerCheckpointPages)")
        try db.execute("PRAGMA journal_size_limit=\(64 << 20)")
        let found = Int32(try db.scalarText("PRAGMA user_version") ?? "0") ?? 0
        // The log is open now (a transaction ran). A commit's frames then cost one pwrite
        // instead of two per page (the replicated store's ~10-page commits made 18 k
        // pwrites/s per node under R=3 load).
        try db.coalesceLog()
        if found == 0 {
            try db.execute(create)
            try db.execute(RaftLogTables.create)
            try db.execute("PRAGMA user_version=\(version)")
        } else if found > version {
            throw .incompatibleSchema(found: found, expected: version)
        } else {
            if found == 1 { try SchemaMigration.fromVersion1(db) }
            if found <= 2 { try SchemaMigration.fromVersion2(db) }
        }
        return db
    }
}
