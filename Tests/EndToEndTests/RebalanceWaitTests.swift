@testable import chaparctl
import Testing

/// When `chaparctl cluster rebalance` may say a map is in place: only from shard rows of
/// that map's epoch (nodes refresh their rows every 200 ms, so a row taken right after a
/// node adopted the map shows the previous one — whose replicas its leader's voters match).
@Suite struct RebalanceWaitTests {
    typealias Row = ShardCommands.ShardRow

    func row(_ shard: Int, epoch: Int, replicas: [String], role: String, voters: [String], learners: [String] = []) -> Row {
        Row(shard: shard, epoch: epoch, replicas: replicas, role: role, term: 2, leader: "a", commit: 9, lastIndex: 9,
            logStart: 0, voters: voters, learners: learners)
    }

    @Test func rowsOlderThanTheMapSettleNothing() {
        // Epoch 2 moves shard 0 from c to d; every row still shows epoch 1, which looks settled.
        let old = ["a": [row(0, epoch: 1, replicas: ["a", "b", "c"], role: "leader", voters: ["a", "b", "c"])],
                   "b": [row(0, epoch: 1, replicas: ["a", "b", "c"], role: "follower", voters: ["a", "b", "c"])],
                   "c": [row(0, epoch: 1, replicas: ["a", "b", "c"], role: "follower", voters: ["a", "b", "c"])]]
        #expect(TopologyCommands.unsettled(old, shards: 1, epoch: 1) == [])
        #expect(TopologyCommands.unsettled(old, shards: 1, epoch: 2) == [0])
    }

    @Test func aMoveSettlesOnceTheLeaderRunsTheNewReplicasAndTheOldOneIsGone() {
        let moving = ["a": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "leader", voters: ["a", "b", "c"], learners: ["d"])],
                      "c": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "follower", voters: ["a", "b", "c"])]]
        #expect(TopologyCommands.unsettled(moving, shards: 1, epoch: 2) == [0])
        let promoted = ["a": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "leader", voters: ["a", "b", "d"])],
                        "c": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "follower", voters: ["a", "b", "c"])]]
        #expect(TopologyCommands.unsettled(promoted, shards: 1, epoch: 2) == [0], "c still holds a replica")
        let done = ["a": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "leader", voters: ["a", "b", "d"])],
                    "d": [row(0, epoch: 2, replicas: ["a", "b", "d"], role: "follower", voters: ["a", "b", "d"])]]
        #expect(TopologyCommands.unsettled(done, shards: 1, epoch: 2) == [])
        #expect(TopologyCommands.unsettled(done, shards: 2, epoch: 2) == [1], "a shard without a leader's row")
    }
}
