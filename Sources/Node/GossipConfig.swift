/// Membership settings of a node; membership is off while `gossip` is empty.
public struct GossipConfig: Equatable, Sendable {
    /// UDP (probes, gossip) and TCP (push-pull) address, HOST:PORT; port 0 picks one.
    public var gossip = ""
    /// Admin HTTP API address (GET /healthz, GET /v1/members); empty: no admin API.
    public var admin = ""
    /// Gossip addresses of members to join through.
    public var seeds: [String] = []
    public var zone = ""
    /// Relative capacity for replica placement (a weight-2 node holds about twice the
    /// replicas); taken by the controller when it registers the node.
    public var weight = 1
    /// Packets name their cluster; another cluster's packets are dropped.
    public var clusterId = "chapar"
    /// Keyring file: lines `ID HEX`, the first primary. Required with `gossip`.
    public var keyFile = ""

    public init() {}
}
