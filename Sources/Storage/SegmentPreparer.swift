#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Synchronization

/// Writes the entry log's next segment ahead, as zeros, on a thread of its own
/// (`NNN.prep`, renamed to `NNN.seg` when the log moves on to it).
///
/// Why: an append into preallocated (`fallocate`d) space turns unwritten extents into
/// written ones and grows the file, so every `fdatasync` also writes the inode and waits
/// for it. An append over blocks already written with zeros changes no metadata, and its
/// `fdatasync` is the data and one cache flush: 0.28 → 0.17 ms per 40 KiB append and sync
/// on this machine's disk (docs/BENCHMARKS.md). The price is writing each segment twice,
/// once as zeros off the replication path.
final class SegmentPreparer: Sendable {
    private enum State { case idle, writing(UInt64), ready(UInt64), failed(UInt64) }
    private let path: String
    private let bytes: Int
    private let state = Mutex<State>(.idle)
    private let queue = DispatchQueue(label: "chapar-segprep")

    /// Prepares segments of `bytes` (rounded up to whole blocks) in directory `path`.
    init(path: String, bytes: UInt64) {
        self.path = path
        let block = DirectAppender.blockBytes
        self.bytes = (Int(bytes) + block - 1) / block * block
    }

    static func name(_ number: UInt64, in path: String) -> String {
        let digits = String(number)
        return path + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".prep"
    }

    /// Starts writing segment `number` unless one is being written or waits to be taken.
    func prepare(_ number: UInt64) {
        let start = state.withLock { state -> Bool in
            switch state {
            case .writing, .ready: return false
            case .idle, .failed: state = .writing(number); return true
            }
        }
        guard start else { return }
        let (path, bytes) = (Self.name(number, in: path), bytes)
        queue.async { [self] in
            let ok = Self.writeZeros(path, bytes: bytes)
            if !ok { unlink(path) }
            state.withLock { $0 = ok ? .ready(number) : .failed(number) }
        }
    }

    /// Whether segment `number` is written and synced, ready to be renamed into place.
    func isReady(_ number: UInt64) -> Bool {
        state.withLock { if case .ready(number) = $0 { true } else { false } }
    }

    /// Hands segment `number` over (its file now belongs to the caller); false if it is not
    /// ready.
    func take(_ number: UInt64) -> Bool {
        state.withLock { state -> Bool in
            guard case .ready(number) = state else { return false }
            state = .idle
            return true
        }
    }

    /// Waits for the write in flight, if any: nothing touches the directory after this.
    func wait() { queue.sync {} }

    /// Removes prepared files left by an earlier run (they are never taken for records).
    static func removeLeftovers(in path: String) {
        guard let directory = opendir(path) else { return }
        var names: [String] = []
        while let item = readdir(directory) {
            let file = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if file.hasSuffix(".prep") { names.append(path + "/" + file) }
        }
        closedir(directory)
        for name in names { unlink(name) }
    }

    /// Writes `bytes` of zeros to a new file and syncs it; false on any failure (the log
    /// then appends into a preallocated segment, as without a preparer).
    private static func writeZeros(_ path: String, bytes: Int) -> Bool {
        var fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | CLINUX_O_DIRECT, 0o640)
        if fd < 0 && errno == EINVAL { fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640) }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let chunk = 1 << 20
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, DirectAppender.blockBytes, chunk) == 0, let raw else { return false }
        defer { free(raw) }
        memset(raw, 0, chunk)
        var done = 0
        while done < bytes {
            let n = pwrite(fd, raw, min(chunk, bytes - done), off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return fdatasync(fd) == 0
    }
}
