import Dispatch
import Synchronization

/// Copies committed WAL frames into the database file on its own connection and thread,
/// so the group committer never stalls behind a checkpoint's writes and fsync.
///
/// It runs PASSIVE checkpoints, which never block the writer or readers. Once the log
/// passes `restartPages`, passes repeat until little is left uncopied and the writer is
/// asked to copy that rest itself, so that the log starts over (`LogRestart`).
public final class Checkpointer: @unchecked Sendable {  // `db` guarded by: the thread inside run()
    private let db: Database
    private let restart: LogRestart
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    /// Pause between checkpoints, in milliseconds.
    public static var intervalMs: Int { 100 }
    /// Log size (pages) past which the log is to start over (16 MiB of 4 KiB pages).
    static let restartPages: Int64 = 4_096
    /// Uncopied frames the writer may be asked to copy (4 MiB at most).
    static let writerRemainderPages: Int64 = 1_024
    /// Passes in a row while the rest is larger: each copies what arrived during the last.
    static let passesMax = 4

    public init(directory: DataDirectory, durability: Durability) throws(StorageError) {
        db = try Database(path: directory.databasePath, readOnly: false)
        restart = directory.logRestart
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

    /// What a checkpoint left: frames in the log, frames copied into the database, and
    /// whether the writer was asked to copy the rest so the log starts over.
    public struct Outcome: Sendable, Equatable {
        public var walFrames: Int64
        public var copied: Int64
        public var askedWriter: Bool
    }

    @discardableResult
    public func checkpoint() throws(StorageError) -> Outcome {
        var pass = try passive()
        guard pass.log >= Self.restartPages else { return Outcome(walFrames: pass.log, copied: pass.copied, askedWriter: false) }
        for _ in 1..<Self.passesMax where pass.log - pass.copied > Self.writerRemainderPages {
            pass = try passive()
        }
        let ask = pass.log - pass.copied <= Self.writerRemainderPages
        if ask { restart.ask() }
        return Outcome(walFrames: pass.log, copied: pass.copied, askedWriter: ask)
    }

    private func passive() throws(StorageError) -> (log: Int64, copied: Int64) {
        let statement = try db.prepare("PRAGMA wal_checkpoint(PASSIVE)")
        guard try statement.step() else { return (0, 0) }
        return (statement.int64(1), statement.int64(2))
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }
}
