import ChaparCore
import Storage
import Transport
import Wire

/// Everything one event loop owns: its sessions, its subscribers per channel, and its
/// own reader on the store. Touched only on that loop's thread.
final class LoopContext {  // guarded by: loop thread
    let loop: EventLoop
    let shared: NodeShared
    var index: Int { loop.index }
    private let reader: LogReader
    private var sessions: [UInt64: Session] = [:]
    private var channels: [String: LocalChannel] = [:]
    private var nextSessionId: UInt64 = 1

    /// Largest slice of a shared chunk queued at once, so one subscriber's turn is short.
    static let sliceBytesMax = 256 << 10
    /// Catch-up read size from the log.
    static let catchUpMessagesMax = 1024
    static let catchUpBytesMax = 1 << 20

    init(loop: EventLoop, shared: NodeShared) throws(StorageError) {
        self.loop = loop
        self.shared = shared
        reader = try shared.directory.makeReader()
    }

    var sessionCount: Int { sessions.count }

    func adopt(fd: Int32, peer: SocketAddress?) {
        let connection: TCPConnection
        do { connection = try TCPConnection(fd: fd, loop: loop, peer: peer) } catch {
            shared.logger.warn("could not adopt connection", ["error": error.description])
            return
        }
        // Session ids carry the loop index in the low byte, so they are unique node-wide.
        let id = nextSessionId << 8 | UInt64(index)
        nextSessionId += 1
        let session = Session(id: id, context: self, connection: connection)
        connection.delegate = session
        sessions[id] = session
    }

    func sessionClosed(_ session: Session, error: SystemError?) {
        for subscription in session.subscriptions.values { detach(subscription) }
        session.subscriptions = [:]
        sessions[session.id] = nil
        if let error { shared.logger.debug("connection closed", ["error": error.description]) }
    }

    /// Outcomes and feed advances from the group committer (via the mailbox).
    func deliver(_ outcomes: [(PublishTicket, AppendOutcome)], _ feeds: [ChannelFeed]) {
        for (ticket, outcome) in outcomes {
            sessions[ticket.session]?.settle(ticket, outcome)
        }
        for feed in feeds {
            guard let local = channels[feed.channel], local.feed === feed else { continue }
            local.head = max(local.head, feed.head)
            for subscription in local.subscriptions.values { pump(subscription) }
        }
    }

    // MARK: Subscriptions

    func subscribe(_ session: Session, _ request: Subscribe, correlation: UInt32) {
        if session.subscriptions[request.channel] != nil {
            return session.reject(.alreadySubscribed, "already subscribed to '\(request.channel)'", correlation: correlation)
        }
        if session.subscriptions.count >= Limits.subscriptionsPerConnectionMax {
            return session.reject(
                .tooManySubscriptions, "at most \(Limits.subscriptionsPerConnectionMax) subscriptions per connection",
                correlation: correlation)
        }
        // Register with the feed BEFORE reading the store's bounds: every commit is then
        // either in the store already or certain to be announced to this loop.
        let local = channels[request.channel] ?? {
            let created = LocalChannel(
                name: request.channel, feed: shared.feeds.subscribe(request.channel, loop: index),
                isEdge: shared.isEdge(request.channel))
            channels[request.channel] = created
            return created
        }()
        if local.isEdge { return subscribeAtEdge(session, request, local, correlation: correlation) }
        if request.from == .latest, let readIndex = shared.readIndex {
            return subscribeAtLatest(session, request, local, readIndex: readIndex, correlation: correlation)
        }
        let bounds: ChannelBounds
        do { bounds = try reader.bounds(request.channel) } catch {
            if local.subscriptions.isEmpty { release(local) }
            return session.reject(.storageFailure, "\(error)", correlation: correlation)
        }
        local.head = max(local.head, bounds.head, local.feed.head)
        let cursor: UInt64
        switch request.from {
        case .earliest: cursor = bounds.earliest
        case .latest: cursor = local.head + 1
        case .offset(let offset): cursor = max(offset, bounds.earliest)
        }
        let subscription = Subscription(session: session, channel: local, cursor: cursor)
        local.subscriptions[ObjectIdentifier(subscription)] = subscription
        session.subscriptions[request.channel] = subscription
        session.send(.subscribed(Subscribed(channel: request.channel, nextOffset: cursor, head: local.head)),
                     correlation: correlation)
        pump(subscription)
    }

    func unsubscribe(_ session: Session, channel: String, correlation: UInt32) {
        guard let subscription = session.subscriptions.removeValue(forKey: channel) else {
            return session.reject(.notSubscribed, "not subscribed to '\(channel)'", correlation: correlation)
        }
        detach(subscription)
        session.send(.unsubscribed(channel: channel), correlation: correlation)
    }

    private func detach(_ subscription: Subscription) {
        let local = subscription.channel
        local.subscriptions[ObjectIdentifier(subscription)] = nil
        if local.subscriptions.isEmpty { release(local) }
    }

    private func release(_ local: LocalChannel) {
        channels[local.name] = nil
        shared.feeds.unsubscribe(local.feed, loop: index)
    }

    /// Sends what `subscription` lacks, up to the connection's outbound limit (see
    /// `Subscription`). Called on subscribe, on feed advances and when the
    /// connection drains.
    func pump(_ subscription: Subscription) {
        let connection = subscription.session.connection
        let local = subscription.channel
        let outboundMax = shared.config.outboundBytesMax
        guard !subscription.awaitingBounds else { return }
        while subscription.cursor <= local.head && !connection.isClosed {
            if connection.outboundBytes >= outboundMax {
                    connection.notifyWhenOutboundBelow(outboundMax / 2)
                return
            }
            if let chunk = local.feed.chunk(containing: subscription.cursor) {
                let (slice, last) = chunk.slice(from: subscription.cursor, bytesMax: Self.sliceBytesMax)
                connection.send(slice)
                subscription.cursor = last + 1
                continue
            }
            if local.isEdge { return fetchAtEdge(subscription) }
            let records: [StoredRecord]
            do {
                records = try reader.read(
                    local.name, from: subscription.cursor, maxMessages: Self.catchUpMessagesMax,
                    maxBytes: Self.catchUpBytesMax)
            } catch {
                return endSubscription(subscription, error)
            }
            guard let last = records.last else { return }  // not yet readable: wait for the feed
            let chunk = EncodedChunk(channel: local.name, records: records)
            connection.send(OutboundSlice(chunk.bytes))
            subscription.cursor = last.offset + 1
        }
    }

    // MARK: Edge channels (relayed from a replica on another node)

    /// A subscription registered now whose start is decided when `bounds` arrive from
    /// another thread: nothing is sent for it before. Returns what the callback needs to
    /// come back to this loop.
    private func awaitingSubscription(_ session: Session, _ request: Subscribe, _ local: LocalChannel)
        -> (loop: EventLoop, box: LoopContextBox, bound: LoopBound<Subscription>)
    {
        let subscription = Subscription(session: session, channel: local, cursor: 0)
        subscription.awaitingBounds = true
        local.subscriptions[ObjectIdentifier(subscription)] = subscription
        session.subscriptions[request.channel] = subscription
        return (loop, LoopContextBox(self), LoopBound(subscription))
    }

    private func subscribeAtEdge(_ session: Session, _ request: Subscribe, _ local: LocalChannel, correlation: UInt32) {
        guard let edge = shared.edge else { return }
        let (loop, box, bound) = awaitingSubscription(session, request, local)
        let attach: @Sendable (UInt64) -> Void = { confirmedHead in
            _ = edge.loop.execute {
                edge.subscribe(request.channel) { result in
                    _ = loop.execute {
                        box.context.edgeBounds(bound.value, request, result, confirmedHead: confirmedHead, correlation: correlation)
                    }
                }
            }
        }
        // `latest` starts after the head a replica confirms with a read index (falling back
        // to the upstream replica's own head when none can be had).
        guard request.from == .latest, let channelHead = shared.channelHead else { return attach(0) }
        channelHead(request.channel) { head in attach(head ?? 0) }
    }

    /// `latest` on a clustered replica: the head after a read index (asked of the shard's
    /// leader), so the subscription starts after every publish acknowledged before it —
    /// even on a follower. Without a reachable leader, this replica's own head.
    private func subscribeAtLatest(
        _ session: Session, _ request: Subscribe, _ local: LocalChannel,
        readIndex: @Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void, correlation: UInt32
    ) {
        let (loop, box, bound) = awaitingSubscription(session, request, local)
        readIndex(request.channel) { _ in
            _ = loop.execute { box.context.startAtHead(bound.value, request, correlation: correlation) }
        }
    }

    private func startAtHead(_ subscription: Subscription, _ request: Subscribe, correlation: UInt32) {
        let session = subscription.session
        guard session.subscriptions[request.channel] === subscription else { return }
        let local = subscription.channel
        let bounds: ChannelBounds
        do { bounds = try reader.bounds(request.channel) } catch {
            session.subscriptions[request.channel] = nil
            detach(subscription)
            return session.reject(.storageFailure, "\(error)", correlation: correlation)
        }
        local.head = max(local.head, bounds.head, local.feed.head)
        subscription.cursor = local.head + 1
        subscription.awaitingBounds = false
        session.send(.subscribed(Subscribed(channel: request.channel, nextOffset: subscription.cursor, head: local.head)),
                     correlation: correlation)
        pump(subscription)
    }

    private func edgeBounds(
        _ subscription: Subscription, _ request: Subscribe, _ result: Result<(earliest: UInt64, head: UInt64), ErrorReply>,
        confirmedHead: UInt64, correlation: UInt32
    ) {
        let session = subscription.session
        guard session.subscriptions[request.channel] === subscription else { return }  // unsubscribed or closed meanwhile
        let local = subscription.channel
        switch result {
        case .failure(let error):
            session.subscriptions[request.channel] = nil
            detach(subscription)
            session.reject(ErrorCode(rawValue: error.code) ?? .storageFailure, error.message, correlation: correlation)
        case .success(let bounds):
            local.head = max(local.head, bounds.head, local.feed.head, confirmedHead)
            switch request.from {
            case .earliest: subscription.cursor = bounds.earliest
            case .latest: subscription.cursor = local.head + 1
            case .offset(let offset): subscription.cursor = max(offset, bounds.earliest)
            }
            subscription.awaitingBounds = false
            session.send(.subscribed(Subscribed(channel: request.channel, nextOffset: subscription.cursor, head: local.head)),
                         correlation: correlation)
            pump(subscription)
        }
    }

    /// History the feed no longer (or not yet) holds, a batch at a time from a replica.
    private func fetchAtEdge(_ subscription: Subscription) {
        guard let edge = shared.edge, !subscription.fetching else { return }
        subscription.fetching = true
        let channel = subscription.channel.name
        let from = subscription.cursor
        let loop = self.loop
        let box = LoopContextBox(self)
        let bound = LoopBound(subscription)
        _ = edge.loop.execute {
            edge.fetch(channel, from: from) { result in
                _ = loop.execute { box.context.edgeFetched(bound.value, from: from, result) }
            }
        }
    }

    private func edgeFetched(_ subscription: Subscription, from: UInt64, _ result: Result<Batch, ErrorReply>) {
        subscription.fetching = false
        let session = subscription.session
        let local = subscription.channel
        guard session.subscriptions[local.name] === subscription, subscription.cursor == from else { return }
        switch result {
        case .failure(let error):
            shared.logger.warn("edge fetch failed; retrying", ["channel": local.name, "error": error.message])
            loop.schedule(afterMs: 200) { [weak self] in
                if subscription.session.subscriptions[local.name] === subscription { self?.pump(subscription) }
            }
        case .success(let batch):
            local.head = max(local.head, batch.head)
            guard let last = batch.records.last else {
                // The replica asked has not applied that far yet (it lags, or just joined):
                // the feed may never announce these again, so ask again shortly.
                if subscription.cursor <= local.head {
                    loop.schedule(afterMs: 50) { [weak self] in
                        if subscription.session.subscriptions[local.name] === subscription { self?.pump(subscription) }
                    }
                }
                return
            }
            let records = batch.records.map { StoredRecord(offset: $0.offset, timestamp: $0.timestamp, payload: $0.payload) }
            subscription.session.connection.send(OutboundSlice(EncodedChunk(channel: local.name, records: records).bytes))
            subscription.cursor = last.offset + 1
            pump(subscription)
        }
    }

    /// The replica of `shard` left this node: its local subscriptions end with
    /// `replica_moved`, and subscribing again relays the channel from a replica.
    func replicaMoved(shard: Int) {
        for local in Array(channels.values) where !local.isEdge && shared.shardOf(local.name) == shard {
            for subscription in Array(local.subscriptions.values) {
                let session = subscription.session
                session.subscriptions[local.name] = nil
                detach(subscription)
                session.reject(
                    .replicaMoved, "subscription to '\(local.name)' ended: its replica left this node; subscribe again",
                    correlation: 0)
                session.send(.unsubscribed(channel: local.name), correlation: 0)
            }
        }
    }

    /// A subscription whose history cannot be read ends with an ERROR naming why.
    private func endSubscription(_ subscription: Subscription, _ error: StorageError) {
        let session = subscription.session
        let code: ErrorCode
        if case .corruptRecord = error {
            code = .corruptRecord
            shared.reportDamage(subscription.channel.name)
        } else {
            code = .storageFailure
        }
        shared.logger.error("subscription ended by a read failure", [
            "channel": subscription.channel.name, "error": error.description,
        ])
        session.subscriptions[subscription.channel.name] = nil
        detach(subscription)
        session.reject(code, "subscription to '\(subscription.channel.name)' ended: \(error)", correlation: 0)
        session.send(.unsubscribed(channel: subscription.channel.name), correlation: 0)
    }

    // MARK: Fetch

    func fetch(_ session: Session, _ request: Fetch, correlation: UInt32) {
        if shared.isEdge(request.channel), let edge = shared.edge {
            let loop = self.loop
            let bound = LoopBound(session)
            _ = edge.loop.execute {
                edge.fetch(request.channel, from: request.from, messagesMax: request.maxMessages) { result in
                    _ = loop.execute {
                        let session = bound.value
                        switch result {
                        case .success(let batch): session.send(.batch(batch), correlation: correlation)
                        case .failure(let error):
                            session.reject(ErrorCode(rawValue: error.code) ?? .storageFailure, error.message, correlation: correlation)
                        }
                    }
                }
            }
            return
        }
        // The whole BATCH must fit one frame: leave room for its headers.
        let budget = min(Int(request.maxBytes), Limits.payloadBytesMax)
        do {
            let bounds = try reader.bounds(request.channel)
            var records = try reader.read(
                request.channel, from: request.from, maxMessages: Int(request.maxMessages), maxBytes: budget)
            let perRecord = 20
            var total = records.reduce(0) { $0 + $1.payload.count + perRecord }
            while total > Limits.frameBytesMax - Limits.frameOverheadBytesMax, records.count > 1 {
                total -= records.removeLast().payload.count + perRecord
            }
            let batch = Batch(
                channel: request.channel, earliest: bounds.earliest,
                head: max(bounds.head, records.last?.offset ?? 0),
                records: records.map { Record(offset: $0.offset, timestamp: $0.timestamp, payload: Array($0.payload)) })
            session.send(.batch(batch), correlation: correlation)
        } catch {
            let code: ErrorCode
            if case .corruptRecord = error { code = .corruptRecord } else { code = .storageFailure }
            session.reject(code, "\(error)", correlation: correlation)
        }
    }

    // MARK: Shutdown

    /// Stops reading from every session (no new publishes are taken).
    func quiesce() {
        for session in sessions.values { session.connection.pauseReading() }
    }

    /// Sends every session a final ERROR and closes it once written.
    func closeAll() {
        for session in sessions.values { session.shutDown() }
    }
}
