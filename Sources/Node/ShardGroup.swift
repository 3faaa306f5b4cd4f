import ChaparCore
import Consensus
import Storage
import Transport

/// One shard replica on this node. A class: the router looks groups up on every publish,
/// and a struct would copy the whole Raft state (retaining its log) at each lookup.
final class ShardGroup {
    var raft: Raft
    /// Entries up to here reached the channel logs before the last restart.
    let appliedFloor: UInt64
    /// The term, vote and repair bound last written to the entry log: a hard state that
    /// differs from them only in its commit index needs no sync (`ShardHost.cycle`).
    var loggedHard: HardStatePromises?

    init(shard: Int, context: ShardContext, loaded: LoadedReplica?, reader: StoredEntryReader) {
        var config = RaftConfig()
        config.electionTicksMin = 10
        config.heartbeatTicks = 2
        config.entriesPerMessageMax = 1024
        config.bytesPerMessageMax = 1 << 20
        // A snapshot acknowledged by no answer within 30 s (ticks are electionMs / 10) is asked for again.
        config.snapshotTicksMax = 300
        // Every log starts under the bootstrap configuration; the configuration entries in
        // the log (and the stored compacted one) say how it changed since.
        let voters = context.initialVoters(of: shard).map(ShardContext.raftId)
        let log = (loaded?.entries ?? []).map(RaftEntry.init)
        let hard = loaded.map {
            HardState(term: $0.state.term, votedFor: $0.state.vote, commit: $0.state.commit, repairingUntil: $0.state.repairing)
        }
        appliedFloor = loaded?.state.applied ?? 0
        loggedHard = loaded.map { HardStatePromises(term: $0.state.term, vote: $0.state.vote, repairing: $0.state.repairing) }
        if let damaged = loaded?.damaged {
            context.logger.warn("raft log damaged; repairing from the other replicas", [
                "shard": "\(shard)", "from": "\(damaged.from)", "until": "\(damaged.lastStored)",
            ])
        }
        let seed = StableHash.hash64(context.localName + "/\(shard)") ^ UInt64(bitPattern: WallClock.nowUs())
        let compacted = loaded?.lastApplied.map { (index: $0.index, term: $0.term) }
        let configuration = loaded?.configuration.flatMap { stored in
            RaftConfiguration(decodingEntry: RaftEntry(stored)).map { (configuration: $0, index: stored.index) }
        }
        // The stored log starts after its trimmed prefix (or an installed snapshot).
        let trimmed = loaded.flatMap { $0.state.snapshotIndex > 0 ? (index: $0.state.snapshotIndex, term: $0.state.snapshotTerm) : nil }
        raft = Raft(
            id: context.localId, voters: voters, config: config, seed: seed, hardState: hard, log: log,
            applied: loaded?.lastApplied?.index ?? 0, compacted: compacted, compactedConfiguration: configuration, trimmed: trimmed,
            storage: { range in reader.read(shard: shard, range) }, repairingUntil: loaded?.damaged?.lastStored)
    }

    // Raft's computed members read in place. Called as `raft.hasReady`, a getter of
    // another module's struct gets a copy of the class's stored Raft — every array, set
    // and dictionary in it retained and released again — and the cycle asks every group.

    var hasReady: Bool { inPlace { $0.hasReady } }
    var lastIndex: UInt64 { inPlace { $0.lastIndex } }
    var appliedIndex: UInt64 { inPlace { $0.appliedIndex } }

    private func inPlace<T>(_ body: (inout Raft) -> T) -> T { body(&raft) }
}

extension StoredRaftEntry {
    init(_ entry: RaftEntry) {
        self.init(term: entry.term, index: entry.index, kind: entry.kind.rawValue, data: entry.data)
    }
}

extension RaftEntry {
    init(_ stored: StoredRaftEntry) {
        self.init(term: stored.term, index: stored.index, kind: RaftEntry.Kind(rawValue: stored.kind) ?? .normal, data: stored.data)
    }
}

/// What a stored hard state promises (a term reached, a vote cast, a repair under way),
/// unlike its commit index, which a restarted replica learns again from its leader.
struct HardStatePromises: Equatable {
    var term: UInt64
    var vote: UInt64?
    var repairing: UInt64?
}
