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
            let created = LocalChannel(name: request.channel, feed: shared.feeds.subscribe(request.channel, loop: index))
            channels[request.channel] = created
            return created
        }()
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

    /// A subscription whose history cannot be read ends with an ERROR naming why.
    private func endSubscription(_ subscription: Subscription, _ error: StorageError) {
        let session = subscription.session
        let code: ErrorCode
        if case .corruptRecord = error { code = .corruptRecord } else { code = .storageFailure }
        shared.logger.error("subscription ended by a read failure", [
            "channel": subscription.channel.name, "error": error.description,
        ])
        session.subscriptions[subscription.channel.name] = nil
        detach(subscription)
        session.reject(code, "subscription to '\(subscription.channel.name)' ended: \(error)", correlation: 0)
    }

    // MARK: Fetch

    func fetch(_ session: Session, _ request: Fetch, correlation: UInt32) {
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
                records: records.map { Record(offset: $0.offset, timestamp: $0.timestamp, payload: $0.payload) })
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
