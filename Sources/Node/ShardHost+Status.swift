import Synchronization

extension ShardHost {
    /// The shard's leader as this node's replica last saw it (status, refreshed every
    /// 200 ms); nil when this node holds no replica of it or knows no leader.
    func leader(of shard: Int) -> String? {
        status.withLock { rows in rows.first { $0.shard == shard }.flatMap { $0.leader.isEmpty ? nil : $0.leader } }
    }
}
