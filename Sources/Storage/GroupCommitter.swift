import ChaparCore
import Dispatch
import Synchronization

/// What one commit decided, handed to the owner on the committer's thread.
public struct CommitReport<Context: Sendable>: Sendable {
    /// One outcome per submitted publish, with the context it was submitted with, in order.
    public var outcomes: [(context: Context, outcome: AppendOutcome)]
    /// The records the commit added, grouped by channel. Empty if the commit failed.
    public var appended: [ChannelAppend]

    public init(outcomes: [(context: Context, outcome: AppendOutcome)], appended: [ChannelAppend]) {
        self.outcomes = outcomes
        self.appended = appended
    }
}

/// Group commit: publishes submitted from any thread are stored by one writer thread,
/// which takes everything queued, writes it in one transaction, syncs it per the
/// `Durability`, and only then reports outcomes. Publishes arriving during a sync go
/// into the next transaction, so the cost of an fsync is shared by all of them.
public final class GroupCommitter<Context: Sendable>: @unchecked Sendable {
    // `queue` and `wake` are thread-safe; `writer`, `retention` state and `onCommit`
    // are guarded by: the thread inside `run()`.
    private struct Queue {
        var items: [(AppendInput, Context)] = []
        var bytes = 0
        var stopping = false
    }

    /// Most publishes in one transaction; the rest wait for the next.
    public static var batchPublishesMax: Int { 8192 }
    /// How often retention runs, in milliseconds.
    public static var retentionIntervalMs: Int64 { 1000 }
    /// How long producer dedup state is kept for an idle producer, in milliseconds.
    public static var producerIdleMs: Int64 { 7 * 24 * 3600 * 1000 }

    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let writer: LogWriter
    private let retention: RetentionRules
    private let clock: @Sendable () -> Int64
    private let onCommit: (CommitReport<Context>) -> Void
    private let onRetentionError: (StorageError) -> Void
    private var lastRetentionMs: Int64 = 0
    public let directory: DataDirectory

    /// Opens (or creates) the store in `directory`. `clock` returns wall time in ms.
    /// `onCommit` runs on the committer thread after every transaction; it MUST NOT block.
    public init(
        directory: DataDirectory, durability: Durability, retention: RetentionRules,
        clock: @escaping @Sendable () -> Int64,
        onCommit: @escaping (CommitReport<Context>) -> Void,
        onRetentionError: @escaping (StorageError) -> Void = { _ in }
    ) throws(StorageError) {
        self.directory = directory
        self.writer = try LogWriter(db: Schema.openWriter(path: directory.databasePath, durability: durability))
        self.retention = retention
        self.clock = clock
        self.onCommit = onCommit
        self.onRetentionError = onRetentionError
    }

    /// The bounds of every channel as of the last commit. Call before `run()` or from
    /// its thread only.
    public func channelBounds() -> [String: ChannelBounds] {
        writer.channels.mapValues { ChannelBounds(earliest: $0.earliest, head: $0.head) }
    }

    /// Queues publishes for the next transaction. Returns false (and queues nothing)
    /// once `stop()` was called.
    public func submit(_ items: [(AppendInput, Context)]) -> Bool {
        guard !items.isEmpty else { return true }
        let accepted = queue.withLock { q -> Bool in
            if q.stopping { return false }
            q.items.append(contentsOf: items)
            q.bytes += items.reduce(0) { $0 + $1.0.payload.count }
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    /// Bytes of payload waiting for a transaction.
    public var queuedBytes: Int { queue.withLock { $0.bytes } }

    /// Runs the writer until `stop()`; everything submitted before `stop()` is committed
    /// and reported before it returns.
    public func run() {
        while true {
            _ = wake.wait(timeout: .now() + .milliseconds(Int(Self.retentionIntervalMs)))
            let (batch, stopping) = queue.withLock { q -> ([(AppendInput, Context)], Bool) in
                let take = min(q.items.count, Self.batchPublishesMax)
                let batch = Array(q.items.prefix(take))
                q.items.removeFirst(take)
                q.bytes -= batch.reduce(0) { $0 + $1.0.payload.count }
                return (batch, q.stopping)
            }
            if !batch.isEmpty {
                commit(batch)
                if batch.count == Self.batchPublishesMax { wake.signal() }
            }
            let now = clock()
            if now - lastRetentionMs >= Self.retentionIntervalMs {
                lastRetentionMs = now
                do throws(StorageError) {
                    _ = try writer.applyRetention(retention, now: now)
                    try writer.expireProducers(before: now - Self.producerIdleMs)
                } catch { onRetentionError(error) }
            }
            if stopping && batch.isEmpty && queue.withLock({ $0.items.isEmpty }) { return }
        }
    }

    /// Refuses new publishes and lets `run()` return once the queue is committed.
    public func stop() {
        queue.withLock { $0.stopping = true }
        wake.signal()
    }

    private func commit(_ batch: [(AppendInput, Context)]) {
        let (outcomes, appended) = writer.append(batch.map(\.0), now: clock())
        var paired: [(context: Context, outcome: AppendOutcome)] = []
        paired.reserveCapacity(batch.count)
        for (index, item) in batch.enumerated() { paired.append((item.1, outcomes[index])) }
        onCommit(CommitReport(outcomes: paired, appended: appended))
        directory.logRestart.finishIfAsked(on: writer.db)
    }
}
