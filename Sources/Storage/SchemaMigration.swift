import ChaparCore

/// Brings a store written by an older layout up to `Schema.version`, in one transaction.
enum SchemaMigration {
    /// Version 1 kept one `messages` row per record; each becomes a run of one record
    /// (new writes form longer runs). Very early version-1 stores lack columns and tables
    /// that later version-1 builds added; they gain them first.
    static func fromVersion1(_ db: Database) throws(StorageError) {
        try db.execute("BEGIN IMMEDIATE")
        do throws(StorageError) {
            try completeVersion1(db)
            try db.execute(Schema.create)
            let rows = try db.prepare(
                "SELECT channel, offset, ts, crc, payload, ref_shard, ref_idx, ref_skip, bytes FROM messages ORDER BY channel, offset")
            let insert = try db.prepare(
                "INSERT INTO record_runs(channel, first, last, records, payload, ref_shard, ref_idx) VALUES(?1, ?2, ?2, ?3, ?4, ?5, ?6)")
            while try rows.step() {
                let referenced = !rows.isNull(6)
                var slot = ByteWriter(capacity: RecordRun.slotWidth)
                RecordRun.appendSlot(
                    to: &slot, timestamp: rows.int64(2), crc: UInt32(truncatingIfNeeded: rows.int64(3)),
                    size: referenced ? Int(rows.int64(8)) : rows.blob(4).count, gap: referenced ? Int(rows.int64(7)) : 0)
                insert.bind(1, rows.int64(0))
                insert.bind(2, rows.int64(1))
                insert.bind(3, slot.bytes)
                if referenced {
                    insert.bind(4, [])
                    insert.bind(5, rows.int64(5))
                    insert.bind(6, rows.int64(6))
                } else {
                    insert.bind(4, rows.blob(4))
                    insert.bindNull(5)
                    insert.bindNull(6)
                }
                try insert.run()
            }
            try db.execute("DROP TABLE messages")
            try db.execute("PRAGMA user_version=2")
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Version 2 kept every Raft entry's data in its row; version 3 can point into the
    /// entry log instead. Old rows keep their data; only new entries go to the log.
    static func fromVersion2(_ db: Database) throws(StorageError) {
        try db.execute("BEGIN IMMEDIATE")
        do throws(StorageError) {
            try addEntryLogColumns(db)
            try db.execute(RaftLogTables.create)
            try db.execute("PRAGMA user_version=\(Schema.version)")
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    private static func lacks(_ db: Database, _ table: String, _ column: String) throws(StorageError) -> Bool {
        try db.scalarText("SELECT count(*) FROM pragma_table_info('\(table)') WHERE name='\(column)'") == "0"
    }

    /// Before `RaftLogTables.create` on an older `raft_log`, whose new index needs them.
    private static func addEntryLogColumns(_ db: Database) throws(StorageError) {
        guard try db.scalarText("SELECT count(*) FROM sqlite_master WHERE name='raft_log'") == "1", try lacks(db, "raft_log", "seg")
        else { return }
        for column in ["seg", "pos", "len"] { try db.execute("ALTER TABLE raft_log ADD COLUMN \(column) INTEGER") }
    }

    private static func completeVersion1(_ db: Database) throws(StorageError) {
        func lacks(_ table: String, _ column: String) throws(StorageError) -> Bool { try Self.lacks(db, table, column) }
        try addEntryLogColumns(db)
        try db.execute(RaftLogTables.create)
        if try lacks("raft_state", "repairing") { try db.execute("ALTER TABLE raft_state ADD COLUMN repairing INTEGER") }
        if try lacks("raft_state", "snap_idx") {
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_idx INTEGER NOT NULL DEFAULT 0")
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_term INTEGER NOT NULL DEFAULT 0")
            try db.execute("ALTER TABLE raft_state ADD COLUMN snap_conf BLOB")
        }
        if try lacks("messages", "ref_idx") {
            for column in ["ref_shard", "ref_idx", "ref_skip", "bytes"] { try db.execute("ALTER TABLE messages ADD COLUMN \(column) INTEGER") }
        }
    }
}
