/// A node that can hold replicas: alive in the membership view.
public struct PlacementNode: Equatable, Hashable, Sendable {
    public var id: String
    public var zone: String
    /// Relative capacity: a weight-2 node holds about twice the replicas of a weight-1 node.
    public var weight: Int
    /// Draining nodes keep nothing in a new map.
    public var draining: Bool

    public init(id: String, zone: String, weight: Int = 1, draining: Bool = false) {
        precondition(weight >= 1, "weights start at 1")
        self.id = id
        self.zone = zone
        self.weight = weight
        self.draining = draining
    }
}

/// Fixed at bootstrap (shards, replicas) or tunable (epsilon).
public struct PlacementSettings: Equatable, Sendable {
    public var shards: Int
    public var replicas: Int
    /// Load bound: no node holds more than (1 + epsilon) × its weighted share of replicas,
    /// and the planner moves replicas to nodes below (1 − epsilon) × their share.
    public var epsilon: Double

    public init(shards: Int = 256, replicas: Int = 3, epsilon: Double = 0.1) {
        precondition(shards >= 1 && replicas >= 1 && epsilon >= 0)
        self.shards = shards
        self.replicas = replicas
        self.epsilon = epsilon
    }
}

/// Which nodes hold each shard, numbered by epoch: a newer epoch replaces an older map.
public struct ShardMap: Equatable, Sendable {
    public var epoch: UInt64
    /// `replicas[s]`: the node ids holding shard s.
    public var replicas: [[String]]

    public init(epoch: UInt64, replicas: [[String]]) {
        self.epoch = epoch
        self.replicas = replicas
    }

    /// Replicas per node.
    public var loads: [String: Int] {
        var loads: [String: Int] = [:]
        for set in replicas { for node in set { loads[node, default: 0] += 1 } }
        return loads
    }
}

/// One replica moving: `to` joins shard `shard` (as a learner, then a voter) and only then
/// `from` leaves. `from` is nil when a missing replica is filled.
public struct Move: Equatable, Hashable, Sendable {
    public var shard: Int
    public var from: String?
    public var to: String

    public init(shard: Int, from: String?, to: String) {
        self.shard = shard
        self.from = from
        self.to = to
    }
}

/// A target map and the moves that reach it, in a safe order.
public struct RebalancePlan: Equatable, Sendable {
    public var target: ShardMap
    /// Moves of one shard are sequential; shards take turns. Executing each as
    /// add-then-remove never shrinks a shard's replica set, so it keeps its quorum.
    public var moves: [Move]
}
