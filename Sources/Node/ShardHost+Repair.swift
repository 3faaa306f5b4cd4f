import Consensus
import Storage

/// Replicas whose stored data turned out damaged are rebuilt from their group.
extension ShardHost {
    /// Rebuilds replicas whose stored entries failed to read back: the load cuts the log at
    /// the damage and the group restarts in repair mode — no longer leading or voting for
    /// the shard until the others have sent the entries again.
    func repairDamaged() {
        for shard in reader.takeDamaged() where groups[shard] != nil {
            do throws(StorageError) {
                let loaded = try store.load(shard: shard)
                guard loaded?.damaged != nil else {
                    resync(shard)
                    continue
                }
                groups[shard] = ShardGroup(shard: shard, context: context, loaded: loaded, reader: reader)
            } catch {
                context.logger.error("replica repair failed; stopping", ["shard": "\(shard)", "error": error.description])
                fatalError("replica repair of shard \(shard) failed: \(error)")
            }
        }
    }

    /// Damage in the channel log itself (its Raft entries check out): the replica is
    /// emptied and rebuilt by its group — the leader's log from the start, or a snapshot —
    /// in repair mode meanwhile, as it may have acknowledged everything it had stored.
    func resync(_ shard: Int) {
        guard shard != ShardContext.controllerShard, let raft = groups[shard]?.raft else { return }
        let until = raft.lastIndex
        context.logger.warn("channel log damaged; rebuilding the replica from the others", ["shard": "\(shard)", "until": "\(until)"])
        let context = self.context
        do throws(StorageError) {
            try store.resetShard(shard, term: raft.term, vote: raft.votedFor, repairing: until, channels: { context.shard(of: $0) == shard })
            groups[shard] = ShardGroup(shard: shard, context: context, loaded: try store.load(shard: shard), reader: reader)
        } catch {
            context.logger.error("replica rebuild failed; stopping", ["shard": "\(shard)", "error": error.description])
            fatalError("rebuilding the replica of shard \(shard) failed: \(error)")
        }
        onShardDropped(shard)
    }
}
