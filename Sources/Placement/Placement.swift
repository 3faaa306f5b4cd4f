import ChaparCore

/// Channel → shard → replicas. Deterministic: the same inputs give the same map on every
/// node and run, whatever order the nodes come in (ties break by id, never by `Hasher`).
public enum Placement {
    /// The shard of a channel: a stable 64-bit hash of its name, modulo the shard count.
    public static func shard(of channel: String, shards: Int) -> Int {
        Int(StableHash.hash64(channel) % UInt64(shards))
    }

    /// Weighted rendezvous (highest-random-weight) score of `node` for `shard`: each shard
    /// ranks the nodes independently, so a node's arrival or departure changes only the
    /// shards where it ranks high. `-w / ln(u)` makes a node's share proportional to w.
    static func score(_ node: PlacementNode, shard: Int) -> Double {
        var key = Array(node.id.utf8)
        withUnsafeBytes(of: UInt64(shard).bigEndian) { key.append(contentsOf: $0) }
        return -Double(node.weight) / StableMath.ln(StableHash.unit(StableHash.hash64(key)))
    }

    /// Each node's share of the replicas: by weight, within what zone spreading allows.
    /// A zone holds at most one replica of a shard when there are at least R zones (and at
    /// least one of every shard when there are at most R), so zone totals are clamped to
    /// those bounds and the rest is shared out by weight among the others (water-filling);
    /// a zone's total is then split among its nodes by weight.
    static func shares(_ nodes: [PlacementNode], _ settings: PlacementSettings) -> [String: Double] {
        let total = Double(settings.shards * min(settings.replicas, nodes.count))
        let zones = Dictionary(grouping: nodes, by: \.zone)
        let zoneWeight = zones.mapValues { Double($0.reduce(0) { $0 + $1.weight }) }
        let count = zones.count
        let shards = Double(settings.shards)
        let lower = count <= settings.replicas ? shards : 0
        let upper = count >= settings.replicas ? shards : shards * Double(settings.replicas - count + 1)
        var fixed: [String: Double] = [:]
        while true {
            let free = zoneWeight.filter { fixed[$0.key] == nil }
            let remaining = total - fixed.values.reduce(0, +)
            let freeWeight = free.values.reduce(0, +)
            guard freeWeight > 0 else { break }
            var clamped = false
            for (zone, weight) in free.sorted(by: { $0.key < $1.key }) {
                let share = remaining * weight / freeWeight
                if share > upper { fixed[zone] = upper; clamped = true } else if share < lower { fixed[zone] = lower; clamped = true }
            }
            if !clamped {
                for (zone, weight) in free { fixed[zone] = remaining * weight / freeWeight }
                break
            }
        }
        var result: [String: Double] = [:]
        for node in nodes { result[node.id] = fixed[node.zone]! * Double(node.weight) / zoneWeight[node.zone]! }
        return result
    }

    /// The most replicas `node` may hold: ceil((1 + ε) × its share).
    static func capacity(_ node: PlacementNode, _ nodes: [PlacementNode], _ settings: PlacementSettings) -> Int {
        Int((shares(nodes, settings)[node.id]! * (1 + settings.epsilon)).rounded(.up))
    }

    static func floor(_ node: PlacementNode, _ nodes: [PlacementNode], _ settings: PlacementSettings) -> Int {
        Int((shares(nodes, settings)[node.id]! * (1 - settings.epsilon)).rounded(.down))
    }

    /// A fresh map: every shard on `replicas` distinct nodes, spread over zones first, no
    /// node above its capacity.
    public static func place(_ nodes: [PlacementNode], _ settings: PlacementSettings, epoch: UInt64 = 1) -> ShardMap {
        let plan = rebalance(ShardMap(epoch: epoch - 1, replicas: Array(repeating: [], count: settings.shards)), nodes, settings)
        return plan.target
    }
}
