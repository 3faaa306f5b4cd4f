import Consensus
import Testing

func entry(_ index: UInt64, _ term: UInt64) -> RaftEntry { RaftEntry(term: term, index: index, data: [UInt8(index)]) }

func messages(_ raft: inout Raft) -> [RaftEnvelope] {
    let ready = raft.ready()
    raft.advance(ready)
    return ready.messages
}

/// Node 1 of {1, 2, 3}, elected in term 2 by the others' (pre-)votes.
func electedLeader() -> Raft {
    var leader = Raft(id: 1, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 1, votedFor: nil, commit: 0))
    var sent: [RaftEnvelope] = []
    for _ in 0..<40 where sent.isEmpty {
        leader.tick()
        sent = messages(&leader)
    }
    for peer: UInt64 in [2, 3] { leader.step(RaftEnvelope(from: peer, to: 1, message: .preVoteResponse(term: 2, granted: true))) }
    for peer: UInt64 in [2, 3] { leader.step(RaftEnvelope(from: peer, to: 1, message: .voteResponse(term: leader.term, granted: true))) }
    return leader
}

/// Scripted scenarios from the Raft paper, driven message by message.
@Suite struct RaftScenarioTests {
    /// Figure 8: a new leader must not commit an entry of an earlier term by counting the
    /// replicas that hold it; only once an entry of its own term is on a majority.
    @Test func figure8_entriesOfEarlierTermsCommitOnlyThroughTheCurrentTerm() {
        var s1 = Raft(id: 1, voters: [1, 2, 3, 4, 5], seed: 1,
                      hardState: HardState(term: 3, votedFor: nil, commit: 0), log: [entry(1, 1), entry(2, 2)])
        var sent: [RaftEnvelope] = []
        for _ in 0..<40 where sent.isEmpty {
            s1.tick()
            sent = messages(&s1)
        }
        #expect(sent.allSatisfy { if case .preVote(4, 2, 2) = $0.message { true } else { false } })
        for peer: UInt64 in [2, 3] { s1.step(RaftEnvelope(from: peer, to: 1, message: .preVoteResponse(term: 4, granted: true))) }
        #expect(s1.term == 4 && s1.role == .candidate)
        for peer: UInt64 in [2, 3] { s1.step(RaftEnvelope(from: peer, to: 1, message: .voteResponse(term: 4, granted: true))) }
        #expect(s1.role == .leader)
        #expect(s1.lastIndex == 3, "a new leader appends an entry of its own term")
        _ = messages(&s1)
        // S2 and S3 hold index 2 (term 2) — a majority with S1 — but not index 3 yet.
        for peer: UInt64 in [2, 3] { s1.step(RaftEnvelope(from: peer, to: 1, message: .appendResponse(term: 4, success: true, match: 2))) }
        #expect(s1.commit == 0, "index 2 is on a majority but of term 2: not committed by counting")
        for peer: UInt64 in [2, 3] { s1.step(RaftEnvelope(from: peer, to: 1, message: .appendResponse(term: 4, success: true, match: 3))) }
        #expect(s1.commit == 3, "index 3 (term 4) on a majority commits it and everything before")
        let ready = s1.ready()
        #expect(ready.committed.map(\.index) == [1, 2, 3])
    }

    /// Figure 7: a follower with extra, conflicting uncommitted entries is brought back
    /// to the leader's log: the conflicting suffix goes, the leader's entries replace it.
    @Test func figure7_conflictingSuffixIsReplaced() {
        var follower = Raft(id: 2, voters: [1, 2, 3], seed: 1,
                            hardState: HardState(term: 2, votedFor: nil, commit: 2),
                            log: [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)])
        follower.step(RaftEnvelope(from: 1, to: 2, message: .append(
            term: 3, prevIndex: 2, prevTerm: 1, entries: [RaftEntry(term: 3, index: 3, data: [9])], commit: 2)))
        #expect(follower.log.map(\.term) == [1, 1, 3])
        #expect(follower.log.last?.data == [9])
        let reply = messages(&follower).first?.message
        let expected: RaftMessage = .appendResponse(term: 3, success: true, match: 3)
        #expect(reply == expected)
    }

    /// A stale leader's appends are refused with the newer term, which deposes it.
    @Test func staleLeaderLearnsTheNewTermAndStepsDown() {
        var node = Raft(id: 2, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 5, votedFor: nil, commit: 0))
        node.step(RaftEnvelope(from: 1, to: 2, message: .append(term: 4, prevIndex: 0, prevTerm: 0, entries: [], commit: 0)))
        let reply = messages(&node).first?.message
        let expected: RaftMessage = .appendResponse(term: 5, success: false, match: 0)
        #expect(reply == expected)
        #expect(node.term == 5)
    }

    /// The Ready contract when the shell proposes while it handles a Ready (as a node does
    /// when a newly adopted shard map makes it change a replica set): the new entry was not
    /// in that Ready, so it must come in the next one — the leader counts itself for its
    /// entries, and an entry it never persisted would be committed on one copy too few.
    @Test func anEntryProposedWhileAReadyIsHandledIsPersistedWithTheNext() {
        var leader = electedLeader()
        #expect(leader.role == .leader)
        let first = leader.propose([1])
        #expect(first)
        let ready = leader.ready()
        let handled = ready.entries.map(\.index)
        #expect(!handled.isEmpty)
        let late = leader.propose([2])  // after ready(), before advance()
        #expect(late)
        leader.advance(ready)
        let next = leader.ready()
        #expect(next.entries.map(\.index) == [leader.lastIndex], "handled \(handled); the late entry must be persisted next")
        leader.advance(next)
        #expect(leader.ready().entries.isEmpty)
    }

    /// A shell that keeps working while its write is in flight: the leader's appends go
    /// out at once, answers that arrive meanwhile are stepped, and the leader counts
    /// itself only once its own write is done — before that, an entry commits only on
    /// followers that stored it. What it had persisted and sees committed may be applied
    /// during the write; entries of the write itself come with the next Ready.
    @Test func aLeaderCountsItselfOnlyForEntriesItPersisted() {
        var leader = electedLeader()
        #expect(leader.role == .leader)
        _ = messages(&leader)  // the leader's empty entry (index 1), persisted
        leader.step(RaftEnvelope(from: 2, to: 1, message: .appendResponse(term: 2, success: true, match: 1)))
        #expect(leader.commit == 1)
        _ = messages(&leader)
        let proposed = leader.propose([7])
        #expect(proposed)
        let inFlight = leader.ready()  // index 2: its write is in flight
        #expect(inFlight.entries.map(\.index) == [2])
        #expect(inFlight.messages.allSatisfy { Raft.mayPrecedePersist($0.message) })
        leader.step(RaftEnvelope(from: 2, to: 1, message: .appendResponse(term: 2, success: true, match: 2)))
        #expect(leader.commit == 1, "one follower and an unpersisted leader are not a majority")
        let none = leader.takeCommitted()
        #expect(none.isEmpty)
        let during = leader.propose([8])  // index 3, while index 2 is being written
        #expect(during)
        let early = leader.takeMessagesBeforePersist()
        #expect(early.count == 2 && early.allSatisfy { if case .append = $0.message { true } else { false } })
        leader.step(RaftEnvelope(from: 3, to: 1, message: .appendResponse(term: 2, success: true, match: 3)))
        #expect(leader.commit == 2, "two followers stored index 2; index 3 is on one of them only")
        let notYet = leader.takeCommitted()
        #expect(notYet.isEmpty, "index 2 is in the write in flight: applied with the next Ready")
        leader.advance(inFlight)
        #expect(leader.persistedIndex == 2)
        #expect(leader.commit == 2, "index 3 is on follower 3 only until the leader writes it")
        let next = leader.ready()
        #expect(next.entries.map(\.index) == [3])
        #expect(next.committed.map(\.index) == [2])
        leader.advance(next)
        #expect(leader.commit == 3, "its own copy of index 3 makes the majority")
        let taken = leader.takeCommitted()
        #expect(taken.map(\.index) == [3], "persisted and committed: applied at once")
        let last = leader.ready()
        #expect(last.committed.isEmpty)
    }
}
