import ChaparCore
import Placement
import Storage
import Synchronization

/// What the replication thread, the peer links, the edge relay and the sessions share
/// about the cluster: who we are, the newest cluster state (shard map) this node knows,
/// node names by Raft id, the shards this node hosts, and the members gossip shows.
final class ShardContext: Sendable {
    let localName: String
    let localId: UInt64
    /// Fixed at bootstrap: a channel's shard never changes.
    let shardCount: Int
    /// The controller's Raft group (group 0) starts on these founding members.
    let bootstrapControllers: [String]
    let tickMs: Int64
    /// New learners this node's shard leaders feed at once (`--moves-max`).
    let movesMax: Int
    /// Applied entries a replica keeps before trimming its log (`--raft-log-keep`).
    let raftLogKeep: Int
    let retention: RetentionRules
    let logger: Logger
    /// How long a publish waits for its shard to have a leader before "not stored".
    let noLeaderWaitMs: Int64
    /// How long a proposed or forwarded publish may stay unresolved before "outcome unknown".
    let resolveWaitMs: Int64 = 10_000
    /// The controller group's id in Raft envelopes and the store (never a channel shard).
    static let controllerShard = Int(UInt32.max)
    /// The first map, placed over the founding members: every shard's log starts with
    /// these voters.
    let bootstrapMap: ShardMap
    /// The cluster state before the controller's first command: every replica of the
    /// controller applies its log to it.
    let bootstrapState: ClusterState

    private struct View {
        var cluster: ClusterState
        /// Raft ids are stable hashes of node ids; every name ever seen stays resolvable
        /// (a configuration may still list a node the registry dropped).
        var names: [UInt64: String] = [:]
        var hosted: Set<Int> = []
        var members: [String: PeerMember] = [:]
        /// Members started with another bootstrap: never linked, registered or trusted.
        var foreign: Set<String> = []
        var connected: Set<String> = []
    }
    private let view: Mutex<View>

    /// `stored`: the newest cluster state found in the data directory, if any; else the
    /// bootstrap state placed over the founding members.
    init(config: NodeConfig, stored: ClusterState?, logger: Logger) {
        let sharding = config.sharding
        localName = config.nodeId
        localId = Self.raftId(config.nodeId)
        let founders = sharding.members
        let settings = PlacementSettings(shards: sharding.shards, replicas: sharding.replicas)
        bootstrapMap = Placement.place(founders.map { PlacementNode(id: $0.id, zone: $0.zone) }, settings, epoch: 1)
        let bootstrapState = ClusterState(settings: settings, founders: founders)
        self.bootstrapState = bootstrapState
        let cluster = stored ?? bootstrapState
        shardCount = cluster.settings.shards
        bootstrapControllers = Array(founders.map(\.id).prefix(ClusterState.controllersMax))
        var view = View(cluster: cluster)
        for name in founders.map(\.id) + cluster.nodes.keys + cluster.map.replicas.flatMap({ $0 }) {
            view.names[Self.raftId(name)] = name
        }
        self.view = Mutex(view)
        tickMs = Int64(sharding.electionMs / 10)
        movesMax = sharding.movesMax
        raftLogKeep = sharding.raftLogKeep
        noLeaderWaitMs = Int64(sharding.electionMs * 5)
        retention = config.retention
        self.logger = logger
    }

    /// The voters a shard's log starts with.
    func initialVoters(of shard: Int) -> [String] {
        shard == Self.controllerShard ? bootstrapControllers : bootstrapMap.replicas[shard]
    }

    /// Where a group's replicas belong in the newest state: the map's replicas of a shard,
    /// or the controller's seats.
    func target(of shard: Int) -> [String] {
        view.withLock { shard == Self.controllerShard ? $0.cluster.controllers : $0.cluster.map.replicas[shard] }
    }

    static func raftId(_ node: String) -> UInt64 { max(1, StableHash.hash64("node/" + node)) }

    func shard(of channel: String) -> Int { Placement.shard(of: channel, shards: shardCount) }

    var cluster: ClusterState { view.withLock { $0.cluster } }
    var mapEpoch: UInt64 { view.withLock { $0.cluster.map.epoch } }
    func replicas(of shard: Int) -> [String] { view.withLock { $0.cluster.map.replicas[shard] } }

    /// Takes a newer cluster state (or the controller's next one). False if not newer.
    @discardableResult
    func adopt(_ cluster: ClusterState, force: Bool = false) -> Bool {
        view.withLock { view in
            guard force || cluster.map.epoch > view.cluster.map.epoch else { return false }
            view.cluster = cluster
            for name in cluster.nodes.keys { view.names[Self.raftId(name)] = name }
            for set in cluster.map.replicas { for name in set { view.names[Self.raftId(name)] = name } }
            return true
        }
    }

    func name(of id: UInt64) -> String? { view.withLock { $0.names[id] } }

    func learn(_ name: String) { view.withLock { $0.names[Self.raftId(name)] = name } }

    func knows(_ name: String) -> Bool {
        view.withLock { !$0.foreign.contains(name) && ($0.names[Self.raftId(name)] == name || $0.members[name] != nil) }
    }

    // MARK: Hosted shards (the replication thread writes, sessions read)

    func hosts(_ shard: Int) -> Bool { view.withLock { $0.hosted.contains(shard) } }
    func setHosted(_ shards: Set<Int>) { view.withLock { $0.hosted = shards } }
    var hostedCount: Int { view.withLock { $0.hosted.count } }

    // MARK: Members (loop 0 writes from the gossip view)

    /// Takes the live members gossip shows. Those started with another bootstrap are set
    /// apart (and reported once each). Returns a reason to stop when this node is the one
    /// that disagrees: it holds nothing yet and the others outnumber those like it.
    func setMembers(_ members: [PeerMember]) -> String? {
        let origin = bootstrapState.origin
        let (same, other) = (members.filter { $0.origin == origin }, members.filter { $0.origin != origin })
        let newlyForeign = view.withLock { view -> [PeerMember] in
            view.members = Dictionary(same.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            for member in same { view.names[Self.raftId(member.id)] = member.id }
            let fresh = other.filter { !view.foreign.contains($0.id) }
            view.foreign.formUnion(other.map(\.id))
            return fresh
        }
        for member in newlyForeign {
            logger.error("member started with another cluster bootstrap (--shards, --replicas, --bootstrap); ignored", [
                "member": member.id,
            ])
        }
        let holdsNothing = mapEpoch == 1 && hostedCount == 0
        guard holdsNothing, other.count > same.filter({ $0.id != localName }).count + 1 else { return nil }
        return "\(other.count) members were started with another cluster bootstrap than this node's "
            + "--shards \(shardCount) --replicas \(bootstrapState.settings.replicas) --bootstrap; start it with the cluster's values"
    }

    func isForeign(_ node: String) -> Bool { view.withLock { $0.foreign.contains(node) } }

    var members: [String: PeerMember] { view.withLock { $0.members } }

    /// A live member's client address, if gossip shows one.
    func clientAddress(of node: String) -> String? {
        view.withLock { $0.members[node].flatMap { $0.client.isEmpty ? nil : $0.client } }
    }

    func isConnected(_ node: String) -> Bool { view.withLock { $0.connected.contains(node) } }

    func setConnected(_ node: String, _ up: Bool) {
        view.withLock { if up { $0.connected.insert(node) } else { $0.connected.remove(node) } }
    }
}

/// A live clustered member as gossip shows it.
struct PeerMember: Equatable, Sendable {
    var id: String
    var peer: String
    var zone: String
    var weight: Int
    var mapEpoch: UInt64
    var origin: UInt64
    /// The member's client listener, as gossip shows it (LOCATE answers with it).
    var client = ""
}
