/// One entry of a Raft log: a command for the state machine, or a new configuration.
public struct RaftEntry: Equatable, Sendable {
    public enum Kind: UInt8, Sendable { case normal = 0, configuration = 1 }

    public var term: UInt64
    public var index: UInt64
    public var kind: Kind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: Kind = .normal, data: [UInt8]) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }
}

/// Who votes and who only follows. A node uses the newest configuration in its log,
/// committed or not (Raft thesis §4.1), so changes go one server at a time.
public struct RaftConfiguration: Equatable, Sendable {
    public var voters: Set<UInt64>
    /// Receive the log but neither vote nor count for commitment: new replicas catch up
    /// as learners before they are promoted.
    public var learners: Set<UInt64>

    public init(voters: Set<UInt64>, learners: Set<UInt64> = []) {
        self.voters = voters
        self.learners = learners
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        for (tag, set) in [(UInt8(1), voters), (UInt8(2), learners)] {
            for id in set.sorted() {
                bytes.append(tag)
                withUnsafeBytes(of: id.bigEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    /// The configuration a configuration entry sets (nil for other entries).
    public init?(decodingEntry entry: RaftEntry) {
        guard entry.kind == .configuration else { return nil }
        self.init(decoding: entry.data)
    }

    public init?(decoding bytes: [UInt8]) {
        guard bytes.count % 9 == 0 else { return nil }
        var voters: Set<UInt64> = [], learners: Set<UInt64> = []
        var position = 0
        while position < bytes.count {
            var id: UInt64 = 0
            for byte in bytes[(position + 1)..<(position + 9)] { id = id << 8 | UInt64(byte) }
            switch bytes[position] {
            case 1: voters.insert(id)
            case 2: learners.insert(id)
            default: return nil
            }
            position += 9
        }
        self.init(voters: voters, learners: learners)
    }
}

/// One server at a time (Raft thesis §4.1).
public enum ConfigurationChange: Equatable, Sendable {
    case addLearner(UInt64)
    case promote(UInt64)
    case remove(UInt64)
}

/// Raft messages (Raft §5, plus pre-vote from Ongaro's thesis §9.6).
public enum RaftMessage: Equatable, Sendable {
    /// "Would you vote for me at `term`?" — asked before raising the term, so a node
    /// cut off from the others cannot disrupt the cluster when it returns.
    case preVote(term: UInt64, lastIndex: UInt64, lastTerm: UInt64)
    case preVoteResponse(term: UInt64, granted: Bool)
    case requestVote(term: UInt64, lastIndex: UInt64, lastTerm: UInt64)
    case voteResponse(term: UInt64, granted: Bool)
    /// Entries after (`prevIndex`, `prevTerm`), and the leader's commit index.
    case append(term: UInt64, prevIndex: UInt64, prevTerm: UInt64, entries: [RaftEntry], commit: UInt64)
    /// `match` is the last index known to agree (on success) or a hint where to retry.
    case appendResponse(term: UInt64, success: Bool, match: UInt64)
    /// Leadership transfer (Raft thesis §3.10): the leader tells a caught-up follower to
    /// start an election now, without waiting for its timeout or a pre-vote.
    case timeoutNow(term: UInt64)
    /// Read index (Raft thesis §6.4): "do you still follow me?" for reads started at or
    /// before `round`; answered with the same round.
    case readConfirm(term: UInt64, round: UInt64)
    case readConfirmResponse(term: UInt64, round: UInt64)
    /// The leader's state machine as of `index` (whose entry has `lastTerm`), for a
    /// follower that needs entries the leader no longer stores (Raft §7). The data itself
    /// travels beside the message, before it; the follower answers with `appendResponse`.
    case snapshot(term: UInt64, index: UInt64, lastTerm: UInt64, configuration: RaftConfiguration)

    public var term: UInt64 {
        switch self {
        case .preVote(let term, _, _), .preVoteResponse(let term, _), .requestVote(let term, _, _),
             .voteResponse(let term, _), .append(let term, _, _, _, _), .appendResponse(let term, _, _),
             .timeoutNow(let term), .readConfirm(let term, _), .readConfirmResponse(let term, _), .snapshot(let term, _, _, _):
            term
        }
    }
}

public struct RaftEnvelope: Equatable, Sendable {
    public var from: UInt64
    public var to: UInt64
    public var message: RaftMessage

    public init(from: UInt64, to: UInt64, message: RaftMessage) {
        self.from = from
        self.to = to
        self.message = message
    }
}

/// What MUST survive a crash: the term, the vote in it, and the commit index.
public struct HardState: Equatable, Sendable {
    public var term: UInt64
    public var votedFor: UInt64?
    public var commit: UInt64
    /// Set while the replica repairs a damaged log (see `Raft.repairingUntil`): it must
    /// survive restarts, or a node restarted mid-repair would vote again too early.
    public var repairingUntil: UInt64?

    public init(term: UInt64, votedFor: UInt64?, commit: UInt64, repairingUntil: UInt64? = nil) {
        self.term = term
        self.votedFor = votedFor
        self.commit = commit
        self.repairingUntil = repairingUntil
    }
}

/// What a snapshot stands for: the state machine after applying entries through `index`
/// (whose term is `term`), and the configuration in force there.
public struct RaftSnapshotMeta: Equatable, Sendable {
    public var index: UInt64
    public var term: UInt64
    public var configuration: RaftConfiguration

    public init(index: UInt64, term: UInt64, configuration: RaftConfiguration) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// The etcd-style Ready contract. The shell MUST, in this order:
/// 1. install `snapshot` (if set: the state machine becomes the snapshot received for
///    it, the stored log is emptied and starts after its index), then persist
///    `hardState` (if set) and `entries` (replacing any stored entries from the
///    first one's index on) — durably, before anything below;
/// 2. send `messages`;
/// 3. apply `committed` to the state machine, in order;
/// 4. call `advance(ready)`.
/// A shell may instead start the write of step 1 and go on while it is in flight:
/// step and propose, send `messages` that `Raft.mayPrecedePersist` allows (and, of newer
/// ones, what `takeMessagesBeforePersist` hands out), apply the committed entries before
/// the first of `entries` and then what `takeCommitted` hands out; once the write is
/// done, send the rest of `messages`, apply the rest of `committed`, and advance. The
/// leader counts itself towards a quorum only for entries of advanced Readies, so
/// nothing commits on a copy that is still being written.
public struct RaftReady: Equatable, Sendable {
    public var hardState: HardState?
    public var entries: [RaftEntry]
    public var messages: [RaftEnvelope]
    public var committed: [RaftEntry]
    /// Confirmed read indexes: once the state machine has applied `index`, a read for
    /// `context` sees every write committed before the read was asked for.
    public var reads: [ReadState] = []
    public var snapshot: RaftSnapshotMeta?
    /// Followers that need a snapshot: the shell produces one of its state machine (at its
    /// applied index) and calls `sendSnapshot`, or `snapshotFailed`.
    public var snapshotsWanted: [UInt64] = []

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && messages.isEmpty && committed.isEmpty && reads.isEmpty && snapshot == nil
            && snapshotsWanted.isEmpty
    }
}

/// The answer to `Raft.readIndex(context:)`.
public struct ReadState: Equatable, Sendable {
    public var context: UInt64
    public var index: UInt64

    public init(context: UInt64, index: UInt64) {
        self.context = context
        self.index = index
    }
}

/// Timing in ticks (the shell decides a tick's length, e.g. 10 ms).
public struct RaftConfig: Equatable, Sendable {
    /// A follower that hears no leader for a random time in [min, 2 × min) starts an election.
    public var electionTicksMin = 10
    public var heartbeatTicks = 2
    /// Entries per append message (batching).
    public var entriesPerMessageMax = 64
    /// Entry bytes per append message; a larger single entry still goes alone.
    public var bytesPerMessageMax = 1 << 20
    /// A snapshot not acknowledged within this many ticks is given up and asked for again.
    public var snapshotTicksMax = 3000

    public init() {}
}
