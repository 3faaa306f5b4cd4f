#if canImport(Glibc)
import Glibc
#endif
import ChaparCore
import CLinux

/// The Raft log's bytes as a clustered node persists them: append-only segment files
/// (`DATA/entries/NNN.seg`), one `pwrite` and one `fdatasync` per replication cycle for
/// every shard's new entries and hard states. This sync is the cycle's only one: SQLite
/// then records where each entry lies (`raft_log.seg/pos/len`) and applies committed
/// entries without syncing, and after a power loss the records past SQLite's watermark
/// are replayed into it (`ReplicatedStore`). Each entry's bytes are written once per
/// node, instead of into SQLite's log and again by its checkpoint.
///
/// Used by the replication thread only (its writes and syncs run on a thread of its own,
/// `JobThread`, one at a time, while the replication thread waits or works on).
final class EntryLog {
    let path: String
    let segmentBytesMax: UInt64
    private(set) var segment: UInt64
    /// Where the next record goes in `segment`.
    private(set) var end: UInt64
    private var fd: Int32
    /// Writes the appends when the file system takes direct I/O (nil: buffered writes).
    private var direct: DirectAppender?
    /// What a buffered append writes (with direct I/O, the appender's buffer holds it).
    private lazy var buffered = AlignedBytes(capacity: 64 << 10)
    private let directIO: Bool
    /// Runs each append's write and sync while the caller goes on (`begin`, `finish`).
    private let flusher = JobThread(name: "chapar-entrylog")
    /// Where the append in flight started.
    private var pending: UInt64?
    /// The call a failed append failed in (set on the flusher's thread, read after `finish`).
    private var failedCall = ""

    /// Opens the log in `path` (created if absent) and reads every intact record after
    /// `watermark` (the end of what SQLite holds; nil: nothing yet). A torn last record
    /// (a cycle that never finished its sync) is cut off; an unreadable record followed by
    /// a later segment is damage and fails.
    /// `directIO` false: buffered appends even where the file system takes direct I/O.
    init(path: String, segmentBytesMax: UInt64 = 64 << 20, after watermark: (segment: UInt64, offset: UInt64)?, directIO: Bool = true)
        throws(StorageError)
    {
        self.path = path
        self.segmentBytesMax = segmentBytesMax
        self.directIO = directIO
        try Self.makeDirectory(path)
        let existing = try Self.segments(in: path)
        var records: [EntryLogRecord.Decoded] = []
        if let watermark, watermark.segment > 0 {
            guard existing.contains(watermark.segment) else {
                throw .io(call: "open(\(Self.name(watermark.segment, in: path)))", code: ENOENT,
                          message: "the store records entries up to this segment, which is missing")
            }
            let scanned = existing.filter { $0 >= watermark.segment }
            var validEnd: UInt64 = 0
            for (position, number) in scanned.enumerated() {
                let (found, end, size, padded) = try Self.scan(number, in: path, from: number == watermark.segment ? watermark.offset : 0)
                records.append(contentsOf: found)
                validEnd = end
                if end < size {
                    guard position == scanned.count - 1 || padded else {
                        throw .damagedEntryLog(file: Self.name(number, in: path), offset: end)
                    }
                    if position == scanned.count - 1 { try Self.truncate(number, in: path, to: end) }
                }
            }
            segment = scanned.last!
            end = validEnd
        } else {
            // Nothing recorded yet: segments left from an earlier, abandoned start go.
            for number in existing { unlink(Self.name(number, in: path)) }
            segment = 1
            end = 0
            try Self.create(segment, in: path)
        }
        (fd, direct) = try Self.openForAppend(Self.name(segment, in: path), direct: directIO)
        replayed = records
        if direct != nil {
            let kept = Int(end % UInt64(DirectAppender.blockBytes))
            direct!.start(tail: Array(try Self.readFile(Self.name(segment, in: path), from: end - UInt64(kept)).bytes.prefix(kept)))
        }
        preallocate()
    }

    /// The intact records found after the watermark when the log was opened.
    private(set) var replayed: [EntryLogRecord.Decoded]

    func forgetReplayed() { replayed = [] }

    deinit {
        try? finish()
        flusher.stop()
        close(fd)
    }

    /// The position after the last record written.
    var watermark: (segment: UInt64, offset: UInt64) { (segment, end) }

    /// Starts writing the records of `items` after the last one (moving to a new segment
    /// first when this one is full) with one `pwrite`, and syncing them when `sync`, on the
    /// log's own thread; returns at once, per item, where its entries will lie and their
    /// CRCs. `finish` waits for the write; nothing else may be written until then.
    func begin(_ items: [RaftPersist], sync: Bool) throws(StorageError) -> [[(position: EntryPosition, crc: UInt32)]] {
        precondition(!flusher.inFlight, "an entry-log write is already in flight")
        if end >= segmentBytesMax { try rotate() }
        // Encoded where the write reads them from (the appender's buffer, after the bytes
        // of the block the end lies in): the flusher thread touches it only while a write
        // is in flight, and none is.
        let buffer = direct?.buffer ?? buffered
        if direct == nil { buffer.truncate(to: 0) }
        let first = buffer.count
        buffer.reserve(items.reduce(64) { $0 + 64 + $1.entries.reduce(0) { $0 + 40 + $1.data.count } })
        let base = end - UInt64(first)
        let placed = items.map { EntryLogRecord.append($0, to: buffer, base: base, segment: segment) }
        let at = end
        pending = at
        end += UInt64(buffer.count - first)
        flusher.start { [self] in write(at: at, sync: sync) }
        return placed
    }

    /// Whether the write `begin` started has ended (true when none is in flight).
    var writeDone: Bool { pending == nil || flusher.poll() }

    /// Runs on the log's thread when a write ends (see `JobThread.onDone`).
    func onWriteDone(_ body: @escaping @Sendable () -> Void) { flusher.onDone = body }

    /// Waits for the write `begin` started; on failure the log's end is back where it was.
    func finish() throws(StorageError) {
        guard let at = pending else { return }
        pending = nil
        if let failure = flusher.finish() {
            end = at
            throw Self.failure("\(failedCall)(\(name))", code: failure)
        }
    }

    /// On the flusher's thread: writes what `begin` encoded at `offset`.
    private func write(at offset: UInt64, sync: Bool) -> Int32? {
        var failure: Int32?
        if let direct {
            failure = direct.appendBuffered(fd: fd, at: offset)
            if failure == EINVAL {
                // The file system took the flag but not these writes: append buffered from
                // now on (over any zero padding past the end).
                self.direct = nil
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~CLINUX_O_DIRECT)
                failure = Self.writeAll(fd, direct.buffer.bytes(from: direct.tailCount), at: offset)
            } else if failure != nil {
                direct.discardBuffered()
            }
        } else {
            failure = Self.writeAll(fd, buffered.bytes(), at: offset)
        }
        if let failure {
            failedCall = "pwrite"
            return failure
        }
        if sync && fdatasync(fd) != 0 {
            failedCall = "fdatasync"
            return errno
        }
        return nil
    }

    /// Segment numbers on disk, oldest first.
    func segmentsOnDisk() throws(StorageError) -> [UInt64] { try Self.segments(in: path) }

    /// Deletes a segment no stored entry lies in any more.
    func remove(_ number: UInt64) {
        precondition(number != segment, "removing the segment being written")
        unlink(Self.name(number, in: path))
    }

    private var name: String { Self.name(segment, in: path) }

    private func rotate() throws(StorageError) {
        try Self.create(segment + 1, in: path)
        let (next, appender) = try Self.openForAppend(Self.name(segment + 1, in: path), direct: direct != nil, reusing: direct)
        close(fd)
        fd = next
        direct = appender
        direct?.start(tail: [])
        segment += 1
        end = 0
        preallocate()
    }

    /// Allocates the segment's blocks ahead, past its end (its size stays the end of its
    /// records, so scanning is unchanged): a sync then writes data without allocating,
    /// 0.29 → 0.22 ms per `fdatasync` of a 40 KiB append on this machine's disk. Only an
    /// optimisation: a file system that cannot do it appends as before.
    private func preallocate() {
        guard end < segmentBytesMax else { return }
        _ = clinux_preallocate(fd, off_t(end), off_t(segmentBytesMax - end))
    }

    static func name(_ number: UInt64, in path: String) -> String {
        let digits = String(number)
        return path + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".seg"
    }

    static func segments(in path: String) throws(StorageError) -> [UInt64] {
        guard let directory = opendir(path) else { throw failure("opendir(\(path))") }
        defer { closedir(directory) }
        var numbers: [UInt64] = []
        while let item = readdir(directory) {
            let file = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard file.hasSuffix(".seg"), let number = UInt64(file.dropLast(4)) else { continue }
            numbers.append(number)
        }
        return numbers.sorted()
    }

    /// The intact records of a segment from `offset`, where they end, and the file's size.
    private static func scan(_ number: UInt64, in path: String, from offset: UInt64) throws(StorageError)
        -> (records: [EntryLogRecord.Decoded], end: UInt64, size: UInt64, padded: Bool)
    {
        let (bytes, size) = try readFile(name(number, in: path), from: offset)
        var records: [EntryLogRecord.Decoded] = []
        var position = 0
        bytes.withUnsafeBytes { raw in
            while position < raw.count,
                  let (record, length) = EntryLogRecord.decode(
                    UnsafeRawBufferPointer(rebasing: raw[position...]), base: offset + UInt64(position), segment: number) {
                records.append(record)
                position += length
            }
        }
        // Zeros to the end of the block after the last record: a direct append's padding.
        let padded = bytes.count - position < DirectAppender.blockBytes && bytes[position...].allSatisfy { $0 == 0 }
        return (records, offset + UInt64(position), size, padded)
    }

    /// Opens a segment for appending, with direct I/O when its file system takes it
    /// (`reusing` an appender when there is one).
    private static func openForAppend(_ name: String, direct: Bool, reusing appender: DirectAppender? = nil) throws(StorageError)
        -> (fd: Int32, direct: DirectAppender?)
    {
        if direct {
            let fd = open(name, O_RDWR | O_CLOEXEC | CLINUX_O_DIRECT)
            if fd >= 0 { return (fd, appender ?? DirectAppender(tail: [])) }
            guard errno == EINVAL else { throw failure("open(\(name))") }
        }
        let buffered = open(name, O_RDWR | O_CLOEXEC)
        if buffered < 0 { throw failure("open(\(name))") }
        return (buffered, nil)
    }

    /// The bytes of a file from `offset` to its end, and its size.
    private static func readFile(_ name: String, from offset: UInt64) throws(StorageError) -> (bytes: [UInt8], size: UInt64) {
        let fd = open(name, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw failure("open(\(name))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw failure("fstat(\(name))") }
        let size = UInt64(info.st_size)
        guard offset <= size else { throw .damagedEntryLog(file: name, offset: size) }
        var bytes = [UInt8](repeating: 0, count: Int(size - offset))
        let count = bytes.count
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw failure("pread(\(name))") }
            if n == 0 { break }
            done += n
        }
        return (Array(bytes.prefix(done)), offset + UInt64(done))
    }

    /// Writes all of `raw` at `offset`; the errno of a failure.
    private static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, at offset: UInt64) -> Int32? {
        var done = 0
        while done < raw.count {
            let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return errno }
            done += n
        }
        return nil
    }

    private static func truncate(_ number: UInt64, in path: String, to size: UInt64) throws(StorageError) {
        if Glibc.truncate(name(number, in: path), off_t(size)) != 0 { throw failure("truncate(\(name(number, in: path)))") }
    }

    /// Creates an empty segment and makes its name durable.
    private static func create(_ number: UInt64, in path: String) throws(StorageError) {
        let fd = open(name(number, in: path), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        if fd < 0 { throw failure("open(\(name(number, in: path)))") }
        close(fd)
        try syncDirectory(path)
    }

    private static func makeDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, 0o750) == 0 {
            try syncDirectory(path + "/..")
        } else if errno != EEXIST {
            throw failure("mkdir(\(path))")
        }
    }

    private static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw failure("open(\(path))") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw failure("fsync(\(path))") }
    }

    static func failure(_ call: String, code: Int32 = errno) -> StorageError {
        .io(call: call, code: code, message: String(cString: strerror(code)))
    }
}
