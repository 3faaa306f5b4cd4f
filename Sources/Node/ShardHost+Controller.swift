import ChaparCore
import Consensus
import Placement
import Storage
import Transport

/// What an operator's controller command came to.
enum ControlReply: Sendable {
    /// Applied by the controller, in log order (`refused` outcomes included).
    case done(ControllerOutcome, ClusterState)
    /// This node does not lead the controller group; `leader` is the one it knows of.
    case notLeader(leader: String?)
    /// Not applied, or unknown whether (leadership moved while it was pending).
    case failed(String)
}

/// The controller (Raft group 0, on the first founding members): its commands are
/// proposed by its leader, applied to the `ClusterState` in log order on every member and
/// stored with the applied index in the cycle's transaction. Registration is automatic:
/// the leader registers live members that gossip shows and the registry lacks. Nothing
/// gossip says removes a node or moves a replica — only an operator's command does.
extension ShardHost {
    var controllerGroup: ShardGroup? { groups[ShardContext.controllerShard] }

    /// Takes the cluster inputs of one cycle (replication thread).
    func takeClusterInputs(_ taken: Inbox, now: Int64) {
        for control in taken.controls { propose(control.command, reply: control.reply) }
        for request in taken.mapRequests where request.epoch < context.mapEpoch {
            queue(.clusterState(context.cluster.encoded), to: request.node)
        }
        for item in taken.clusterStates { adoptFetched(item.bytes, from: item.node) }
        for check in taken.replicaChecks { answerReplicaCheck(node: check.node, request: check.request, shard: check.shard) }
        for result in taken.replicaCheckResults where result.removed { dropIfRemoved(result.shard, confirmedBy: result.node) }
    }

    func propose(_ command: ControllerCommand, reply: @escaping @Sendable (ControlReply) -> Void) {
        guard let group = controllerGroup else { return reply(.notLeader(leader: nil)) }
        guard group.raft.role == .leader, group.raft.transferTarget == nil else {
            return reply(.notLeader(leader: group.raft.leader.flatMap { context.name(of: $0) }))
        }
        guard group.raft.propose(command.encoded) else { return reply(.failed("the controller refused the proposal")) }
        controlsPending[group.lastIndex] = (group.raft.term, reply)
    }

    /// The state after `entries` (committed controller commands, in order), or nil if none.
    func applyController(_ entries: [RaftEntry]) -> (state: ClusterState, results: [(RaftEntry, ControllerOutcome)])? {
        guard !entries.isEmpty else { return nil }
        var state = controllerState
        var results: [(RaftEntry, ControllerOutcome)] = []
        for entry in entries {
            let outcome: ControllerOutcome
            do throws(DecodeFailure) { outcome = state.apply(try ControllerCommand(decoding: entry.data)) } catch {
                context.logger.error("undecodable controller command skipped", ["index": "\(entry.index)", "error": "\(error)"])
                outcome = .refused("undecodable command")
            }
            results.append((entry, outcome))
        }
        return (state, results)
    }

    /// After the transaction that stored it: the state is this node's, pending commands
    /// get their outcomes.
    func adoptControllerState(_ applied: (state: ClusterState, results: [(RaftEntry, ControllerOutcome)])) {
        let before = context.mapEpoch
        controllerState = applied.state
        // Registry changes keep the epoch; a peer may have shown this node a newer one.
        if applied.state.map.epoch >= before { context.adopt(applied.state, force: true) }
        for (entry, outcome) in applied.results {
            context.logger.info("controller applied", ["index": "\(entry.index)", "outcome": "\(outcome)"])
            guard let pending = controlsPending.removeValue(forKey: entry.index) else { continue }
            if pending.term == entry.term { pending.reply(.done(outcome, applied.state)) }
            else { pending.reply(.failed("leadership changed before the command committed; it was not applied")) }
        }
        if applied.state.map.epoch != before { mapChanged() }
    }

    /// A cluster state a peer sent: taken when its epoch is newer (a controller replica
    /// still applies its own log to its own state).
    func adoptFetched(_ bytes: [UInt8], from node: String) {
        let state: ClusterState
        do throws(DecodeFailure) { state = try ClusterState(decoding: bytes) } catch {
            return context.logger.warn("bad cluster state from peer", ["node": node, "error": "\(error)"])
        }
        guard state.map.epoch > context.mapEpoch else { return }
        guard state.origin == context.bootstrapState.origin else {
            // The cluster's newer state comes from another bootstrap than this node's flags:
            // this node is the misconfigured one (serving channels under another shard count
            // would put them in the wrong shards; replaying the controller's log from another
            // bootstrap state would diverge). Stop before taking part.
            let reason = "the cluster was bootstrapped with \(state.settings.shards) shards × \(state.settings.replicas) replicas "
                + "and other founders than this node's --shards \(context.shardCount) --replicas "
                + "\(context.bootstrapState.settings.replicas) --bootstrap; stop it and start it with the cluster's values"
            context.logger.error("node configuration does not match the cluster; stopping", ["from": node, "reason": reason])
            fatalError(reason)
        }
        do throws(StorageError) { try store.saveLearnedClusterState(bytes) } catch {
            return context.logger.error("cannot store the cluster state", ["error": error.description])
        }
        context.adopt(state)
        mapChanged()
    }

    func mapChanged() {
        let epoch = context.mapEpoch
        context.logger.info("shard map adopted", ["epoch": "\(epoch)"])
        onMapChange(epoch)
        reconcile(now: MonotonicClock.nowMs())
    }

    /// Pending commands whose leader lost its term will never be answered by the log.
    func expireControls() {
        guard !controlsPending.isEmpty else { return }
        let term = controllerGroup?.raft.term
        let leads = controllerGroup?.raft.role == .leader
        for (index, pending) in controlsPending where !leads || pending.term != term {
            controlsPending[index] = nil
            pending.reply(.failed("controller leadership changed; the command may or may not apply — check `cluster status`"))
        }
    }

    func failControls(_ reason: String) {
        for pending in controlsPending.values { pending.reply(.failed(reason)) }
        controlsPending = [:]
    }

    /// The controller leader registers live clustered members the registry lacks, and
    /// moves the controller's own seats when the registry calls for it.
    func registerNewMembers(now: Int64) {
        guard let group = controllerGroup, group.raft.role == .leader, now - lastRegisterMs >= 1000 else { return }
        lastRegisterMs = now
        let cluster = controllerState
        let seats = cluster.plannedControllers()
        if seats != cluster.controllers { propose(.setControllers(seats)) { _ in } }
        for member in context.members.values.sorted(by: { $0.id < $1.id })
        where cluster.nodes[member.id] == nil && !cluster.retired.contains(member.id) {
            let command = ControllerCommand.register(id: member.id, zone: member.zone, weight: max(1, member.weight))
            propose(command) { _ in }
        }
    }
}
