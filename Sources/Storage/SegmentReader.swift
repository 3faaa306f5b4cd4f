#if canImport(Glibc)
import Glibc
#endif

/// Reads entries' data out of the entry log's segments for one thread, keeping each
/// segment it read open (a segment deleted meanwhile stays readable through its open
/// descriptor; `forget` lets the space go).
final class SegmentReader {
    let path: String
    private var files: [UInt64: Int32] = [:]

    init(path: String) {
        self.path = path
    }

    deinit { for fd in files.values { close(fd) } }

    /// The data at `position`; nil when its segment is gone or too short (damage, which
    /// the entry's or record's checksum then reports like any other).
    func read(_ position: EntryPosition) throws(StorageError) -> [UInt8]? {
        guard let fd = try file(position.segment) else { return nil }
        var data = [UInt8](repeating: 0, count: position.length)
        var done = 0
        while done < position.length {
            let n = data.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, position.length - done, off_t(position.offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw EntryLog.failure("pread(\(EntryLog.name(position.segment, in: path)))") }
            if n == 0 { return nil }
            done += n
        }
        return data
    }

    /// Closes the segments below `segment` (deleted, or about to be).
    func forget(below segment: UInt64) {
        for (number, fd) in files where number < segment {
            close(fd)
            files[number] = nil
        }
    }

    private func file(_ number: UInt64) throws(StorageError) -> Int32? {
        if let fd = files[number] { return fd }
        let name = EntryLog.name(number, in: path)
        let fd = open(name, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw EntryLog.failure("open(\(name))")
        }
        files[number] = fd
        return fd
    }
}
