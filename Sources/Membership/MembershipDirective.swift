/// What the membership machine asks its shell to do. The shell MUST persist
/// `persistIncarnation` before it sends the packets returned in the same batch, so a
/// restarted member never reuses an incarnation it already announced.
public enum MembershipDirective: Equatable, Sendable {
    /// Send a datagram to a member's gossip address.
    case send(to: String, GossipPacket)
    /// Exchange full state with the member at this gossip address (over TCP); report the
    /// result with `pushPullCompleted` or `pushPullFailed`.
    case pushPull(with: String)
    case persistIncarnation(UInt64)
    /// A member's status, incarnation or metadata changed (for logs, views, placement).
    case changed(Member)
}
