import ChaparCore
import Consensus
import Placement
import Storage

/// Moving this node's replicas towards the newest shard map (docs/ARCHITECTURE.md,
/// "Rebalancing"): a replica the map adds starts as a joiner (an empty group that waits
/// for the leader to add it as a learner); each shard's leader takes one safe
/// `ReplicaSetPlan` step at a time; a replica the map dropped stays — serving and voting
/// as before — until a committed configuration without it is confirmed, by its own log
/// or by the shard's leader, and only then deletes its data.
extension ShardHost {
    static let replicaCheckEveryMs: Int64 = 1000
    static let mapRequestEveryMs: Int64 = 1000

    func reconcile(now: Int64) {
        expireControls()
        registerNewMembers(now: now)
        requestNewerMap(now: now)
        let epoch = context.mapEpoch
        for shard in Array(0..<context.shardCount) + [ShardContext.controllerShard]
        where groups[shard] == nil && context.target(of: shard).contains(context.localName) {
            if shard == ShardContext.controllerShard { controllerState = context.bootstrapState }
            groups[shard] = ShardGroup(shard: shard, context: context, loaded: nil, reader: reader)
            context.logger.info("joining shard", ["shard": "\(shard)", "epoch": "\(epoch)"])
            publishHosted()
        }
        // Throttle: shards this node leads that are copying to a new learner right now.
        var copying = groups.values.filter { $0.raft.role == .leader && !$0.raft.configuration.learners.isEmpty }.count
        for shard in Array(groups.keys).sorted() {
            let group = groups[shard]!
            let target = context.target(of: shard)
            if group.raft.role == .leader, !target.isEmpty {
                step(group, shard: shard, towards: Set(target.map(ShardContext.raftId)), copying: &copying)
            } else if !target.contains(context.localName) {
                if group.raft.confirmsRemoval(of: context.localId) {
                    dropReplica(shard, reason: "its own log")
                } else if now - (replicaCheckedAt[shard] ?? 0) >= Self.replicaCheckEveryMs {
                    replicaCheckedAt[shard] = now
                    askWhetherRemoved(shard: shard, replicas: target)
                }
            }
        }
    }

    private func step(_ group: ShardGroup, shard: Int, towards target: Set<UInt64>, copying: inout Int) {
        guard let next = group.raft.nextReplicaSetStep(target: target) else { return }
        switch next {
        case .change(.addLearner(_)) where group.raft.configuration.learners.isEmpty && copying >= context.movesMax:
            return  // its turn comes when a copy finishes (promotes and removals go on)
        case .change(let change):
            if case .addLearner = change, group.raft.configuration.learners.isEmpty { copying += 1 }
            if group.raft.proposeConfigurationChange(change) {
                context.logger.info("replica set change proposed", ["shard": "\(shard)", "change": describe(change)])
            }
        case .transferLeadership(let to):
            group.raft.transferLeadership(to: to)
            context.logger.info("leadership handed over", ["shard": "\(shard)", "to": context.name(of: to) ?? "\(to)"])
        }
    }

    private func describe(_ change: ConfigurationChange) -> String {
        switch change {
        case .addLearner(let id): "add learner \(context.name(of: id) ?? "\(id)")"
        case .promote(let id): "promote \(context.name(of: id) ?? "\(id)")"
        case .remove(let id): "remove \(context.name(of: id) ?? "\(id)")"
        }
    }

    /// Asks the shard's target replicas (one of them leads, or will) whether our removal
    /// is committed.
    private func askWhetherRemoved(shard: Int, replicas: [String]) {
        let request = nextReplicaCheck
        nextReplicaCheck += 1
        for node in replicas where node != context.localName && context.isConnected(node) {
            queue(.replicaCheck(request: request, shard: UInt32(shard)), to: node)
        }
    }

    /// Only the shard's leader answers (the others stay silent: the asker asks again).
    func answerReplicaCheck(node: String, request: UInt64, shard: Int) {
        guard let group = groups[shard], group.raft.role == .leader else { return }
        let removed = group.raft.confirmsRemoval(of: ShardContext.raftId(node))
        queue(.replicaCheckResult(request: request, shard: UInt32(shard), removed: removed), to: node)
    }

    /// A leader whose configuration change committed tells the connected nodes it no longer
    /// lists at once, rather than leaving them to ask (they ignore it unless they hold a
    /// replica the map dropped).
    func announceRemovals(shard: Int) {
        guard let group = groups[shard], group.raft.role == .leader else { return }
        for node in context.members.keys where context.isConnected(node) && group.raft.confirmsRemoval(of: ShardContext.raftId(node)) {
            queue(.replicaCheckResult(request: 0, shard: UInt32(shard), removed: true), to: node)
        }
    }

    func dropIfRemoved(_ shard: Int, confirmedBy node: String) {
        guard let group = groups[shard], group.raft.role != .leader, !context.target(of: shard).contains(context.localName)
        else { return }
        dropReplica(shard, reason: "leader \(node)")
    }

    /// Deletes the replica: its group, its Raft log and state, and its channels' records.
    private func dropReplica(_ shard: Int, reason: String) {
        groups[shard] = nil
        replicaCheckedAt[shard] = nil
        let context = self.context
        let controller = shard == ShardContext.controllerShard
        if controller {
            // A later seat replays the controller's log from the start.
            controllerState = context.bootstrapState
            failControls("this node left the controller")
        }
        do throws(StorageError) {
            // The newest state outlives this replica of the controller (a restart starts from it).
            if controller { try store.saveLearnedClusterState(context.cluster.encoded) }
            try store.dropShard(shard, controller: controller) { !controller && context.shard(of: $0) == shard }
        } catch {
            context.logger.error("cannot delete a removed replica; stopping", ["shard": "\(shard)", "error": error.description])
            fatalError("deleting the replica of shard \(shard) failed: \(error)")
        }
        publishHosted()
        context.logger.info("replica removed", ["shard": "\(shard)", "confirmed_by": reason])
        onShardDropped(shard)
    }

    /// Asks a member that announces a newer map epoch in gossip for its cluster state.
    private func requestNewerMap(now: Int64) {
        let epoch = context.mapEpoch
        let newer = context.members.values.filter { $0.mapEpoch > epoch && context.isConnected($0.id) }
        guard let source = newer.max(by: { ($0.mapEpoch, $1.id) < ($1.mapEpoch, $0.id) }) else { return }
        guard now - (mapRequestedAt[source.id] ?? 0) >= Self.mapRequestEveryMs else { return }
        mapRequestedAt[source.id] = now
        queue(.mapRequest(epoch: epoch), to: source.id)
    }

    func publishHosted() {
        context.setHosted(Set(groups.keys).subtracting([ShardContext.controllerShard]))
    }
}
