extension Raft {
    mutating func startPreVote() {
        resetElection()
        // Campaigning means the leader is gone: without this a pre-candidate would keep
        // refusing others' pre-votes as if it still heard from one.
        leader = nil
        if voters.count == 1 { startElection(); return }
        role = .preCandidate
        votes = [id]
        for peer in voters where peer != id {
            send(.preVote(term: term + 1, lastIndex: lastIndex, lastTerm: lastTerm), to: peer)
        }
    }

    mutating func startElection() {
        resetElection()
        role = .candidate
        term += 1
        votedFor = id
        leader = nil
        votes = [id]
        if hasQuorum(votes) { becomeLeader(); return }
        for peer in voters where peer != id {
            send(.requestVote(term: term, lastIndex: lastIndex, lastTerm: lastTerm), to: peer)
        }
    }

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: UInt64?) {
        if newTerm > term {
            term = newTerm
            votedFor = nil
        }
        role = .follower
        leader = newLeader
        votes = []
        transferTarget = nil
        // Reads that were not confirmed are dropped: the caller retries with the new leader.
        pendingReads = []
        readAcks = [:]
        snapshotting = [:]
        resetElection()
    }

    mutating func becomeLeader() {
        role = .leader
        leader = id
        heartbeatElapsed = 0
        probing = []
        for peer in replicationTargets + [id] {
            nextIndex[peer] = lastIndex + 1
            matchIndex[peer] = peer == id ? lastIndex : 0
        }
        // Raft §5.4.2: a leader commits entries of earlier terms only through one of its
        // own term, so it appends an empty entry at once.
        appendLocal([[]])
        for peer in replicationTargets { sendAppend(to: peer) }
        advanceCommit()
    }

    mutating func appendLocal(_ items: [[UInt8]], kind: RaftEntry.Kind = .normal) {
        let first = lastIndex + 1
        for data in items { log.append(RaftEntry(term: term, index: lastIndex + 1, kind: kind, data: data)) }
        markUnstable(from: first)
        matchIndex[id] = lastIndex
        if kind == .configuration {
            refreshConfiguration()
            for peer in replicationTargets where nextIndex[peer] == nil {
                nextIndex[peer] = max(1, lastIndex)
                matchIndex[peer] = 0
            }
        }
    }

    mutating func markUnstable(from index: UInt64) {
        unstableFrom = min(unstableFrom ?? index, index)
        unstableSinceReady = min(unstableSinceReady ?? index, index)
    }

    mutating func sendAppend(to peer: UInt64) {
        guard snapshotting[peer] == nil else { return }
        let next = nextIndex[peer] ?? lastIndex + 1
        if next <= snapshotIndex {
            // What it needs is gone from storage: it gets the state machine instead.
            snapshotting[peer] = (config.snapshotTicksMax, nil)
            snapshotsWanted.append(peer)
            return
        }
        let prevIndex = next - 1
        let upper = min(lastIndex, prevIndex + UInt64(config.entriesPerMessageMax))
        var entries = entries(prevIndex + 1, upper)
        var bytes = 0
        for (position, entry) in entries.enumerated() {
            bytes += entry.data.count
            // At least one entry per message, however large.
            if bytes > config.bytesPerMessageMax && position > 0 {
                entries.removeSubrange(position...)
                break
            }
        }
        send(.append(term: term, prevIndex: prevIndex, prevTerm: term(at: prevIndex), entries: entries, commit: commit), to: peer)
        // Pipelining: assume delivery; a rejection moves nextIndex back. A follower whose
        // log was found to differ is probed instead: every append (heartbeats included)
        // starts where the last rejection left off, so lost answers do not send the search
        // back to the end of the log.
        if let lastSent = entries.last, !probing.contains(peer) { nextIndex[peer] = lastSent.index + 1 }
    }

    mutating func handleAppend(from: UInt64, prevIndex: UInt64, prevTerm: UInt64, entries: [RaftEntry], leaderCommit: UInt64) {
        // Raft §5.3: reject unless our log holds (prevIndex, prevTerm).
        // Entries through `logOffset` are committed here, so they match the leader's.
        guard prevIndex <= lastIndex, prevIndex <= logOffset || term(at: prevIndex) == prevTerm else {
            send(.appendResponse(term: term, success: false, match: min(lastIndex, prevIndex == 0 ? 0 : prevIndex - 1)), to: from)
            return
        }
        var configurationTouched = false
        for entry in entries {
            // Compacted entries are committed, so they match.
            if entry.index <= logOffset { continue }
            if entry.index <= lastIndex {
                if term(at: entry.index) == entry.term { continue }
                // A conflict: drop it and everything after (never below the commit index).
                precondition(entry.index > commit, "a leader never overwrites committed entries")
                log.removeSubrange(Int(entry.index - logOffset - 1)...)
                configurationTouched = true
            }
            precondition(entry.index == lastIndex + 1, "append keeps indices dense")
            log.append(entry)
            markUnstable(from: entry.index)
            if entry.kind == .configuration { configurationTouched = true }
        }
        if configurationTouched { refreshConfiguration() }
        let matched = prevIndex + UInt64(entries.count)
        // A stale (reordered) append may match less than is already committed here.
        commit = max(commit, min(leaderCommit, matched))
        // A leader's log holds every committed entry: matching it up to the old end repairs us.
        if let until = repairingUntil, matched >= until { repairingUntil = nil }
        send(.appendResponse(term: term, success: true, match: matched), to: from)
    }

    /// Raft §5.3–5.4: commit the highest index stored on a majority whose entry is of the
    /// current term. The leader counts itself only for entries its shell has persisted
    /// (`persistedIndex`): its appends leave before its own write, and a shell may go on
    /// stepping while that write is in flight, so answers from followers can arrive first.
    /// A leader that removed itself counts only the remaining voters, and steps down
    /// once that configuration is committed (Raft thesis §4.2.2).
    mutating func advanceCommit() {
        guard role == .leader else { return }
        let matches = voters.map { $0 == id ? persistedIndex : (matchIndex[$0] ?? 0) }.sorted(by: >)
        guard matches.count >= quorum else { return }
        let candidate = matches[quorum - 1]
        if candidate > commit && term(at: candidate) == term { commit = candidate }
        if !configuration.voters.contains(id) && configurationIndex <= commit {
            becomeFollower(term: term, leader: nil)
        }
    }

    // MARK: Ready

    public mutating func ready() -> RaftReady {
        let hard = hardState
        var ready = RaftReady(hardState: hard != lastHardState ? hard : nil, entries: [], messages: outbox, committed: [])
        ready.reads = confirmedReads
        confirmedReads = []
        ready.snapshot = pendingInstall
        ready.snapshotsWanted = snapshotsWanted
        snapshotsWanted = []
        if let from = unstableFrom, from <= lastIndex { ready.entries = Array(log[Int(from - logOffset - 1)...]) }
        unstableSinceReady = nil
        if commit > applied { ready.committed = Array(log[Int(applied - logOffset)..<Int(commit - logOffset)]) }
        handedOutCommit = commit
        outbox = []
        return ready
    }

    /// The shell persisted, sent and applied `ready`.
    public mutating func advance(_ ready: RaftReady) {
        if let hard = ready.hardState { lastHardState = hard }
        if ready.snapshot != nil && ready.snapshot == pendingInstall { pendingInstall = nil }
        // Entries appended or rewritten after `ready()` (a proposal, a step) were not in it
        // and stay unstable: marking them stable would let this node count its own vote
        // for entries it never persisted.
        if !ready.entries.isEmpty { unstableFrom = unstableSinceReady }
        if let last = ready.committed.last { applied = max(applied, last.index) }
        // This node's own copy now counts towards a quorum.
        advanceCommit()
    }

    /// Whether `ready()` would hand out anything: a shell that just advanced (and so may
    /// have let its own copy commit entries) runs another Ready when this is true.
    public var hasReady: Bool {
        !outbox.isEmpty || commit > applied || (unstableFrom.map { $0 <= lastIndex } ?? false) || pendingInstall != nil
            || !snapshotsWanted.isEmpty || !confirmedReads.isEmpty
            || hardState != lastHardState
    }

    /// What must survive a crash, as it stands now.
    var hardState: HardState { HardState(term: term, votedFor: votedFor, commit: commit, repairingUntil: repairingUntil) }

    /// The last entry this node has persisted: every entry before `unstableFrom` was
    /// handed out by a Ready that has been advanced.
    public var persistedIndex: UInt64 { min(lastIndex, (unstableFrom ?? lastIndex + 1) - 1) }

    /// For a shell whose write of a Ready is still in flight: the queued messages that
    /// promise nothing about this node's disk (appends, `timeoutNow`, `readConfirm`), to
    /// be sent now. The rest stay for the next Ready, to be sent after its write.
    public mutating func takeMessagesBeforePersist() -> [RaftEnvelope] {
        var early: [RaftEnvelope] = []
        outbox.removeAll { envelope in
            guard Self.mayPrecedePersist(envelope.message) else { return false }
            early.append(envelope)
            return true
        }
        return early
    }

    /// Leader-to-follower messages that promise nothing about the sender's disk: they may
    /// leave before the Ready that produced them is persisted.
    public static func mayPrecedePersist(_ message: RaftMessage) -> Bool {
        switch message {
        case .append, .timeoutNow, .readConfirm: true
        default: false
        }
    }

    /// For a shell whose write of a Ready is still in flight: committed entries beyond
    /// those handed out so far that this node has persisted (by advanced Readies), to be
    /// applied now. They count as applied once returned: the shell applies them before it
    /// calls `advance` again. None while a received snapshot waits to be installed.
    public mutating func takeCommitted() -> [RaftEntry] {
        guard pendingInstall == nil else { return [] }
        let handedOut = max(applied, handedOutCommit)
        let limit = min(commit, persistedIndex)
        guard limit > handedOut, handedOut >= logOffset else { return [] }
        let entries = Array(log[Int(handedOut - logOffset)..<Int(limit - logOffset)])
        handedOutCommit = limit
        applied = limit
        return entries
    }
}
