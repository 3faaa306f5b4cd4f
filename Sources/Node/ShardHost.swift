import ChaparCore
import Consensus
import Dispatch
import Placement
import Storage
import Synchronization
import Transport

/// The replication thread of a clustered node (`chapar-raft`): it owns one Raft group per
/// shard replica on this node and drives them all in cycles. A cycle takes everything
/// queued (client publishes, peer Raft messages, forwarded publishes and their results),
/// ticks the groups when a tick is due, routes publishes to their shard's leader, then
/// persists every group's new entries and hard state AND applies what became committed
/// in ONE transaction (one fsync for all shards), and only then sends the groups'
/// messages — batched into one frame per peer node — and settles publishes.
///
/// A publish is acknowledged once its entry is applied on the leader: committed means a
/// majority stored it, and every node, the leader included, fsyncs before it reports an
/// entry stored (followers answer appends only after the cycle that persisted them).
final class ShardHost: @unchecked Sendable {  // inbox thread-safe; everything else guarded by: the run() thread
    struct Inbox {
        var publishes: [(AppendInput, PublishTicket)] = []
        var raft: [ShardEnvelope] = []
        var forwards: [(node: String, request: UInt64, shard: Int, publish: ReplicatedPublish)] = []
        var results: [(request: UInt64, result: ForwardResult)] = []
        var linksDown: [String] = []
        var reads: [(shard: Int, reply: @Sendable (UInt64?) -> Void)] = []
        var damaged: Set<Int> = []
        var remoteReads: [(node: String, request: UInt64, shard: Int)] = []
        var readResults: [(request: UInt64, index: UInt64)] = []
        var controls: [(command: ControllerCommand, reply: @Sendable (ControlReply) -> Void)] = []
        var mapRequests: [(node: String, epoch: UInt64)] = []
        var clusterStates: [(node: String, bytes: [UInt8])] = []
        var replicaChecks: [(node: String, request: UInt64, shard: Int)] = []
        var replicaCheckResults: [(node: String, shard: Int, removed: Bool)] = []
        var headRequests: [(channel: String, reply: @Sendable (UInt64?) -> Void)] = []
        var remoteHeads: [(node: String, request: UInt64, channel: String)] = []
        var headResults: [(request: UInt64, head: UInt64?)] = []
        var snapshotChunks: [(node: String, shard: Int, index: UInt64, offset: UInt64, total: UInt64, data: [UInt8])] = []
        var snapshotAcks: [(node: String, shard: Int, index: UInt64, received: UInt64, ok: Bool)] = []
        var snapshotsProduced: [(key: SnapshotTransfers.Key, peerId: UInt64, path: String, result: Result<SnapshotHeader, StorageError>)] = []
        var snapshotsVerified: [(key: SnapshotTransfers.Key, index: UInt64, error: StorageError?)] = []
        var stopping = false
    }

    let context: ShardContext
    let inbox = Mutex(Inbox())
    let wake = DispatchSemaphore(value: 0)
    let store: ReplicatedStore
    let reader: StoredEntryReader
    var groups: [Int: ShardGroup] = [:]
    var router: PublishRouter
    let onCommit: (CommitReport<PublishTicket>) -> Void
    private let send: @Sendable ([String: [PeerFrame]]) -> Void
    var outgoingRaft: [String: [ShardEnvelope]] = [:]
    private var outgoingFrames: [String: [PeerFrame]] = [:]
    private var lastRetentionMs: Int64 = 0
    var nextReadContext: UInt64 = 1
    var pendingReads: [UInt64: (shard: Int, deadline: Int64, reply: @Sendable (UInt64?) -> Void)] = [:]
    var confirmedReads: [(shard: Int, index: UInt64, deadline: Int64, reply: @Sendable (UInt64?) -> Void)] = []
    /// Reads this node asked a leader for, by request id.
    var forwardedReads: [UInt64: (shard: Int, deadline: Int64, reply: @Sendable (UInt64?) -> Void)] = [:]
    /// Reads a follower asked this leader for: who to answer, by read context.
    private var remoteReadAnswers: [UInt64: (node: String, request: UInt64)] = [:]
    static let readWaitMs: Int64 = 2000
    /// Received snapshot bytes copied into the store per cycle: bounds how long a large
    /// snapshot holds up the node's other shards (their writes share the transaction).
    static let snapshotCopyBytesPerCycle = 2 << 20
    /// Rows (runs of up to `RecordRun.recordsMax` records) of dropped channels deleted per
    /// housekeeping pass (every 100 ms).
    static let droppedRowsPerPass = 1_000
    /// Log entries a replica keeps in memory beyond what it applied.
    static let inMemoryEntries = 256
    /// What the admin API shows; refreshed a few times a second.
    let status = Mutex<[ShardStatus]>([])
    private var lastStatusMs: Int64 = 0
    /// The controller's state as this node's replica of the controller applied it (the
    /// bootstrap state when it holds none); the node may know a newer one (`context`).
    var controllerState: ClusterState
    /// Controller proposals of this leader awaiting application, by log index.
    var controlsPending: [UInt64: (term: UInt64, reply: @Sendable (ControlReply) -> Void)] = [:]
    /// Called (replication thread) when this node adopts a newer shard map.
    let onMapChange: @Sendable (UInt64) -> Void
    /// Called (replication thread) with a shard this node no longer hosts.
    let onShardDropped: @Sendable (Int) -> Void
    var lastReconcileMs: Int64 = 0
    var mapRequestedAt: [String: Int64] = [:]
    var replicaCheckedAt: [Int: Int64] = [:]
    var nextReplicaCheck: UInt64 = 1
    var lastRegisterMs: Int64 = 0
    /// Channel heads this node asked a replica for (edge `latest`), by request id.
    var pendingHeads: [UInt64: (deadline: Int64, reply: @Sendable (UInt64?) -> Void)] = [:]
    var nextHeadRequest: UInt64 = 1
    /// Snapshots being sent and received; written and checked on `snapshotQueue`.
    var snapshots = SnapshotTransfers()
    let snapshotQueue = DispatchQueue(label: "chapar-snapshots")
    private var lastTrimMs: Int64 = 0
    /// A group has more to hand out right after its Ready was advanced.
    var readyAgain = false

    init(
        context: ShardContext, store: ReplicatedStore, controllerState: ClusterState? = nil,
        onCommit: @escaping (CommitReport<PublishTicket>) -> Void,
        send: @escaping @Sendable ([String: [PeerFrame]]) -> Void,
        onMapChange: @escaping @Sendable (UInt64) -> Void = { _ in },
        onShardDropped: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws(StorageError) {
        self.context = context
        self.store = store
        self.onCommit = onCommit
        self.send = send
        self.onMapChange = onMapChange
        self.onShardDropped = onShardDropped
        router = PublishRouter(context: context)
        let loaded = try store.load()
        // The stored controller state goes with the stored controller replica (same
        // transaction); without a replica, a new one replays the log from the start.
        self.controllerState = loaded[ShardContext.controllerShard] != nil ? controllerState ?? context.bootstrapState : context.bootstrapState
        let reader = StoredEntryReader(store: store, logger: context.logger)
        self.reader = reader
        // A replica stays until its removal is confirmed, whatever the map says; the map's
        // new replicas start as joiners (see `reconcile`).
        let map = context.cluster.map
        var shards = Set(loaded.keys)
        for shard in 0..<context.shardCount where map.replicas[shard].contains(context.localName) { shards.insert(shard) }
        if context.cluster.controllers.contains(context.localName) { shards.insert(ShardContext.controllerShard) }
        for shard in shards {
            groups[shard] = ShardGroup(shard: shard, context: context, loaded: loaded[shard], reader: reader)
        }
        publishHosted()
        refreshStatus(now: MonotonicClock.nowMs())
        prepareSnapshotDirectory()
        store.onWriteDone { [wake] in wake.signal() }
    }

    func channelBounds() -> [String: ChannelBounds] { store.channelBounds() }

    // MARK: Inputs (any thread)

    /// Publishes from client sessions. False once stopping.
    func submit(_ items: [(AppendInput, PublishTicket)]) -> Bool {
        guard !items.isEmpty else { return true }
        let accepted = inbox.withLock { box -> Bool in
            if box.stopping { return false }
            // Usually the replication thread took the last batch already: the array is
            // handed over whole instead of copied element by element.
            if box.publishes.isEmpty { box.publishes = items } else { box.publishes.append(contentsOf: items) }
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    func received(from node: String, _ frame: PeerFrame) {
        inbox.withLock { box in
            switch frame {
            case .raft(let items): box.raft.append(contentsOf: items)
            case .forward(let request, let shard, let publish):
                box.forwards.append((node, request, Int(shard), publish))
            case .forwardResult(let request, let result): box.results.append((request, result))
            case .readIndex(let request, let shard): box.remoteReads.append((node, request, Int(shard)))
            case .readIndexResult(let request, let index): box.readResults.append((request, index))
            case .mapRequest(let epoch): box.mapRequests.append((node, epoch))
            case .clusterState(let bytes): box.clusterStates.append((node, bytes))
            case .replicaCheck(let request, let shard): box.replicaChecks.append((node, request, Int(shard)))
            case .replicaCheckResult(_, let shard, let removed): box.replicaCheckResults.append((node, Int(shard), removed))
            case .channelHead(let request, let channel): box.remoteHeads.append((node, request, channel))
            case .channelHeadResult(let request, let ok, let head): box.headResults.append((request, ok ? head : nil))
            case .snapshotChunk(let shard, let index, let offset, let total, let data):
                box.snapshotChunks.append((node, Int(shard), index, offset, total, data))
            case .snapshotAck(let shard, let index, let received, let ok):
                box.snapshotAcks.append((node, Int(shard), index, received, ok))
            case .hello: break
            }
        }
        wake.signal()
    }

    /// Read index for `shard` (docs/ARCHITECTURE.md, "Reading the committed head"): `reply`
    /// gets the confirmed index once this node has applied it — everything committed
    /// before the call is then in the local channel logs — or nil when it cannot be had
    /// within `readWaitMs` (no reachable leader). A follower asks the leader for the index
    /// and waits until it has applied that far itself. Called from any thread; `reply` runs
    /// on the replication thread.
    func readIndex(shard: Int, reply: @escaping @Sendable (UInt64?) -> Void) {
        inbox.withLock { $0.reads.append((shard, reply)) }
        wake.signal()
    }

    /// A reader found a record of `shard` that fails its checksum: check the replica's
    /// stored entries and repair it if they are damaged.
    func reportDamage(shard: Int) {
        _ = inbox.withLock { $0.damaged.insert(shard) }
        wake.signal()
    }

    /// An operator's command for the controller; `reply` runs on the replication thread.
    func control(_ command: ControllerCommand, reply: @escaping @Sendable (ControlReply) -> Void) {
        inbox.withLock { $0.controls.append((command, reply)) }
        wake.signal()
    }

    /// Adds to the inbox (any thread) and wakes the replication thread.
    func enqueue(_ add: (inout Inbox) -> Void) {
        inbox.withLock { add(&$0) }
        wake.signal()
    }

    func linkDown(_ node: String) {
        inbox.withLock { $0.linksDown.append(node) }
        wake.signal()
    }

    func stop() {
        inbox.withLock { $0.stopping = true }
        wake.signal()
    }

    // MARK: The cycle

    func run() {
        var nextTickMs = MonotonicClock.nowMs() + context.tickMs
        while true {
            // A snapshot being copied in goes on in the next cycle without waiting, and so
            // does a group whose own write let it commit entries (`Raft.hasReady`).
            let wait = snapshots.copying.isEmpty && !readyAgain ? max(0, nextTickMs - MonotonicClock.nowMs()) : 0
            readyAgain = false
            _ = wake.wait(timeout: .now() + .milliseconds(Int(wait)))
            let taken = inbox.withLock { box -> Inbox in
                let taken = box
                box = Inbox(stopping: box.stopping)
                return taken
            }
            let now = MonotonicClock.nowMs()
            if now >= nextTickMs {
                // Over a copy of the keys: the dictionary is never iterated while it is
                // accessed for mutation (which would copy its storage).
                for shard in Array(groups.keys) { groups[shard]!.raft.tick() }
                nextTickMs = max(nextTickMs + context.tickMs, now)
                router.expire(now: now, host: self)
                for (context, read) in pendingReads where read.deadline <= now {
                    pendingReads[context] = nil
                    read.reply(nil)
                    if let asker = remoteReadAnswers.removeValue(forKey: context) {
                        queue(.readIndexResult(request: asker.request, index: 0), to: asker.node)
                    }
                }
                for (request, read) in forwardedReads where read.deadline <= now {
                    forwardedReads[request] = nil
                    read.reply(nil)
                }
            }
            for item in taken.raft {
                let shard = Int(item.shard)
                guard item.envelope.to == context.localId, groups[shard] != nil else { continue }
                if case .snapshot = item.envelope.message { routeSnapshotMessage(item); continue }
                groups[shard]!.raft.step(item.envelope)
            }
            for node in taken.linksDown { router.linkDown(node, host: self) }
            takeSnapshotInputs(taken)
            for shard in taken.damaged { reader.flag(shard) }
            for item in taken.results { router.resolve(request: item.request, item.result, host: self, now: now) }
            router.acceptForwarded(taken.forwards, host: self, now: now)
            for read in taken.reads { startRead(shard: read.shard, now: now, reply: read.reply) }
            for read in taken.remoteReads {
                // Answer the asking follower once confirmed (the leader need not wait for its
                // own application: the follower waits for its own).
                let node = read.node, request = read.request
                let context = nextReadContext
                nextReadContext += 1
                if groups[read.shard]?.raft.readIndex(context: context) == true {
                    pendingReads[context] = (read.shard, now + Self.readWaitMs, { _ in })
                    remoteReadAnswers[context] = (node, request)
                } else {
                    queue(.readIndexResult(request: request, index: 0), to: node)
                }
            }
            for result in taken.readResults {
                guard let read = forwardedReads.removeValue(forKey: result.request) else { continue }
                if result.index == 0 { read.reply(nil) } else {
                    confirmedReads.append((read.shard, result.index, read.deadline, read.reply))
                }
            }
            takeClusterInputs(taken, now: now)
            takeHeadRequests(taken, now: now)
            router.route(local: taken.publishes, host: self, now: now)
            router.retryWaiting(host: self, now: now)
            router.proposeQueued(host: self, now: now)
            cycle(now: now)
            if taken.stopping && taken.publishes.isEmpty {
                router.failAll(host: self, reason: "the node is stopping")
                failControls("the node is stopping")
                flushOutgoing()
                onCommit(CommitReport(outcomes: router.takeSettled(), appended: []))
                return
            }
        }
    }

    private func cycle(now: Int64) {
        var persist: [RaftPersist] = []
        var commitsOnly: [RaftPersist] = []
        var committed = CommittedBatch()
        var readies: [Int: RaftReady] = [:]
        var installs: [SnapshotInstall] = []
        var installing: [(shard: Int, key: SnapshotTransfers.Key, index: UInt64)] = []
        for (shard, group) in groups.sorted(by: { $0.key < $1.key }) {
            // Most groups have nothing in most cycles (a node holds many shards, a cycle
            // serves a few): asking first spares building and dropping an empty Ready per
            // group per cycle (with 256 shards, `ready()` was 7–12% of the thread).
            guard group.hasReady else { continue }
            let ready = group.raft.ready()
            guard !ready.isEmpty else { continue }
            readies[shard] = ready
            if let meta = ready.snapshot {
                let (install, key) = snapshotInstall(shard: shard, meta: meta)
                installs.append(install)
                installing.append((shard, key, meta.index))
            }
            let hard = ready.hardState.map { (term: $0.term, vote: $0.votedFor, commit: $0.commit, repairing: $0.repairingUntil) }
            let promises = hard.map { HardStatePromises(term: $0.term, vote: $0.vote, repairing: $0.repairing) }
            if let hard, ready.entries.isEmpty, ready.snapshot == nil, promises == group.loggedHard {
                // Only the commit index moved (a leader's cycle that committed, a follower's
                // heartbeat): Raft needs it nowhere durable — a restarted replica starts from
                // what it applied and learns the rest — so it waits for no write or sync.
                commitsOnly.append(RaftPersist(shard: shard, hardState: hard, entries: []))
            } else if hard != nil || !ready.entries.isEmpty {
                persist.append(RaftPersist(shard: shard, hardState: hard, entries: ready.entries.map(StoredRaftEntry.init)))
                if let promises { group.loggedHard = promises }
            }
            gather(ready.committed, shard: shard, into: &committed)
        }
        let copying = snapshots.copying
        guard !readies.isEmpty || !outgoingFrames.isEmpty || router.hasSettled || !copying.isEmpty else { return maybeHousekeep(now: now) }
        // A leader's appends may leave before its own write (Raft thesis §10.2.1): followers
        // persist before they answer, and the leader counts its own copy only once its
        // Ready is advanced (`Raft.persistedIndex`) — nothing commits on a copy the leader
        // has not synced. Votes and answers carry promises, so they wait for the write.
        var late: [Int: [RaftEnvelope]] = [:]
        for (shard, ready) in readies {
            for message in ready.messages {
                guard let node = context.name(of: message.to) else { continue }
                if Raft.mayPrecedePersist(message.message) {
                    outgoingRaft[node, default: []].append(ShardEnvelope(shard: UInt32(shard), envelope: message))
                } else {
                    late[shard, default: []].append(message)
                }
            }
        }
        flushOutgoing()
        // Results of publishes forwarded to other nodes owe nothing to this write.
        reportSettled(appended: [])
        var appended: [ChannelAppend] = []
        let controller = applyController(committed.controllerEntries)
        if !persist.isEmpty || !commitsOnly.isEmpty || !committed.apply.isEmpty || !committed.appliedThrough.isEmpty || !installs.isEmpty
            || !copying.isEmpty
        {
            let startedMs = MonotonicClock.nowMs()
            defer {
                noteSlowWrite(since: startedMs, persisted: persist.count, applied: committed.apply.count, installs: installs.count, copying: copying.count)
            }
            // Publishes are acknowledged as soon as their outcomes are decided, before this
            // cycle's sync and transaction commit: they are committed (a majority synced the
            // entries), and applying them is deterministic, so a crash now replays them from
            // the log to the same offsets. Except entries this node persists in this very
            // cycle (a replica applying what it just received, a single-voter group): their
            // outcomes wait for the sync.
            var syncedBefore: [Int: UInt64] = [:]
            for item in persist { if let first = item.entries.first { syncedBefore[item.shard] = first.index } }
            var afterSync: (outcomes: [AppendOutcome], positions: [ApplyPosition]) = ([], [])
            do throws(StorageError) {
                (_, appended) = try store.commit(
                    persist: persist, commitsOnly: commitsOnly, apply: committed.apply, appliedThrough: committed.appliedThrough,
                    clusterState: controller?.state.encoded,
                    installs: installs, staging: copying, stagingBytesMax: Self.snapshotCopyBytesPerCycle, now: WallClock.nowMs(),
                    staged: { outcomes in
                        var early: (outcomes: [AppendOutcome], positions: [ApplyPosition]) = ([], [])
                        for (outcome, position) in zip(outcomes, committed.positions) {
                            let durable = syncedBefore[position.shard].map { position.index < $0 } ?? true
                            if durable { early.outcomes.append(outcome); early.positions.append(position) } else {
                                afterSync.outcomes.append(outcome)
                                afterSync.positions.append(position)
                            }
                        }
                        settleApplied(early.outcomes, positions: early.positions)
                    },
                    synced: {
                        // Answers and votes promise what the entry log now holds; they need
                        // not wait for SQLite's commit.
                        sendLate(late)
                        late = [:]
                    },
                    whileWriting: installs.isEmpty && copying.isEmpty ? { [self] in workWhileWriting() } : nil)
                settleApplied(afterSync.outcomes, positions: afterSync.positions)
            } catch {
                // Raft's promises rest on this write; a node that cannot make it must stop
                // rather than answer as if it had.
                context.logger.error("replicated store write failed; stopping", ["error": error.description])
                fatalError("replicated store write failed: \(error)")
            }
        }
        if !late.isEmpty { sendLate(late) }
        var settled = router.takeSettled()
        for (shard, ready) in readies {
            for state in ready.reads {
                guard let read = pendingReads.removeValue(forKey: state.context) else { continue }
                if let asker = remoteReadAnswers.removeValue(forKey: state.context) {
                    queue(.readIndexResult(request: asker.request, index: state.index), to: asker.node)
                    continue
                }
                confirmedReads.append((shard, state.index, read.deadline, read.reply))
            }
            appliedOther(ready.committed, shard: shard, settled: &settled)
            groups[shard]!.raft.advance(ready)
            if groups[shard]!.hasReady { readyAgain = true }
            if !ready.snapshotsWanted.isEmpty { produceSnapshots(shard: shard, for: ready.snapshotsWanted) }
            // Applied entries leave memory (they stay on disk for lagging followers).
            if groups[shard]!.raft.log.count > Self.inMemoryEntries * 2 {
                groups[shard]!.raft.compact(through: groups[shard]!.lastIndex - UInt64(Self.inMemoryEntries))
            }
        }
        // Only now, with every group's Ready advanced, may anything step or propose to a
        // group (adopting a new map reconciles replica sets; a copied snapshot is stepped):
        // whatever a group appends from here on is persisted by the next cycle.
        if let controller { adoptControllerState(controller) }
        if !installing.isEmpty { installed(installing) }
        if !copying.isEmpty { snapshotsCopied() }
        flushOutgoing()
        if !settled.isEmpty || !appended.isEmpty { onCommit(CommitReport(outcomes: settled, appended: appended)) }
        store.finishLogRestartIfAsked()
        answerReads(now: now)
        repairDamaged()
        maybeHousekeep(now: now)
    }

    /// Sends the messages that had to wait for this cycle's write.
    private func sendLate(_ late: [Int: [RaftEnvelope]]) {
        for (shard, messages) in late {
            for message in messages {
                guard let node = context.name(of: message.to) else { continue }
                outgoingRaft[node, default: []].append(ShardEnvelope(shard: UInt32(shard), envelope: message))
            }
        }
        flushOutgoing()
    }

    /// Settles the publishes of applied entries (`positions` line up with `outcomes`) and
    /// sends their acknowledgements and forwarded results.
    func settleApplied(_ outcomes: [AppendOutcome], positions: [ApplyPosition]) {
        guard !outcomes.isEmpty else { return }
        var settled = router.takeSettled()
        var entryOutcomes: [AppendOutcome] = []
        for (position, outcome) in outcomes.enumerated() {
            let (shard, index, term, last) = positions[position]
            entryOutcomes.append(outcome)
            guard last else { continue }
            router.applied(shard: shard, index: index, term: term, outcomes: entryOutcomes, settled: &settled, host: self)
            entryOutcomes = []
        }
        flushOutgoing()
        if !settled.isEmpty { onCommit(CommitReport(outcomes: settled, appended: [])) }
    }

    /// A cycle transaction this long holds up every shard of the node: worth a line.
    static let slowWriteMs: Int64 = 100

    private func noteSlowWrite(since startedMs: Int64, persisted: Int, applied: Int, installs: Int, copying: Int) {
        let elapsed = MonotonicClock.nowMs() - startedMs
        guard elapsed >= Self.slowWriteMs else { return }
        context.logger.warn("slow replication write", [
            "ms": "\(elapsed)", "shards_persisted": "\(persisted)", "records_applied": "\(applied)",
            "snapshots_installed": "\(installs)", "snapshots_copying": "\(copying)",
        ])
    }

    /// Hands what the router settled (and `appended` records) to the client loops.
    func reportSettled(appended: [ChannelAppend]) {
        let settled = router.takeSettled()
        if !settled.isEmpty || !appended.isEmpty { onCommit(CommitReport(outcomes: settled, appended: appended)) }
    }

    func queue(_ frame: PeerFrame, to node: String) {
        outgoingFrames[node, default: []].append(frame)
    }

    func flushOutgoing() {
        guard !outgoingRaft.isEmpty || !outgoingFrames.isEmpty else { return }
        // Raft messages of all shards for one node travel in one frame.
        var batched = outgoingFrames
        for (node, items) in outgoingRaft { batched[node, default: []].insert(contentsOf: PeerFrame.raftFrames(items), at: 0) }
        outgoingRaft = [:]
        outgoingFrames = [:]
        send(batched)
    }

    private func maybeHousekeep(now: Int64) {
        if now - lastStatusMs >= 200 { refreshStatus(now: now) }
        if now - lastReconcileMs >= 100 {
            lastReconcileMs = now
            reconcile(now: now)
            do throws(StorageError) { try store.collectDropped(rowsMax: Self.droppedRowsPerPass) } catch {
                context.logger.error("cannot delete dropped channels' records", ["error": error.description])
            }
        }
        if now - lastTrimMs >= 1000 {
            lastTrimMs = now
            trimLogs()
            do throws(StorageError) { try store.collectSegments() } catch {
                context.logger.error("cannot delete unused entry-log segments", ["error": error.description])
            }
        }
        if now - lastRetentionMs >= 1000 {
            lastRetentionMs = now
            do throws(StorageError) { try store.applyRetention(context.retention, now: WallClock.nowMs()) } catch {
                context.logger.error("retention failed", ["error": error.description])
            }
        }
    }

    private func refreshStatus(now: Int64) {
        lastStatusMs = now
        let map = context.cluster.map
        let rows = groups.keys.sorted().map { shard in
            let raft = groups[shard]!.raft
            let voters = raft.configuration.voters.compactMap { context.name(of: $0) }.sorted()
            let learners = raft.configuration.learners.compactMap { context.name(of: $0) }.sorted()
            return ShardStatus(
                shard: shard, epoch: map.epoch, replicas: shard < map.replicas.count ? map.replicas[shard] : context.cluster.controllers,
                role: "\(raft.role)", term: raft.term,
                leader: raft.leader.flatMap { context.name(of: $0) } ?? "", commit: raft.commit, lastIndex: raft.lastIndex,
                repairingUntil: raft.repairingUntil, logStart: raft.snapshotIndex, voters: voters, learners: learners)
        }
        status.withLock { $0 = rows }
    }
}
