import ChaparCore

/// Raft (Ongaro & Ousterhout) as a value: `tick()`, `step(_:)` and `propose(_:)` change
/// state; `ready()` hands out what to persist, send and apply; `advance(_:)` confirms.
/// No I/O, clock or threads; randomness (election timeouts) comes from the seed.
public struct Raft: Sendable {
    public enum Role: Equatable, Sendable { case follower, preCandidate, candidate, leader }

    public let id: UInt64
    /// The configuration in force at `logOffset`: the initial one, or the newest one in
    /// the compacted prefix.
    var baseConfiguration: RaftConfiguration
    var baseConfigurationIndex: UInt64 = 0
    /// The newest configuration in the log (committed or not).
    public internal(set) var configuration: RaftConfiguration
    /// Index of the entry that set `configuration` (0: the initial one).
    public internal(set) var configurationIndex: UInt64 = 0
    public var voters: [UInt64] { configuration.voters.sorted() }
    /// Everyone the leader replicates to.
    var replicationTargets: [UInt64] { configuration.voters.union(configuration.learners).subtracting([id]).sorted() }
    public let config: RaftConfig
    public internal(set) var role = Role.follower
    public internal(set) var term: UInt64 = 0
    public internal(set) var votedFor: UInt64?
    public internal(set) var leader: UInt64?
    /// The entries held in memory: `log[i]` holds index `logOffset + i + 1`. Entries up to
    /// `logOffset` were compacted away (they are applied and persisted) and are read back
    /// through `storage` when a lagging follower needs them.
    public internal(set) var log: [RaftEntry] = []
    public internal(set) var logOffset: UInt64 = 0
    var offsetTerm: UInt64 = 0
    /// Entries up to here are gone from storage too (captured by a snapshot of the state
    /// machine): a follower that needs one of them is sent a snapshot instead.
    public internal(set) var snapshotIndex: UInt64 = 0
    var snapshotTerm: UInt64 = 0
    /// Followers being sent a snapshot: ticks left before giving up, and the snapshot once
    /// the shell produced and sent it. No appends go to them meanwhile.
    var snapshotting: [UInt64: (ticksLeft: Int, sent: RaftSnapshotMeta?)] = [:]
    /// Followers that need a snapshot, handed to the shell by ready().
    var snapshotsWanted: [UInt64] = []
    /// A snapshot this follower accepted, to be installed by the shell (ready()).
    var pendingInstall: RaftSnapshotMeta?
    /// Reads persisted entries `range` (all of them, in order). Needed once the log is
    /// compacted; the shell backs it with its store, the simulator with its disk model.
    public var storage: (@Sendable (ClosedRange<UInt64>) -> [RaftEntry])?
    public internal(set) var commit: UInt64 = 0
    var applied: UInt64 = 0
    /// The last entry handed out as committed (and so applied once `advance` returns).
    public var appliedIndex: UInt64 { applied }
    var random: SeededRandom
    var electionElapsed = 0
    var electionTimeout = 0
    var heartbeatElapsed = 0
    var votes: Set<UInt64> = []
    var nextIndex: [UInt64: UInt64] = [:]
    var matchIndex: [UInt64: UInt64] = [:]
    /// Followers whose log differs from ours somewhere before `nextIndex` (an append was
    /// rejected): their appends start at `nextIndex` (no pipelining) until one succeeds.
    var probing: Set<UInt64> = []
    /// A leadership transfer in progress: the target, and ticks left before giving up.
    public internal(set) var transferTarget: UInt64?
    var transferTicksLeft = 0
    /// Set while this replica repairs a log that lost entries (a failed checksum): it had
    /// stored up to this index and may have acknowledged them, so until a leader has sent
    /// it entries up to here again it neither votes nor campaigns — a vote from a log that
    /// lacks committed entries could elect a leader that lacks them too.
    public internal(set) var repairingUntil: UInt64?
    /// Read-index requests waiting for a quorum to confirm this node still leads.
    var pendingReads: [(context: UInt64, index: UInt64, round: UInt64)] = []
    var readRound: UInt64 = 0
    var readAcks: [UInt64: UInt64] = [:]
    var confirmedReads: [ReadState] = []
    // Pending output, drained by ready().
    var outbox: [RaftEnvelope] = []
    var unstableFrom: UInt64?
    /// The lowest index marked unstable since the last `ready()`: those entries are not in
    /// the Ready being handled, so `advance` must leave them unstable.
    var unstableSinceReady: UInt64?
    var lastHardState: HardState
    /// The last committed entry handed out (by `ready` or `takeCommitted`).
    var handedOutCommit: UInt64 = 0

    /// Starts from persisted state (empty for a new node).
    /// Starts from persisted state (empty for a new node). A compacted log passes its
    /// tail in `log`, the last compacted entry's (index, term) in `compacted`, and the
    /// configuration in force there (with the index of the entry that set it).
    public init(id: UInt64, voters: [UInt64], config: RaftConfig = RaftConfig(), seed: UInt64,
                hardState: HardState? = nil, log: [RaftEntry] = [], applied: UInt64 = 0,
                compacted: (index: UInt64, term: UInt64)? = nil,
                compactedConfiguration: (configuration: RaftConfiguration, index: UInt64)? = nil,
                trimmed: (index: UInt64, term: UInt64)? = nil,
                storage: (@Sendable (ClosedRange<UInt64>) -> [RaftEntry])? = nil, repairingUntil: UInt64? = nil) {
        self.id = id
        self.baseConfiguration = compactedConfiguration?.configuration ?? RaftConfiguration(voters: Set(voters))
        self.baseConfigurationIndex = compactedConfiguration?.index ?? 0
        self.configuration = baseConfiguration
        self.config = config
        self.random = SeededRandom(seed: seed)
        self.storage = storage
        logOffset = compacted?.index ?? 0
        self.repairingUntil = repairingUntil
        offsetTerm = compacted?.term ?? 0
        snapshotIndex = trimmed?.index ?? 0
        snapshotTerm = trimmed?.term ?? 0
        precondition(snapshotIndex <= logOffset, "a trimmed log is compacted at least as far")
        self.log = log
        for (position, entry) in log.enumerated() {
            precondition(entry.index == logOffset + UInt64(position + 1), "log indices are dense after the compacted prefix")
        }
        if let hardState {
            term = hardState.term
            votedFor = hardState.votedFor
            commit = max(logOffset, min(hardState.commit, logOffset + UInt64(log.count)))
        }
        // Entries up to `applied` reached the state machine before the restart; the
        // compacted prefix always had.
        self.applied = max(logOffset, min(applied, commit))
        // A repair still running before the restart goes on (the larger end wins).
        if let persisted = hardState?.repairingUntil { self.repairingUntil = max(persisted, self.repairingUntil ?? 0) }
        lastHardState = HardState(term: term, votedFor: votedFor, commit: commit, repairingUntil: hardState?.repairingUntil)
        refreshConfiguration()
        resetElection()
    }

    /// Takes the newest configuration entry in the log, or the one in force at its start.
    mutating func refreshConfiguration() {
        (configuration, configurationIndex) = configuration(through: lastIndex)
    }

    /// The configuration in force at `index` (at or after `logOffset`).
    func configuration(through index: UInt64) -> (RaftConfiguration, UInt64) {
        for entry in log.reversed() where entry.index <= index && entry.kind == .configuration {
            if let decoded = RaftConfiguration(decoding: entry.data) { return (decoded, entry.index) }
        }
        return (baseConfiguration, baseConfigurationIndex)
    }

    /// Drops entries through `index` from memory. Only applied entries that were handed
    /// out for persisting may go (the shell passes at most its applied index).
    public mutating func compact(through index: UInt64) {
        let limit = min(index, applied, unstableFrom.map { $0 - 1 } ?? lastIndex)
        guard limit > logOffset else { return }
        (baseConfiguration, baseConfigurationIndex) = configuration(through: limit)
        offsetTerm = term(at: limit)
        log.removeFirst(Int(limit - logOffset))
        logOffset = limit
    }

    /// The entry at `index`, from memory or (compacted) from storage.
    public func entry(at index: UInt64) -> RaftEntry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        if index > logOffset { return log[Int(index - logOffset - 1)] }
        return storage?(index...index).first
    }

    /// Entries `lower...upper` from memory or storage. When storage cannot supply all of
    /// its part (a damaged disk), only the entries before the gap come back: nothing after a
    /// gap is ever sent, and the shell repairs the replica.
    public func entries(_ lower: UInt64, _ upper: UInt64) -> [RaftEntry] {
        guard lower <= upper, lower > snapshotIndex else { return [] }
        var result: [RaftEntry] = []
        if lower <= logOffset {
            let stored = storage?(lower...min(upper, logOffset)) ?? []
            let dense = zip(stored, lower...).prefix { $0.0.index == $0.1 }.map(\.0)
            guard dense.count == Int(min(upper, logOffset) - lower + 1) else { return dense }
            result = stored
        }
        let from = max(lower, logOffset + 1)
        if from <= upper { result += log[Int(from - logOffset - 1)..<Int(upper - logOffset)] }
        return result
    }

    /// Proposes one membership change; false unless this node leads, no transfer runs,
    /// and the previous change is committed.
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) -> Bool {
        guard role == .leader, transferTarget == nil, configurationIndex <= commit else { return false }
        var next = configuration
        switch change {
        case .addLearner(let node):
            guard !next.voters.contains(node), next.learners.insert(node).inserted else { return false }
        case .promote(let node):
            guard next.learners.remove(node) != nil else { return false }
            next.voters.insert(node)
        case .remove(let node):
            guard next.voters.remove(node) != nil || next.learners.remove(node) != nil, !next.voters.isEmpty else { return false }
        }
        appendLocal([next.encoded], kind: .configuration)
        for peer in replicationTargets { sendAppend(to: peer) }
        advanceCommit()
        return true
    }

    public var lastIndex: UInt64 { logOffset + UInt64(log.count) }
    var lastTerm: UInt64 { log.last?.term ?? offsetTerm }
    func term(at index: UInt64) -> UInt64 {
        if index == 0 || index > lastIndex { return 0 }
        if index > logOffset { return log[Int(index - logOffset - 1)].term }
        if index == logOffset { return offsetTerm }
        if index == snapshotIndex { return snapshotTerm }
        return entry(at: index)?.term ?? 0
    }
    var quorum: Int { voters.count / 2 + 1 }

    /// Votes from a majority of the newest configuration's voters (a candidate that is not
    /// one of them does not count itself).
    func hasQuorum(_ votes: Set<UInt64>) -> Bool { votes.intersection(configuration.voters).count >= quorum }

    /// A voter of its newest configuration, or of the one in force at its commit index. A
    /// node whose removal is appended but not yet committed may hold the only log that can
    /// win an election; it campaigns, counts the new configuration's majority without
    /// itself, and steps down once its removal commits (Raft thesis §4.2.2).
    var mayCampaign: Bool {
        configuration.voters.contains(id) || configuration(through: commit).0.voters.contains(id)
    }

    mutating func resetElection() {
        electionElapsed = 0
        electionTimeout = config.electionTicksMin + Int(random.next() % UInt64(config.electionTicksMin))
    }

    mutating func send(_ message: RaftMessage, to peer: UInt64) {
        outbox.append(RaftEnvelope(from: id, to: peer, message: message))
    }

    // MARK: Inputs

    public mutating func tick() {
        if role == .leader {
            tickSnapshots()
            if transferTarget != nil {
                transferTicksLeft -= 1
                if transferTicksLeft <= 0 { transferTarget = nil }  // the target never caught up
            }
            heartbeatElapsed += 1
            if heartbeatElapsed >= config.heartbeatTicks {
                heartbeatElapsed = 0
                for peer in replicationTargets {
                    // A follower receiving a snapshot gets no appends; this keeps its timer
                    // reset (round 0 confirms no read).
                    if let pending = snapshotting[peer] {
                        // The snapshot message again, in case it was lost (the follower
                        // acts on it once); before it is sent, a confirm of round 0.
                        if let meta = pending.sent { send(snapshotMessage(meta), to: peer) }
                        else { send(.readConfirm(term: term, round: 0), to: peer) }
                    } else {
                        sendAppend(to: peer)
                    }
                }
                // Confirmations may be lost: ask again, for the newest round (it covers the older).
                if !pendingReads.isEmpty {
                    for peer in voters where peer != id { send(.readConfirm(term: term, round: readRound), to: peer) }
                }
            }
            return
        }
        // Time since the leader was heard runs for everyone — a node whose log does not yet
        // list it as a voter still answers pre-votes once the leader is gone — but learners,
        // servers whose removal they know committed, and replicas under repair never campaign.
        electionElapsed += 1
        guard mayCampaign, repairingUntil == nil else { return }
        if electionElapsed >= electionTimeout { startPreVote() }
    }

    /// Appends `data` if this node leads; false otherwise (the caller redirects to `leader`).
    public mutating func propose(_ data: [UInt8]) -> Bool {
        propose(batch: [data])
    }

    /// Appends every item as its own entry and replicates them together (one append per
    /// follower rather than one per item).
    public mutating func propose(batch: [[UInt8]]) -> Bool {
        // While leadership moves, new entries would only have to be caught up again.
        guard role == .leader, transferTarget == nil else { return false }
        guard !batch.isEmpty else { return true }
        appendLocal(batch)
        for peer in replicationTargets { sendAppend(to: peer) }
        advanceCommit()
        return true
    }

    /// Hands leadership to `target` once its log matches ours (Raft thesis §3.10); gives up
    /// after an election timeout. Proposals are refused meanwhile.
    public mutating func transferLeadership(to target: UInt64) {
        guard role == .leader, target != id, voters.contains(target) else { return }
        transferTarget = target
        transferTicksLeft = config.electionTicksMin
        if matchIndex[target] == lastIndex { send(.timeoutNow(term: term), to: target) } else { sendAppend(to: target) }
    }

    /// Read index (Raft thesis §6.4), the rule for reading the committed head without a
    /// log write: the leader notes its commit index, confirms with a quorum that it still
    /// leads (a round of `readConfirm` sent after the request), and then hands out
    /// `ReadState(context, index)`; the reader waits until `index` is applied. False when
    /// this node cannot serve it: not the leader, or no entry of its term committed yet
    /// (its commit index might trail what earlier leaders committed).
    public mutating func readIndex(context: UInt64) -> Bool {
        guard role == .leader, term(at: commit) == term else { return false }
        if voters.count == 1 {
            confirmedReads.append(ReadState(context: context, index: commit))
            return true
        }
        readRound += 1
        pendingReads.append((context, commit, readRound))
        for peer in voters where peer != id { send(.readConfirm(term: term, round: readRound), to: peer) }
        return true
    }

    mutating func confirmReads(from peer: UInt64, round: UInt64) {
        readAcks[peer] = max(readAcks[peer] ?? 0, round)
        // A read is confirmed when a quorum (counting us) acknowledged a round at or after its own.
        while let first = pendingReads.first {
            let acks = voters.filter { $0 == id || (readAcks[$0] ?? 0) >= first.round }.count
            guard acks >= quorum else { break }
            confirmedReads.append(ReadState(context: first.context, index: first.index))
            pendingReads.removeFirst()
        }
    }

    public mutating func step(_ envelope: RaftEnvelope) {
        let message = envelope.message
        let from = envelope.from
        switch message {
        case .preVote(let proposed, let index, let lastTerm):
            // Grant if we have not heard from a leader recently and the log is up to date;
            // a pre-vote changes no state (Raft thesis §9.6).
            let leaderRecent = leader != nil && electionElapsed < config.electionTicksMin
            let granted = proposed > term && !leaderRecent && isUpToDate(index, lastTerm) && repairingUntil == nil
            send(.preVoteResponse(term: granted ? proposed : term, granted: granted), to: from)
            return
        case .preVoteResponse(let responseTerm, let granted):
            guard role == .preCandidate else { return }
            if granted && responseTerm == term + 1 {
                votes.insert(from)
                if hasQuorum(votes) { startElection() }
            } else if responseTerm > term {
                becomeFollower(term: responseTerm, leader: nil)
            }
            return
        default:
            break
        }
        // Raft §5.1: a higher term makes us a follower of it; a lower one is stale.
        if message.term > term {
            let leaderOfTerm: UInt64? = {
                switch message {
                case .append, .snapshot: return from
                default: return nil
                }
            }()
            becomeFollower(term: message.term, leader: leaderOfTerm)
        } else if message.term < term {
            if case .append = message { send(.appendResponse(term: term, success: false, match: 0), to: from) }
            if case .requestVote = message { send(.voteResponse(term: term, granted: false), to: from) }
            return
        }
        switch message {
        case .requestVote(_, let index, let lastTerm):
            // Raft §5.2, §5.4.1: one vote per term, only for a log at least as up to date.
            let granted = (votedFor == nil || votedFor == from) && isUpToDate(index, lastTerm) && repairingUntil == nil
            if granted {
                votedFor = from
                resetElection()
            }
            send(.voteResponse(term: term, granted: granted), to: from)
        case .voteResponse(_, let granted):
            guard role == .candidate, granted else { return }
            votes.insert(from)
            if hasQuorum(votes) { becomeLeader() }
        case .append(_, let prevIndex, let prevTerm, let entries, let leaderCommit):
            if role != .follower { becomeFollower(term: term, leader: from) }
            leader = from
            resetElection()
            handleAppend(from: from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, leaderCommit: leaderCommit)
        case .timeoutNow:
            if from == leader && repairingUntil == nil { startElection() }
        case .readConfirm(_, let round):
            // Same term: the sender leads it. Hearing from the leader also resets our timer.
            leader = from
            resetElection()
            send(.readConfirmResponse(term: term, round: round), to: from)
        case .readConfirmResponse(_, let round):
            guard role == .leader else { return }
            confirmReads(from: from, round: round)
        case .snapshot(_, let index, let lastTerm, let configuration):
            if role != .follower { becomeFollower(term: term, leader: from) }
            leader = from
            resetElection()
            handleSnapshot(from: from, RaftSnapshotMeta(index: index, term: lastTerm, configuration: configuration))
        case .appendResponse(_, let success, let match):
            guard role == .leader else { return }
            if let pending = snapshotting[from] {
                // Until the snapshot is in, older answers say nothing useful.
                guard success, let sent = pending.sent, match >= sent.index else { return }
                snapshotting[from] = nil
            }
            if success {
                matchIndex[from] = max(matchIndex[from] ?? 0, match)
                nextIndex[from] = max(nextIndex[from] ?? 1, match + 1)
                probing.remove(from)
                advanceCommit()
                if from == transferTarget && matchIndex[from] == lastIndex { send(.timeoutNow(term: term), to: from) }
                if (nextIndex[from] ?? 1) <= lastIndex { sendAppend(to: from) }
            } else {
                // Back up to the follower's hint (its last index) or by one.
                nextIndex[from] = max(1, min((nextIndex[from] ?? 1) - 1, match + 1))
                probing.insert(from)
                sendAppend(to: from)
            }
        default:
            break
        }
    }

    func isUpToDate(_ index: UInt64, _ lastTermOfCandidate: UInt64) -> Bool {
        lastTermOfCandidate > lastTerm || (lastTermOfCandidate == lastTerm && index >= lastIndex)
    }
}
