import Dispatch
import Synchronization

/// Copies committed WAL frames into the database file on its own connection and thread,
/// so the group committer never stalls behind a checkpoint's writes and fsync.
///
/// It runs PASSIVE checkpoints, which never block the writer or readers. Should it fall
/// far behind, the writer's own auto-checkpoint (`Schema.writerCheckpointPages`) is the
/// backstop that bounds the WAL file.
public final class Checkpointer: @unchecked Sendable {  // `db` guarded by: the thread inside run()
    private let db: Database
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    /// Pause between checkpoints, in milliseconds.
    public static var intervalMs: Int { 100 }

    public init(directory: DataDirectory, durability: Durability) throws(StorageError) {
        db = try Database(path: directory.databasePath, readOnly: false)
        try db.execute("PRAGMA synchronous=\(durability == .fsync ? "FULL" : "NORMAL")")
        try db.execute("PRAGMA wal_autocheckpoint=0")
    }

    /// Checkpoints until `stop()`, then once more so the WAL is small at shutdown.
    public func run(onError: (StorageError) -> Void) {
        while !stopping.load(ordering: .acquiring) {
            _ = wake.wait(timeout: .now() + .milliseconds(Self.intervalMs))
            do throws(StorageError) { try checkpoint() } catch { onError(error) }
        }
    }

    /// Frames in the WAL and frames copied, as SQLite reports them.
    @discardableResult
    public func checkpoint() throws(StorageError) -> (walFrames: Int64, copied: Int64) {
        let statement = try db.prepare("PRAGMA wal_checkpoint(PASSIVE)")
        guard try statement.step() else { return (0, 0) }
        return (statement.int64(1), statement.int64(2))
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }
}
