import ChaparCore
import Transport

/// One simulated client connection: a user (subscriber, maybe also publisher) or a
/// dedicated publisher. Lives on its worker's loop; reconnects resume where it was.
final class SimConnection: ConnectionDelegate {  // guarded by: worker loop thread
    enum State { case down, connecting, ready }

    let id: Int
    unowned let worker: Worker
    /// The node this connection uses; a failed connect moves it to the next target
    /// address (a cluster's other nodes), where subscriptions resume from their offsets.
    private(set) var address: SocketAddress
    private let addresses: [SocketAddress]
    private var addressIndex: Int
    private(set) var codec: TargetCodec
    private(set) var tcp: ByteStream?
    private(set) var state = State.down
    /// Channels this connection reads, and those whose subscription is confirmed.
    let channels: [UInt32]
    private(set) var confirmed: Set<UInt32> = []
    /// Read history from offset 1 on the first subscription (late joiners).
    var fromHistory = false
    var publishers: [PublisherState] = []
    /// Publishes awaiting an ACK by correlation id. Ids are handed out in sequence, so a
    /// ring indexed by id (no hashing) holds them; `inflightCount` entries are live.
    private var inflight = CorrelationRing()
    private var inflightOrdered: [(publisher: Int, sent: Int64)] = []
    private var inflightOrderedHead = 0
    private var nextCorrelation: UInt32 = 1
    /// Set when this connection moved to its channel's leader: the next handshake
    /// publishes there without asking again.
    private var relocated = false
    /// Moves towards the leader in this handshake: a node that does not host the shard
    /// knows no leader, so the connection goes to a replica and asks again there.
    private var hops = 0
    static let hopsMax = 3

    init(id: Int, worker: Worker, addresses: [SocketAddress], channels: [UInt32]) {
        self.id = id
        self.worker = worker
        self.addresses = addresses
        addressIndex = id % addresses.count
        self.address = addresses[addressIndex]
        self.channels = channels
        self.codec = worker.target.makeCodec(setup: id == worker.plan.setupConnection)
    }

    var isSubscribedEverywhere: Bool { confirmed.count == channels.count }

    func connect() {
        guard state == .down else { return }
        let fd: Int32
        do { fd = try connectTCP(to: address, timeoutMs: 5000) } catch {
            addressIndex = (addressIndex + 1) % addresses.count
            address = addresses[addressIndex]
            worker.connectionFailed(self, "\(error)")
            return
        }
        do {
            let connection = try TCPConnection(fd: fd, loop: worker.loop, peer: address)
            connection.delegate = self
            tcp = connection
        } catch {
            worker.connectionFailed(self, "\(error)")
            return
        }
        codec = worker.target.makeCodec(setup: id == worker.plan.setupConnection)
        state = .connecting
        confirmed = []
        tcp?.send(codec.greeting())
    }

    /// Drops the connection (a simulated client going away).
    func drop() {
        tcp?.close()
    }

    // MARK: Publishing

    /// Publishes one message of publisher `index` stamped with `sentMicros` (the intended
    /// send time). Returns false if the connection cannot take it now.
    func publish(_ index: Int, sentMicros: Int64) -> Bool {
        guard state == .ready, let tcp else { return false }
        var publisher = publishers[index]
        guard publisher.inflight < publisher.plan.window else { return false }
        publisher.sequence += 1
        let size = publisher.nextSize(&worker.random)
        let stamp = PayloadStamp(
            publisher: publisher.plan.id, sequence: publisher.sequence, sentMicros: sentMicros,
            channel: publisher.plan.channel)
        let correlation = nextCorrelation
        nextCorrelation = nextCorrelation == 0x7FFF_FFFF ? 1 : nextCorrelation + 1
        tcp.send { worker.encodePublish(codec, channel: publisher.plan.channel, size: size, stamp: stamp, correlation: correlation, into: &$0) }
        publisher.inflight += 1
        publishers[index] = publisher
        if codec.supportsAcks {
            if codec.acksCarryCorrelation { inflight.insert(correlation, publisher: index, sent: sentMicros) }
            else { inflightOrdered.append((index, sentMicros)) }
        } else {
            unflushed[index, default: 0] += 1
        }
        worker.stats.published += 1
        return true
    }

    /// After a burst of publishes: for targets without acknowledgements, ask the target
    /// to confirm it has processed them, which frees their publish window.
    func endBurst() {
        guard let tcp, !unflushed.isEmpty else { return }
        let total = unflushed.values.reduce(0, +)
        guard let marker = codec.flushMarker(publishes: total) else { return }
        tcp.send(marker)
        markers.append(unflushed)
        unflushed = [:]
    }

    /// Publishes sent since the last flush marker, by publisher index.
    private var unflushed: [Int: Int] = [:]
    /// Per flush marker sent and not yet confirmed: the publishes it covers.
    private var markers: [[Int: Int]] = []
    private var markerHead = 0

    private func settle(_ index: Int, sent: Int64, offset: UInt64?, acked: Bool) {
        publishers[index].inflight -= 1
        if acked {
            worker.stats.acked += 1
            let now = worker.nowMicros()
            worker.stats.ackLatency.record(UInt64(max(0, now - sent)))
            let plan = publishers[index].plan
            let key = ChannelPublisher(channel: plan.channel, publisher: offset == nil ? plan.id : 0)
            let position = offset ?? publishers[index].ackedSequence + 1
            if offset == nil { publishers[index].ackedSequence = position }
            if position > worker.ackedMax[key, default: 0] { worker.ackedMax[key] = position }
        }
        worker.publisherFreed(self, index)
    }

    // MARK: ConnectionDelegate

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        worker.receivedAt = worker.nowMicros()  // one clock read per read(2), not per message
        do throws(CodecError) {
            try codec.consume(bytes) { event in handle(event) }
        } catch {
            worker.stats.errors += 1
            worker.note("connection \(id): \(error)")
            connection.close()
        }
    }

    private func handle(_ event: CodecEvent) {
        switch event {
        case .ready:
            if !relocated, hops < Self.hopsMax, let channel = locatableChannel,
               let bytes = codec.locate(channel, correlation: Self.locateCorrelation) {
                tcp?.send(bytes)  // ready once answered
                return
            }
            relocated = false
            hops = 0
            becomeReady()
        case .located(let text, let replicas):
            guard state == .connecting else { return }
            hops += 1
            let known = { (text: String) in (try? SocketAddress(parsing: text)).flatMap { self.addresses.firstIndex(of: $0) } }
            if let index = text.flatMap(known) {
                worker.note("connection \(id) publishes at \(addresses[index]), its channel's leader")
                guard index != addressIndex else { return settle() }
                return move(to: index, atLeader: true)
            }
            // No leader known here (the node does not host the shard, or it is electing
            // one): a replica knows, so ask there.
            guard hops < Self.hopsMax, let index = replicas.compactMap(known).first(where: { $0 != addressIndex }) else { return settle() }
            move(to: index, atLeader: false)
        case .subscribed(let name, let next):
            guard let index = worker.channelIndex(name) else { return }
            confirmed.insert(index)
            if let next, codec.hasOffsets {
                worker.oracle.expect(StreamKey(subscriber: UInt32(id), channel: index, publisher: 0), from: next)
            }
            if isSubscribedEverywhere { worker.connectionSubscribed(self) }
        case .acked(let correlation, let offset):
            if let correlation {
                guard let entry = inflight.remove(correlation) else { return }
                settle(entry.publisher, sent: entry.sent, offset: offset, acked: true)
            } else if inflightOrderedHead < inflightOrdered.count {
                let entry = inflightOrdered[inflightOrderedHead]
                inflightOrderedHead += 1
                if inflightOrderedHead == inflightOrdered.count { inflightOrdered.removeAll(keepingCapacity: true); inflightOrderedHead = 0 }
                settle(entry.publisher, sent: entry.sent, offset: nil, acked: true)
            }
        case .flushed:
            guard markerHead < markers.count else { return }
            let counts = markers[markerHead]
            markerHead += 1
            if markerHead == markers.count { markers.removeAll(keepingCapacity: true); markerHead = 0 }
            for (index, count) in counts {
                publishers[index].inflight -= count
                worker.publisherFreed(self, index)
            }
        case .subscriptionEnded(let name):
            // Its replica moved away (or its history failed a check): resume where the
            // oracle says this subscriber is, which the node now relays from elsewhere.
            guard let index = worker.channelIndex(name), state != .down else { return }
            confirmed.remove(index)
            worker.note("connection \(id): subscription to \(name) ended by the server; resubscribing")
            subscribe(index)
        case .message(let offset, let payload):
            worker.delivered(to: self, offset: offset, payload: payload)
        case .reply(let bytes):
            tcp?.send(bytes)
        case .failure(_, let correlation?) where correlation == Self.locateCorrelation && state == .connecting:
            becomeReady()  // no LOCATE here: publish through this node
        case .failure(let text, let correlation):
            worker.stats.errors += 1
            worker.note("connection \(id): \(text)")
            if let correlation, let entry = inflight.remove(correlation) {
                settle(entry.publisher, sent: entry.sent, offset: nil, acked: false)
            } else if let correlation, correlation & Self.subscribeTag != 0 {
                // A refused SUBSCRIBE (e.g. no replica reachable during a failover): a user's
                // app tries again, and so does the simulated one.
                let channel = correlation & ~Self.subscribeTag
                let tcp = self.tcp
                _ = worker.loop.schedule(afterMs: 200) { [weak self] in
                    guard let self, self.tcp === tcp, self.state != .down, !self.confirmed.contains(channel) else { return }
                    self.subscribe(channel)
                }
            }
        }
    }

    /// Marks SUBSCRIBE correlations (the low bits name the channel index).
    static let subscribeTag: UInt32 = 0x8000_0000
    /// The LOCATE a publishing connection sends before it is ready (HELLO uses 0xFFFF_FFFF).
    static let locateCorrelation: UInt32 = 0xFFFF_FFFE

    private func becomeReady() {
        state = .ready
        for channel in channels { subscribe(channel) }
        worker.connectionReady(self)
    }

    /// Reconnects to `addresses[index]` before anything was published here; at the leader
    /// the next handshake publishes without asking again.
    private func move(to index: Int, atLeader: Bool) {
        addressIndex = index
        address = addresses[index]
        relocated = atLeader
        let old = tcp
        old?.delegate = nil
        old?.close()
        tcp = nil
        state = .down
        connect()
    }

    /// Publishes where the connection is (the node forwards to the leader).
    private func settle() {
        relocated = false
        hops = 0
        becomeReady()
    }

    /// The one channel this connection publishes to, when it only publishes and may go
    /// to the channel's leader among several target nodes.
    private var locatableChannel: String? {
        guard worker.target.locatePublishers, addresses.count > 1, channels.isEmpty,
              let first = publishers.first?.plan.channel,
              publishers.allSatisfy({ $0.plan.channel == first }) else { return nil }
        return worker.channelName(first)
    }

    private func subscribe(_ channel: UInt32) {
        var from: UInt64?
        if codec.supportsHistory {
            let key = StreamKey(subscriber: UInt32(id), channel: channel, publisher: 0)
            if let resume = worker.oracle.resumePosition(key) { from = resume } else if fromHistory { from = 1 }
        } else {
            worker.forgetStreams(subscriber: id, channel: channel)
        }
        tcp?.send(codec.subscribe(worker.channelName(channel), correlation: Self.subscribeTag | channel, from: from))
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        state = .down
        tcp = nil
        // Unacknowledged publishes have an unknown outcome: free their window, count nothing.
        for entry in inflight.removeAll() { publishers[entry.publisher].inflight -= 1 }
        for entry in inflightOrdered[inflightOrderedHead...] { publishers[entry.publisher].inflight -= 1 }
        inflightOrdered = []
        inflightOrderedHead = 0
        for counts in markers[markerHead...] { for (index, count) in counts { publishers[index].inflight -= count } }
        for (index, count) in unflushed { publishers[index].inflight -= count }
        markers = []
        markerHead = 0
        unflushed = [:]
        worker.connectionClosed(self, error: error)
    }
}

/// One publisher stream on a connection.
struct PublisherState {
    let plan: LoadPlan.Publisher
    var sequence: UInt64 = 0
    var ackedSequence: UInt64 = 0
    var inflight = 0
    /// Next intended send time (open loop), microseconds on the run clock.
    var nextDue: Int64 = 0

    init(plan: LoadPlan.Publisher) {
        self.plan = plan
    }

    func nextSize(_ random: inout SeededRandom) -> Int {
        switch plan.size {
        case .fixed(let n): return n
        case .uniform(let low, let high): return low + Int(random.next() % UInt64(high - low + 1))
        }
    }
}

/// Outstanding requests keyed by correlation id in a power-of-two ring. Ids are issued
/// in order, so while fewer than `capacity` are outstanding, slot `id % capacity` is free
/// when an id is issued; when it is not, the ring doubles. It starts small: thousands of
/// simulated connections each keep one.
struct CorrelationRing {
    private var slots: [(id: UInt32, publisher: Int, sent: Int64)] = []

    mutating func insert(_ id: UInt32, publisher: Int, sent: Int64) {
        precondition(id != 0, "correlation ids start at 1")
        if slots.isEmpty { slots = Array(repeating: (0, 0, 0), count: 16) }
        while slots[Int(id) & (slots.count - 1)].id != 0 { grow() }
        slots[Int(id) & (slots.count - 1)] = (id, publisher, sent)
    }

    private mutating func grow() {
        let live = slots.filter { $0.id != 0 }
        slots = Array(repeating: (0, 0, 0), count: slots.count * 2)
        for entry in live { slots[Int(entry.id) & (slots.count - 1)] = entry }
    }

    mutating func remove(_ id: UInt32) -> (publisher: Int, sent: Int64)? {
        guard !slots.isEmpty, id != 0 else { return nil }
        let slot = Int(id) & (slots.count - 1)
        guard slots[slot].id == id else { return nil }
        defer { slots[slot].id = 0 }
        return (slots[slot].publisher, slots[slot].sent)
    }

    mutating func removeAll() -> [(publisher: Int, sent: Int64)] {
        let live = slots.filter { $0.id != 0 }.map { (publisher: $0.publisher, sent: $0.sent) }
        slots = []
        return live
    }
}
