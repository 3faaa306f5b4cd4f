import ChaparCore

/// SWIM failure detection and dissemination with the Lifeguard extensions, as a value:
/// events and time in, directives out. No clock, socket, thread or system randomness:
/// `now` is the caller's millisecond clock and randomness comes from the seed, so the
/// simulator replays any run exactly.
public struct Membership: Sendable {
    public let config: MembershipConfig
    public internal(set) var local: MemberInfo
    public internal(set) var incarnation: UInt64
    /// Lifeguard's local health multiplier (0 = healthy); timeouts scale by `1 + health`.
    public internal(set) var health = 0
    /// Every other member ever heard of and not yet reaped. Change only through `store`.
    private(set) var members: [String: Member] = [:]
    /// Their ids, sorted, for deterministic random choices without sorting each time.
    private(set) var memberIDs: [String] = []
    /// Alive and suspect members plus this one; kept current by `store`.
    private(set) var clusterSize = 1
    /// Members that became dead or left, in that order: the only ones reaping looks at.
    var tombstones: [String] = []
    var suspicions: [String: Suspicion] = [:]
    var dissemination = Dissemination()
    var random: SeededRandom
    var sequence: UInt32 = 0

    struct Probe {
        var target: String
        var sequence: UInt32
        var ackDeadline: UInt64
        var end: UInt64
        var indirect = false
        var expectedNacks = 0
        var nacks = 0
    }

    struct Relay {
        var requester: String
        var requesterAddress: String
        var sequence: UInt32
        var deadline: UInt64
    }

    var probe: Probe?
    var relays: [UInt32: Relay] = [:]
    var probeOrder: [String] = []
    var nextProbeAt: UInt64
    var nextGossipAt: UInt64
    var nextPushPullAt: UInt64
    var seeds: [String] = []
    var joined = true
    var nextJoinAt: UInt64 = 0
    var joinBackoff: UInt64 = 0
    /// One more exchange with the seed shortly after joining: members that joined at the
    /// same moment reached the seed after us, and this learns them at once rather than
    /// by gossip alone (push-pull does not re-gossip what it learns about third parties).
    var settleAt: UInt64?
    var settleWith: String?
    public private(set) var leaving = false

    /// `incarnation` MUST be above any the member used before (persist it, start at +1).
    public init(local: MemberInfo, incarnation: UInt64, config: MembershipConfig = MembershipConfig(), seed: UInt64, now: UInt64) {
        self.local = local
        self.incarnation = incarnation
        self.config = config
        self.random = SeededRandom(seed: seed)
        nextProbeAt = now + config.probeIntervalMs
        nextGossipAt = now + config.gossipIntervalMs
        nextPushPullAt = now + config.pushPullIntervalMs
    }

    // MARK: Views

    /// Every known member and this one, sorted by id.
    public var view: [Member] {
        var all = Array(members.values)
        all.append(Member(info: local, incarnation: incarnation, status: leaving ? .left : .alive, changedAt: 0))
        return all.sorted { $0.id < $1.id }
    }

    public func member(_ id: String) -> Member? { id == local.id ? view.first { $0.id == id } : members[id] }

    /// Records a member's new state, keeping the id index and the live count current.
    mutating func store(_ member: Member) {
        let previous = members.updateValue(member, forKey: member.id)
        if previous == nil {
            var low = 0, high = memberIDs.count
            while low < high {
                let mid = (low + high) / 2
                if memberIDs[mid] < member.id { low = mid + 1 } else { high = mid }
            }
            memberIDs.insert(member.id, at: low)
        }
        let wasLive = previous.map { $0.status <= .suspect } ?? false
        let isLive = member.status <= .suspect
        if wasLive != isLive { clusterSize += isLive ? 1 : -1 }
        if !isLive && wasLive { tombstones.append(member.id) }
    }

    mutating func forget(_ id: String) {
        guard let previous = members.removeValue(forKey: id) else { return }
        if let index = memberIDs.firstIndex(of: id) { memberIDs.remove(at: index) }
        if previous.status <= .suspect { clusterSize -= 1 }
    }

    var scale: UInt64 { config.lifeguard ? UInt64(health + 1) : 1 }

    /// Full state for push-pull.
    public func fullState() -> [MemberRecord] {
        view.map { MemberRecord(info: $0.info, incarnation: $0.incarnation, status: $0.status) }
    }

    // MARK: Inputs

    /// Starts joining through `seeds` (gossip addresses): push-pull with each, retried
    /// with exponential backoff until one exchange succeeds.
    public mutating func join(seeds: [String], now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        self.seeds = seeds.filter { $0 != local.gossip }
        joined = self.seeds.isEmpty
        joinBackoff = config.joinBackoffMs
        nextJoinAt = now
        out.append(contentsOf: tick(now: now))
        return out
    }

    /// The local member changed its metadata (zone, draining, map epoch …).
    public mutating func update(_ info: MemberInfo, now: UInt64) -> [MembershipDirective] {
        precondition(info.id == local.id, "a member cannot change its id")
        var out: [MembershipDirective] = []
        local = info
        out.append(contentsOf: raiseIncarnation(above: incarnation))
        return out
    }

    /// Graceful leave: tell the others (via gossip) that this member leaves. The shell
    /// keeps ticking for a few gossip intervals so the news spreads, then stops.
    public mutating func leave(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        leaving = true
        dissemination.enqueue(.left(id: local.id, incarnation: incarnation))
        nextGossipAt = now
        out.append(contentsOf: tick(now: now))
        return out
    }

    public mutating func pushPullCompleted(with address: String, remote: [MemberRecord], now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        if seeds.contains(address) && !joined {
            joined = true
            settleAt = now + 2 * config.probeIntervalMs
            settleWith = address
            // Announce ourselves too, not only through the seed.
            dissemination.enqueue(.alive(local, incarnation: incarnation))
        }
        let sender = remote.first { $0.info.gossip == address }?.info.id ?? address
        for record in remote {
            let message: GossipMessage
            switch record.status {
            case .alive: message = .alive(record.info, incarnation: record.incarnation)
            case .suspect:
                // Learn the metadata first if the member is new to us, then the suspicion.
                if members[record.info.id] == nil && record.info.id != local.id {
                    out.append(contentsOf: apply(
                        .alive(record.info, incarnation: record.incarnation), from: sender, now: now, gossip: false))
                }
                message = .suspect(id: record.info.id, incarnation: record.incarnation, from: sender)
            case .dead: message = .dead(id: record.info.id, incarnation: record.incarnation, from: sender)
            case .left: message = .left(id: record.info.id, incarnation: record.incarnation)
            }
            // Only the partner's record about itself is news worth gossiping (a joiner
            // announcing itself to its seed); what it says of others, the others know.
            out.append(contentsOf: apply(message, from: sender, now: now, gossip: record.info.id == sender))
        }
        return out
    }

    public mutating func pushPullFailed(with address: String, now: UInt64) -> [MembershipDirective] { [] }

    /// A datagram arrived from `packet.sender`.
    public mutating func receive(_ packet: GossipPacket, now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        for message in packet.messages {
            switch message {
            case .ping(let sequence, let target, _, let sourceAddress):
                guard target == local.id, !leaving else { continue }
                out.append(send(to: sourceAddress, [.ack(sequence: sequence, from: local.id)], about: packet.sender))
            case .ack(let sequence, let from):
                if let current = probe, current.sequence == sequence, current.target == from {
                    probe = nil
                    if config.lifeguard { health = max(0, health - 1) }
                } else if let relay = relays.removeValue(forKey: sequence) {
                    out.append(send(to: relay.requesterAddress, [.ack(sequence: relay.sequence, from: from)], about: relay.requester))
                }
            case .nack(let sequence, _):
                if var current = probe, current.sequence == sequence {
                    current.nacks += 1
                    probe = current
                }
            case .pingRequest(let sequence, let target, let targetAddress, let requester, let requesterAddress):
                guard !leaving else { continue }
                let relayed = nextSequence()
                relays[relayed] = Relay(
                    requester: requester, requesterAddress: requesterAddress, sequence: sequence,
                    deadline: now + config.probeTimeoutMs)
                out.append(send(
                    to: targetAddress,
                    [.ping(sequence: relayed, target: target, source: local.id, sourceAddress: local.gossip)], about: target))
            case .alive, .suspect, .dead, .left:
                out.append(contentsOf: apply(message, from: packet.sender, now: now))
            }
        }
        return out
    }

    /// Advances timers: probes, indirect probes, suspicions, gossip, push-pull, joins,
    /// tombstones. Call at least every 10-50 ms of the caller's clock.
    public mutating func tick(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        out.append(contentsOf: advanceProbe(now: now))
        out.append(contentsOf: expireRelays(now: now))
        out.append(contentsOf: expireSuspicions(now: now))
        out.append(contentsOf: gossipRound(now: now))
        out.append(contentsOf: pushPullRound(now: now))
        reapTombstones(now: now)
        return out
    }

    // MARK: Building packets

    mutating func nextSequence() -> UInt32 {
        sequence = sequence == .max ? 1 : sequence + 1
        return sequence
    }

    /// A packet with `messages` first and piggybacked updates after. A suspected
    /// destination always hears of its own suspicion, built afresh rather than taken from
    /// the queue (which may have spent it): Lifeguard's buddy system, so it can refute.
    mutating func send(to address: String, _ messages: [GossipMessage], about destination: String?) -> MembershipDirective {
        var all = messages
        var skip: String?
        if config.lifeguard, let destination, let member = members[destination], member.status == .suspect {
            all.append(.suspect(id: destination, incarnation: member.incarnation, from: local.id))
            skip = destination
        }
        all.append(contentsOf: dissemination.take(
            max: config.piggybackMax, limit: config.retransmitLimit(members: clusterSize), skipping: skip))
        return .send(to: address, GossipPacket(sender: local.id, messages: all))
    }

    mutating func raiseIncarnation(above floor: UInt64) -> [MembershipDirective] {
        incarnation = max(incarnation, floor) + 1
        dissemination.enqueue(.alive(local, incarnation: incarnation))
        return [.persistIncarnation(incarnation)]
    }

    /// Up to `count` distinct random members that are alive or suspect (or recently dead,
    /// with `now`), other than `excluding`. Samples the sorted id index: O(count), not O(n).
    mutating func randomMembers(
        _ count: Int, excluding: Set<String>, includeRecentlyDead now: UInt64? = nil, includeDead: Bool = false
    ) -> [Member] {
        var chosen: [Member] = []
        var seen: Set<String> = []
        var attempts = 0
        while chosen.count < count && attempts < count * 8 + 16 && !memberIDs.isEmpty {
            attempts += 1
            let id = memberIDs[Int(random.next() % UInt64(memberIDs.count))]
            guard !excluding.contains(id), seen.insert(id).inserted, let member = members[id] else { continue }
            if member.status <= .suspect || (includeDead && member.status == .dead) { chosen.append(member); continue }
            if let now, member.status == .dead, now - member.changedAt < config.gossipToTheDeadMs { chosen.append(member) }
        }
        return chosen
    }
}
