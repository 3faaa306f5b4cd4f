import Consensus
import Testing

func entry(_ index: UInt64, _ term: UInt64) -> RaftEntry { RaftEntry(term: term, index: index, data: [UInt8(index)]) }

func messages(_ raft: inout Raft) -> [RaftEnvelope] {
    let ready = raft.ready()
    raft.advance(ready)
    return ready.messages
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
        var leader = Raft(id: 1, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 1, votedFor: nil, commit: 0))
        var sent: [RaftEnvelope] = []
        for _ in 0..<40 where sent.isEmpty {
            leader.tick()
            sent = messages(&leader)
        }
        for peer: UInt64 in [2, 3] { leader.step(RaftEnvelope(from: peer, to: 1, message: .preVoteResponse(term: 2, granted: true))) }
        for peer: UInt64 in [2, 3] { leader.step(RaftEnvelope(from: peer, to: 1, message: .voteResponse(term: leader.term, granted: true))) }
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
}
