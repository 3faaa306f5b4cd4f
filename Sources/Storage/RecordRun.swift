import ChaparCore

/// Consecutive records of one channel stored as one row of `record_runs` (Kafka's record
/// batch, in SQLite): a Raft entry carries a cycle's publishes of a channel, and one row
/// for all of them costs one B-tree insert per index instead of one per record — at
/// 1 KiB messages those inserts were a fifth of a node's CPU.
///
/// The row's `records` column is a fixed-width slot per record, big-endian (`ByteWriter`):
/// timestamp (Int64, ms), CRC-32C (UInt32, `RecordChecksum`), payload size (UInt32), and
/// gap (UInt32): the bytes between the previous record's payload end (or the start of
/// the payload area) and this record's payload. The payload area is the row's `payload`
/// column (records stored inline), or the data of Raft entry (`ref_shard`, `ref_idx`)
/// when the payloads already lie there.
enum RecordRun {
    static let slotWidth = 20
    /// A run ends at this many records or inline payload bytes, so that reading one record
    /// never loads more than a bounded row.
    static let recordsMax = 1024
    static let inlineBytesMax = 1 << 20

    /// One record of a decoded run; `start` is where its payload begins in the payload area.
    struct Slot {
        var offset: UInt64
        var timestamp: Int64
        var crc: UInt32
        var start: Int
        var size: Int
    }

    /// The slots of a run starting at `first` from its `records` column; nil when the column
    /// does not hold exactly the run's records (the row is damaged).
    static func slots(first: UInt64, last: UInt64, records: UnsafeRawBufferPointer) -> [Slot]? {
        // Not bounded by `recordsMax`: rows a build with another bound wrote stay readable.
        guard last >= first, last - first < UInt64(Int.max / slotWidth), records.count == Int(last - first + 1) * slotWidth else {
            return nil
        }
        var slots: [Slot] = []
        slots.reserveCapacity(Int(last - first + 1))
        var reader = ByteReader(records)
        var end = 0
        for index in 0..<Int(last - first + 1) {
            // The length was checked above, so the reads cannot run out.
            guard let timestamp = try? reader.readInt64("timestamp"), let crc = try? reader.readUInt32("crc"),
                  let size = try? reader.readUInt32("size"), let gap = try? reader.readUInt32("gap") else { return nil }
            let start = end + Int(gap)
            slots.append(Slot(offset: first + UInt64(index), timestamp: timestamp, crc: crc, start: start, size: Int(size)))
            end = start + Int(size)
        }
        return slots
    }

    /// Appends one slot to a `records` column.
    static func appendSlot(to records: inout ByteWriter, timestamp: Int64, crc: UInt32, size: Int, gap: Int) {
        records.write(timestamp)
        records.write(crc)
        records.write(UInt32(size))
        records.write(UInt32(gap))
    }

    /// A run being assembled by the writer.
    struct Builder {
        let channelId: Int64
        let first: UInt64
        /// The Raft entry the payloads lie in; nil: they are stored inline.
        let entry: (shard: Int, index: UInt64)?
        private(set) var count = 0
        private(set) var records = ByteWriter(capacity: 64 * RecordRun.slotWidth)
        private(set) var inline: [UInt8] = []
        private var end = 0

        init(channelId: Int64, first: UInt64, reference: PayloadReference?) {
            self.channelId = channelId
            self.first = first
            entry = reference.map { ($0.shard, $0.index) }
        }

        var last: UInt64 { first + UInt64(count) - 1 }

        /// Whether the record at `offset`, with its payload at `reference`, continues this run.
        func accepts(offset: UInt64, reference: PayloadReference?, size: Int) -> Bool {
            guard count < RecordRun.recordsMax, offset == first + UInt64(count) else { return false }
            switch (entry, reference) {
            case (nil, nil): return inline.count + size <= RecordRun.inlineBytesMax
            case (let entry?, let reference?):
                return entry.shard == reference.shard && entry.index == reference.index && reference.skip >= end
                    && reference.skip - end <= Int(UInt32.max)
            default: return false
            }
        }

        /// Adds a record: the first of the run, or one `accepts` allowed.
        mutating func append(timestamp: Int64, crc: UInt32, payload: ArraySlice<UInt8>, reference: PayloadReference?) {
            let start = reference?.skip ?? end
            RecordRun.appendSlot(to: &records, timestamp: timestamp, crc: crc, size: payload.count, gap: start - end)
            if reference == nil { inline.append(contentsOf: payload) }
            end = start + payload.count
            count += 1
        }
    }
}
