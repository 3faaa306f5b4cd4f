#if canImport(Glibc)
import Glibc
#endif

/// A node's data directory, locked for the life of the process so that two nodes can
/// never write the same logs. The lock is an `flock` on `DIR/LOCK`, released by the
/// kernel when the process dies, so a `kill -9` never leaves a stale lock.
public final class DataDirectory: Sendable {
    public let path: String
    private let lockFd: Int32
    /// Shared by this directory's writer and checkpointer.
    public let logRestart = LogRestart()
    /// Shared by the entry log's writer and every reader of the directory.
    public let segmentPins = SegmentPins()

    public var databasePath: String { path + "/" + Schema.fileName }
    /// The entry log's segments (clustered nodes).
    public var entriesPath: String { path + "/entries" }

    public init(path: String) throws(StorageError) {
        self.path = path
        if mkdir(path, 0o750) != 0 && errno != EEXIST {
            throw .sqlite(call: "mkdir(\(path))", code: errno, message: String(cString: strerror(errno)))
        }
        let fd = open(path + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        if fd < 0 {
            throw .sqlite(call: "open(\(path)/LOCK)", code: errno, message: String(cString: strerror(errno)))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw .sqlite(call: "flock(\(path)/LOCK)", code: errno, message: "another process holds this data directory")
        }
        lockFd = fd
    }

    /// A new reader on this directory's store.
    public func makeReader() throws(StorageError) -> LogReader {
        try LogReader(path: databasePath, entriesPath: entriesPath, pins: segmentPins)
    }

    deinit { close(lockFd) }
}
