/// Snapshots (Raft §7): the shell may delete applied entries from storage once its state
/// machine holds them durably; a follower that needs deleted entries is sent the leader's
/// state machine instead, and installs it in place of its log.
extension Raft {
    /// The shell deleted stored entries through `index` (whose term was `term`): they are
    /// captured by its state machine, which must have applied them durably.
    public mutating func trimmed(through index: UInt64, term indexTerm: UInt64) {
        precondition(index <= applied, "only applied entries may leave storage")
        guard index > snapshotIndex else { return }
        if index > logOffset { compact(through: index) }
        precondition(index <= logOffset, "entries still unpersisted cannot be trimmed")
        snapshotIndex = index
        snapshotTerm = indexTerm
    }

    /// The shell produced a snapshot for `peer` (of its own applied state): send it, and
    /// send the follower no appends until it answers or `snapshotTicksMax` pass. False
    /// when no longer wanted (leadership lost, given up).
    @discardableResult
    public mutating func sendSnapshot(to peer: UInt64, _ meta: RaftSnapshotMeta) -> Bool {
        guard role == .leader, snapshotting[peer] != nil, meta.index >= snapshotIndex, meta.index <= applied else {
            return false
        }
        snapshotting[peer] = (config.snapshotTicksMax, meta)
        send(snapshotMessage(meta), to: peer)
        nextIndex[peer] = meta.index + 1
        return true
    }

    func snapshotMessage(_ meta: RaftSnapshotMeta) -> RaftMessage {
        .snapshot(term: term, index: meta.index, lastTerm: meta.term, configuration: meta.configuration)
    }

    /// The shell could not produce or send the snapshot: probe the follower again.
    public mutating func snapshotFailed(to peer: UInt64) {
        snapshotting[peer] = nil
    }

    mutating func tickSnapshots() {
        for (peer, pending) in snapshotting {
            if pending.ticksLeft <= 1 { snapshotting[peer] = nil } else { snapshotting[peer]!.ticksLeft -= 1 }
        }
    }

    /// A follower's side. Every answer is `appendResponse`, sent after the Ready that
    /// installed the snapshot was persisted.
    mutating func handleSnapshot(from: UInt64, _ meta: RaftSnapshotMeta) {
        if meta.index <= commit {
            // Already committed here; everything up to our commit index matches the leader.
            send(.appendResponse(term: term, success: true, match: commit), to: from)
            return
        }
        if meta.index > logOffset && meta.index <= lastIndex && term(at: meta.index) == meta.term {
            // Our log holds the entry, so (log matching) everything before it: keep the log.
            commit = meta.index
            if let until = repairingUntil, meta.index >= until { repairingUntil = nil }
            send(.appendResponse(term: term, success: true, match: meta.index), to: from)
            return
        }
        log = []
        logOffset = meta.index
        offsetTerm = meta.term
        snapshotIndex = meta.index
        snapshotTerm = meta.term
        baseConfiguration = meta.configuration
        baseConfigurationIndex = meta.index
        refreshConfiguration()
        commit = meta.index
        applied = meta.index
        unstableFrom = nil
        unstableSinceReady = nil
        // The snapshot holds everything committed through its index.
        if let until = repairingUntil, meta.index >= until { repairingUntil = nil }
        pendingInstall = meta
        send(.appendResponse(term: term, success: true, match: meta.index), to: from)
    }
}
