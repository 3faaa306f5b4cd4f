/// Channel rows that are not live (table `dropped_channels`): those of dropped channels,
/// deleted a bounded number of rows per call so that dropping or replacing a large
/// replica costs one transaction nothing, and those a snapshot copy is filling, which
/// become live when it installs (or are deleted like dropped ones if it never does,
/// including after a crash).
extension LogWriter {
    /// Inside an open transaction.
    func markDropped(_ id: Int64) throws(StorageError) {
        try db.execute("INSERT OR IGNORE INTO dropped_channels(id) VALUES(\(id))")
    }

    /// Inside an open transaction: `id` holds a live channel again.
    func unmarkDropped(_ id: Int64) throws(StorageError) {
        try db.execute("DELETE FROM dropped_channels WHERE id=\(id)")
    }

    /// Inside an open transaction: deletes up to `rowsMax` rows (runs of records) of dropped channels,
    /// except those in `keeping` (snapshot copies in progress); a channel's producer state
    /// and its mark go with its last records. Returns the rows deleted.
    func collectDropped(rowsMax: Int, keeping: Set<Int64>) throws(StorageError) -> Int {
        let select = try db.prepare("SELECT id FROM dropped_channels ORDER BY id")
        var ids: [Int64] = []
        while try select.step() {
            let id = select.int64(0)
            if !keeping.contains(id) { ids.append(id) }
        }
        var deleted = 0
        for id in ids where deleted < rowsMax {
            let limit = rowsMax - deleted
            try db.execute("DELETE FROM record_runs WHERE rowid IN (SELECT rowid FROM record_runs WHERE channel=\(id) LIMIT \(limit))")
            let removed = db.changes
            deleted += removed
            guard removed < limit else { break }
            try db.execute("DELETE FROM producers WHERE channel=\(id)")
            try unmarkDropped(id)
        }
        return deleted
    }

    /// Whether any dropped channel's rows remain (cheap; checked before collecting).
    func hasDropped() throws(StorageError) -> Bool {
        try db.scalarText("SELECT EXISTS(SELECT 1 FROM dropped_channels)") == "1"
    }
}
