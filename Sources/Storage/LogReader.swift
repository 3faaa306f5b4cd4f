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
    private let runs: RecordRunReader
    private let segments: SegmentReader
    private let pins: SegmentPins

    init(path: String, entriesPath: String, pins: SegmentPins) throws(StorageError) {
        db = try Database(path: path, readOnly: true)
        segments = SegmentReader(path: entriesPath)
        self.pins = pins
        selectChannel = try db.prepare("SELECT id, head, earliest FROM channels WHERE name=?1")
        // Every run selected holds at least one record to return (its last is at or past
        // the first wanted), so `maxMessages` runs are always enough.
        selectRange = try db.prepare("""
            SELECT c.id, c.earliest, \(RecordRunReader.columns)
            FROM channels c JOIN record_runs r ON r.channel=c.id
            WHERE c.name=?1 AND r.last>=max(?2, c.earliest) ORDER BY r.last LIMIT ?3
            """)
        runs = try RecordRunReader(db: db, segments: segments)
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
        // Entered before the statement starts SQLite's read: segments its rows point into
        // stay until it is reset.
        let (epoch, floor) = pins.enter()
        segments.forget(below: floor)
        defer {
            selectRange.reset()
            runs.reset()
            pins.leave(epoch)
        }
        selectRange.bind(1, Array(channel.utf8))
        selectRange.bind(2, Int64(clamping: from))
        selectRange.bind(3, Int64(maxMessages))
        var records: [StoredRecord] = []
        var bytes = 0
        var expected: UInt64?
        rows: while try selectRange.step() {
            let id = selectRange.int64(0)
            let start = max(from, UInt64(selectRange.int64(1)))
            for slot in try RecordRunReader.slots(selectRange, from: 2, channel: channel) where slot.offset >= start {
                if records.count == maxMessages || (!records.isEmpty && bytes + slot.size > maxBytes) { break rows }
                // Offsets are dense: a hole inside the retained range is corruption, not history.
                if let expected, slot.offset != expected { throw .corruptRecord(channel: channel, offset: expected) }
                let payload = try runs.payload(slot, selectRange, from: 2, channelId: id, channel: channel)
                expected = slot.offset + 1
                records.append(StoredRecord(offset: slot.offset, timestamp: slot.timestamp, payload: payload))
                bytes += payload.count
            }
        }
        return records
    }
}
