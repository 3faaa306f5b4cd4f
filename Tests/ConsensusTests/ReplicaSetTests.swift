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
    /// exactly the target as voters, and every safety check holds on every step. With
    /// trimming on, the new members are caught up by snapshots.
    @Test(arguments: raftSeeds, [0.0, 0.3])
    func groupConvergesToTargetUnderLoss(_ seed: UInt64, trimming: Double) {
        let simulator = RaftSimulator(seed: seed, voters: 3, spares: 2)
        simulator.trimming = trimming
        simulator.loss = 0.05
        simulator.duplication = 0.05
        simulator.run(ticks: 100)
        let target: Set<UInt64> = [3, 4, 5]
        let (_, steps) = converge(simulator, to: target, label: "r")
        simulator.run(ticks: 100)
        let leader = simulator.leader()
        #expect(leader.map { target.contains($0) } == true, "a target member leads [seed \(seed)]")
        #expect(leader.flatMap { simulator.configuration(of: $0) } == RaftConfiguration(voters: target), "[seed \(seed)]")
        #expect(steps >= 5, "add, add, promote, promote, remove, transfer/remove [seed \(seed)]")
        simulator.checkLogMatching()
        #expect(simulator.violations.isEmpty, "\(simulator.violations.prefix(3))")
    }

    /// A replica leaves, deletes its log once its removal is committed, and is later given
    /// the shard again: it comes back as a learner with an empty log (knowing only the
    /// first configuration, which lists it as a voter) and catches up — under loss and
    /// duplication, with proposals throughout, every safety check on every step (with
    /// trimming on, by a snapshot).
    @Test(arguments: raftSeeds, [0.0, 0.3])
    func removedReplicaDeletesItsLogAndRejoins(_ seed: UInt64, trimming: Double) {
        let simulator = RaftSimulator(seed: seed, voters: 3, spares: 1)
        simulator.trimming = trimming
        simulator.loss = 0.05
        simulator.duplication = 0.05
        simulator.run(ticks: 100)
        var wiped = false
        let (moved, _) = converge(simulator, to: [2, 3, 4], label: "out") {
            if !wiped && simulator.removalConfirmed(1) {
                simulator.wipe(1)
                wiped = true
            }
        }
        #expect(moved, "node 1 leaves [seed \(seed)]")
        for _ in 0..<100 where !wiped {
            simulator.run(ticks: 5)
            if simulator.removalConfirmed(1) { simulator.wipe(1); wiped = true }
        }
        #expect(wiped, "the removal of node 1 is confirmed [seed \(seed)]")
        #expect(converge(simulator, to: [1, 2, 3], label: "back").converged, "node 1 comes back [seed \(seed)]")
        simulator.run(ticks: 100)
        let leader = simulator.leader()
        #expect(leader.flatMap { simulator.configuration(of: $0) } == RaftConfiguration(voters: [1, 2, 3]), "[seed \(seed)]")
        #expect(simulator.logLength(of: 1) > 0 && simulator.logLength(of: 1) == leader.map { simulator.logLength(of: $0) }, "[seed \(seed)]")
        simulator.checkLogMatching()
        #expect(simulator.violations.isEmpty, "\(simulator.violations.prefix(3)) [seed \(seed)]")
    }

    /// The control experiment: a replica that deletes its log while it is still a voter
    /// (acting on the map alone, before its removal is committed) can hand its vote to a
    /// candidate that lacks committed entries. The checks catch it, so the confirmation
    /// the node waits for is what keeps the test above safe.
    @Test func deletingAVotersLogLosesCommittedEntries() {
        let violated = (1...20).contains { seed in
            let simulator = RaftSimulator(seed: UInt64(seed), voters: 3)
            simulator.run(ticks: 100)
            guard let leader = simulator.leader() else { return false }
            let others = [UInt64(1), 2, 3].filter { $0 != leader }
            let (lagging, holder) = (others[0], others[1])
            simulator.partition([lagging], [leader, holder])
            for value in 0..<5 { simulator.propose(Array("c\(value)".utf8)); simulator.run(ticks: 5) }
            simulator.run(ticks: 20)  // committed on the leader and `holder`
            simulator.wipe(holder)  // premature: `holder` is still a voter
            simulator.heal()
            simulator.partition([leader], [lagging, holder])
            simulator.run(ticks: 300)
            return simulator.violations.contains { $0.contains("lacks committed") }
        }
        #expect(violated)
    }

    /// Has the leader step towards `target` with a proposal between steps, until its
    /// configuration is the target (or 300 rounds pass); counts the steps taken.
    func converge(
        _ simulator: RaftSimulator, to target: Set<UInt64>, label: String, whileWaiting: () -> Void = {}
    ) -> (converged: Bool, steps: Int) {
        var steps = 0
        for round in 0..<300 {
            if simulator.reconcile(towards: target) != nil { steps += 1 }
            simulator.propose(Array("\(label)\(round)".utf8))
            simulator.run(ticks: 5)
            whileWaiting()
            if let leader = simulator.leader(), let config = simulator.configuration(of: leader),
               config.voters == target, config.learners.isEmpty, simulator.reconcile(towards: target) == nil {
                return (true, steps)
            }
        }
        return (false, steps)
    }
}
