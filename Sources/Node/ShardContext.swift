import ChaparCore
import Placement
import Storage
import Synchronization

/// What the replication thread and the peer links share about the cluster: who we are,
/// the shard map, Raft ids of the nodes, timing. Immutable but for `connected`.
final class ShardContext: Sendable {
    let localName: String
    let localId: UInt64
    /// Raft ids are stable hashes of node ids, the same on every node.
    let names: [UInt64: String]
    let ids: [String: UInt64]
    let map: ShardMap
    let localShards: [Int]
    let tickMs: Int64
    let retention: RetentionRules
    let logger: Logger
    /// Peer nodes with an established, authenticated link.
    private let connected = Mutex<Set<String>>([])
    /// How long a publish waits for its shard to have a leader before "not stored".
    let noLeaderWaitMs: Int64
    /// How long a proposed or forwarded publish may stay unresolved before "outcome unknown".
    let resolveWaitMs: Int64 = 10_000

    init(config: NodeConfig, logger: Logger) {
        let sharding = config.sharding
        localName = config.nodeId
        localId = Self.raftId(config.nodeId)
        let members = sharding.members
        var names: [UInt64: String] = [:]
        for member in members { names[Self.raftId(member.id)] = member.id }
        self.names = names
        ids = Dictionary(uniqueKeysWithValues: names.map { ($1, $0) })
        let nodes = members.map { PlacementNode(id: $0.id, zone: $0.zone) }
        map = Placement.place(nodes, PlacementSettings(shards: sharding.shards, replicas: sharding.replicas), epoch: 1)
        let placed = map
        localShards = placed.replicas.indices.filter { placed.replicas[$0].contains(config.nodeId) }
        tickMs = Int64(sharding.electionMs / 10)
        noLeaderWaitMs = Int64(sharding.electionMs * 5)
        retention = config.retention
        self.logger = logger
    }

    static func raftId(_ node: String) -> UInt64 { max(1, StableHash.hash64("node/" + node)) }

    var shardCount: Int { map.replicas.count }

    func shard(of channel: String) -> Int { Placement.shard(of: channel, shards: shardCount) }

    func isConnected(_ node: String) -> Bool { connected.withLock { $0.contains(node) } }

    func setConnected(_ node: String, _ up: Bool) {
        connected.withLock { if up { $0.insert(node) } else { $0.remove(node) } }
    }
}
