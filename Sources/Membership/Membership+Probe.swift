extension Membership {
    /// One probe per protocol period (SWIM §4): ping the next member in a shuffled
    /// round-robin order; after the (health-scaled) timeout ask k others to probe it; at
    /// the end of the period, suspect it unless someone got an ack.
    mutating func advanceProbe(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        if var current = probe {
            if !current.indirect && now >= current.ackDeadline {
                current.indirect = true
                let helpers = randomMembers(config.indirectChecks, excluding: [current.target])
                    .filter { $0.status == .alive }
                current.expectedNacks = config.lifeguard ? helpers.count : 0
                let address = members[current.target]?.info.gossip ?? ""
                for helper in helpers {
                    out.append(send(
                        to: helper.info.gossip,
                        [.pingRequest(
                            sequence: current.sequence, target: current.target, targetAddress: address,
                            requester: local.id, requesterAddress: local.gossip)],
                        about: helper.id))
                }
                probe = current
            }
            if now >= current.end {
                probe = nil
                // Lifeguard: a failed probe may mean *we* are slow; missing nacks say so.
                if config.lifeguard {
                    let missing = current.expectedNacks > 0 ? current.expectedNacks - min(current.nacks, current.expectedNacks) : 1
                    health = min(config.awarenessMax - 1, health + missing)
                }
                // Suspect it — or, if it is suspect already, confirm independently, which
                // shortens the suspicion (Lifeguard).
                if let target = members[current.target], target.status <= .suspect {
                    out.append(contentsOf: apply(
                        .suspect(id: target.id, incarnation: target.incarnation, from: local.id), from: local.id, now: now))
                }
            }
        }
        if probe == nil && now >= nextProbeAt && !leaving {
            nextProbeAt = now + config.probeIntervalMs * scale
            if let target = nextProbeTarget() {
                let sequence = nextSequence()
                probe = Probe(
                    target: target.id, sequence: sequence, ackDeadline: now + config.probeTimeoutMs * scale,
                    end: now + config.probeIntervalMs * scale)
                out.append(send(
                    to: target.info.gossip,
                    [.ping(sequence: sequence, target: target.id, source: local.id, sourceAddress: local.gossip)],
                    about: target.id))
            }
        }
        return out
    }

    /// The next alive or suspect member in a shuffled round-robin order; a new shuffle
    /// when a round ends, so every member is probed once per round (bounded detection).
    mutating func nextProbeTarget() -> Member? {
        for _ in 0..<2 {
            while let id = probeOrder.popLast() {
                if let member = members[id], member.status <= .suspect { return member }
            }
            probeOrder = memberIDs.filter { members[$0]!.status <= .suspect }
            probeOrder.shuffle(using: &random)
        }
        return nil
    }

    /// Relayed probes whose target did not answer in time: tell the requester we are
    /// alive and tried (Lifeguard's nack), so it does not blame its own health.
    mutating func expireRelays(now: UInt64) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        for (sequence, relay) in relays.sorted(by: { $0.key < $1.key }) where relay.deadline <= now {
            relays[sequence] = nil
            if config.lifeguard {
                out.append(send(to: relay.requesterAddress, [.nack(sequence: relay.sequence, from: local.id)], about: relay.requester))
            }
        }
        return out
    }
}
