extension Placement {
    /// The map to move to from `current` for the nodes now eligible, with few moves:
    /// replicas stay where they are unless their node left, drains, or is above its
    /// capacity; missing replicas go to the best-ranked nodes with room (new zones first);
    /// then nodes below (1 − ε) × their share take replicas from the most loaded.
    public static func rebalance(_ current: ShardMap, _ candidates: [PlacementNode], _ settings: PlacementSettings)
        -> RebalancePlan
    {
        let nodes = candidates.filter { !$0.draining }.sorted { $0.id < $1.id }
        let byId = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0) })
        let want = min(settings.replicas, nodes.count)
        var target = (0..<settings.shards).map { shard in
            (shard < current.replicas.count ? current.replicas[shard] : []).filter { byId[$0] != nil }
        }
        var loads: [String: Int] = [:]
        for set in target { for id in set { loads[id, default: 0] += 1 } }
        let share = shares(nodes, settings)
        let capacity = share.mapValues { Int(($0 * (1 + settings.epsilon)).rounded(.up)) }
        let floor = share.mapValues { Int(($0 * (1 - settings.epsilon)).rounded(.down)) }

        // 1. Shed: a node above capacity hands the shards it ranks lowest for straight to
        //    the least loaded node (for its share) that can take them without costing the
        //    shard a zone — one move each, never two holes in one shard.
        for node in nodes where loads[node.id, default: 0] > capacity[node.id]! {
            let held = (0..<settings.shards).filter { target[$0].contains(node.id) }
                .sorted { (score(node, shard: $0), $1) < (score(node, shard: $1), $0) }
            for shard in held where loads[node.id]! > capacity[node.id]! {
                let zones = target[shard].filter { $0 != node.id }.map { byId[$0]!.zone }
                let receiver = nodes.filter { candidate in
                    !target[shard].contains(candidate.id) && loads[candidate.id, default: 0] < capacity[candidate.id]!
                        && (candidate.zone == node.zone || !zones.contains(candidate.zone))
                }.min { a, b in
                    let ratioA = Double(loads[a.id, default: 0]) / share[a.id]!
                    let ratioB = Double(loads[b.id, default: 0]) / share[b.id]!
                    return ratioA != ratioB ? ratioA < ratioB : a.id < b.id
                }
                guard let receiver else { continue }
                target[shard] = target[shard].map { $0 == node.id ? receiver.id : $0 }
                loads[node.id]! -= 1
                loads[receiver.id, default: 0] += 1
            }
        }
        // Also trim shards that hold too many replicas (the replica count was lowered).
        for shard in 0..<settings.shards where target[shard].count > want {
            let ranked = target[shard].sorted { score(byId[$0]!, shard: shard) > score(byId[$1]!, shard: shard) }
            for id in ranked.dropFirst(want) { target[shard].removeAll { $0 == id }; loads[id]! -= 1 }
        }
        // 2. Fill: each missing replica goes to a node with room in a zone the shard does
        //    not use yet if there is one, the least loaded for its weight first (so the
        //    replicas of a lost node spread evenly and nothing needs levelling after), the
        //    node's rendezvous rank for the shard breaking ties.
        for shard in 0..<settings.shards where target[shard].count < want {
            while target[shard].count < want {
                let zones = Set(target[shard].map { byId[$0]!.zone })
                let open = nodes.filter { !target[shard].contains($0.id) }.sorted { a, b in
                    let ratioA = Double(loads[a.id, default: 0]) / share[a.id]!
                    let ratioB = Double(loads[b.id, default: 0]) / share[b.id]!
                    if ratioA != ratioB { return ratioA < ratioB }
                    return (score(a, shard: shard), b.id) > (score(b, shard: shard), a.id)
                }
                // Zone spread outranks the load bound: when zones are uneven, the nodes of
                // a small zone may exceed (1 + ε) × mean rather than a shard losing a zone.
                let pick = open.first { loads[$0.id, default: 0] < capacity[$0.id]! && !zones.contains($0.zone) }
                    ?? open.first { !zones.contains($0.zone) }
                    ?? open.first { loads[$0.id, default: 0] < capacity[$0.id]! }
                    ?? open.first
                guard let pick else { break }
                target[shard].append(pick.id)
                loads[pick.id, default: 0] += 1
            }
        }
        // 3. Level up: a node below its floor takes, from the most loaded node above its
        //    own floor, a shard it ranks high for, without losing a zone the shard spans.
        for node in nodes.sorted(by: { score($0, shard: 0) > score($1, shard: 0) }) {
            var guardRounds = settings.shards
            while loads[node.id, default: 0] < floor[node.id]! && guardRounds > 0 {
                guardRounds -= 1
                let options = (0..<settings.shards).filter { !target[$0].contains(node.id) }
                    .sorted { (score(node, shard: $0), $1) > (score(node, shard: $1), $0) }
                var moved = false
                for shard in options {
                    let zones = target[shard].map { byId[$0]!.zone }
                    let donors = target[shard].filter { id in
                        loads[id]! > floor[id]! && (byId[id]!.zone == node.zone || !zones.contains(node.zone)
                            || zones.filter { $0 == byId[id]!.zone }.count > 1)
                    }.sorted { (loads[$0]!, $1) > (loads[$1]!, $0) }
                    guard let donor = donors.first, loads[donor]! > loads[node.id, default: 0] + 1 else { continue }
                    target[shard] = target[shard].map { $0 == donor ? node.id : $0 }
                    loads[donor]! -= 1
                    loads[node.id, default: 0] += 1
                    moved = true
                    break
                }
                if !moved { break }
            }
        }
        let map = ShardMap(epoch: current.epoch + 1, replicas: target)
        return RebalancePlan(target: map, moves: orderedMoves(from: current, to: map))
    }

    /// The moves between two maps: per shard, each leaving replica pairs with an arriving
    /// one; shards take turns so no shard has two moves in flight.
    static func orderedMoves(from current: ShardMap, to target: ShardMap) -> [Move] {
        var perShard: [[Move]] = []
        for shard in 0..<target.replicas.count {
            let before = shard < current.replicas.count ? current.replicas[shard] : []
            let after = target.replicas[shard]
            let leaving = before.filter { !after.contains($0) }
            let arriving = after.filter { !before.contains($0) }
            var moves: [Move] = []
            for (index, to) in arriving.enumerated() {
                moves.append(Move(shard: shard, from: index < leaving.count ? leaving[index] : nil, to: to))
            }
            perShard.append(moves)
        }
        var ordered: [Move] = []
        var round = 0
        while perShard.contains(where: { round < $0.count }) {
            for moves in perShard where round < moves.count { ordered.append(moves[round]) }
            round += 1
        }
        return ordered
    }
}
