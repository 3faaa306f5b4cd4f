import ChaparCore
import Consensus

/// Runs a Raft group's real machines on a virtual network with loss, duplication,
/// reordering (random delays), partitions, crashes and restarts that keep only what the
/// Ready contract had the node persist — and checks Raft's safety properties on every
/// step: one leader per term, the same entry applied at each index everywhere, leaders
/// holding every committed entry, and logs that match.
public final class RaftSimulator {
    struct Node {
        var raft: Raft?
        let disk = Disk()
        /// A Ready whose write is in flight (`asyncWrites`); lost if the node crashes first.
        var writing: Writing?
    }

    /// A Ready handed to the node's disk: done at `doneAt`; then `late` messages go out and
    /// `committed` (entries the write itself holds) are applied.
    struct Writing {
        var ready: RaftReady
        var doneAt: UInt64
        var late: [RaftEnvelope]
        var committed: [RaftEntry]
    }

    /// What a node persisted: read back by its Raft for compacted entries, and on restart.
    final class Disk: @unchecked Sendable {  // used on the simulator's thread only
        var hardState: HardState?
        /// The stored entries after `base`.
        var log: [RaftEntry] = []
        /// What the trimmed prefix of the log left: the snapshot it is captured by.
        var base: RaftSnapshotMeta?
        var baseIndex: UInt64 { base?.index ?? 0 }
        var applied: UInt64 = 0
        /// The state machine: every entry applied, in order (at least `applied` of them).
        var machine: [RaftEntry] = []
        /// Snapshots received, by index, until installed.
        var incoming: [UInt64: [RaftEntry]] = [:]
        /// Entries read back by the node's Raft (compacted entries a follower needed).
        var reads = 0

        func stored(_ index: UInt64) -> RaftEntry? {
            index > baseIndex && index <= baseIndex + UInt64(log.count) ? log[Int(index - baseIndex - 1)] : nil
        }
    }

    /// Chance per processed Ready that a node deletes its stored log through its applied
    /// index (its state machine keeps what they did); followers that need those entries
    /// are then sent snapshots.
    public var trimming = 0.0
    /// Chance per processed Ready that a leader proposes while it handles it, between
    /// `ready()` and `advance()` — as a node's shell may (a new shard map reconciles a
    /// replica set). Such an entry must come in the next Ready. Only while its
    /// uncommitted tail is short (seed 604 of 1000 showed that, unbounded, a leader cut off
    /// from its quorum grows its log until the run crawls).
    public var lateProposals = 0.0
    /// Chance per Ready (one that persists something and installs no snapshot) that its
    /// write stays in flight for 1…`writeTicksMax` ticks, as a node's shell lets it: meanwhile the node
    /// steps messages, sends what may precede its write (`takeMessagesBeforePersist`) and
    /// applies what it persisted earlier and sees committed (`takeCommitted`). A crash
    /// before the write is done loses it.
    public var asyncWrites = 0.0
    /// The longest such write, in ticks (messages take 1…`delayTicksMax`).
    public var writeTicksMax: UInt64 = 3
    /// Readies written that way, and entries applied while a write was in flight.
    public private(set) var writesInFlight = 0
    public private(set) var appliedDuringWrites = 0
    /// Chance that producing a snapshot fails (the leader reports it and retries later).
    public var snapshotFailures = 0.1
    /// Snapshots sent by leaders and installed by followers, over all nodes.
    public private(set) var snapshotsSent = 0
    /// Entries proposed by `lateProposals`.
    public private(set) var lateProposed = 0
    public private(set) var snapshotsInstalled = 0
    /// Snapshot data in flight, by (sender, index): it travels beside the message.
    var snapshotData: [SnapshotKey: [RaftEntry]] = [:]
    struct SnapshotKey: Hashable {
        var from: UInt64
        var index: UInt64
    }

    /// Compacted entries read back from disks, over all nodes.
    public var storageReads: Int { nodes.values.reduce(0) { $0 + $1.disk.reads } }

    struct InFlight {
        var time: UInt64
        var order: UInt64
        var envelope: RaftEnvelope
    }

    public let seed: UInt64
    public let ids: [UInt64]
    public var loss = 0.0
    public var duplication = 0.0
    public var delayTicksMax: UInt64 = 3
    /// Chance per processed Ready that a node compacts its in-memory log through its
    /// applied index (and on restart, that it starts from a compacted log).
    public var compaction = 0.0
    /// Chance per restart that the node's disk lost a random suffix of its log (entries
    /// whose checksums failed): it restarts in repair mode from what is left. Damage is
    /// kept to a minority at a time: with a majority damaged no one can know what was
    /// committed, and the group rightly stops.
    public var corruption = 0.0
    /// Off only to show what repair mode prevents: a damaged replica that votes at once.
    public var repairDamagedLogs = true
    /// Restarts that found a damaged log.
    public private(set) var repairs = 0
    /// Nodes whose damaged log is not repaired yet (one at a time).
    var damaged: Set<UInt64> = []
    public var blocked: Set<Link> = []
    public private(set) var now: UInt64 = 0
    /// Violations found, described; empty means every check held.
    public private(set) var violations: [String] = []
    /// The entry applied at each index (by whoever applied it first).
    public private(set) var applied: [UInt64: RaftEntry] = [:]
    /// The term of the node that first applied each index: the entry was committed at or
    /// before it, so every leader of a later term must hold it.
    var appliedTerm: [UInt64: UInt64] = [:]
    var nodes: [UInt64: Node] = [:]
    var leaders: [UInt64: UInt64] = [:]
    var random: SeededRandom
    var inFlight: [InFlight] = []
    var order: UInt64 = 0
    var restarts: UInt64 = 0

    /// The first configuration: nodes 1…voters. Spares (voters+1…) start empty, knowing
    /// that configuration, and join only when the group adds them.
    let initialVoters: [UInt64]

    public init(seed: UInt64, voters count: Int, spares: Int = 0) {
        self.seed = seed
        random = SeededRandom(seed: seed)
        initialVoters = (1...UInt64(count)).map { $0 }
        ids = (1...UInt64(count + spares)).map { $0 }
        for id in ids {
            var node = Node(raft: nil)
            node.raft = Raft(id: id, voters: initialVoters, seed: seed &* 31 &+ id, storage: Self.reader(node.disk))
            nodes[id] = node
        }
    }

    /// Proposes a membership change through the leader; false when refused.
    @discardableResult
    public func change(_ change: ConfigurationChange) -> Bool {
        guard let id = leader() else { return false }
        let accepted = nodes[id]!.raft!.proposeConfigurationChange(change)
        process(id)
        return accepted
    }

    public func configuration(of id: UInt64) -> RaftConfiguration? { nodes[id]?.raft?.configuration }

    /// Has the leader take its next step towards `target`; returns the step taken.
    @discardableResult
    public func reconcile(towards target: Set<UInt64>) -> ReplicaSetStep? {
        guard let id = leader(), let step = nodes[id]!.raft!.nextReplicaSetStep(target: target, caughtUpLag: 4) else { return nil }
        switch step {
        case .change(let change): _ = nodes[id]!.raft!.proposeConfigurationChange(change)
        case .transferLeadership(let target): nodes[id]!.raft!.transferLeadership(to: target)
        }
        process(id)
        return step
    }

    public func logLength(of id: UInt64) -> UInt64 { nodes[id]?.raft?.lastIndex ?? 0 }

    /// True when the leader's committed configuration no longer lists `id` (the node's
    /// shell may then delete its replica).
    public func removalConfirmed(_ id: UInt64) -> Bool {
        leader().map { nodes[$0]!.raft!.confirmsRemoval(of: id) } ?? false
    }

    /// Deletes everything the node stored and starts it again empty, knowing only the
    /// first configuration — as the node does when it drops a removed replica and is
    /// later given the shard again.
    public func wipe(_ id: UInt64) {
        let disk = nodes[id]!.disk
        disk.hardState = nil
        disk.log = []
        disk.base = nil
        disk.applied = 0
        disk.machine = []
        disk.incoming = [:]
        nodes[id]!.writing = nil
        nodes[id]!.raft = Raft(id: id, voters: initialVoters, seed: seed &* 104_729 &+ id, storage: Self.reader(disk))
    }

    public func leader() -> UInt64? {
        ids.filter { nodes[$0]?.raft?.role == .leader }.max { (nodes[$0]!.raft!.term) < (nodes[$1]!.raft!.term) }
    }

    public func isUp(_ id: UInt64) -> Bool { nodes[id]?.raft != nil }

    /// One line per node: role, term, log end, commit, configuration, repair state.
    public var summary: String {
        ids.map { id in
            guard let raft = nodes[id]?.raft else { return "\(id): down" }
            return "\(id): \(raft.role) t\(raft.term) last \(raft.lastIndex) persisted \(raft.persistedIndex)\(isWriting(id) ? " (writing)" : "") commit \(raft.commit) voters \(raft.voters) repairing \(raft.repairingUntil.map { "\($0)" } ?? "-")"
        }.joined(separator: "; ")
    }

    /// Proposes through the current leader; false when there is none.
    @discardableResult
    public func propose(_ data: [UInt8]) -> Bool {
        guard let id = leader(), var raft = nodes[id]?.raft else { return false }
        let accepted = raft.propose(data)
        nodes[id]!.raft = raft
        process(id)
        return accepted
    }

    /// Whether the node has a Ready's write in flight (`asyncWrites`).
    public func isWriting(_ id: UInt64) -> Bool { nodes[id]?.writing != nil }

    public func crash(_ id: UInt64) {
        nodes[id]!.raft = nil
        nodes[id]!.writing = nil
    }

    /// Asks the leader for a read index. Linearizability is checked when it is confirmed:
    /// the index must cover everything any node knew committed when the read was asked.
    @discardableResult
    public func read() -> Bool {
        guard let id = leader() else { return false }
        readsAsked += 1
        let context = readsAsked
        guard nodes[id]!.raft!.readIndex(context: context) else { return false }
        readFloor[context] = ids.compactMap { nodes[$0]?.raft?.commit }.max() ?? 0
        process(id)
        return true
    }

    /// Reads confirmed by a leader.
    public private(set) var readsConfirmed = 0
    var readsAsked: UInt64 = 0
    var readFloor: [UInt64: UInt64] = [:]

    /// Asks the current leader to hand leadership to `target`.
    public func transferLeadership(to target: UInt64) {
        guard let id = leader() else { return }
        nodes[id]!.raft!.transferLeadership(to: target)
        process(id)
    }

    /// Restarts from exactly what the node persisted — sometimes only the log's tail
    /// after the applied index, as a shell that compacts would load it.
    public func restart(_ id: UInt64) {
        restarts += 1
        let disk = nodes[id]!.disk
        let seed = seed &* 7_919 &+ id &+ restarts
        var repairingUntil: UInt64?
        damaged = damaged.filter { nodes[$0]?.raft.map { $0.repairingUntil != nil } ?? true }
        if !disk.log.isEmpty && damaged.isEmpty && random.nextUnit() < corruption {
            damaged.insert(id)
            // Entries from a random index on fail their checksums and are dropped.
            let stored = disk.baseIndex + UInt64(disk.log.count)
            let first = disk.baseIndex + 1 + random.next() % UInt64(disk.log.count)
            disk.log.removeSubrange(Int(first - disk.baseIndex - 1)...)
            disk.applied = min(disk.applied, first - 1)
            repairingUntil = repairDamagedLogs ? stored : nil
            repairs += 1
        }
        let lastStored = disk.baseIndex + UInt64(disk.log.count)
        let compact = random.nextUnit() < compaction && min(disk.applied, lastStored) > disk.baseIndex
        let cut = compact ? min(disk.applied, lastStored) : disk.baseIndex
        let trimmed = disk.base.map { (index: $0.index, term: $0.term) }
        if cut > 0 {
            let meta = meta(disk, at: cut)
            nodes[id]!.raft = Raft(
                id: id, voters: initialVoters, seed: seed, hardState: disk.hardState, log: Array(disk.log[Int(cut - disk.baseIndex)...]),
                applied: compact ? disk.applied : 0, compacted: (cut, meta.term),
                compactedConfiguration: (meta.configuration, meta.configurationIndex), trimmed: trimmed,
                storage: Self.reader(disk), repairingUntil: repairingUntil)
        } else {
            nodes[id]!.raft = Raft(
                id: id, voters: initialVoters, seed: seed, hardState: disk.hardState, log: disk.log, applied: 0,
                storage: Self.reader(disk), repairingUntil: repairingUntil)
        }
    }

    /// The term at `index` (stored, or the base) and the configuration in force there.
    func metaAt(_ disk: Disk, _ index: UInt64) -> RaftSnapshotMeta {
        let meta = meta(disk, at: index)
        return RaftSnapshotMeta(index: index, term: meta.term, configuration: meta.configuration)
    }

    func meta(_ disk: Disk, at index: UInt64) -> (term: UInt64, configuration: RaftConfiguration, configurationIndex: UInt64) {
        let term = disk.stored(index)?.term ?? (index == disk.baseIndex ? disk.base?.term ?? 0 : 0)
        if let entry = disk.log.last(where: { $0.index <= index && $0.kind == .configuration }),
           let configuration = RaftConfiguration(decodingEntry: entry)
        {
            return (term, configuration, entry.index)
        }
        // Set at or before the base (or the first configuration).
        return (term, disk.base?.configuration ?? RaftConfiguration(voters: Set(initialVoters)), disk.baseIndex)
    }

    static func reader(_ disk: Disk) -> @Sendable (ClosedRange<UInt64>) -> [RaftEntry] {
        { range in
            disk.reads += range.count
            return Array(disk.log[Int(range.lowerBound - disk.baseIndex - 1)..<Int(range.upperBound - disk.baseIndex)])
        }
    }

    public func partition(_ a: [UInt64], _ b: [UInt64]) {
        for x in a { for y in b { blocked.insert(Link(from: Int(x), to: Int(y))); blocked.insert(Link(from: Int(y), to: Int(x))) } }
    }

    public func heal() { blocked = [] }

    public func run(ticks: UInt64) {
        for _ in 0..<ticks {
            now += 1
            for id in ids where (nodes[id]?.writing?.doneAt ?? .max) <= now { completeWrite(id) }
            let due = inFlight.filter { $0.time <= now }.sorted { ($0.time, $0.order) < ($1.time, $1.order) }
            inFlight.removeAll { $0.time <= now }
            for item in due {
                let to = item.envelope.to
                guard var raft = nodes[to]?.raft else { continue }
                if case .snapshot(_, let index, _, _) = item.envelope.message {
                    // The data arrives with the message (the shell streams it first).
                    nodes[to]!.disk.incoming[index] = snapshotData[SnapshotKey(from: item.envelope.from, index: index)]
                }
                raft.step(item.envelope)
                nodes[to]!.raft = raft
                process(to)
            }
            for id in ids where nodes[id]?.raft != nil {
                nodes[id]!.raft!.tick()
                process(id)
            }
            checkLeaders()
        }
    }

    /// Executes a node's Ready in the contract's order: persist, send, apply, advance —
    /// or, with `asyncWrites`, starts its write and handles the rest once it is done.
    func process(_ id: UInt64) {
        guard var raft = nodes[id]?.raft else { return }
        if nodes[id]!.writing != nil {
            // The disk is busy with the previous Ready.
            let early = raft.takeMessagesBeforePersist()
            let committed = raft.takeCommitted()
            nodes[id]!.raft = raft
            transmit(early)
            appliedDuringWrites += committed.count
            apply(committed, on: id, term: raft.term)
            return
        }
        let ready = raft.ready()
        if ready.isEmpty { return }
        if ready.snapshot == nil && (ready.hardState != nil || !ready.entries.isEmpty) && random.nextUnit() < asyncWrites {
            writesInFlight += 1
            // Committed entries before the first one this Ready persists were persisted by
            // earlier Readies: they may be applied at once.
            let firstNew = ready.entries.first?.index ?? .max
            let early = ready.messages.filter { Raft.mayPrecedePersist($0.message) }
            let late = ready.messages.filter { !Raft.mayPrecedePersist($0.message) }
            nodes[id]!.writing = Writing(
                ready: ready, doneAt: now + 1 + random.next() % writeTicksMax, late: late, committed: ready.committed.filter { $0.index >= firstNew })
            nodes[id]!.raft = raft
            transmit(early)
            apply(ready.committed.filter { $0.index < firstNew }, on: id, term: raft.term)
            return
        }
        persist(ready, on: id)
        finish(ready, raft: raft, on: id, messages: ready.messages, committed: ready.committed)
    }

    /// The write of the Ready in flight is done: it is on the disk, and the node goes on.
    func completeWrite(_ id: UInt64) {
        guard let writing = nodes[id]!.writing, let raft = nodes[id]!.raft else { return }
        nodes[id]!.writing = nil
        persist(writing.ready, on: id)
        finish(writing.ready, raft: raft, on: id, messages: writing.late, committed: writing.committed)
    }

    func persist(_ ready: RaftReady, on id: UInt64) {
        let disk = nodes[id]!.disk
        if let meta = ready.snapshot { install(meta, on: id) }
        if let hard = ready.hardState { disk.hardState = hard }
        if let first = ready.entries.first {
            let end = disk.baseIndex + UInt64(disk.log.count)
            if first.index > end + 1 {
                // An entry the Ready contract should have handed over was skipped.
                violations.append("node \(id) was to persist entries from \(first.index) with its log ending at \(end) [seed \(seed)]")
            } else {
                if first.index <= end { disk.log.removeSubrange(Int(first.index - disk.baseIndex - 1)...) }
                disk.log.append(contentsOf: ready.entries)
            }
        }
    }

    func transmit(_ messages: [RaftEnvelope]) {
        for envelope in messages {
            if blocked.contains(Link(from: Int(envelope.from), to: Int(envelope.to))) || random.nextUnit() < loss { continue }
            schedule(envelope)
            if random.nextUnit() < duplication { schedule(envelope) }
        }
    }

    /// Applies committed entries to the node's state machine, checking state-machine safety.
    func apply(_ entries: [RaftEntry], on id: UInt64, term: UInt64) {
        let disk = nodes[id]!.disk
        for entry in entries {
            if entry.index <= UInt64(disk.machine.count) {
                if disk.machine[Int(entry.index - 1)] != entry { violations.append("node \(id) re-applied another entry at \(entry.index) [seed \(seed)]") }
            } else if entry.index == UInt64(disk.machine.count) + 1 {
                disk.machine.append(entry)
            } else {
                violations.append("node \(id) applied \(entry.index) after \(disk.machine.count) [seed \(seed)]")
            }
            disk.applied = max(disk.applied, entry.index)
            if let existing = applied[entry.index] {
                if existing != entry { violations.append("node \(id) applied \(entry) at \(entry.index), others \(existing) [seed \(seed)]") }
            } else {
                applied[entry.index] = entry
                appliedTerm[entry.index] = term
            }
        }
    }

    /// The rest of a persisted Ready: send, apply, advance (and the shell's housekeeping).
    func finish(_ ready: RaftReady, raft: Raft, on id: UInt64, messages: [RaftEnvelope], committed: [RaftEntry]) {
        var raft = raft
        let disk = nodes[id]!.disk
        transmit(messages)
        for state in ready.reads {
            readsConfirmed += 1
            if let floor = readFloor.removeValue(forKey: state.context), state.index < floor {
                violations.append("node \(id) confirmed read \(state.context) at \(state.index), below commit \(floor) [seed \(seed)]")
            }
        }
        apply(committed, on: id, term: raft.term)
        // Like the node, which proposes there only a replica-set change and only once the
        // previous one committed: never into a long uncommitted tail (a leader cut off from
        // its quorum would otherwise grow its log without bound).
        if lateProposals > 0 && raft.role == .leader && raft.lastIndex < raft.commit + 8 && random.nextUnit() < lateProposals {
            lateProposed += 1
            _ = raft.propose(Array("late \(lateProposed)".utf8))
        }
        raft.advance(ready)
        if compaction > 0 && random.nextUnit() < compaction { raft.compact(through: disk.applied) }
        // What both the disk and the Raft agree was applied (after a restart Raft re-hands
        // entries the disk had applied before).
        let appliedHere = min(disk.applied, raft.appliedIndex)
        if trimming > 0 && appliedHere > disk.baseIndex && random.nextUnit() < trimming {
            let meta = metaAt(disk, appliedHere)
            disk.log.removeSubrange(..<Int(meta.index - disk.baseIndex))
            disk.base = meta
            raft.trimmed(through: meta.index, term: meta.term)
        }
        for peer in ready.snapshotsWanted {
            if random.nextUnit() < snapshotFailures { raft.snapshotFailed(to: peer); continue }
            // A snapshot of this node's own state machine, at its applied index.
            let meta = metaAt(disk, appliedHere)
            snapshotData[SnapshotKey(from: id, index: meta.index)] = Array(disk.machine.prefix(Int(meta.index)))
            if raft.sendSnapshot(to: peer, meta) { snapshotsSent += 1 }
        }
        nodes[id]!.raft = raft
        // Its own copy may have committed entries, and a snapshot may be on its way.
        if raft.hasReady { process(id) }
    }

    /// A follower installs a snapshot it accepted: its state machine becomes the data,
    /// its stored log starts after it. The data must match what was applied everywhere.
    func install(_ meta: RaftSnapshotMeta, on id: UInt64) {
        let disk = nodes[id]!.disk
        guard let data = disk.incoming.removeValue(forKey: meta.index), data.count == Int(meta.index) else {
            violations.append("node \(id) installs snapshot \(meta.index) without its data [seed \(seed)]")
            return
        }
        for entry in data where applied[entry.index] != entry {
            violations.append("snapshot \(meta.index) on node \(id) holds \(entry), others applied \(String(describing: applied[entry.index])) [seed \(seed)]")
        }
        disk.log = []
        disk.base = meta
        disk.applied = meta.index
        disk.machine = data
        disk.incoming = [:]
        snapshotsInstalled += 1
    }

    func schedule(_ envelope: RaftEnvelope) {
        order += 1
        inFlight.append(InFlight(time: now + 1 + random.next() % delayTicksMax, order: order, envelope: envelope))
    }

    /// Election safety (§5.2) and leader completeness (§5.4): one leader per term, and a
    /// leader's log holds every entry applied anywhere.
    func checkLeaders() {
        for id in ids {
            guard let raft = nodes[id]?.raft, raft.role == .leader else { continue }
            if let other = leaders[raft.term], other != id {
                violations.append("two leaders in term \(raft.term): \(other) and \(id) [seed \(seed)]")
            }
            leaders[raft.term] = id
            let machine = nodes[id]!.disk.machine
            for (index, entry) in applied where raft.term > appliedTerm[index]!
                && (index <= raft.snapshotIndex ? machine[Int(index - 1)] : raft.entry(at: index)) != entry
            {
                violations.append("leader \(id) of term \(raft.term) lacks committed \(entry) [seed \(seed)]")
            }
        }
    }

    /// Log matching (§5.3): logs that agree on an entry's term at an index agree before it.
    public func checkLogMatching() {
        // A trimmed prefix is read from the state machine that holds it.
        let logs = ids.compactMap { id in
            nodes[id]?.raft.map { Array(nodes[id]!.disk.machine.prefix(Int($0.snapshotIndex))) + $0.entries($0.snapshotIndex + 1, $0.lastIndex) }
        }
        for a in logs {
            for b in logs {
                let common = min(a.count, b.count)
                guard common > 0 else { continue }
                for index in stride(from: common - 1, through: 0, by: -1) where a[index].term == b[index].term {
                    if Array(a[...index]) != Array(b[...index]) { violations.append("logs diverge before index \(index + 1) [seed \(seed)]") }
                    break
                }
            }
        }
    }
}
