import ChaparCore
import Placement
import Testing

@Suite struct ClusterStateTests {
    let settings = PlacementSettings(shards: 64, replicas: 3)
    let founders: [(id: String, zone: String)] = [("a", "z1"), ("b", "z2"), ("c", "z3")]

    func replicas(of node: String, in map: ShardMap) -> Int { map.replicas.filter { $0.contains(node) }.count }

    /// Growing: a registered node gets replicas only at the next rebalance, which raises the
    /// epoch and moves close to the minimum — every move onto the new node.
    @Test func registerThenRebalanceGrowsTheCluster() {
        var state = ClusterState(settings: settings, founders: founders)
        let first = state.map
        #expect(first.epoch == 1 && first.replicas.allSatisfy { $0.count == 3 })
        #expect(state.apply(.register(id: "d", zone: "z1", weight: 1)) == .registry)
        #expect(state.map == first, "registering alone moves nothing")
        #expect(state.apply(.rebalance) == .newMap(epoch: 2))
        let moved = zip(first.replicas, state.map.replicas).reduce(0) { $0 + Set($1.1).subtracting($1.0).count }
        #expect(moved == replicas(of: "d", in: state.map) && moved > 0)
        #expect(state.apply(.rebalance) == .unchanged, "a balanced map is left alone")
    }

    /// Healing is an operator's decision: removing a node moves exactly its replicas;
    /// draining empties a node while it stays registered.
    @Test func removeAndDrainMoveOnlyWhatTheyMust() {
        var state = ClusterState(settings: settings, founders: founders + [("d", "z1"), ("e", "z2")])
        let before = state.map
        #expect(state.apply(.remove(id: "e")) == .registry)
        #expect(state.apply(.rebalance) == .newMap(epoch: 2))
        #expect(replicas(of: "e", in: state.map) == 0)
        for (old, new) in zip(before.replicas, state.map.replicas) where !old.contains("e") {
            #expect(Set(old) == Set(new), "a shard without e keeps its replicas")
        }
        #expect(state.apply(.setDraining(id: "d", draining: true)) == .registry)
        #expect(state.apply(.rebalance) == .newMap(epoch: 3))
        #expect(replicas(of: "d", in: state.map) == 0)
        #expect(state.apply(.remove(id: "nobody")) == .refused("no node 'nobody'"))
    }

    /// Replicas apply the same commands to the same state: identical results.
    @Test func replicasAgree() throws {
        let commands: [ControllerCommand] = [
            .register(id: "d", zone: "z1", weight: 2), .rebalance, .setEpsilon(0.2), .setDraining(id: "a", draining: true),
            .rebalance, .remove(id: "a"), .rebalance, .setControllers(["b", "c", "d"]),
        ]
        var one = ClusterState(settings: settings, founders: founders)
        var two = ClusterState(settings: settings, founders: founders)
        for command in commands {
            let decoded = try ControllerCommand(decoding: command.encoded)
            #expect(decoded == command)
            #expect(one.apply(command) == two.apply(decoded))
        }
        #expect(one == two)
        // Grow (2), drain a (3); removing the already-empty a moves nothing; new
        // controller seats (4).
        #expect(one.map.epoch == 4)
    }

    @Test func malformedCommandsAreRefused() {
        #expect(throws: DecodeFailure.self) { try ControllerCommand(decoding: []) }
        #expect(throws: DecodeFailure.self) { try ControllerCommand(decoding: [42]) }
        #expect(throws: DecodeFailure.self) { try ControllerCommand(decoding: ControllerCommand.rebalance.encoded + [0]) }
        var zeroWeight = ControllerCommand.register(id: "x", zone: "z", weight: 1).encoded
        zeroWeight[zeroWeight.count - 1] = 0
        #expect(throws: DecodeFailure.self) { try ControllerCommand(decoding: zeroWeight) }
    }
}

@Suite struct ClusterStateCodecTests {
    /// What a node persists and sends to peers decodes to the same state, after any
    /// sequence of commands.
    @Test func roundTripsAfterCommands() throws {
        var state = ClusterState(settings: PlacementSettings(shards: 32, replicas: 3, epsilon: 0.15), founders: [("a", "z1"), ("b", "z2"), ("c", "")])
        #expect(try ClusterState(decoding: state.encoded) == state)
        state.apply(.register(id: "d", zone: "z1", weight: 3))
        state.apply(.setDraining(id: "b", draining: true))
        state.apply(.rebalance)
        state.apply(.remove(id: "c"))
        #expect(try ClusterState(decoding: state.encoded) == state)
    }

    @Test func refusesDamagedBytes() {
        let bytes = ClusterState(settings: PlacementSettings(shards: 8, replicas: 2), founders: [("a", ""), ("b", "")]).encoded
        #expect(throws: DecodeFailure.self) { try ClusterState(decoding: []) }
        #expect(throws: DecodeFailure.self) { try ClusterState(decoding: Array(bytes.dropLast())) }
        #expect(throws: DecodeFailure.self) { try ClusterState(decoding: bytes + [0]) }
        var version = bytes
        version[0] = 9
        #expect(throws: DecodeFailure.self) { try ClusterState(decoding: version) }
        var shards = bytes
        shards[9...12] = [0, 0, 0, 0]  // after the version and the origin
        #expect(throws: DecodeFailure.self) { try ClusterState(decoding: shards) }
    }
}

@Suite struct ClusterStateRetiredTests {
    /// A removed node that gossip still shows cannot register again under its old id.
    @Test func removedIdsStayRetired() throws {
        var state = ClusterState(settings: PlacementSettings(shards: 8, replicas: 2), founders: [("a", ""), ("b", ""), ("c", "")])
        #expect(state.apply(.remove(id: "c")) == .registry)
        #expect(state.apply(.register(id: "c", zone: "", weight: 1)) == .refused("node 'c' was removed; a new node needs a new id"))
        #expect(state.nodes["c"] == nil)
        #expect(try ClusterState(decoding: state.encoded).retired == ["c"])
    }
}

@Suite struct ControllerSeatTests {
    let founders: [(id: String, zone: String)] = [("a", "z1"), ("b", "z2"), ("c", "z3"), ("d", "z1"), ("e", "z4")]

    /// The first three founders hold the seats; a removed one is replaced (a zone not yet
    /// represented first), a draining one too when someone can take it; the others stay.
    @Test func seatsMoveOnlyWhenTheyMust() throws {
        var state = ClusterState(settings: PlacementSettings(shards: 8, replicas: 3), founders: founders)
        #expect(state.controllers == ["a", "b", "c"])
        #expect(state.plannedControllers() == ["a", "b", "c"])
        state.apply(.remove(id: "c"))
        #expect(state.plannedControllers() == ["a", "b", "e"], "z4 is not represented yet; d shares z1 with a")
        #expect(state.apply(.setControllers(state.plannedControllers())) == .newMap(epoch: 2))
        #expect(state.apply(.setControllers(["a", "b", "e"])) == .unchanged)
        state.apply(.setDraining(id: "a", draining: true))
        #expect(state.plannedControllers() == ["b", "e", "d"])
        #expect(state.apply(.setControllers(["b", "e", "nobody"])) == .refused("controllers must be 1…3 distinct registered nodes"))
        #expect(try ClusterState(decoding: state.encoded) == state)
    }

    /// With nobody to take a draining controller's seat, it keeps it.
    @Test func aDrainingControllerKeepsItsSeatWithoutAReplacement() {
        var state = ClusterState(settings: PlacementSettings(shards: 8, replicas: 3), founders: Array(founders.prefix(3)))
        state.apply(.setDraining(id: "b", draining: true))
        #expect(state.plannedControllers() == ["a", "c", "b"])
    }
}
