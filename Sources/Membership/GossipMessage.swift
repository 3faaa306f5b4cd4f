/// The messages of the membership protocol. A packet carries one or more.
public enum GossipMessage: Equatable, Sendable {
    /// Direct probe. `source` tells the target where to answer.
    case ping(sequence: UInt32, target: String, source: String, sourceAddress: String)
    /// Answer to a ping (direct or relayed), naming the probe's sequence.
    case ack(sequence: UInt32, from: String)
    /// Ask the receiver to probe `target` for `requester` (SWIM indirect probe).
    case pingRequest(sequence: UInt32, target: String, targetAddress: String, requester: String, requesterAddress: String)
    /// Lifeguard: the relay could not reach the target in time — but it is itself alive.
    case nack(sequence: UInt32, from: String)
    /// Dissemination: the member is alive at this incarnation, with this metadata.
    case alive(MemberInfo, incarnation: UInt64)
    /// Dissemination: `from` suspects the member at this incarnation.
    case suspect(id: String, incarnation: UInt64, from: String)
    /// Dissemination: the member is declared dead at this incarnation.
    case dead(id: String, incarnation: UInt64, from: String)
    /// Dissemination: the member left on purpose.
    case left(id: String, incarnation: UInt64)

    /// The member a dissemination message is about (nil for probe traffic).
    public var subject: String? {
        switch self {
        case .alive(let info, _): info.id
        case .suspect(let id, _, _), .dead(let id, _, _), .left(let id, _): id
        default: nil
        }
    }
}

/// A datagram of the protocol: who sent it and what it says.
public struct GossipPacket: Equatable, Sendable {
    public var sender: String
    public var messages: [GossipMessage]

    public init(sender: String, messages: [GossipMessage]) {
        self.sender = sender
        self.messages = messages
    }
}

/// A member's full record, as exchanged by push-pull state sync.
public struct MemberRecord: Equatable, Sendable {
    public var info: MemberInfo
    public var incarnation: UInt64
    public var status: MemberStatus

    public init(info: MemberInfo, incarnation: UInt64, status: MemberStatus) {
        self.info = info
        self.incarnation = incarnation
        self.status = status
    }
}
