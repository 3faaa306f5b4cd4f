import Auth
import ChaparCore
import Membership
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// The peer links of a clustered node, on loop 0: one authenticated TCP connection per
/// node pair (the node with the smaller id dials; the other accepts), learned from the
/// peer addresses members announce in gossip. Frames received go to the replication
/// thread; frames to send come from it.
final class PeerLinks: @unchecked Sendable {  // every stored property guarded by: loop 0's thread
    let loop: EventLoop
    let context: ShardContext
    let keyring: GossipKeyring
    let clusterId: String
    private var listener: TCPListener?
    private var links: [String: PeerLink] = [:]
    private var handshaking: [ObjectIdentifier: PeerLink] = [:]
    private var dialing: Set<String> = []
    private var closed = false
    /// Live clustered members (with their peer addresses), from the membership view.
    var members: () -> [PeerMember] = { [] }
    var deliver: (String, PeerFrame) -> Void = { _, _ in }
    var down: (String) -> Void = { _ in }
    /// A HELLO older or newer than this (wall clock) is refused, bounding replays.
    static let helloSkewMs: Int64 = 30_000
    static let redialMs: Int64 = 250

    init(loop: EventLoop, address: SocketAddress, context: ShardContext, keyring: GossipKeyring, clusterId: String) throws(SystemError) {
        self.loop = loop
        self.context = context
        self.keyring = keyring
        self.clusterId = clusterId
        listener = try TCPListener(address: address, loop: loop) { [unowned self] fd, peer in self.accept(fd, peer) }
        scheduleDial()
    }

    var address: SocketAddress? { listener?.address }

    /// Called on loop 0 with the replication thread's frames, by node.
    func send(_ frames: [String: [PeerFrame]]) {
        for (node, list) in frames {
            guard let link = links[node] else { continue }  // Raft retries; forwards were checked
            for frame in list { link.connection.send(frame.encoded()) }
        }
    }

    private func scheduleDial() {
        loop.schedule(afterMs: Self.redialMs) { [weak self] in
            guard let self, !self.closed else { return }
            self.dialMissing()
            self.scheduleDial()
        }
    }

    private func dialMissing() {
        let members = members()
        if let reason = context.setMembers(members) {
            context.logger.error("node configuration does not match the cluster; stopping", ["reason": reason])
            fatalError(reason)
        }
        for member in context.members.values where member.id > context.localName && links[member.id] == nil && !dialing.contains(member.id) {
            guard let target = try? SocketAddress(parsing: member.peer) else { continue }
            let node = member.id
            dialing.insert(node)
            let loop = self.loop
            OSThread(name: "chapar-dial") { [weak self] in
                let fd = try? connectTCP(to: target, timeoutMs: 2000)
                if !loop.execute({ [weak self] in self?.dialed(node, fd) }), let fd { Glibc.close(fd) }
            }.detach()
        }
    }

    private func dialed(_ node: String, _ fd: Int32?) {
        dialing.remove(node)
        guard let fd else { return }
        guard !closed, let connection = try? TCPConnection(fd: fd, loop: loop, peer: nil) else { Glibc.close(fd); return }
        let link = PeerLink(links: self, connection: connection, node: node)
        connection.delegate = link
        let body = PeerHello.body(clusterId: clusterId, node: context.localName, wallMs: WallClock.nowMs())
        connection.send(PeerFrame.hello(PeerHello(keyId: keyring.primary.id, body: body, tag: keyring.mac(body))).encoded())
        established(link, node: node)
    }

    private func accept(_ fd: Int32, _ peer: SocketAddress?) {
        guard let connection = try? TCPConnection(fd: fd, loop: loop, peer: peer) else { Glibc.close(fd); return }
        let link = PeerLink(links: self, connection: connection, node: nil)
        connection.delegate = link
        handshaking[ObjectIdentifier(link)] = link
        loop.schedule(afterMs: 5000) { [weak link] in
            if let link, link.node == nil { link.connection.close() }
        }
    }

    /// Checks an accepted connection's HELLO; nil (and a log line) if it fails.
    func authenticate(_ hello: PeerHello, from link: PeerLink) -> String? {
        handshaking[ObjectIdentifier(link)] = nil
        guard let fields = try? hello.fields(), keyring.verify(keyId: hello.keyId, body: hello.body[...], tag: hello.tag[...]) == true
        else {
            context.logger.warn("peer hello rejected", ["reason": "bad signature or format"])
            return nil
        }
        guard fields.clusterId == clusterId, context.knows(fields.node), fields.node != context.localName,
              abs(fields.wallMs - WallClock.nowMs()) <= Self.helloSkewMs
        else {
            context.logger.warn("peer hello rejected", ["node": fields.node, "cluster": fields.clusterId])
            return nil
        }
        established(link, node: fields.node)
        return fields.node
    }

    private func established(_ link: PeerLink, node: String) {
        // The new link takes the node's place first: closing the old one then finds it
        // replaced, and does not report the node as down.
        let previous = links[node]
        links[node] = link
        if let previous, previous !== link { previous.replaced = true; previous.connection.close() }
        context.setConnected(node, true)
        context.logger.info("peer link up", ["node": node])
    }

    func closed(_ link: PeerLink) {
        handshaking[ObjectIdentifier(link)] = nil
        guard let node = link.node, links[node] === link else { return }
        links[node] = nil
        context.setConnected(node, false)
        if !link.replaced { context.logger.info("peer link down", ["node": node]) }
        down(node)
    }

    func close() {
        closed = true
        listener?.close()
        listener = nil
        for link in Array(links.values) + Array(handshaking.values) { link.connection.close() }
    }
}

/// One peer connection: reassembles frames and hands them on. A peer that sends a
/// malformed or oversized frame, or anything before a valid HELLO, is disconnected.
final class PeerLink: ConnectionDelegate {  // guarded by: loop 0's thread
    unowned let links: PeerLinks
    let connection: ByteStream
    private(set) var node: String?
    var replaced = false
    private var buffer: [UInt8] = []
    private var consumed = 0

    init(links: PeerLinks, connection: ByteStream, node: String?) {
        self.links = links
        self.connection = connection
        self.node = node
    }

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        while buffer.count - consumed >= 4 {
            let length = buffer[consumed..<(consumed + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard length >= 1 && length <= PeerFrame.frameBytesMax else { return reject("frame length \(length) out of range") }
            guard buffer.count - consumed >= 4 + length else { break }
            let start = consumed + 4
            consumed += 4 + length
            let decoded = buffer.withUnsafeBytes { raw -> Result<PeerFrame, DecodeFailure> in
                do throws(DecodeFailure) { return .success(try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))) }
                catch { return .failure(error) }
            }
            switch decoded {
            case .failure(let failure): return reject("\(failure)")
            case .success(.hello(let hello)):
                guard node == nil, let name = links.authenticate(hello, from: self) else { return reject("unexpected or invalid hello") }
                node = name
            case .success(let frame):
                guard let node else { return reject("frame before hello") }
                links.deliver(node, frame)
            }
            if connection.isClosedStream { return }
        }
        if consumed > 0 && consumed == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            consumed = 0
        } else if consumed > 1 << 20 {
            buffer.removeFirst(consumed)
            consumed = 0
        }
    }

    private func reject(_ reason: String) {
        links.context.logger.warn("peer connection closed", ["node": node ?? "?", "reason": reason])
        connection.close()
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        links.closed(self)
    }
}

extension ByteStream {
    var isClosedStream: Bool { (self as? TCPConnection)?.isClosed ?? false }
}
