import Transport

/// Clustered mode: channels hash into `shards` shards, each replicated by its own Raft
/// group on `replicas` nodes. Off while `shards` is 0.
public struct ShardingConfig: Equatable, Sendable {
    public var shards = 0
    public var replicas = 3
    /// `ID@ZONE` of the founding members: every node places the same first shard map
    /// over them.
    public var bootstrap: [String] = []
    /// Peer listener (Raft traffic and forwarded publishes), HOST:PORT; port 0 picks one.
    public var peer = ""
    /// A follower that hears no leader for a random time in [electionMs, 2 × electionMs)
    /// starts an election; leaders heartbeat every electionMs / 5.
    public var electionMs = 1000
    /// Replicas this node copies out at once as a shard leader during a rebalance (new
    /// learners catching up); the rest wait their turn, so a move does not starve clients.
    public var movesMax = 4
    /// Applied Raft entries a replica keeps on disk for lagging followers before trimming
    /// its log (entries that retained records point into stay until retention frees them);
    /// a follower that needs a trimmed entry is sent a snapshot.
    public var raftLogKeep = 64

    public init() {}

    public var enabled: Bool { shards > 0 }

    /// The founding members as (id, zone) pairs.
    public var members: [(id: String, zone: String)] {
        bootstrap.map { item in
            let parts = item.split(separator: "@", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
    }

    func validate(gossipOn: Bool) throws(NodeConfig.Problem) {
        guard enabled else { return }
        if !gossipOn { throw .invalid(field: "shards", reason: "clustered mode needs membership (--gossip)") }
        if peer.isEmpty { throw .invalid(field: "peer", reason: "clustered mode needs a peer listener (--peer HOST:PORT)") }
        do { _ = try SocketAddress(parsing: peer) } catch { throw .invalid(field: "peer", reason: error.description) }
        if bootstrap.isEmpty { throw .invalid(field: "bootstrap", reason: "clustered mode needs the founding members (--bootstrap ID@ZONE,…)") }
        let ids = members.map(\.id)
        if ids.contains(where: \.isEmpty) || Set(ids).count != ids.count {
            throw .invalid(field: "bootstrap", reason: "member ids must be non-empty and distinct")
        }
        if replicas > ids.count {
            throw .invalid(field: "replicas", reason: "\(replicas) replicas need at least as many bootstrap members (\(ids.count))")
        }
    }
}
