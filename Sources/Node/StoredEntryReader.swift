import Consensus
import Storage

/// Reads compacted Raft entries back from the store, for a follower that lags. Called
/// only from Raft methods, which run on the replication thread.
final class StoredEntryReader: @unchecked Sendable {  // guarded by: the replication thread
    let store: ReplicatedStore
    let logger: Logger

    init(store: ReplicatedStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Shards whose stored entries failed to read back since the last check.
    private(set) var damaged: Set<Int> = []

    func read(shard: Int, _ range: ClosedRange<UInt64>) -> [RaftEntry] {
        do throws(StorageError) {
            return try store.entries(shard: shard, from: range.lowerBound, through: range.upperBound).map(RaftEntry.init)
        } catch {
            // Sending a damaged entry would spread the damage: send nothing, and have the
            // replica rebuilt in repair mode after this cycle (it stops leading and voting).
            logger.error("cannot read back the Raft log; repairing the replica", ["shard": "\(shard)", "error": error.description])
            damaged.insert(shard)
            return []
        }
    }

    func flag(_ shard: Int) { damaged.insert(shard) }

    func takeDamaged() -> Set<Int> {
        defer { damaged = [] }
        return damaged
    }
}
