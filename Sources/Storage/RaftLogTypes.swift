/// One Raft log entry as stored (Storage knows nothing of Raft itself: the node maps
/// these to and from the Consensus types).
public struct StoredRaftEntry: Equatable, Sendable {
    public var term: UInt64
    public var index: UInt64
    public var kind: UInt8
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: UInt8, data: [UInt8]) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }
}

/// A shard replica's persisted Raft state: the hard state and how far it was applied
/// to the channel logs (updated in the same transaction as the records it applied).
public struct StoredRaftState: Equatable, Sendable {
    public var term: UInt64
    public var vote: UInt64?
    public var commit: UInt64
    public var applied: UInt64
    /// Repairing a damaged log until a leader re-sends entries up to here (nil: healthy).
    public var repairing: UInt64?
    /// The stored log starts after this index (trimmed, or replaced by a snapshot): its
    /// term, and the configuration in force there (nil: the bootstrap one).
    public var snapshotIndex: UInt64 = 0
    public var snapshotTerm: UInt64 = 0
    public var snapshotConfiguration: [UInt8]?

    public init(term: UInt64, vote: UInt64?, commit: UInt64, applied: UInt64, repairing: UInt64? = nil) {
        self.term = term
        self.vote = vote
        self.commit = commit
        self.applied = applied
        self.repairing = repairing
    }
}

/// What one replica must persist in a cycle: its hard state (when it changed) and the
/// entries that replace its log from the first one's index on.
public struct RaftPersist: Sendable {
    public var shard: Int
    public var hardState: (term: UInt64, vote: UInt64?, commit: UInt64, repairing: UInt64?)?
    public var entries: [StoredRaftEntry]

    public init(shard: Int, hardState: (term: UInt64, vote: UInt64?, commit: UInt64, repairing: UInt64?)?, entries: [StoredRaftEntry]) {
        self.shard = shard
        self.hardState = hardState
        self.entries = entries
    }
}

/// A replica's state and unapplied log as loaded at start.
public struct LoadedReplica: Sendable {
    public var state: StoredRaftState
    /// Entries after the applied index.
    public var entries: [StoredRaftEntry]
    /// The entry at the applied index (nil when nothing was applied; without its data when
    /// the log was trimmed through it).
    public var lastApplied: StoredRaftEntry?
    /// The newest configuration entry at or before the applied index.
    public var configuration: StoredRaftEntry?
    /// Set when entries from `from` on failed their checksums (or were missing) and were
    /// cut; `lastStored` is the last index that had been stored.
    public var damaged: (from: UInt64, lastStored: UInt64)?
}
