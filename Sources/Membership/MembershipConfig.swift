import ChaparCore

/// Protocol timing and fan-out. Defaults follow memberlist's LAN profile; the derived
/// values are computed from the cluster size `n` as documented on each.
public struct MembershipConfig: Equatable, Sendable {
    /// Time between probes of successive members (scaled by local health), ms.
    public var probeIntervalMs: UInt64 = 1000
    /// Time to wait for a direct ack before asking others to probe (scaled), ms.
    public var probeTimeoutMs: UInt64 = 500
    /// Members asked to probe indirectly (SWIM's k).
    public var indirectChecks = 3
    /// Retransmits of an update: `retransmitMult × ceil(log10(n + 1))`.
    public var retransmitMult = 4
    /// Suspicion timeout floor: `suspicionMult × max(1, log10(n)) × probeInterval`.
    public var suspicionMult = 4
    /// Suspicion timeout ceiling: `suspicionMaxTimeoutMult × floor`; independent
    /// confirmations bring it down to the floor (Lifeguard).
    public var suspicionMaxTimeoutMult = 6
    /// Local health multiplier range: timeouts scale by `1 + health`, health in 0..<max.
    public var awarenessMax = 8
    /// Lifeguard on: local health scaling, nacks, suspicion shrinking with confirmations,
    /// buddy hints. Off: plain SWIM (fixed timeouts, suspicion at the floor).
    public var lifeguard = true
    /// Period of gossip-only packets, ms, and how many members get each.
    public var gossipIntervalMs: UInt64 = 200
    public var gossipNodes = 3
    /// Dead members still receive gossip this long (so they learn and refute), ms.
    public var gossipToTheDeadMs: UInt64 = 30_000
    /// Period of full-state exchange with one random member, ms.
    public var pushPullIntervalMs: UInt64 = 30_000
    /// Dead and left members are forgotten after this long, ms.
    public var tombstoneMs: UInt64 = 3_600_000
    /// Join: first retry after this, doubling to `joinBackoffMaxMs`.
    public var joinBackoffMs: UInt64 = 500
    public var joinBackoffMaxMs: UInt64 = 16_000
    /// Updates piggybacked on one packet, at most (the codec also bounds bytes).
    public var piggybackMax = 12

    public init() {}

    static func log10(_ value: Double) -> Double { value > 0 ? StableMath.log10(value) : 0 }

    static func naturalLog(_ value: Double) -> Double { StableMath.ln(value) }

    /// How many times each update is sent.
    public func retransmitLimit(members n: Int) -> Int {
        retransmitMult * Int(Self.log10(Double(n + 1)).rounded(.up))
    }

    /// The suspicion timeout floor and ceiling for a cluster of `n`, ms.
    public func suspicionBounds(members n: Int) -> (min: UInt64, max: UInt64) {
        let floor = UInt64(Double(suspicionMult) * max(1, Self.log10(Double(n))) * Double(probeIntervalMs))
        return (floor, lifeguard ? floor * UInt64(suspicionMaxTimeoutMult) : floor)
    }

    /// Independent confirmations that bring a suspicion to its floor (Lifeguard's k).
    public var suspicionConfirmations: Int { max(0, suspicionMult - 2) }
}
