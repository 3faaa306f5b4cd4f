import ChaparCore

/// Reads channel history on its own SQLite connection, verifying every record's checksum.
///
/// WAL mode lets it read while the group committer writes. A channel's row id is looked
/// up by every read, in the same statement as its records: a replica replaced by a
/// snapshot (or dropped and created again) has new ids, and its old rows — whose payloads
/// may lie in Raft entries that are gone — are deleted in the background.
public final class LogReader: @unchecked Sendable {  // guarded by: the one thread that uses it
    private let db: Database
    private let selectChannel: Statement
    private let selectRange: Statement
    private let payloads: PayloadResolver

    init(path: String) throws(StorageError) {
        db = try Database(path: path, readOnly: true)
        selectChannel = try db.prepare("SELECT id, head, earliest FROM channels WHERE name=?1")
        // A clustered record's payload is a slice of its Raft log entry (stored once; an
        // entry may carry several), cut out by `payloads`.
        selectRange = try db.prepare("""
            SELECT m.offset, m.ts, m.crc, m.payload, m.ref_shard, m.ref_idx, m.ref_skip, m.bytes, c.id
            FROM channels c JOIN messages m ON m.channel=c.id
            WHERE c.name=?1 AND m.offset>=?2 ORDER BY m.offset LIMIT ?3
            """)
        payloads = try PayloadResolver(db: db)
    }

    /// The channel's retained range, or `.empty` for a channel never written.
    public func bounds(_ channel: String) throws(StorageError) -> ChannelBounds {
        defer { selectChannel.reset() }
        selectChannel.bind(1, Array(channel.utf8))
        guard try selectChannel.step() else { return .empty }
        return ChannelBounds(earliest: UInt64(selectChannel.int64(2)), head: UInt64(selectChannel.int64(1)))
    }

    /// Up to `maxMessages` records from `from` on (or from the earliest retained, if later),
    /// stopping before `maxBytes` of payload except that the first record always comes.
    public func read(_ channel: String, from: UInt64, maxMessages: Int, maxBytes: Int) throws(StorageError)
        -> [StoredRecord]
    {
        guard maxMessages > 0 else { return [] }
        defer {
            selectRange.reset()
            payloads.reset()
        }
        selectRange.bind(1, Array(channel.utf8))
        selectRange.bind(2, Int64(clamping: from))
        selectRange.bind(3, Int64(maxMessages))
        var records: [StoredRecord] = []
        var bytes = 0
        var expected: UInt64?
        while try selectRange.step() {
            let id = selectRange.int64(8)
            let offset = UInt64(selectRange.int64(0))
            let timestamp = selectRange.int64(1)
            let crc = UInt32(truncatingIfNeeded: selectRange.int64(2))
            let size = selectRange.isNull(5) ? selectRange.blob(3).count : Int(selectRange.int64(7))
            if !records.isEmpty && bytes + size > maxBytes { break }
            let payload = try payloads.payload(selectRange, from: 3)
            let actual = payload.withUnsafeBytes {
                RecordChecksum.compute(channelId: id, offset: offset, timestamp: timestamp, payload: $0)
            }
            guard actual == crc else { throw .corruptRecord(channel: channel, offset: offset) }
            // Offsets are dense: a hole inside the retained range is corruption, not history.
            if let expected, offset != expected { throw .corruptRecord(channel: channel, offset: expected) }
            expected = offset + 1
            records.append(StoredRecord(offset: offset, timestamp: timestamp, payload: payload))
            bytes += payload.count
        }
        return records
    }
}
