import ChaparCore
import Consensus
import Simulation
import Testing

@Suite struct ReplicaSetTests {
    func plan(_ voters: Set<UInt64>, learners: Set<UInt64> = [], target: Set<UInt64>, leader: UInt64 = 1,
              match: [UInt64: UInt64] = [:], commit: UInt64 = 10) -> ReplicaSetStep? {
        ReplicaSetPlan.next(
            leader: leader, configuration: RaftConfiguration(voters: voters, learners: learners), target: target,
            match: { match[$0] ?? 0 }, commit: commit, caughtUpLag: 2)
    }

    /// The order: stray learners go, missing members join as learners, caught-up learners
    /// are promoted, and only then leaving voters go — the leader last, by handing over.
    @Test func stepsComeInASafeOrder() {
        #expect(plan([1, 2, 3], learners: [9], target: [1, 2, 3]) == .change(.remove(9)))
        #expect(plan([1, 2, 3], target: [1, 2, 4]) == .change(.addLearner(4)))
        #expect(plan([1, 2, 3], learners: [4], target: [1, 2, 4], match: [4: 3]) == nil)  // still catching up
        #expect(plan([1, 2, 3], learners: [4], target: [1, 2, 4], match: [4: 8]) == .change(.promote(4)))
        #expect(plan([1, 2, 3, 4], target: [1, 2, 4]) == .change(.remove(3)))
        #expect(plan([1, 2, 3], target: [2, 3, 5], match: [2: 10, 3: 9]) == .change(.addLearner(5)))
        #expect(plan([1, 2, 3, 5], target: [2, 3, 5], match: [2: 10, 3: 9, 5: 10]) == .transferLeadership(to: 2))
        #expect(plan([1, 2, 3], target: [1, 2, 3]) == nil)
    }

    /// Under message loss and duplication, a 3-voter group moves to a disjoint-but-one
    /// replica set (leader included in the leavers) while taking proposals: it ends with
    /// exactly the target as voters, and every safety check holds on every step.
    @Test(arguments: raftSeeds)
    func groupConvergesToTargetUnderLoss(_ seed: UInt64) {
        let simulator = RaftSimulator(seed: seed, voters: 3, spares: 2)
        simulator.loss = 0.05
        simulator.duplication = 0.05
        simulator.run(ticks: 100)
        let target: Set<UInt64> = [3, 4, 5]
        var steps = 0
        for round in 0..<200 {
            if simulator.reconcile(towards: target) != nil { steps += 1 }
            simulator.propose(Array("r\(round)".utf8))
            simulator.run(ticks: 5)
            if let leader = simulator.leader(), let config = simulator.configuration(of: leader),
               config.voters == target, config.learners.isEmpty, simulator.reconcile(towards: target) == nil {
                break
            }
        }
        simulator.run(ticks: 100)
        let leader = simulator.leader()
        #expect(leader.map { target.contains($0) } == true, "a target member leads [seed \(seed)]")
        #expect(leader.flatMap { simulator.configuration(of: $0) } == RaftConfiguration(voters: target), "[seed \(seed)]")
        #expect(steps >= 5, "add, add, promote, promote, remove, transfer/remove [seed \(seed)]")
        simulator.checkLogMatching()
        #expect(simulator.violations.isEmpty, "\(simulator.violations.prefix(3))")
    }
}
