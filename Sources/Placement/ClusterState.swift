import ChaparCore

/// What the controller (Raft group 0) holds: the fixed settings, the node registry and
/// the shard map. Changed only by applying committed `ControllerCommand`s, in log order,
/// so every controller replica holds the same state — a value, no I/O.
public struct ClusterState: Equatable, Sendable {
    public struct NodeRecord: Equatable, Sendable {
        public var zone: String
        public var weight: Int
        public var draining: Bool

        public init(zone: String, weight: Int = 1, draining: Bool = false) {
            self.zone = zone
            self.weight = weight
            self.draining = draining
        }
    }

    public internal(set) var settings: PlacementSettings
    /// Nodes that may hold replicas (an operator's `remove` takes one out for good).
    public internal(set) var nodes: [String: NodeRecord]
    public internal(set) var map: ShardMap
    /// Ids removed for good: gossip may still show such a node running, and it must not
    /// register again under the same id.
    public internal(set) var retired: Set<String> = []
    /// The controller's own voters (Raft group 0): the first founders at bootstrap; the
    /// controller's leader replaces removed or draining ones (`plannedControllers`).
    public internal(set) var controllers: [String]
    public static let controllersMax = 3
    /// Fingerprint of the bootstrap (founders with their zones, shards, replicas): every
    /// log of the cluster starts from that state, so a node started with other bootstrap
    /// flags must not take part.
    public let origin: UInt64

    /// The bootstrap state: the founding members and the first map placed over them.
    public init(settings: PlacementSettings, founders: [(id: String, zone: String)]) {
        self.settings = settings
        nodes = Dictionary(uniqueKeysWithValues: founders.map { ($0.id, NodeRecord(zone: $0.zone)) })
        map = Placement.place(founders.map { PlacementNode(id: $0.id, zone: $0.zone) }, settings, epoch: 1)
        controllers = Array(founders.map(\.id).prefix(Self.controllersMax))
        origin = Self.origin(settings: settings, founders: founders)
    }

    static func origin(settings: PlacementSettings, founders: [(id: String, zone: String)]) -> UInt64 {
        let text = founders.map { "\($0.id)@\($0.zone)" }.joined(separator: ",") + "|\(settings.shards)|\(settings.replicas)"
        return StableHash.hash64("bootstrap/" + text)
    }

    init(
        settings: PlacementSettings, nodes: [String: NodeRecord], map: ShardMap, retired: Set<String>, controllers: [String],
        origin: UInt64
    ) {
        self.origin = origin
        self.settings = settings
        self.nodes = nodes
        self.map = map
        self.retired = retired
        self.controllers = controllers
    }

    /// The controller voters the registry calls for: current ones stay while registered
    /// and not draining; a seat that frees up goes to a registered, non-draining node,
    /// zones not yet represented first, then by id. A draining controller keeps its seat
    /// when nobody can take it; a removed one never does.
    public func plannedControllers() -> [String] {
        let eligible = nodes.filter { !$0.value.draining }.keys.sorted()
        var planned = controllers.filter { eligible.contains($0) }
        for candidate in eligible.sorted(by: { a, b in
            let zones = Set(planned.compactMap { nodes[$0]?.zone })
            let (newA, newB) = (!zones.contains(nodes[a]!.zone), !zones.contains(nodes[b]!.zone))
            return newA != newB ? newA : a < b
        }) where planned.count < Self.controllersMax && !planned.contains(candidate) {
            planned.append(candidate)
        }
        for kept in controllers where planned.count < Self.controllersMax && nodes[kept] != nil && !planned.contains(kept) {
            planned.append(kept)
        }
        return planned
    }

    public var candidates: [PlacementNode] {
        nodes.sorted { $0.key < $1.key }.map { PlacementNode(id: $0.key, zone: $0.value.zone, weight: $0.value.weight, draining: $0.value.draining) }
    }

    /// Applies one committed command. Returns what it did, for logs and the admin API.
    /// Membership (gossip) never appears here: a node that gossip declares dead keeps its
    /// replicas until an operator removes it.
    @discardableResult
    public mutating func apply(_ command: ControllerCommand) -> ControllerOutcome {
        switch command {
        case .register(let id, let zone, let weight):
            if retired.contains(id) { return .refused("node '\(id)' was removed; a new node needs a new id") }
            if let known = nodes[id], known.zone == zone, known.weight == weight { return .unchanged }
            nodes[id] = NodeRecord(zone: zone, weight: weight, draining: nodes[id]?.draining ?? false)
            return .registry
        case .setDraining(let id, let draining):
            guard var record = nodes[id] else { return .refused("no node '\(id)'") }
            guard record.draining != draining else { return .unchanged }
            record.draining = draining
            nodes[id] = record
            return .registry
        case .remove(let id):
            guard nodes.removeValue(forKey: id) != nil else { return .refused("no node '\(id)'") }
            retired.insert(id)
            return .registry
        case .rebalance:
            let eligible = candidates
            guard eligible.contains(where: { !$0.draining }) else { return .refused("no node may hold replicas") }
            var next = Placement.rebalance(map, eligible, settings).target
            guard next.replicas != map.replicas else { return .unchanged }
            next.epoch = map.epoch + 1
            map = next
            return .newMap(epoch: next.epoch)
        case .setControllers(let ids):
            guard !ids.isEmpty, ids.count <= Self.controllersMax, Set(ids).count == ids.count,
                  ids.allSatisfy({ nodes[$0] != nil })
            else { return .refused("controllers must be 1…\(Self.controllersMax) distinct registered nodes") }
            guard ids != controllers else { return .unchanged }
            controllers = ids
            // A new epoch carries the change to every node (which fetch newer states).
            map.epoch += 1
            return .newMap(epoch: map.epoch)
        case .setEpsilon(let epsilon):
            guard epsilon >= 0 && epsilon <= 1 else { return .refused("epsilon must be within 0…1") }
            settings.epsilon = epsilon
            return .registry
        }
    }
}
