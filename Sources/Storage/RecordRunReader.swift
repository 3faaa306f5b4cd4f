/// Reads the records of `record_runs` rows, verifying each against its checksum. A run's
/// payloads mostly lie in one Raft entry, loaded once for all of them (and for the next
/// run, which often shares it). Letting SQLite slice the entry per record (`substr` over
/// a join) copied the whole entry for every record: 60 µs per record from 1 MiB entries.
final class RecordRunReader {
    /// The columns a row must select, in this order, for `slots` and `payload`.
    static let columns = "first, last, records, payload, ref_shard, ref_idx"

    private let entry: Statement
    private let segments: SegmentReader
    private var cached: (shard: Int64, index: Int64, data: [UInt8])?

    init(db: Database, segments: SegmentReader) throws(StorageError) {
        entry = try db.prepare("SELECT data, seg, pos, len FROM raft_log WHERE shard=?1 AND idx=?2")
        self.segments = segments
    }

    /// The records of the row `statement` is on, whose columns from `column` on are
    /// `columns`. A row that does not decode is damage at its first record.
    static func slots(_ statement: Statement, from column: Int32, channel: String) throws(StorageError) -> [RecordRun.Slot] {
        let first = UInt64(statement.int64(column))
        guard let slots = RecordRun.slots(first: first, last: UInt64(statement.int64(column + 1)), records: statement.blob(column + 2))
        else { throw .corruptRecord(channel: channel, offset: first) }
        return slots
    }

    /// The payload of `slot`, from the row `statement` is on, checked against the record's
    /// checksum under channel row id `channelId`. A missing entry, or one too short for the
    /// slot, fails the checksum like any other damage.
    func payload(_ slot: RecordRun.Slot, _ statement: Statement, from column: Int32, channelId: Int64, channel: String)
        throws(StorageError) -> [UInt8]
    {
        let payload: [UInt8]
        if statement.isNull(column + 5) {
            payload = Self.slice(statement.blob(column + 3), slot)
        } else {
            let shard = statement.int64(column + 4), index = statement.int64(column + 5)
            if cached?.shard != shard || cached?.index != index {
                defer { entry.reset() }
                entry.bind(1, shard)
                entry.bind(2, index)
                cached = (shard, index, try entry.step() ? try entryData() : [])
            }
            payload = cached!.data.withUnsafeBytes { Self.slice($0, slot) }
        }
        let actual = payload.withUnsafeBytes {
            RecordChecksum.compute(channelId: channelId, offset: slot.offset, timestamp: slot.timestamp, payload: $0)
        }
        guard actual == slot.crc else { throw .corruptRecord(channel: channel, offset: slot.offset) }
        return payload
    }

    /// The data of the entry row `entry` is on, from the row or the entry log.
    private func entryData() throws(StorageError) -> [UInt8] {
        guard !entry.isNull(1) else { return Array(entry.blob(0)) }
        let position = EntryPosition(segment: UInt64(entry.int64(1)), offset: UInt64(entry.int64(2)), length: Int(entry.int64(3)))
        return try segments.read(position) ?? []
    }

    private static func slice(_ area: UnsafeRawBufferPointer, _ slot: RecordRun.Slot) -> [UInt8] {
        guard slot.start >= 0, slot.size >= 0, slot.start <= area.count, slot.size <= area.count - slot.start else { return [] }
        return Array(area[slot.start..<(slot.start + slot.size)])
    }

    /// Forgets the cached entry (its rows may change once the read transaction ends).
    func reset() { cached = nil }
}
