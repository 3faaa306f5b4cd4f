import Auth
import ChaparCore
import FoundationEssentials
import Membership
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// The shell around the membership machine: a UDP socket for probes and gossip, a TCP
/// listener for push-pull, a 20 ms timer, and the persisted incarnation. Lives on loop 0.
final class GossipService: @unchecked Sendable {  // every stored property guarded by: loop 0's thread
    let loop: EventLoop
    let logger: Logger
    let keyring: GossipKeyring
    let clusterId: String
    let incarnationPath: String
    var machine: Membership
    private var udp: UDPSocket?
    private var listener: TCPListener?
    private var exchanges: [PushPullResponder] = []
    static let tickMs: Int64 = 20
    private(set) var rejectedPackets: UInt64 = 0

    init(
        loop: EventLoop, logger: Logger, config: NodeConfig, clientAddress: String, adminAddress: String,
        peerAddress: String = "", mapEpoch: UInt64 = 0, origin: UInt64 = 0, dataDirectory: String
    ) throws {
        self.loop = loop
        self.logger = logger
        self.clusterId = config.membership.clusterId
        keyring = try Self.loadKeyring(config)
        incarnationPath = dataDirectory + "/incarnation"
        let previous = FileManager.default.contents(atPath: incarnationPath)
            .flatMap { UInt64(String(decoding: $0, as: UTF8.self).filter { $0.isNumber }) } ?? 0
        let requested = try SocketAddress(parsing: config.membership.gossip)
        // Placeholder machine until the sockets are bound and the real address is known.
        machine = Membership(local: MemberInfo(id: config.nodeId, gossip: ""), incarnation: previous + 1, seed: 0, now: 0)
        let udp = try UDPSocket(address: requested, loop: loop) { [unowned self] bytes, _ in self.datagram(bytes) }
        // Push-pull listens on TCP at the same host and port as UDP.
        let listener = try TCPListener(address: udp.address, loop: loop) { [unowned self] fd, peer in self.accept(fd, peer) }
        self.udp = udp
        self.listener = listener
        let info = MemberInfo(
            id: config.nodeId, gossip: udp.address.description, client: clientAddress, peer: peerAddress,
            admin: adminAddress, zone: config.membership.zone, weight: UInt16(config.membership.weight), mapEpoch: mapEpoch,
            origin: origin)
        machine = Membership(
            local: info, incarnation: previous + 1, seed: UInt64(truncatingIfNeeded: WallClock.nowUs()), now: Self.now())
        persist(previous + 1)
        execute(machine.join(seeds: config.membership.seeds, now: Self.now()))
        scheduleTick()
    }

    var address: SocketAddress? { udp?.address }

    static func loadKeyring(_ config: NodeConfig) throws -> GossipKeyring {
        guard let text = FileManager.default.contents(atPath: config.membership.keyFile) else {
            throw NodeConfig.Problem.invalid(field: "gossip-key-file", reason: "cannot read \(config.membership.keyFile)")
        }
        do { return try GossipKeyring(text: String(decoding: text, as: UTF8.self)) } catch {
            throw NodeConfig.Problem.invalid(field: "gossip-key-file", reason: error.description)
        }
    }

    static func now() -> UInt64 { UInt64(MonotonicClock.nowMs()) }

    private func scheduleTick() {
        loop.schedule(afterMs: Self.tickMs) { [weak self] in
            guard let self, self.udp != nil else { return }
            self.execute(self.machine.tick(now: Self.now()))
            self.scheduleTick()
        }
    }

    private func datagram(_ bytes: UnsafeRawBufferPointer) {
        do {
            let packet = try GossipCodec.open(Array(bytes), clusterId: clusterId) { keyring.verify(keyId: $0, body: $1, tag: $2) }
            execute(machine.receive(packet, now: Self.now()))
        } catch {
            rejectedPackets += 1
            if rejectedPackets & (rejectedPackets - 1) == 0 {  // 1st, 2nd, 4th … : visible, not a flood
                logger.warn("gossip packet rejected", ["reason": "\(error)", "total": "\(rejectedPackets)"])
            }
        }
    }

    func execute(_ directives: [MembershipDirective]) {
        // Persist first: no packet may announce an incarnation a restart could reuse.
        for case .persistIncarnation(let value) in directives { persist(value) }
        for directive in directives {
            switch directive {
            case .send(let to, let packet):
                guard let destination = try? SocketAddress(parsing: to), let udp else { continue }
                let sealed = GossipCodec.seal(packet, clusterId: clusterId, keyId: keyring.primary.id) { keyring.mac($0) }
                udp.send(sealed.bytes, to: destination)
            case .pushPull(let with):
                startExchange(with: with)
            case .persistIncarnation:
                break
            case .changed(let member):
                logger.info("member changed", [
                    "member": member.id, "state": member.status.description, "incarnation": "\(member.incarnation)",
                ])
            }
        }
    }

    /// Announces a newer shard map epoch (peers with an older map fetch the new one).
    func setMapEpoch(_ epoch: UInt64) {
        guard machine.local.mapEpoch != epoch else { return }
        var info = machine.local
        info.mapEpoch = epoch
        execute(machine.update(info, now: Self.now()))
    }

    private func persist(_ incarnation: UInt64) {
        do { try Data("\(incarnation)\n".utf8).write(to: URL(fileURLWithPath: incarnationPath), options: .atomic) } catch {
            logger.error("cannot persist incarnation", ["error": "\(error)"])
        }
    }

    // MARK: Push-pull

    func sealedState() -> [UInt8] {
        let packet = GossipPacket(sender: machine.local.id, messages: StateExchange.messages(machine.fullState()))
        let sealed = GossipCodec.seal(
            packet, clusterId: clusterId, keyId: keyring.primary.id, datagramBytes: StateExchange.bytesMax
        ) { keyring.mac($0) }
        return withUnsafeBytes(of: UInt32(sealed.bytes.count).bigEndian, Array.init) + sealed.bytes
    }

    func openState(_ bytes: [UInt8]) -> [MemberRecord]? {
        guard let packet = try? GossipCodec.open(bytes, clusterId: clusterId, verify: { keyring.verify(keyId: $0, body: $1, tag: $2) })
        else {
            rejectedPackets += 1
            return nil
        }
        return StateExchange.records(packet.messages)
    }

    /// The initiating side runs on its own short-lived thread (blocking connect and reads
    /// with timeouts, never on the loop) and hands the result back to the loop.
    private func startExchange(with address: String) {
        let request = sealedState()
        let loop = self.loop
        OSThread(name: "chapar-pushpull") { [weak self] in
            let reply = PushPullClient.exchange(address: address, request: request, timeoutMs: 2000)
            loop.execute { [weak self] in
                guard let self else { return }
                if let reply, let records = self.openState(reply) {
                    self.execute(self.machine.pushPullCompleted(with: address, remote: records, now: Self.now()))
                } else {
                    self.execute(self.machine.pushPullFailed(with: address, now: Self.now()))
                }
            }
        }.detach()
    }

    private func accept(_ fd: Int32, _ peer: SocketAddress?) {
        guard let connection = try? TCPConnection(fd: fd, loop: loop, peer: peer) else { Glibc.close(fd); return }
        let responder = PushPullResponder(service: self, connection: connection)
        connection.delegate = responder
        exchanges.append(responder)
        loop.schedule(afterMs: 5000) { [weak responder] in responder?.connection.close() }
    }

    func finished(_ responder: PushPullResponder) {
        exchanges.removeAll { $0 === responder }
    }

    /// Graceful leave: gossip `left` for a few intervals, then close the sockets.
    func leave() {
        execute(machine.leave(now: Self.now()))
    }

    func close() {
        udp?.close()
        udp = nil
        listener?.close()
        listener = nil
    }
}

/// Answers one push-pull: reads the initiator's framed state, replies with ours, merges.
final class PushPullResponder: ConnectionDelegate {  // guarded by: loop 0's thread
    unowned let service: GossipService
    let connection: ByteStream
    private var buffer: [UInt8] = []

    init(service: GossipService, connection: ByteStream) {
        self.service = service
        self.connection = connection
    }

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        guard buffer.count >= 4 else { return }
        let length = Int(UInt32(buffer[0]) << 24 | UInt32(buffer[1]) << 16 | UInt32(buffer[2]) << 8 | UInt32(buffer[3]))
        guard length <= StateExchange.bytesMax else { return connection.close() }
        guard buffer.count >= 4 + length else { return }
        guard let records = service.openState(Array(buffer[4..<(4 + length)])) else { return connection.close() }
        connection.send(service.sealedState())
        service.execute(service.machine.pushPullCompleted(with: records.first?.info.gossip ?? "", remote: records, now: GossipService.now()))
        connection.closeAfterFlush()
        buffer = []
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        service.finished(self)
    }
}

/// The initiator's side of push-pull, with blocking I/O bounded by a timeout.
enum PushPullClient {
    static func exchange(address: String, request: [UInt8], timeoutMs: Int32) -> [UInt8]? {
        guard let target = try? SocketAddress(parsing: address), let fd = try? connectTCP(to: target, timeoutMs: timeoutMs) else {
            return nil
        }
        defer { close(fd) }
        var offset = 0
        while offset < request.count {
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, timeoutMs) == 1 else { return nil }
            let sent = request[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { if errno == EAGAIN { continue }; return nil }
            offset += sent
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if reply.count >= 4 {
                let length = Int(UInt32(reply[0]) << 24 | UInt32(reply[1]) << 16 | UInt32(reply[2]) << 8 | UInt32(reply[3]))
                if length > StateExchange.bytesMax { return nil }
                if reply.count >= 4 + length { return Array(reply[4..<(4 + length)]) }
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, timeoutMs) == 1 else { return nil }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { if count < 0 && errno == EAGAIN { continue }; return nil }
            reply.append(contentsOf: chunk[..<count])
        }
    }
}
