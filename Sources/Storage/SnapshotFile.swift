import ChaparCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes a snapshot file record by record, buffered, with the running checksum.
final class SnapshotFileWriter {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private var crc: UInt32 = 0
    private var records: UInt64 = 0

    init(path: String, header: SnapshotHeader) throws(StorageError) {
        guard let file = fopen(path, "wb") else { throw Self.failure("fopen(\(path))") }
        self.file = file
        self.path = path
        var writer = ByteWriter()
        writer.write(contentsOf: SnapshotRecord.magic)
        writer.write(UInt32(header.shard))
        writer.write(header.index)
        writer.write(header.term)
        writer.writeMediumBytes(header.configuration)
        try put(writer.finish())
    }

    deinit { fclose(file) }

    func append(_ record: SnapshotRecord) throws(StorageError) {
        var writer = ByteWriter()
        record.encode(into: &writer)
        try put(writer.finish())
        records += 1
    }

    /// Writes the end record and flushes. (No fsync: a snapshot lost in a crash is simply
    /// asked for again; the follower makes it durable by installing it.)
    func finish() throws(StorageError) {
        var writer = ByteWriter()
        writer.write(SnapshotRecord.Kind.end.rawValue)
        writer.write(records)
        try put(writer.finish())
        var trailer = ByteWriter()
        trailer.write(crc)
        let bytes = trailer.finish()
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count, fflush(file) == 0 else { throw Self.failure("fwrite(\(path))") }
    }

    private func put(_ bytes: [UInt8]) throws(StorageError) {
        crc = bytes.withUnsafeBytes { Checksum.crc32c(crc, $0) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw Self.failure("fwrite(\(path))") }
    }

    static func failure(_ call: String) -> StorageError {
        .sqlite(call: call, code: errno, message: String(cString: strerror(errno)))
    }
}

/// Reads a snapshot file back record by record, checking its structure as it goes and its
/// checksum and record count at the end (`next` returns nil only after both held).
final class SnapshotFileReader {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private var crc: UInt32 = 0
    private var records: UInt64 = 0
    let header: SnapshotHeader

    init(path: String) throws(StorageError) {
        guard let file = fopen(path, "rb") else { throw SnapshotFileWriter.failure("fopen(\(path))") }
        self.file = file
        self.path = path
        var crc: UInt32 = 0
        func take(_ count: Int) throws(StorageError) -> [UInt8] { try Self.read(file, count, path: path, crc: &crc) }
        guard try take(SnapshotRecord.magic.count) == SnapshotRecord.magic else { throw Self.damaged(path, "not a snapshot file") }
        let shard = try Self.integer(take(4))
        let index = try Self.integer(take(8))
        let term = try Self.integer(take(8))
        let configuration = try take(Int(Self.integer(take(2))))
        header = SnapshotHeader(shard: Int(shard), index: index, term: term, configuration: configuration)
        self.crc = crc
    }

    deinit { fclose(file) }

    /// The next record; nil at a valid end.
    func next() throws(StorageError) -> SnapshotRecord? {
        guard let kind = SnapshotRecord.Kind(rawValue: try take(1)[0]) else { throw Self.damaged(path, "unknown record kind") }
        switch kind {
        case .end:
            let count = try Self.integer(take(8))
            let expected = crc
            let stored = try Self.integer(take(4))
            guard count == records, UInt32(stored) == expected else { throw Self.damaged(path, "checksum or record count mismatch") }
            return nil
        case .channel:
            let name = String(decoding: try take(Int(Self.integer(take(2)))), as: UTF8.self)
            let head = try Self.integer(take(8)), earliest = try Self.integer(take(8))
            let bytes = Int64(bitPattern: try Self.integer(take(8))), last = Int64(bitPattern: try Self.integer(take(8)))
            records += 1
            return .channel(name: name, head: head, earliest: earliest, bytes: bytes, lastTimestamp: last)
        case .message:
            let offset = try Self.integer(take(8)), timestamp = Int64(bitPattern: try Self.integer(take(8)))
            let payload = try takeLong()
            records += 1
            return .message(offset: offset, timestamp: timestamp, payload: payload)
        case .producer:
            let id = try Self.integer(take(8)), sequence = try Self.integer(take(8)), offset = try Self.integer(take(8))
            let updated = Int64(bitPattern: try Self.integer(take(8)))
            records += 1
            return .producer(id: id, sequence: sequence, offset: offset, updated: updated)
        case .clusterState:
            let bytes = try takeLong()
            records += 1
            return .clusterState(bytes)
        }
    }

    /// Reads the whole file: its header when every record and the checksum hold.
    static func verify(path: String) throws(StorageError) -> SnapshotHeader {
        let reader = try SnapshotFileReader(path: path)
        while try reader.next() != nil {}
        return reader.header
    }

    private func takeLong() throws(StorageError) -> [UInt8] {
        let count = Int(try Self.integer(take(4)))
        guard count <= SnapshotRecord.bytesMax else { throw Self.damaged(path, "record of \(count) bytes") }
        return try take(count)
    }

    private func take(_ count: Int) throws(StorageError) -> [UInt8] { try Self.read(file, count, path: path, crc: &crc) }

    private static func read(_ file: UnsafeMutablePointer<FILE>, _ count: Int, path: String, crc: inout UInt32)
        throws(StorageError) -> [UInt8]
    {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || fread(&bytes, 1, count, file) == count else { throw damaged(path, "truncated") }
        crc = bytes.withUnsafeBytes { Checksum.crc32c(crc, $0) }
        return bytes
    }

    private static func integer(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

    static func damaged(_ path: String, _ reason: String) -> StorageError {
        .corruptRecord(channel: "snapshot \(path) (\(reason))", offset: 0)
    }
}
