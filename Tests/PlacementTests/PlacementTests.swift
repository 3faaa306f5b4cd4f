import ChaparCore
import Testing
@testable import Placement

func cluster(_ count: Int, zones: Int = 3, weight: (Int) -> Int = { _ in 1 }) -> [PlacementNode] {
    (0..<count).map { PlacementNode(id: "node-\($0)", zone: "z\($0 % zones)", weight: weight($0)) }
}

/// Applies moves one at a time, as add-then-remove, checking that no shard ever has
/// fewer replicas than before the move and that each step changes one member.
func applySafely(_ plan: RebalancePlan, to current: ShardMap) -> ShardMap? {
    var replicas = current.replicas
    for move in plan.moves {
        let before = replicas[move.shard]
        guard !before.contains(move.to) else { return nil }
        replicas[move.shard].append(move.to)  // learner, then voter
        if let from = move.from {
            guard replicas[move.shard].contains(from) else { return nil }
            replicas[move.shard].removeAll { $0 == from }
        }
        if replicas[move.shard].count < before.count { return nil }
    }
    return ShardMap(epoch: plan.target.epoch, replicas: replicas)
}

func sameSets(_ a: ShardMap, _ b: ShardMap) -> Bool {
    a.replicas.count == b.replicas.count && zip(a.replicas, b.replicas).allSatisfy { Set($0) == Set($1) }
}

@Suite struct PlacementTests {
    let settings = PlacementSettings(shards: 256, replicas: 3, epsilon: 0.1)

    @Test func channelsSpreadEvenlyOverShardsAndStayPut() {
        var counts = [Int](repeating: 0, count: 256)
        for index in 0..<100_000 { counts[Placement.shard(of: "channel-\(index)", shards: 256)] += 1 }
        let mean = 100_000.0 / 256
        #expect(counts.allSatisfy { abs(Double($0) - mean) < mean * 0.2 }, "\(counts.min()!)…\(counts.max()!)")
        #expect(Placement.shard(of: "@soroush.news", shards: 256) == Placement.shard(of: "@soroush.news", shards: 256))
        #expect(StableHash.hash64("a") != StableHash.hash64("b"))
    }

    @Test func freshMapHasDistinctReplicasAcrossZonesWithinTheBound() {
        let nodes = cluster(9)  // three even zones: both the zone spread and the bound hold
        let map = Placement.place(nodes, settings)
        #expect(map.replicas.count == 256)
        for set in map.replicas {
            #expect(Set(set).count == 3)
            #expect(Set(set.map { id in nodes.first { $0.id == id }!.zone }).count == 3, "spread over the 3 zones")
        }
        let cap = Int((256.0 * 3 / 9 * 1.1).rounded(.up))
        #expect(map.loads.values.allSatisfy { $0 <= cap }, "\(map.loads)")
    }

    @Test func resultIsDeterministicWhateverTheInputOrder() {
        var random = SeededRandom(seed: 5)
        let nodes = cluster(12)
        let first = Placement.place(nodes, settings)
        let second = Placement.place(nodes.shuffled(using: &random), settings)
        #expect(first == second)
    }

    @Test func weightsAreRespected() {
        let nodes = cluster(6, zones: 1, weight: { $0 == 0 ? 2 : 1 })
        let loads = Placement.place(nodes, settings).loads
        let heavy = Double(loads["node-0"]!)
        let light = Double(loads.filter { $0.key != "node-0" }.values.reduce(0, +)) / 5
        #expect(heavy / light > 1.6 && heavy / light < 2.4, "heavy \(heavy), light \(light)")
    }

    @Test(arguments: [5, 9, 15, 30])
    func addingOneNodeMovesCloseToTheMinimum(_ n: Int) {
        // One zone: the count of moves reflects the planner, not uneven zones.
        let before = Placement.place(cluster(n, zones: 1), settings)
        let plan = Placement.rebalance(before, cluster(n + 1, zones: 1), settings)
        let minimum = Double(settings.replicas * settings.shards) / Double(n + 1)
        let ratio = Double(plan.moves.count) / minimum
        #expect(ratio > 0.75 && ratio < 1.3, "moves \(plan.moves.count), minimum \(minimum), ratio \(ratio)")
        #expect(plan.moves.allSatisfy { $0.to == "node-\(n)" }, "replicas move only to the new node")
        let applied = applySafely(plan, to: before)
        #expect(applied.map { sameSets($0, plan.target) } == true)
    }

    @Test(arguments: [6, 10, 20])
    func removingANodeMovesOnlyItsReplicas(_ n: Int) {
        let nodes = cluster(n)
        let before = Placement.place(nodes, settings)
        let gone = "node-3"
        let held = before.loads[gone]!
        let plan = Placement.rebalance(before, nodes.filter { $0.id != gone }, settings)
        #expect(plan.moves.count == held)
        #expect(plan.moves.allSatisfy { $0.from == gone })
        #expect(plan.target.replicas.allSatisfy { !$0.contains(gone) && Set($0).count == 3 })
    }

    @Test func drainingNodeIsEmptiedSafely() {
        var nodes = cluster(8)
        let before = Placement.place(nodes, settings)
        nodes[2].draining = true
        let plan = Placement.rebalance(before, nodes, settings)
        #expect(plan.target.loads["node-2"] == nil)
        #expect(plan.moves.allSatisfy { $0.from == "node-2" })
        #expect(applySafely(plan, to: before).map { sameSets($0, plan.target) } == true)
        #expect(plan.target.epoch == before.epoch + 1)
    }

    /// Random clusters: every map holds its invariants and every plan applies safely.
    @Test(arguments: Array(UInt64(1)...UInt64(25)))
    func randomClustersKeepTheInvariants(_ seed: UInt64) {
        var random = SeededRandom(seed: seed)
        let settings = PlacementSettings(shards: 64 + Int(random.next() % 192), replicas: 1 + Int(random.next() % 3), epsilon: 0.1)
        var nodes = (0..<(3 + Int(random.next() % 20))).map {
            PlacementNode(id: "n\($0)", zone: "z\(random.next() % 3)", weight: 1 + Int(random.next() % 3))
        }
        var map = Placement.place(nodes, settings)
        for _ in 0..<4 {
            // Churn: one node leaves, one arrives, one starts draining.
            nodes.remove(at: Int(random.next() % UInt64(nodes.count)))
            nodes.append(PlacementNode(id: "n\(100 + random.next() % 1000)", zone: "z\(random.next() % 3)"))
            let plan = Placement.rebalance(map, nodes, settings)
            let want = min(settings.replicas, nodes.count)
            #expect(plan.target.replicas.allSatisfy { Set($0).count == want }, "seed \(seed)")
            let live = Set(nodes.map(\.id))
            #expect(plan.target.replicas.allSatisfy { $0.allSatisfy(live.contains) }, "seed \(seed)")
            for node in nodes {
                #expect((plan.target.loads[node.id] ?? 0) <= Placement.capacity(node, nodes, settings) + 1, "seed \(seed)")
            }
            let applied = applySafely(plan, to: map)
            #expect(applied != nil, "seed \(seed): plan applies safely")
            #expect(Placement.rebalance(map, nodes, settings) == plan, "seed \(seed): deterministic")
            map = plan.target
        }
    }
}
