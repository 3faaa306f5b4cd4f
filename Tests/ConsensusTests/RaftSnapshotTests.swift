import Consensus
import Testing

/// Snapshots driven message by message: what a leader sends once its stored log no longer
/// holds what a follower needs, and what the follower does with it.
@Suite struct RaftSnapshotTests {
    /// A leader of term 2 whose log holds entries 1…6, all committed and applied.
    func leaderWithAppliedLog() -> Raft {
        var leader = Raft(id: 1, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 2, votedFor: 1, commit: 0),
                          log: (1...5).map { entry($0, 1) })
        while leader.role != .leader {
            leader.tick()
            for message in messages(&leader) {
                switch message.message {
                case .preVote(let term, _, _): leader.step(RaftEnvelope(from: message.to, to: 1, message: .preVoteResponse(term: term, granted: true)))
                case .requestVote(let term, _, _): leader.step(RaftEnvelope(from: message.to, to: 1, message: .voteResponse(term: term, granted: true)))
                default: break
                }
            }
        }
        _ = messages(&leader)
        leader.step(RaftEnvelope(from: 2, to: 1, message: .appendResponse(term: leader.term, success: true, match: 6)))
        _ = messages(&leader)
        return leader
    }

    @Test func aFollowerBehindTheTrimmedLogIsSentASnapshot() {
        var leader = leaderWithAppliedLog()
        #expect(leader.commit == 6 && leader.appliedIndex == 6)
        leader.trimmed(through: 6, term: leader.term)
        #expect(leader.entries(1, 6).isEmpty, "trimmed entries are not read back")
        // Node 3 knows nothing: the probe backs nextIndex below the trimmed prefix.
        leader.step(RaftEnvelope(from: 3, to: 1, message: .appendResponse(term: leader.term, success: false, match: 0)))
        var ready = leader.ready()
        leader.advance(ready)
        #expect(ready.snapshotsWanted == [3])
        #expect(!ready.messages.contains { $0.to == 3 }, "no append it could not use")
        // While the shell produces it, heartbeats keep the follower's timer reset and carry no append.
        for _ in 0..<4 { leader.tick() }
        ready = leader.ready()
        leader.advance(ready)
        #expect(ready.messages.filter { $0.to == 3 }.allSatisfy { if case .readConfirm(_, 0) = $0.message { true } else { false } })
        let meta = RaftSnapshotMeta(index: 6, term: leader.term, configuration: RaftConfiguration(voters: [1, 2, 3]))
        let sent = leader.sendSnapshot(to: 3, meta)
        #expect(sent)
        ready = leader.ready()
        leader.advance(ready)
        let expected: RaftMessage = .snapshot(term: leader.term, index: 6, lastTerm: leader.term, configuration: meta.configuration)
        #expect(ready.messages.map(\.message) == [expected])
        // Until it is answered, heartbeats repeat the snapshot message (it may have been lost).
        for _ in 0..<4 { leader.tick() }
        ready = leader.ready()
        leader.advance(ready)
        let toFollower = ready.messages.filter { $0.to == 3 }.map(\.message)
        #expect(!toFollower.isEmpty && toFollower.allSatisfy { $0 == expected })
        // The follower's answer resumes appends after the snapshot.
        let proposed = leader.propose([42])
        #expect(proposed)
        leader.step(RaftEnvelope(from: 3, to: 1, message: .appendResponse(term: leader.term, success: true, match: 6)))
        ready = leader.ready()
        #expect(ready.messages.contains {
            if case .append(_, 6, _, let entries, _) = $0.message { $0.to == 3 && entries.map(\.data) == [[42]] } else { false }
        })
    }

    @Test func aFollowerInstallsASnapshotInPlaceOfItsLog() {
        // Entries 1…2 of term 1, plus an uncommitted one of term 1 the leader never had.
        var follower = Raft(id: 3, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 1, votedFor: nil, commit: 2),
                            log: [entry(1, 1), entry(2, 1), entry(3, 1)])
        _ = messages(&follower)
        let configuration = RaftConfiguration(voters: [1, 2, 3], learners: [4])
        follower.step(RaftEnvelope(from: 1, to: 3, message: .snapshot(term: 2, index: 10, lastTerm: 2, configuration: configuration)))
        let ready = follower.ready()
        #expect(ready.snapshot == RaftSnapshotMeta(index: 10, term: 2, configuration: configuration))
        #expect(ready.committed.isEmpty, "the snapshot replaces applying")
        #expect(ready.hardState?.commit == 10)
        #expect(ready.messages.map(\.message) == [.appendResponse(term: 2, success: true, match: 10)])
        follower.advance(ready)
        #expect(follower.lastIndex == 10 && follower.log.isEmpty && follower.configuration == configuration)
        #expect(follower.leader == 1)
        // Appends continue after it.
        follower.step(RaftEnvelope(from: 1, to: 3, message: .append(term: 2, prevIndex: 10, prevTerm: 2, entries: [entry(11, 2)], commit: 11)))
        let next = follower.ready()
        #expect(next.committed.map(\.index) == [11])
        #expect(next.snapshot == nil)
    }

    @Test func aSnapshotAtOrBelowTheCommitIndexChangesNothing() {
        var follower = Raft(id: 3, voters: [1, 2, 3], seed: 1, hardState: HardState(term: 2, votedFor: nil, commit: 3),
                            log: [entry(1, 1), entry(2, 1), entry(3, 2)])
        _ = messages(&follower)
        follower.step(RaftEnvelope(from: 1, to: 3, message: .snapshot(term: 2, index: 2, lastTerm: 1, configuration: RaftConfiguration(voters: [1, 2, 3]))))
        let ready = follower.ready()
        #expect(ready.snapshot == nil)
        #expect(follower.lastIndex == 3)
        #expect(ready.messages.map(\.message) == [.appendResponse(term: 2, success: true, match: 3)])
    }

    @Test func aSnapshotGivenUpIsAskedForAgain() {
        var leader = leaderWithAppliedLog()
        leader.trimmed(through: 6, term: leader.term)
        leader.step(RaftEnvelope(from: 3, to: 1, message: .appendResponse(term: leader.term, success: false, match: 0)))
        var ready = leader.ready()
        leader.advance(ready)
        #expect(ready.snapshotsWanted == [3])
        leader.snapshotFailed(to: 3)
        for _ in 0..<2 { leader.tick() }
        ready = leader.ready()
        #expect(ready.snapshotsWanted == [3], "the next heartbeat finds it still behind")
    }
}
