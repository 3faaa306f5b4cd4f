import ChaparCore
import Membership

/// Runs real `Membership` machines for many nodes in one process on a virtual clock and
/// network. Every choice — delays, losses, the machines' own randomness — comes from
/// the seed, so a run replays exactly: a failing test prints its seed.
public final class MembershipSimulator {
    public struct Node {
        public var machine: Membership
        public var running: Bool
        public var paused: Bool
        /// What the node persisted (`persistIncarnation`), for restarts.
        public var persistedIncarnation: UInt64
        /// Datagrams that arrived while paused: delivered on resume, as a kernel would.
        var held: [[UInt8]] = []
    }

    /// One observation of the run, for the checks and the measurements.
    public struct Event: Equatable, Sendable {
        public var time: UInt64
        public var observer: Int
        public var subject: String
        public var status: MemberStatus
        public var incarnation: UInt64
    }

    private enum Delivery {
        case datagram([UInt8])
        case pushPull(from: Int)
    }

    private struct InFlight {
        var time: UInt64
        var order: UInt64
        var to: Int
        var delivery: Delivery
    }

    public let seed: UInt64
    public let config: MembershipConfig
    public var network: NetworkModel
    public private(set) var now: UInt64 = 0
    public private(set) var nodes: [Node] = []
    public private(set) var events: [Event] = []
    /// Datagram bytes sent per node (estimated wire size), for bandwidth figures.
    public private(set) var bytesSent: [UInt64] = []
    public private(set) var packetsSent: UInt64 = 0
    public var blocked: Set<Link> = []
    /// Per-link delay ranges (ms) that override the network's, e.g. a far zone or a slow NIC.
    public var linkDelays: [Link: ClosedRange<UInt64>] = [:]
    public var auth = PacketAuth.shared
    public let clusterId = "sim"
    /// Datagrams receivers refused (wrong key, other cluster, malformed), and push-pulls.
    public private(set) var rejectedPackets: UInt64 = 0
    public var recordEvents = true
    private var random: SeededRandom
    private var inFlight: [InFlight] = []
    private var order: UInt64 = 0
    private var indexByAddress: [String: Int] = [:]
    /// Simulated time between ticks of every machine.
    public let tickMs: UInt64 = 10

    public init(seed: UInt64, nodes count: Int, config: MembershipConfig = MembershipConfig(), network: NetworkModel = NetworkModel()) {
        self.seed = seed
        self.config = config
        self.network = network
        self.random = SeededRandom(seed: seed)
        for index in 0..<count {
            let info = Self.info(index)
            indexByAddress[info.gossip] = index
            nodes.append(Node(
                machine: Membership(local: info, incarnation: 1, config: config, seed: seed &* 1_000_003 &+ UInt64(index), now: 0),
                running: true, paused: false, persistedIncarnation: 1))
            bytesSent.append(0)
        }
    }

    public static func info(_ index: Int) -> MemberInfo {
        MemberInfo(id: "node-\(index)", gossip: "10.0.\(index / 256).\(index % 256):7946", zone: "z\(index % 3)")
    }

    /// Every node joins through node 0 (node 0 starts alone).
    public func joinAll() {
        for index in 1..<nodes.count { join(index, seeds: [Self.info(0).gossip]) }
    }

    // Machines are mutated in place (`nodes[i].machine.f()`): copying one out and back
    // would copy its dictionaries on every call (copy-on-write with two owners).
    public func join(_ index: Int, seeds: [String]) {
        let directives = nodes[index].machine.join(seeds: seeds, now: now)
        execute(directives, at: index)
    }

    // MARK: Faults

    /// Swaps a node's machine for one the test drove directly (e.g. after `update`).
    public func replace(_ index: Int, with machine: Membership) {
        nodes[index].machine = machine
    }

    /// The process dies: no ticks, no deliveries, no memory but what it persisted.
    public func crash(_ index: Int) { nodes[index].running = false; nodes[index].held = [] }

    /// A new process on the same address, starting above its persisted incarnation.
    public func restart(_ index: Int, seeds: [String]) {
        let incarnation = nodes[index].persistedIncarnation + 1
        nodes[index].machine = Membership(
            local: Self.info(index), incarnation: incarnation, config: config,
            seed: seed &* 7_000_003 &+ UInt64(index) &+ now, now: now)
        nodes[index].persistedIncarnation = incarnation
        nodes[index].running = true
        nodes[index].paused = false
        join(index, seeds: seeds)
    }

    /// The process stops being scheduled (GC pause, overloaded VM); packets queue.
    public func pause(_ index: Int) { nodes[index].paused = true }

    public func resume(_ index: Int) {
        nodes[index].paused = false
        let held = nodes[index].held
        nodes[index].held = []
        for packet in held { deliver(.datagram(packet), to: index) }
    }

    /// Cuts traffic between two groups (both ways unless `oneWay`: then only a → b).
    public func partition(_ a: [Int], _ b: [Int], oneWay: Bool = false) {
        for x in a { for y in b { blocked.insert(Link(from: x, to: y)); if !oneWay { blocked.insert(Link(from: y, to: x)) } } }
    }

    public func heal() { blocked = [] }

    // MARK: Running

    /// Advances virtual time to `end`, delivering and ticking every `tickMs`.
    public func run(until end: UInt64) {
        while now < end {
            now += tickMs
            deliverDue()
            for index in nodes.indices where nodes[index].running && !nodes[index].paused {
                let directives = nodes[index].machine.tick(now: now)
                execute(directives, at: index)
            }
        }
    }

    public func run(for duration: UInt64) { run(until: now + duration) }

    private func deliverDue() {
        guard !inFlight.isEmpty else { return }
        var due: [InFlight] = []
        var rest: [InFlight] = []
        for item in inFlight { if item.time <= now { due.append(item) } else { rest.append(item) } }
        inFlight = rest
        due.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        for item in due { deliver(item.delivery, to: item.to) }
    }

    private func deliver(_ delivery: Delivery, to index: Int) {
        guard nodes[index].running else { return }
        switch delivery {
        case .datagram(let bytes):
            if nodes[index].paused { nodes[index].held.append(bytes); return }
            let packet: GossipPacket
            do {
                packet = try GossipCodec.open(bytes, clusterId: clusterId) { keyId, body, tag in
                    auth.verify(index, keyId, body, tag)
                }
            } catch {
                rejectedPackets += 1
                return
            }
            let directives = nodes[index].machine.receive(packet, now: now)
            execute(directives, at: index)
        case .pushPull(let from):
            // The exchange completes when it reaches the responder: both sides merge.
            // The TCP exchange is authenticated like datagrams: each side checks the other's tag.
            let handshake = seal(GossipPacket(sender: Self.info(from).id, messages: []), from: from)
            let reverse = seal(GossipPacket(sender: Self.info(index).id, messages: []), from: index)
            let authentic = (try? GossipCodec.open(handshake, clusterId: clusterId) { auth.verify(index, $0, $1, $2) }) != nil
                && (try? GossipCodec.open(reverse, clusterId: clusterId) { auth.verify(from, $0, $1, $2) }) != nil
            if !authentic { rejectedPackets += 1 }
            guard authentic, nodes[from].running, !nodes[index].paused, !isBlocked(from, index), !isBlocked(index, from) else {
                execute(nodes[from].machine.pushPullFailed(with: Self.info(index).gossip, now: now), at: from)
                return
            }
            let initiatorState = nodes[from].machine.fullState()
            let responderState = nodes[index].machine.fullState()
            let toResponder = nodes[index].machine.pushPullCompleted(
                with: Self.info(from).gossip, remote: initiatorState, now: now)
            execute(toResponder, at: index)
            let toInitiator = nodes[from].machine.pushPullCompleted(
                with: Self.info(index).gossip, remote: responderState, now: now)
            execute(toInitiator, at: from)
        }
    }

    private func isBlocked(_ from: Int, _ to: Int) -> Bool {
        !blocked.isEmpty && blocked.contains(Link(from: from, to: to))
    }

    private func execute(_ directives: [MembershipDirective], at index: Int) {
        for directive in directives {
            switch directive {
            case .send(let address, let packet):
                guard let target = indexByAddress[address] else { continue }
                let bytes = seal(packet, from: index)
                packetsSent += 1
                bytesSent[index] += UInt64(bytes.count)
                if isBlocked(index, target) || random.nextUnit() < network.loss { continue }
                schedule(.datagram(bytes), from: index, to: target)
                if network.duplication > 0 && random.nextUnit() < network.duplication {
                    schedule(.datagram(bytes), from: index, to: target)
                }
            case .pushPull(let address):
                guard let target = indexByAddress[address] else { continue }
                order += 1
                inFlight.append(InFlight(time: now + network.delay(&random) * 2, order: order, to: target, delivery: .pushPull(from: index)))
            case .persistIncarnation(let value):
                nodes[index].persistedIncarnation = max(nodes[index].persistedIncarnation, value)
            case .changed(let member):
                if recordEvents {
                    events.append(Event(time: now, observer: index, subject: member.id, status: member.status, incarnation: member.incarnation))
                }
            }
        }
    }

    /// Encodes a packet as the real node does, signed by the sender's key.
    private func seal(_ packet: GossipPacket, from index: Int) -> [UInt8] {
        GossipCodec.seal(packet, clusterId: clusterId, keyId: auth.keyId(index)) { auth.mac(index, $0) }.bytes
    }

    private func schedule(_ delivery: Delivery, from sender: Int, to index: Int) {
        order += 1
        var delay = network.delay(&random)
        if !linkDelays.isEmpty, let range = linkDelays[Link(from: sender, to: index)] {
            delay = range.lowerBound + random.next() % (range.upperBound - range.lowerBound + 1)
        }
        inFlight.append(InFlight(time: now + delay, order: order, to: index, delivery: delivery))
    }

    // MARK: Queries

    /// How `observer` sees `subject` now (nil: unknown).
    public func status(of subject: Int, seenBy observer: Int) -> MemberStatus? {
        nodes[observer].machine.member(Self.info(subject).id)?.status
    }

    public var runningIndices: [Int] { nodes.indices.filter { nodes[$0].running } }

    /// True when every running node sees exactly `expected` of the others alive.
    public func everyoneSeesAlive(_ expected: [Int]) -> Bool {
        for observer in runningIndices {
            for subject in expected where subject != observer {
                if status(of: subject, seenBy: observer) != .alive { return false }
            }
        }
        return true
    }
}

/// How simulated nodes sign and check packets: by default all share one key. Tests
/// give some nodes another key (through Auth's keyring) to check that they stay out.
public struct PacketAuth: Sendable {
    public var keyId: @Sendable (Int) -> UInt8
    public var mac: @Sendable (Int, [UInt8]) -> [UInt8]
    public var verify: @Sendable (Int, UInt8, ArraySlice<UInt8>, ArraySlice<UInt8>) -> Bool?

    public init(
        keyId: @escaping @Sendable (Int) -> UInt8, mac: @escaping @Sendable (Int, [UInt8]) -> [UInt8],
        verify: @escaping @Sendable (Int, UInt8, ArraySlice<UInt8>, ArraySlice<UInt8>) -> Bool?
    ) {
        self.keyId = keyId
        self.mac = mac
        self.verify = verify
    }

    /// One shared key: a fixed tag every node accepts.
    public static let shared = PacketAuth(
        keyId: { _ in 0 }, mac: { _, _ in [UInt8](repeating: 0xA5, count: 32) },
        verify: { _, keyId, _, tag in keyId == 0 ? tag.allSatisfy { $0 == 0xA5 } : nil })
}
