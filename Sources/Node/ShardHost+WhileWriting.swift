import Consensus
import Dispatch
import Storage
import Transport

/// Committed entries gathered for one transaction: the publishes to apply (with where each
/// came from), how far each replica applied, and the controller's entries.
struct CommittedBatch {
    var apply: [AppendInput] = []
    var positions: [ShardHost.ApplyPosition] = []
    var appliedThrough: [Int: UInt64] = [:]
    var controllerEntries: [RaftEntry] = []
}

/// The replication thread's work while a cycle's entry-log write is in flight (the Ready
/// contract's second form, `RaftReady`): the disk's sync takes as long as the cycle's CPU
/// work or longer, and waiting it out idle put a whole write between a publish arriving and
/// its append leaving, and between a follower's answer and the acknowledgement it allows.
/// So the thread goes on stepping what peers sent and proposing what clients sent, sends
/// the appends that result at once, and applies the entries that become committed — those
/// its earlier cycles persisted — in the open transaction. Everything else the inbox holds
/// waits for the next cycle.
extension ShardHost {
    /// Where an applied publish came from: its entry, and whether it is the entry's last.
    typealias ApplyPosition = (shard: Int, index: UInt64, term: UInt64, last: Bool)

    /// Adds `entries` (committed in `shard`, handed out for applying) to `batch`.
    func gather(_ entries: [RaftEntry], shard: Int, into batch: inout CommittedBatch) {
        guard let group = groups[shard] else { return }
        for entry in entries {
            // A repaired replica re-receives entries it had applied before the damage.
            guard entry.index > group.appliedFloor else { continue }
            batch.appliedThrough[shard] = entry.index
            guard entry.kind == .normal, !entry.data.isEmpty else { continue }
            if shard == ShardContext.controllerShard {
                batch.controllerEntries.append(entry)
                continue
            }
            func add(_ input: AppendInput, payloadStart: Int, of count: Int, position: Int) {
                if batch.apply.isEmpty {
                    batch.apply.reserveCapacity(count)
                    batch.positions.reserveCapacity(count)
                }
                var input = input
                // The channel record points into this entry instead of copying its payload.
                input.reference = PayloadReference(shard: shard, index: entry.index, skip: payloadStart)
                batch.apply.append(input)
                batch.positions.append((shard, entry.index, entry.term, position == count - 1))
            }
            if let own = router.proposed(shard: shard, index: entry.index, term: entry.term) {
                for (position, item) in own.enumerated() { add(item.input, payloadStart: item.payloadStart, of: own.count, position: position) }
            } else if let decoded = try? ReplicatedPublish.decodeEntry(entry.data) {
                for (position, item) in decoded.enumerated() {
                    add(item.publish.input, payloadStart: item.payloadStart, of: decoded.count, position: position)
                }
            } else {
                context.logger.error("undecodable entry skipped", ["shard": "\(shard)", "index": "\(entry.index)"])
            }
        }
    }

    /// Settles the committed entries of `shard` that hold no publishes (configurations,
    /// a new leader's empty entry): their pending proposals, and replica removals.
    func appliedOther(_ entries: [RaftEntry], shard: Int, settled: inout [(context: PublishTicket, outcome: AppendOutcome)]) {
        for entry in entries where entry.kind != .normal || entry.data.isEmpty {
            router.applied(shard: shard, index: entry.index, term: entry.term, outcomes: [], settled: &settled, host: self)
            if entry.kind == .configuration { announceRemovals(shard: shard) }
        }
    }

    /// One turn while the write is in flight: waits for input or for the write's end
    /// (`ReplicatedStore.onWriteDone` signals `wake`), takes peers' Raft messages, forwarded
    /// results and publishes, and returns the committed publishes to apply now.
    func workWhileWriting() -> AppliedWhileWriting? {
        _ = wake.wait(timeout: .now() + .milliseconds(Int(context.tickMs)))
        let now = MonotonicClock.nowMs()
        let taken = inbox.withLock { box -> Inbox in
            var taken = Inbox()
            // Snapshot messages change what a group holds outside its log: next cycle.
            var kept: [ShardEnvelope] = []
            for item in box.raft {
                if case .snapshot = item.envelope.message { kept.append(item) } else { taken.raft.append(item) }
            }
            box.raft = kept
            swap(&taken.publishes, &box.publishes)
            swap(&taken.forwards, &box.forwards)
            swap(&taken.results, &box.results)
            return taken
        }
        var touched = Set<Int>()
        for item in taken.raft {
            let shard = Int(item.shard)
            guard item.envelope.to == context.localId, groups[shard] != nil else { continue }
            groups[shard]!.raft.step(item.envelope)
            touched.insert(shard)
        }
        for item in taken.results { router.resolve(request: item.request, item.result, host: self, now: now) }
        router.acceptForwarded(taken.forwards, host: self, now: now)
        router.route(local: taken.publishes, host: self, now: now)
        touched.formUnion(router.proposeQueued(host: self, now: now))
        var batch = CommittedBatch()
        var settled = router.takeSettled()
        for shard in touched.sorted() where shard != ShardContext.controllerShard {
            guard groups[shard] != nil else { continue }
            for message in groups[shard]!.raft.takeMessagesBeforePersist() {
                guard let node = context.name(of: message.to) else { continue }
                outgoingRaft[node, default: []].append(ShardEnvelope(shard: UInt32(shard), envelope: message))
            }
            let entries = groups[shard]!.raft.takeCommitted()
            gather(entries, shard: shard, into: &batch)
            appliedOther(entries, shard: shard, settled: &settled)
            if groups[shard]!.hasReady { readyAgain = true }
        }
        flushOutgoing()
        if !settled.isEmpty { onCommit(CommitReport(outcomes: settled, appended: [])) }
        let positions = batch.positions
        return AppliedWhileWriting(apply: batch.apply, appliedThrough: batch.appliedThrough) { [self] outcomes in
            // Each of these entries was persisted by an earlier cycle: durable already.
            settleApplied(outcomes, positions: positions)
        }
    }
}
