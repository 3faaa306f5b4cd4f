import Auth
import ChaparCore
import Membership
import Simulation
import Testing

let keyA = try! GossipKeyring([GossipKeyring.Key(id: 1, bytes: Array(repeating: 0x11, count: 32))])
let keyB = try! GossipKeyring([GossipKeyring.Key(id: 2, bytes: Array(repeating: 0x22, count: 32))])

func seal(_ packet: GossipPacket, _ ring: GossipKeyring, cluster: String = "c1", datagram: Int = 1400) -> GossipCodec.Sealed {
    GossipCodec.seal(packet, clusterId: cluster, keyId: ring.primary.id, datagramBytes: datagram) { ring.mac($0) }
}

func open(_ bytes: [UInt8], _ ring: GossipKeyring, cluster: String = "c1") throws(GossipCodec.OpenFailure) -> GossipPacket {
    try GossipCodec.open(bytes, clusterId: cluster) { ring.verify(keyId: $0, body: $1, tag: $2) }
}

let everyMessage: [GossipMessage] = [
    .ping(sequence: 7, target: "b", source: "a", sourceAddress: "127.0.0.1:7946"),
    .ack(sequence: 7, from: "b"),
    .pingRequest(sequence: 8, target: "c", targetAddress: "127.0.0.3:7946", requester: "a", requesterAddress: "127.0.0.1:7946"),
    .nack(sequence: 8, from: "d"),
    .alive(MemberInfo(id: "e", gossip: "127.0.0.5:7946", client: "127.0.0.5:4600", peer: "127.0.0.5:4700",
                      admin: "127.0.0.5:4800", zone: "teh-1", weight: 3, draining: true, mapEpoch: 99, origin: 7), incarnation: 12),
    .suspect(id: "f", incarnation: 3, from: "a"),
    .dead(id: "f", incarnation: 3, from: "b"),
    .left(id: "g", incarnation: 5),
]

@Suite struct GossipCodecTests {
    @Test func everyMessageRoundTripsUnderTheClusterKey() throws {
        let packet = GossipPacket(sender: "a", messages: everyMessage)
        let sealed = seal(packet, keyA)
        #expect(sealed.messagesEncoded == everyMessage.count)
        #expect(Array(sealed.bytes.prefix(4)) == Array("CHG1".utf8))
        #expect(try open(sealed.bytes, keyA) == packet)
    }

    @Test func packetsFitTheDatagramAndKeepTheFirstMessages() throws {
        let many = (0..<100).map { GossipMessage.suspect(id: "member-\($0)", incarnation: UInt64($0), from: "prober") }
        let sealed = seal(GossipPacket(sender: "a", messages: many), keyA, datagram: 1400)
        #expect(sealed.bytes.count <= 1400)
        #expect(sealed.messagesEncoded > 10 && sealed.messagesEncoded < 100)
        #expect(try open(sealed.bytes, keyA).messages == Array(many.prefix(sealed.messagesEncoded)))
    }

    @Test func anotherKeyAnotherClusterOrATamperedByteIsRefused() {
        let bytes = seal(GossipPacket(sender: "a", messages: [.ack(sequence: 1, from: "a")]), keyA).bytes
        #expect(throws: GossipCodec.OpenFailure.unknownKey(1)) { _ = try open(bytes, keyB) }
        let forged = GossipCodec.seal(GossipPacket(sender: "a", messages: []), clusterId: "c1", keyId: 1) { _ in Array(repeating: 0, count: 32) }
        #expect(throws: GossipCodec.OpenFailure.badMAC) { _ = try open(forged.bytes, keyA) }
        var tampered = bytes
        tampered[tampered.count - 1] ^= 0x01
        #expect(throws: GossipCodec.OpenFailure.badMAC) { _ = try open(tampered, keyA) }
        let otherCluster = seal(GossipPacket(sender: "a", messages: []), keyA, cluster: "c2").bytes
        #expect(throws: GossipCodec.OpenFailure.otherCluster("c2")) { _ = try open(otherCluster, keyA) }
        #expect(throws: GossipCodec.OpenFailure.notGossip) { _ = try open(Array("hello".utf8), keyA) }
    }

    @Test func malformedBodiesUnderAValidMACAreRefusedNotTrusted() {
        // A member with the key but a bug: the MAC verifies, the body does not parse.
        var body = ByteWriter()
        body.writeShortBytes(Array("c1".utf8))
        body.writeShortBytes(Array("a".utf8))
        body.write(UInt8(1))
        body.write(UInt8(99))  // unknown message type
        let bytes = body.finish()
        let packet = GossipCodec.magic + [1] + keyA.mac(bytes) + bytes
        #expect(throws: GossipCodec.OpenFailure.self) { _ = try open(packet, keyA) }
    }

    @Test func keyRotationAcceptsOldAndNewAndSendsWithThePrimary() throws {
        let rotated = try GossipKeyring(text: """
            # new key first: it signs; the old one is still accepted
            2 \(String(repeating: "22", count: 32))
            1 \(String(repeating: "11", count: 32))
            """)
        #expect(rotated.primary.id == 2)
        let fromOld = seal(GossipPacket(sender: "old", messages: []), keyA).bytes
        let fromNew = seal(GossipPacket(sender: "new", messages: []), rotated).bytes
        #expect(try open(fromOld, rotated).sender == "old")
        #expect(try open(fromNew, keyB).sender == "new")
        #expect(throws: GossipKeyring.Problem.malformed(line: 1)) { _ = try GossipKeyring(text: "x y") }
        #expect(throws: GossipKeyring.Problem.malformed(line: 1)) { _ = try GossipKeyring(text: "1 abcd") }
    }
}

@Suite struct KeyedSimulationTests {
    /// A node without the cluster key sends, probes and tries to join; no member ever lists
    /// it, and its packets are all counted as rejected.
    @Test(arguments: simulationSeeds)
    func aNodeWithoutTheKeyNeverAppearsInAnyView(_ seed: UInt64) {
        let simulator = MembershipSimulator(seed: seed, nodes: 9)
        simulator.auth = PacketAuth(
            keyId: { $0 == 8 ? 2 : 1 },
            mac: { index, body in (index == 8 ? keyB : keyA).mac(body) },
            verify: { index, keyId, body, tag in (index == 8 ? keyB : keyA).verify(keyId: keyId, body: body, tag: tag) })
        simulator.crash(8)
        simulator.joinAll()
        simulator.run(for: 10_000)
        simulator.restart(8, seeds: [MembershipSimulator.info(0).gossip, MembershipSimulator.info(3).gossip])
        simulator.run(for: 60_000)
        let keyedViewsIntact = (0..<8).allSatisfy { observer in
            (0..<8).allSatisfy { $0 == observer || simulator.status(of: $0, seenBy: observer) == .alive }
        }
        #expect(keyedViewsIntact, "the keyed members are unaffected")
        for observer in 0..<8 {
            #expect(simulator.status(of: 8, seenBy: observer) == nil, replay(seed, "aNodeWithoutTheKey", "node \(observer)"))
        }
        #expect(simulator.rejectedPackets > 0)
    }
}
