extension Membership {
    /// Applies one dissemination message (from a packet, a push-pull, or our own probe).
    /// Precedence (SWIM §4.2): a higher incarnation wins; at equal incarnation, suspect
    /// beats alive and dead/left beat both. Dead is never revived by an incarnation that
    /// is not higher.
    ///
    /// `gossip` false (push-pull records about third parties) does not re-broadcast the
    /// discovery of a member — after a mass join every member would queue the whole view —
    /// but still re-broadcasts a change to a member we knew, which is news the gossip may
    /// have failed to deliver (this is how push-pull repairs lost updates quickly).
    mutating func apply(_ message: GossipMessage, from sender: String, now: UInt64, gossip: Bool = true) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        switch message {
        case .alive(let info, let incoming):
            if info.id == local.id {
                // Someone announces us at an incarnation we did not choose: outbid it.
                if incoming > incarnation && !leaving { out.append(contentsOf: raiseIncarnation(above: incoming)) }
                break
            }
            guard let known = members[info.id] else {
                let member = Member(info: info, incarnation: incoming, status: .alive, changedAt: now)
                store(member)
                if gossip { dissemination.enqueue(message) }  // discovery: only when gossiped
                out.append(.changed(member))
                break
            }
            let newer = incoming > known.incarnation
            let sameButChanged = incoming == known.incarnation && known.status == .alive && known.info != info
            guard newer || sameButChanged else { break }
            var member = known
            member.info = info
            member.incarnation = incoming
            if member.status != .alive { member.changedAt = now }
            member.status = .alive
            store(member)
            suspicions[info.id] = nil
            dissemination.enqueue(message)
            out.append(.changed(member))
        case .suspect(let id, let incoming, let suspector):
            if id == local.id {
                out.append(contentsOf: refute(incoming))
                break
            }
            guard var member = members[id], incoming >= member.incarnation, member.status <= .suspect else { break }
            if member.status == .suspect && incoming == member.incarnation {
                if suspicions[id]?.confirm(by: suspector) == true { if gossip { dissemination.enqueue(message) } }
                break
            }
            member.status = .suspect
            member.incarnation = incoming
            member.changedAt = now
            store(member)
            suspicions[id] = Suspicion(
                incarnation: incoming, start: now, bounds: config.suspicionBounds(members: clusterSize),
                needed: config.lifeguard ? config.suspicionConfirmations : 0, from: suspector)
            dissemination.enqueue(message)
            out.append(.changed(member))
        case .dead(let id, let incoming, _), .left(let id, let incoming):
            let status: MemberStatus
            if case .dead = message { status = .dead } else { status = .left }
            if id == local.id {
                if status == .dead { out.append(contentsOf: refute(incoming)) }
                break
            }
            guard var member = members[id], incoming >= member.incarnation, member.status <= .suspect else { break }
            member.status = status
            member.incarnation = incoming
            member.changedAt = now
            store(member)
            suspicions[id] = nil
            dissemination.enqueue(message)
            out.append(.changed(member))
        default:
            break
        }
        return out
    }

    /// We are suspected or declared dead: announce ourselves alive at a higher
    /// incarnation (SWIM §4.2). Lifeguard: being suspected hints that we are slow.
    mutating func refute(_ incoming: UInt64) -> [MembershipDirective] {
        guard !leaving else { return [] }
        if incoming < incarnation {
            // A stale rumour: our current incarnation already answers it.
            dissemination.enqueue(.alive(local, incarnation: incarnation))
            return []
        }
        if config.lifeguard { health = min(config.awarenessMax - 1, health + 1) }
        return raiseIncarnation(above: incoming)
    }

    /// Suspicions whose (confirmation-shortened) timeout passed become deaths.
    mutating func expireSuspicions(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        for (id, suspicion) in suspicions.sorted(by: { $0.key < $1.key }) where suspicion.deadline <= now {
            suspicions[id] = nil
            out.append(contentsOf: apply(.dead(id: id, incarnation: suspicion.incarnation, from: local.id), from: local.id, now: now))
        }
        return out
    }

    /// Gossip-only packets to a few random members (including the recently dead, so they
    /// learn and refute), whenever updates are waiting.
    mutating func gossipRound(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        guard now >= nextGossipAt else { return out }
        nextGossipAt = now + config.gossipIntervalMs
        guard !dissemination.isEmpty else { return out }
        for target in randomMembers(config.gossipNodes, excluding: [], includeRecentlyDead: now) {
            let packet = send(to: target.info.gossip, [], about: target.id)
            if case .send(_, let built) = packet, !built.messages.isEmpty { out.append(packet) }
        }
        return out
    }

    /// Periodic full-state exchange with one random member — dead ones included, so that
    /// after a partition heals the two sides meet again and refute — and join retries.
    mutating func pushPullRound(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        if !joined && now >= nextJoinAt {
            for seed in seeds { out.append(.pushPull(with: seed)) }
            nextJoinAt = now + joinBackoff
            joinBackoff = min(config.joinBackoffMaxMs, joinBackoff * 2)
        }
        if let settle = settleAt, now >= settle, let seed = settleWith {
            settleAt = nil
            out.append(.pushPull(with: seed))
        }
        if now >= nextPushPullAt {
            nextPushPullAt = now + config.pushPullIntervalMs
            if let partner = randomMembers(1, excluding: [], includeDead: true).first {
                out.append(.pushPull(with: partner.info.gossip))
            }
        }
        return out
    }

    /// Forgets members dead or left for `tombstoneMs`. Looks only at the tombstone list
    /// (oldest first), so a tick costs nothing when nobody died.
    mutating func reapTombstones(now: UInt64) {
        while let id = tombstones.first {
            guard let member = members[id], member.status >= .dead else {
                tombstones.removeFirst()  // revived since: no longer a tombstone
                continue
            }
            guard now - member.changedAt >= config.tombstoneMs else { break }
            tombstones.removeFirst()
            forget(id)
        }
    }
}
