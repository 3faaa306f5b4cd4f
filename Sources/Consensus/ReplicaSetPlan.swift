/// One step that moves a Raft group towards a target replica set.
public enum ReplicaSetStep: Equatable, Sendable {
    case change(ConfigurationChange)
    /// The leader itself must leave: hand leadership over first, then the new leader
    /// removes it.
    case transferLeadership(to: UInt64)
}

/// How a group's leader reconciles its configuration with the shard map, one server at a
/// time and never shrinking below the target: new replicas join as learners, are promoted
/// once caught up, and only then do replicas that left the target go — learners at once,
/// voters after every target member votes. The order keeps a quorum throughout (the
/// voter set grows to at most target + old, then shrinks to the target).
public enum ReplicaSetPlan {
    /// - Parameters:
    ///   - match: the leader's view of each member's log (its match index).
    ///   - caughtUpLag: a learner within this many entries of the commit index is caught up.
    public static func next(
        leader: UInt64, configuration: RaftConfiguration, target: Set<UInt64>, match: (UInt64) -> UInt64,
        commit: UInt64, caughtUpLag: UInt64
    ) -> ReplicaSetStep? {
        precondition(!target.isEmpty, "a group keeps at least one replica")
        if let stray = configuration.learners.subtracting(target).min() { return .change(.remove(stray)) }
        if let missing = target.subtracting(configuration.voters).subtracting(configuration.learners).min() {
            return .change(.addLearner(missing))
        }
        let caughtUp = configuration.learners.filter { match($0) + caughtUpLag >= commit }
        if let ready = caughtUp.min() { return .change(.promote(ready)) }
        guard configuration.learners.isEmpty else { return nil }  // waiting for learners to catch up
        let leaving = configuration.voters.subtracting(target)
        if let voter = leaving.subtracting([leader]).min() { return .change(.remove(voter)) }
        if leaving.contains(leader) {
            // The most caught-up target voter (ties: the lowest id).
            let successor = target.filter { $0 != leader }.sorted { (match($0), $1) > (match($1), $0) }.first
            return successor.map { .transferLeadership(to: $0) }
        }
        return nil
    }
}

extension Raft {
    /// This leader's next step towards `target`, or nil when there is none to take now
    /// (not the leader, a change still uncommitted, a transfer running, learners catching
    /// up, or already there).
    public func nextReplicaSetStep(target: Set<UInt64>, caughtUpLag: UInt64 = 64) -> ReplicaSetStep? {
        guard role == .leader, transferTarget == nil, configurationIndex <= commit else { return nil }
        return ReplicaSetPlan.next(
            leader: id, configuration: configuration, target: target, match: { self.matchIndex[$0] ?? 0 },
            commit: commit, caughtUpLag: caughtUpLag)
    }
}

extension Raft {
    /// True when the configuration in force is committed and lists `node` neither as a
    /// voter nor as a learner: `node` may delete its replica (it can only come back as a
    /// new learner, which starts from an empty log).
    public func confirmsRemoval(of node: UInt64) -> Bool {
        configurationIndex <= commit && !configuration.voters.contains(node) && !configuration.learners.contains(node)
    }
}
