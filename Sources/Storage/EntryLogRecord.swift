import ChaparCore

/// Where one Raft entry's data lies in the entry log.
public struct EntryPosition: Equatable, Sendable {
    public var segment: UInt64
    public var offset: UInt64
    public var length: Int
}

/// One record of the entry log: what one replica persisted in one cycle (its hard state
/// and the entries that replace its log from the first one's index on), framed so that a
/// torn tail is recognised.
///
/// Frame, big-endian: body length (UInt32), CRC-32C (UInt32), body. The CRC covers the
/// body except the entries' data bytes; each entry's data is covered by its own CRC (the
/// one its `raft_log` row keeps, `RaftLogTables.checksum`), so every byte is checked
/// once when written and once when scanned.
///
/// Body: type (UInt8, 1), shard (UInt32), flags (UInt8: 1 hard state, 2 vote, 4 repairing),
/// with a hard state term, vote, commit and repairing (UInt64 each, 0 where absent), then
/// the entry count (UInt32) and per entry: term, index (UInt64), kind (UInt8), CRC
/// (UInt32), data length (UInt32), data.
enum EntryLogRecord {
    static let headerBytes = 8
    static let typePersist: UInt8 = 1
    /// A record larger than this is damage, not a record (a cycle's entries of one
    /// replica stay far below: entries are at most a few MiB).
    static let bodyBytesMax = 256 << 20

    /// Appends the record of `item` to `buffer`, whose first byte lies at `base` in the
    /// segment; returns where each entry's data lies (in `segment`) and its CRC.
    static func append(_ item: RaftPersist, to buffer: AlignedBytes, base: UInt64, segment: UInt64)
        -> [(position: EntryPosition, crc: UInt32)]
    {
        let start = buffer.count
        buffer.write(UInt32(0))  // patched: length
        buffer.write(UInt32(0))  // patched: CRC
        var crc: UInt32 = 0
        var covered = buffer.count
        func cover() {
            crc = buffer.crc32c(crc, from: covered)
            covered = buffer.count
        }
        buffer.write(typePersist)
        buffer.write(UInt32(item.shard))
        if let hard = item.hardState {
            buffer.write(UInt8(1 | (hard.vote == nil ? 0 : 2) | (hard.repairing == nil ? 0 : 4)))
            buffer.write(hard.term)
            buffer.write(hard.vote ?? 0)
            buffer.write(hard.commit)
            buffer.write(hard.repairing ?? 0)
        } else {
            buffer.write(UInt8(0))
        }
        buffer.write(UInt32(item.entries.count))
        var placed: [(position: EntryPosition, crc: UInt32)] = []
        placed.reserveCapacity(item.entries.count)
        for entry in item.entries {
            let entryCrc = RaftLogTables.checksum(shard: item.shard, entry)
            buffer.write(entry.term)
            buffer.write(entry.index)
            buffer.write(entry.kind)
            buffer.write(entryCrc)
            buffer.write(UInt32(entry.data.count))
            cover()
            placed.append((EntryPosition(segment: segment, offset: base + UInt64(buffer.count), length: entry.data.count), entryCrc))
            buffer.write(contentsOf: entry.data)
            covered = buffer.count
        }
        cover()
        buffer.patch(UInt32(buffer.count - start - headerBytes), at: start)
        buffer.patch(crc, at: start + 4)
        return placed
    }

    /// A record read back, with where each entry's data lies.
    struct Decoded {
        var item: RaftPersist
        var positions: [EntryPosition]
        var crcs: [UInt32]
    }

    /// Decodes the record at the start of `bytes` (which begin at `base` in `segment`).
    /// Returns nil when there is no whole, intact record there: a torn tail or damage.
    static func decode(_ bytes: UnsafeRawBufferPointer, base: UInt64, segment: UInt64) -> (record: Decoded, size: Int)? {
        var header = ByteReader(bytes)
        guard let length = try? header.readUInt32("length"), let stored = try? header.readUInt32("crc"),
              Int(length) <= bodyBytesMax, bytes.count - headerBytes >= Int(length) else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: bytes[headerBytes..<(headerBytes + Int(length))])
        var reader = ByteReader(body)
        var crc: UInt32 = 0
        var covered = 0
        func cover(to end: Int) {
            crc = Checksum.crc32c(crc, UnsafeRawBufferPointer(rebasing: body[covered..<end]))
        }
        do throws(DecodeFailure) {
            guard try reader.readUInt8("type") == typePersist else { return nil }
            let shard = Int(try reader.readUInt32("shard"))
            let flags = try reader.readUInt8("flags")
            var hard: (term: UInt64, vote: UInt64?, commit: UInt64, repairing: UInt64?)?
            if flags & 1 != 0 {
                let term = try reader.readUInt64("term"), vote = try reader.readUInt64("vote")
                let commit = try reader.readUInt64("commit"), repairing = try reader.readUInt64("repairing")
                hard = (term, flags & 2 != 0 ? vote : nil, commit, flags & 4 != 0 ? repairing : nil)
            }
            let count = Int(try reader.readUInt32("count"))
            var entries: [StoredRaftEntry] = []
            var positions: [EntryPosition] = []
            var crcs: [UInt32] = []
            for _ in 0..<count {
                let term = try reader.readUInt64("term"), index = try reader.readUInt64("index")
                let kind = try reader.readUInt8("kind"), entryCrc = try reader.readUInt32("crc")
                let size = Int(try reader.readUInt32("length"))
                cover(to: reader.position)
                let offset = base + UInt64(headerBytes + reader.position)
                let entry = StoredRaftEntry(term: term, index: index, kind: kind, data: try reader.readBytes(size, "data"))
                covered = reader.position
                guard RaftLogTables.checksum(shard: shard, entry) == entryCrc else { return nil }
                entries.append(entry)
                positions.append(EntryPosition(segment: segment, offset: offset, length: size))
                crcs.append(entryCrc)
            }
            try reader.expectEnd()
            cover(to: body.count)
            guard crc == stored else { return nil }
            return (Decoded(item: RaftPersist(shard: shard, hardState: hard, entries: entries), positions: positions, crcs: crcs),
                    headerBytes + Int(length))
        } catch {
            return nil
        }
    }
}
