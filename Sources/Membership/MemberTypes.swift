/// A member's liveness as SWIM sees it.
public enum MemberStatus: UInt8, Sendable, Comparable, CustomStringConvertible {
    case alive = 0
    case suspect = 1
    case dead = 2
    /// Left on purpose (graceful leave): not a failure.
    case left = 3

    public static func < (a: MemberStatus, b: MemberStatus) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }
}

/// What a member says about itself. Changing any of it raises the member's incarnation.
public struct MemberInfo: Equatable, Hashable, Sendable {
    public var id: String
    /// HOST:PORT addresses of the member's endpoints.
    public var gossip: String
    public var client: String
    public var peer: String
    public var admin: String
    public var zone: String
    /// Relative capacity for placement (1 = one unit).
    public var weight: UInt16
    public var draining: Bool
    /// The newest shard-map epoch the member holds.
    public var mapEpoch: UInt64
    /// Fingerprint of the clustered bootstrap the member was started with (shards,
    /// replicas, founders); 0 when it does not run clustered.
    public var origin: UInt64

    public init(
        id: String, gossip: String, client: String = "", peer: String = "", admin: String = "", zone: String = "",
        weight: UInt16 = 1, draining: Bool = false, mapEpoch: UInt64 = 0, origin: UInt64 = 0
    ) {
        self.origin = origin
        self.id = id
        self.gossip = gossip
        self.client = client
        self.peer = peer
        self.admin = admin
        self.zone = zone
        self.weight = weight
        self.draining = draining
        self.mapEpoch = mapEpoch
    }
}

/// One entry of the membership view.
public struct Member: Equatable, Sendable {
    public var info: MemberInfo
    public var incarnation: UInt64
    public var status: MemberStatus
    /// When `status` last changed, on the caller's clock (ms).
    public var changedAt: UInt64

    public var id: String { info.id }

    public init(info: MemberInfo, incarnation: UInt64, status: MemberStatus, changedAt: UInt64) {
        self.info = info
        self.incarnation = incarnation
        self.status = status
        self.changedAt = changedAt
    }
}
