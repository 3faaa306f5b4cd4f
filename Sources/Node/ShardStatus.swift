/// One row of `GET /v1/shards`.
struct ShardStatus: Sendable {
    var shard: Int
    /// The shard map epoch `replicas` is from: rows are refreshed every 200 ms, so a row
    /// may predate the map the node already adopted.
    var epoch: UInt64
    var replicas: [String]
    var role: String
    var term: UInt64
    var leader: String
    var commit: UInt64
    var lastIndex: UInt64
    var repairingUntil: UInt64?
    /// The stored log starts after this index (trimmed, or replaced by a snapshot).
    var logStart: UInt64 = 0
    /// The group's configuration as this replica knows it.
    var voters: [String] = []
    var learners: [String] = []
}
