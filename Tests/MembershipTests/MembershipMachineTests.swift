import Testing
@testable import Membership

func info(_ name: String) -> MemberInfo { MemberInfo(id: name, gossip: "\(name):7946") }

func packets(_ directives: [MembershipDirective]) -> [(String, GossipPacket)] {
    directives.compactMap { if case .send(let to, let packet) = $0 { (to, packet) } else { nil } }
}

@Suite struct MembershipMachineTests {
    @Test func onPing_repliesAckToTheSourceAddress() {
        var a = Membership(local: info("a"), incarnation: 1, seed: 1, now: 0)
        let out = a.receive(GossipPacket(sender: "b", messages: [
            .ping(sequence: 9, target: "a", source: "b", sourceAddress: "b:7946"),
        ]), now: 5)
        let sent = packets(out)
        #expect(sent.count == 1)
        #expect(sent[0].0 == "b:7946")
        #expect(sent[0].1.messages.first == .ack(sequence: 9, from: "a"))
    }

    @Test func onSuspect_ofSelf_refutesWithHigherIncarnationAndPersistsItFirst() {
        var a = Membership(local: info("a"), incarnation: 3, seed: 1, now: 0)
        let out = a.receive(GossipPacket(sender: "b", messages: [.suspect(id: "a", incarnation: 3, from: "b")]), now: 10)
        #expect(out.first == .persistIncarnation(4))
        #expect(a.incarnation == 4)
        #expect(a.health == 1)  // Lifeguard: being suspected hints that we are slow
        // The refutation rides on the next packet.
        let reply = packets(a.receive(GossipPacket(sender: "b", messages: [
            .ping(sequence: 1, target: "a", source: "b", sourceAddress: "b:7946"),
        ]), now: 20))
        #expect(reply[0].1.messages.contains(.alive(info("a"), incarnation: 4)))
    }

    @Test func precedence_higherIncarnationWins_deadIsNeverRevivedByAnOlderAlive() {
        var a = Membership(local: info("a"), incarnation: 1, seed: 1, now: 0)
        _ = a.receive(GossipPacket(sender: "b", messages: [.alive(info("b"), incarnation: 5)]), now: 1)
        #expect(a.member("b")?.status == .alive)
        _ = a.receive(GossipPacket(sender: "c", messages: [.suspect(id: "b", incarnation: 5, from: "c")]), now: 2)
        #expect(a.member("b")?.status == .suspect)
        _ = a.receive(GossipPacket(sender: "b", messages: [.alive(info("b"), incarnation: 5)]), now: 3)
        #expect(a.member("b")?.status == .suspect, "equal incarnation does not clear suspicion")
        _ = a.receive(GossipPacket(sender: "b", messages: [.alive(info("b"), incarnation: 6)]), now: 4)
        #expect(a.member("b")?.status == .alive)
        _ = a.receive(GossipPacket(sender: "c", messages: [.dead(id: "b", incarnation: 6, from: "c")]), now: 5)
        #expect(a.member("b")?.status == .dead)
        _ = a.receive(GossipPacket(sender: "x", messages: [.alive(info("b"), incarnation: 6)]), now: 6)
        #expect(a.member("b")?.status == .dead, "push-pull or gossip at the same incarnation never resurrects")
        _ = a.pushPullCompleted(with: "x:7946", remote: [MemberRecord(info: info("b"), incarnation: 2, status: .alive)], now: 7)
        #expect(a.member("b")?.status == .dead)
        _ = a.receive(GossipPacket(sender: "b", messages: [.alive(info("b"), incarnation: 7)]), now: 8)
        #expect(a.member("b")?.status == .alive, "a restarted member rejoins above its old incarnation")
    }

    @Test func suspicionTimeout_shrinksWithIndependentConfirmations() {
        let config = MembershipConfig()
        let bounds = config.suspicionBounds(members: 10)
        #expect(bounds.min == 4000)  // 4 × log10(10) × 1 s
        #expect(bounds.max == 24000)
        var suspicion = Suspicion(incarnation: 1, start: 0, bounds: bounds, needed: config.suspicionConfirmations, from: "x")
        #expect(suspicion.deadline == 24000)
        let confirmed = suspicion.confirm(by: "y")
        #expect(confirmed)
        let once = suspicion.deadline
        #expect(once < 24000 && once > 4000)
        let again = suspicion.confirm(by: "y")
        #expect(!again, "the same member confirms once")
        _ = suspicion.confirm(by: "z")
        #expect(suspicion.deadline == 4000, "k = 2 confirmations reach the floor")
    }

    @Test func derivedValuesFollowTheirFormulas() {
        let config = MembershipConfig()
        #expect(config.retransmitLimit(members: 9) == 4)  // 4 × ceil(log10(10))
        #expect(config.retransmitLimit(members: 100) == 12)  // 4 × ceil(log10(101))
        #expect(config.suspicionBounds(members: 1).min == 4000)  // log10 floored at 1
        var plain = config
        plain.lifeguard = false
        #expect(plain.suspicionBounds(members: 100).max == plain.suspicionBounds(members: 100).min)
    }

    @Test func dissemination_sendsLeastSentFirstAndRetiresAfterTheLimit() {
        var queue = Dissemination()
        queue.enqueue(.alive(info("b"), incarnation: 1))
        queue.enqueue(.alive(info("c"), incarnation: 1))
        #expect(queue.take(max: 1, limit: 2).map(\.subject) == ["b"])
        #expect(queue.take(max: 1, limit: 2).map(\.subject) == ["c"])
        #expect(queue.take(max: 5, limit: 2).count == 2)
        #expect(queue.isEmpty)
        queue.enqueue(.alive(info("b"), incarnation: 1))
        queue.enqueue(.alive(info("b"), incarnation: 2))
        #expect(queue.count == 1, "a newer update about a member replaces the older")
    }

    @Test func probe_withoutAck_asksOthersThenSuspectsTheTarget() {
        var a = Membership(local: info("a"), incarnation: 1, seed: 7, now: 0)
        for name in ["b", "c", "d", "e"] {
            _ = a.receive(GossipPacket(sender: name, messages: [.alive(info(name), incarnation: 1)]), now: 0)
        }
        let first = packets(a.tick(now: 1000))
        guard case .ping(let sequence, let target, _, _)? = first.first(where: { if case .ping = $0.1.messages[0] { true } else { false } })?.1.messages[0] else {
            Issue.record("expected a ping")
            return
        }
        let indirect = packets(a.tick(now: 1500)).filter { if case .pingRequest = $0.1.messages[0] { true } else { false } }
        #expect(indirect.count == 3)
        _ = a.receive(GossipPacket(sender: "c", messages: [.nack(sequence: sequence, from: "c")]), now: 1600)
        _ = a.tick(now: 2000)
        #expect(a.member(target)?.status == .suspect)
        #expect(a.health == 2, "two of three nacks missing")
    }
}
