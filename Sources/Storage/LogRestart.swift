import Synchronization

/// How the checkpointer gets a long write-ahead log started over without stopping the
/// writer. The log restarts when the writer begins a transaction with every frame already
/// copied into the database, which a checkpointer on another thread never achieves under a
/// writer committing every millisecond or two: frames arrive while it copies and syncs.
/// So once its passes have left only a little uncopied, it asks; the writer copies that
/// little itself between two transactions (a passive checkpoint: it waits for no one), and
/// its next transaction starts the log over. Otherwise the log would grow to the writer's
/// automatic checkpoint (`Schema.writerCheckpointPages`), which copies everything since the
/// checkpointer's last pass on the writer's thread — tens of milliseconds without commits.
public final class LogRestart: Sendable {
    private let asked = Atomic<Bool>(false)

    public init() {}

    /// Checkpointer thread.
    func ask() { asked.store(true, ordering: .releasing) }

    var isAsked: Bool { asked.load(ordering: .acquiring) }

    /// Writer thread, outside any transaction. True when it checkpointed.
    @discardableResult
    func finishIfAsked(on db: Database) -> Bool {
        guard asked.exchange(false, ordering: .acquiringAndReleasing) else { return false }
        // Best effort: a checkpoint that cannot run now (the checkpointer's own pass holds
        // the checkpoint lock, a reader pins older frames) leaves the log to the next ask,
        // and an I/O error here surfaces at the next commit.
        try? db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return true
    }
}
