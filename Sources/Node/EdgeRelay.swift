import Auth
import ChaparCore
import Storage
import Transport
import Wire

/// Relay fan-out for channels whose shard has no replica on this node (the node is an
/// "edge" for them). However many local subscribers a channel has, the edge holds ONE
/// live subscription to one replica of its shard and feeds what arrives into the local
/// channel feed, from which every local subscriber is served; history a subscriber needs
/// from before the feed's cache is fetched from the replica, a batch at a time. Replicas
/// serve committed records only (followers store nothing else), so a follower is as good
/// a source as the leader. When the replica fails, the edge resubscribes elsewhere from
/// the offset after the last record it received: no gap, no duplicate.
///
/// Lives on loop 0; upstream connections speak the client protocol.
final class EdgeRelay: @unchecked Sendable {  // guarded by: loop 0's thread
    struct EdgeChannel {
        var upstream: String?
        /// The next offset the live subscription should deliver (nil until SUBSCRIBED).
        var nextExpected: UInt64?
        var idleChecks = 0
    }

    let loop: EventLoop
    let context: ShardContext
    let feeds: FeedRegistry
    let token: () -> [UInt8]?
    /// Client addresses of the nodes, from the membership view.
    var addresses: () -> [String: String] = { [:] }
    /// Hands a feed that advanced to the loops that follow it.
    var announce: (ChannelFeed, UInt64) -> Void = { _, _ in }
    private var upstreams: [String: Upstream] = [:]
    private var channels: [String: EdgeChannel] = [:]
    private var closed = false
    static let fetchMessagesMax: UInt32 = 1024
    static let fetchBytesMax: UInt32 = 1 << 20

    init(loop: EventLoop, context: ShardContext, feeds: FeedRegistry, token: @escaping () -> [UInt8]?) {
        self.loop = loop
        self.context = context
        self.feeds = feeds
        self.token = token
        scheduleSweep()
    }

    /// Channels relayed now, with the replica each comes from (for the admin API).
    var relayed: [String: String] { channels.compactMapValues(\.upstream) }

    // MARK: Requests from loops (run on loop 0)

    /// Makes sure the channel is relayed, then answers with its bounds at a replica —
    /// asking again for a few seconds while no replica answers (one may be failing over).
    func subscribe(_ channel: String, reply: @escaping (Result<(earliest: UInt64, head: UInt64), ErrorReply>) -> Void) {
        if channels[channel] == nil {
            channels[channel] = EdgeChannel()
            attach(channel)
        }
        bounds(channel, attemptsLeft: Self.boundsAttempts, reply: reply)
    }

    static let boundsAttempts = 15

    private func bounds(
        _ channel: String, attemptsLeft: Int, reply: @escaping (Result<(earliest: UInt64, head: UInt64), ErrorReply>) -> Void
    ) {
        fetch(channel, from: 1, messagesMax: 1) { [weak self] result in
            switch result {
            case .success(let batch): reply(.success((batch.earliest, batch.head)))
            case .failure(let error) where error.code == ErrorCode.storageFailure.rawValue && attemptsLeft > 1:
                guard let self, !self.closed else { return reply(.failure(error)) }
                _ = self.loop.schedule(afterMs: 200) { [weak self] in
                    guard let self else { return reply(.failure(error)) }
                    self.bounds(channel, attemptsLeft: attemptsLeft - 1, reply: reply)
                }
            case .failure(let error): reply(.failure(error))
            }
        }
    }

    /// Records of `channel` from `from` on, fetched from a replica.
    func fetch(
        _ channel: String, from: UInt64, messagesMax: UInt32 = EdgeRelay.fetchMessagesMax,
        reply: @escaping (Result<Batch, ErrorReply>) -> Void
    ) {
        // The replica the live feed comes from has everything the feed announced.
        let live = channels[channel]?.upstream.flatMap { upstreams[$0] }.flatMap { $0.isUsable ? $0 : nil }
        guard let upstream = live ?? upstream(for: channel, avoiding: nil) else {
            return reply(.failure(ErrorReply(code: .storageFailure, message: "no replica of '\(channel)' is reachable")))
        }
        upstream.request(.fetch(Fetch(channel: channel, from: max(1, from), maxMessages: messagesMax, maxBytes: Self.fetchBytesMax))) { frame in
            switch frame {
            case .batch(let batch)?: reply(.success(batch))
            case .error(let error)?: reply(.failure(error))
            default: reply(.failure(ErrorReply(code: .storageFailure, message: "the replica serving '\(channel)' went away")))
            }
        }
    }

    // MARK: Upstreams

    /// Subscribes the channel's live feed at a replica (resuming after the last record
    /// received, if any).
    private func attach(_ channel: String, avoiding failed: String? = nil) {
        guard !closed, var state = channels[channel] else { return }
        guard let upstream = upstream(for: channel, avoiding: failed) else {
            // Nothing reachable now: try again shortly.
            state.upstream = nil
            channels[channel] = state
            loop.schedule(afterMs: 200) { [weak self] in self?.attach(channel) }
            return
        }
        state.upstream = upstream.node
        channels[channel] = state
        let from: StartPosition = state.nextExpected.map { .offset($0) } ?? .latest
        upstream.request(.subscribe(Subscribe(channel: channel, from: from))) { [weak self] frame in
            guard let self, self.channels[channel]?.upstream == upstream.node else { return }
            switch frame {
            case .subscribed(let subscribed)?:
                if self.channels[channel]?.nextExpected == nil { self.channels[channel]?.nextExpected = subscribed.nextOffset }
                // The live stream starts here; what lies before it up to the replica's head
                // is history the local subscribers fetch — tell them it exists, or one that
                // waits for an offset just before the start would wait for the next publish.
                if let feed = self.feeds.lookup(channel) {
                    let mask = feed.raiseHead(to: max(subscribed.head, max(subscribed.nextOffset, 1) - 1))
                    if mask != 0 { self.announce(feed, mask) }
                }
            case .error(let error)?:
                self.context.logger.warn("relay subscription refused", ["channel": channel, "node": upstream.node, "error": error.message])
                self.loop.schedule(afterMs: 500) { [weak self] in self?.attach(channel, avoiding: upstream.node) }
            default:
                break  // the upstream closed: `lost` re-attaches
            }
        }
    }

    /// A connected (or new) upstream to one of the channel's replicas, spreading channels
    /// over replicas by a stable hash and skipping `avoiding`.
    private func upstream(for channel: String, avoiding: String?) -> Upstream? {
        let replicas = context.replicas(of: context.shard(of: channel)).filter { $0 != avoiding && $0 != context.localName }
        guard !replicas.isEmpty else { return nil }
        let start = Int(StableHash.hash64(context.localName + "/" + channel) % UInt64(replicas.count))
        let ordered = Array(replicas[start...] + replicas[..<start])
        if let live = ordered.lazy.compactMap({ self.upstreams[$0] }).first(where: { $0.isUsable }) { return live }
        let known = addresses()
        for node in ordered {
            guard let text = known[node], let address = try? SocketAddress(parsing: text) else { continue }
            if let upstream = Upstream(node: node, address: address, relay: self) {
                upstreams[node] = upstream
                return upstream
            }
        }
        return nil
    }

    /// MESSAGE frames of the live subscriptions: one chunk per channel per read.
    fileprivate func received(_ messages: [Message], from node: String) {
        var byChannel: [String: [StoredRecord]] = [:]
        for message in messages {
            guard var state = channels[message.channel], state.upstream == node else { continue }
            // Anything but the next offset would be a duplicate (or a replica gone wrong).
            guard state.nextExpected == nil || message.offset == state.nextExpected else { continue }
            state.nextExpected = message.offset + 1
            channels[message.channel] = state
            byChannel[message.channel, default: []].append(StoredRecord(offset: message.offset, timestamp: message.timestamp, payload: message.payload))
        }
        for (channel, records) in byChannel {
            guard let feed = feeds.lookup(channel) else { continue }
            let mask = feed.append(EncodedChunk(channel: channel, records: records))
            announce(feed, mask)
        }
    }

    fileprivate func lost(_ upstream: Upstream) {
        guard upstreams[upstream.node] === upstream else { return }
        upstreams[upstream.node] = nil
        for (channel, state) in channels where state.upstream == upstream.node {
            context.logger.info("relay resumes elsewhere", ["channel": channel, "from": upstream.node, "next": "\(state.nextExpected ?? 0)"])
            attach(channel, avoiding: upstream.node)
        }
    }

    /// The upstream ended the channel's subscription (its replica moved away, or a record
    /// failed its checksum there): resume at another replica from the next offset.
    fileprivate func ended(_ channel: String, at node: String) {
        guard let state = channels[channel], state.upstream == node else { return }
        context.logger.info("relay resumes elsewhere", ["channel": channel, "from": node, "next": "\(state.nextExpected ?? 0)"])
        attach(channel, avoiding: node)
    }

    /// Drops relays no local subscriber has wanted for two sweeps.
    private func scheduleSweep() {
        loop.schedule(afterMs: 2000) { [weak self] in
            guard let self, !self.closed else { return }
            for (channel, var state) in self.channels {
                if self.feeds.lookup(channel) != nil { state.idleChecks = 0; self.channels[channel] = state; continue }
                state.idleChecks += 1
                if state.idleChecks < 2 { self.channels[channel] = state; continue }
                self.channels[channel] = nil
                if let node = state.upstream { self.upstreams[node]?.request(.unsubscribe(channel: channel)) { _ in } }
            }
            self.scheduleSweep()
        }
    }

    func close() {
        closed = true
        for upstream in upstreams.values { upstream.connection.close() }
        upstreams = [:]
    }
}

/// One client-protocol connection from this edge to a replica node.
private final class Upstream: ConnectionDelegate {  // guarded by: loop 0's thread
    let node: String
    let connection: TCPConnection
    unowned let relay: EdgeRelay
    private var frames = FrameReader()
    private var waiting: [UInt32: (Frame?) -> Void] = [:]
    private var nextCorrelation: UInt32 = 1
    private(set) var isUsable = true

    init?(node: String, address: SocketAddress, relay: EdgeRelay) {
        guard let fd = try? connectTCP(to: address, timeoutMs: 1000),
              let connection = try? TCPConnection(fd: fd, loop: relay.loop, peer: address)
        else { return nil }
        self.node = node
        self.connection = connection
        self.relay = relay
        connection.delegate = self
        connection.send(FrameEncoder.encode(Envelope(.hello(Hello(clientName: "relay:" + relay.context.localName, token: relay.token())))))
    }

    func request(_ frame: Frame, reply: @escaping (Frame?) -> Void) {
        guard isUsable else { return reply(nil) }
        let correlation = nextCorrelation
        nextCorrelation = nextCorrelation == 0x7FFF_FFFF ? 1 : nextCorrelation + 1
        waiting[correlation] = reply
        connection.send(FrameEncoder.encode(Envelope(frame, correlation: correlation)))
    }

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        var messages: [Message] = []
        do throws(ProtocolViolation) {
            try frames.feed(bytes) { envelope in
                switch envelope.frame {
                case .message(let message): messages.append(message)
                case .welcome: break
                case .error(let error) where envelope.correlation == 0:
                    relay.context.logger.warn("relay upstream error", ["node": node, "error": error.message])
                case .unsubscribed(let channel) where envelope.correlation == 0:
                    relay.ended(channel, at: node)
                default:
                    waiting.removeValue(forKey: envelope.correlation)?(envelope.frame)
                }
            }
        } catch {
            relay.context.logger.warn("relay upstream sent a bad frame", ["node": node, "error": "\(error)"])
            connection.close()
        }
        if !messages.isEmpty { relay.received(messages, from: node) }
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        isUsable = false
        let pending = waiting
        waiting = [:]
        for reply in pending.values { reply(nil) }
        relay.lost(self)
    }
}

extension ErrorReply: Error {}

/// Carries a loop-confined object through another thread's closure and back to its loop.
struct LoopBound<Value: AnyObject>: @unchecked Sendable {  // value guarded by: the loop it came from; unwrapped only there
    let value: Value
    init(_ value: Value) { self.value = value }
}
