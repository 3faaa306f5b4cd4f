import Auth
import ChaparCore
import Storage
import Transport
import Wire

/// One client connection's protocol state. Lives on its connection's loop.
final class Session: ConnectionDelegate {  // guarded by: loop thread
    let id: UInt64
    unowned let context: LoopContext
    let connection: ByteStream
    private var frames = FrameReader()
    private(set) var greeted = false
    private var closing = false
    private var helloTimer: UInt64?
    private var inflightCount = 0
    private var inflightBytes = 0
    private var pausedForInflight = false
    /// Reading stops while replies pile up unread (a client pipelining FETCHes and never
    /// reading, say): the outbound queue is bounded like everything else.
    private var pausedForOutbound = false
    /// Frames read while the outbound queue was full, handled in order once it drains.
    /// At most one read's worth: reading pauses as soon as they appear.
    private var deferred: [Envelope] = []
    private var deferredHead = 0
    private var pendingAppends: [(AppendInput, PublishTicket)] = []
    var subscriptions: [String: Subscription] = [:]
    /// Who the token says the client is (nil when the node requires no token).
    private(set) var subject: String?

    init(id: UInt64, context: LoopContext, connection: ByteStream) {
        self.id = id
        self.context = context
        self.connection = connection
        helloTimer = context.loop.schedule(afterMs: context.shared.config.helloTimeoutMs) { [weak self] in
            guard let self, !self.greeted else { return }
            self.fail(ProtocolViolation(.helloRequired, "no HELLO within \(self.context.shared.config.helloTimeoutMs) ms"))
        }
    }

    // MARK: ConnectionDelegate

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        guard !closing else { return }
        do throws(ProtocolViolation) {
            let outboundMax = context.shared.config.outboundBytesMax
            try frames.feed(bytes) { envelope in
                guard !closing else { return }
                if deferredHead < deferred.count || connection.outboundBytes >= outboundMax {
                    deferred.append(envelope)
                } else {
                    handle(envelope)
                }
            }
        } catch {
            fail(error)
        }
        if inflightCount >= Limits.inflightPublishesMax || inflightBytes >= context.shared.config.inflightBytesMax {
            pausedForInflight = true
            connection.pauseReading()
        }
        submitPending()
        holdIfOutboundFull()
    }

    private func submitPending() {
        guard !pendingAppends.isEmpty else { return }
        let batch = pendingAppends
        pendingAppends.removeAll(keepingCapacity: true)
        if !context.shared.committer.submit(batch) {
            for (_, ticket) in batch { settle(ticket, .failed(.closed)) }
        }
    }

    private func holdIfOutboundFull() {
        let outboundMax = context.shared.config.outboundBytesMax
        if connection.outboundBytes >= outboundMax || deferredHead < deferred.count {
            pausedForOutbound = true
            connection.pauseReading()
            connection.notifyWhenOutboundBelow(outboundMax / 2)
        }
    }

    /// Handles deferred frames while the outbound queue has room.
    private func drainDeferred() {
        let outboundMax = context.shared.config.outboundBytesMax
        while deferredHead < deferred.count && connection.outboundBytes < outboundMax && !closing {
            let envelope = deferred[deferredHead]
            deferredHead += 1
            handle(envelope)
        }
        if deferredHead == deferred.count {
            deferred = []
            deferredHead = 0
        }
        submitPending()
    }

    /// Reads again once neither unacknowledged publishes nor unread replies hold it back.
    private func resumeIfClear() {
        if !pausedForInflight && !pausedForOutbound && !closing { connection.resumeReading() }
    }

    func connectionReadEnded(_ connection: ByteStream) {
        if frames.bufferedBytes > 0 && !closing {
            fail(ProtocolViolation(.malformedFrame, "the connection ended inside a frame (\(frames.bufferedBytes) bytes)"))
        } else {
            connection.close()
        }
    }

    func connectionWritable(_ connection: ByteStream) {
        drainDeferred()
        if pausedForOutbound {
            if deferredHead == deferred.count && connection.outboundBytes < context.shared.config.outboundBytesMax / 2 {
                pausedForOutbound = false
                resumeIfClear()
            } else {
                connection.notifyWhenOutboundBelow(context.shared.config.outboundBytesMax / 2)
            }
        }
        for subscription in subscriptions.values { context.pump(subscription) }
    }

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        closing = true
        if let helloTimer { context.loop.cancelTimer(helloTimer) }
        context.sessionClosed(self, error: error)
    }

    // MARK: Frames

    private func handle(_ envelope: Envelope) {
        let correlation = envelope.correlation
        guard greeted else {
            guard case .hello(let hello) = envelope.frame else {
                return fail(ProtocolViolation(.helloRequired, "the first frame must be HELLO", correlation: correlation))
            }
            return greet(hello, correlation: correlation)
        }
        switch envelope.frame {
        case .publish(let publish):
            inflightCount += 1
            inflightBytes += publish.payload.count
            let ticket = PublishTicket(
                loop: context.index, session: id, correlation: correlation, channel: publish.channel,
                payloadBytes: publish.payload.count)
            pendingAppends.append(
                (AppendInput(channel: publish.channel, producer: publish.producer, payload: publish.payload), ticket))
        case .subscribe(let subscribe):
            context.subscribe(self, subscribe, correlation: correlation)
        case .unsubscribe(let channel):
            context.unsubscribe(self, channel: channel, correlation: correlation)
        case .fetch(let fetch):
            context.fetch(self, fetch, correlation: correlation)
        case .ping(let nonce):
            send(.pong(nonce: nonce), correlation: correlation)
        case .locate(let channel):
            send(.location(context.shared.locate(channel)), correlation: correlation)
        case .hello:
            fail(ProtocolViolation(.unexpectedFrame, "HELLO was already received", correlation: correlation))
        default:
            fail(ProtocolViolation(
                .unexpectedFrame, "\(envelope.frame.type) frames are sent by servers, not clients",
                correlation: correlation))
        }
    }

    private func greet(_ hello: Hello, correlation: UInt32) {
        guard hello.version == ProtocolVersion.current else {
            return fail(ProtocolViolation(
                .unsupportedVersion,
                "protocol version \(hello.version) is not supported; this server speaks \(ProtocolVersion.current)",
                correlation: correlation))
        }
        if let secret = context.shared.tokenSecret {
            do {
                let token = try AccessToken.verify(hello.token ?? [], secret: secret, now: WallClock.nowMs() / 1000)
                subject = token.subject
            } catch {
                return fail(ProtocolViolation(.unauthorized, error.description, correlation: correlation))
            }
        }
        greeted = true
        if let helloTimer { context.loop.cancelTimer(helloTimer) }
        helloTimer = nil
        send(.welcome(Welcome(
            version: ProtocolVersion.current, serverId: context.shared.config.nodeId,
            frameBytesMax: UInt32(Limits.frameBytesMax), payloadBytesMax: UInt32(Limits.payloadBytesMax),
            channelBytesMax: UInt16(Limits.channelBytesMax), inflightPublishesMax: UInt32(Limits.inflightPublishesMax))),
            correlation: correlation)
    }

    // MARK: Replies

    func send(_ frame: Frame, correlation: UInt32) {
        connection.send(FrameEncoder.encode(Envelope(frame, correlation: correlation)))
    }

    func reject(_ code: ErrorCode, _ message: String, correlation: UInt32) {
        send(.error(ErrorReply(code: code, message: message)), correlation: correlation)
    }

    /// Answers a protocol violation; a fatal one also closes the connection once the
    /// ERROR is written. Other connections are untouched.
    func fail(_ violation: ProtocolViolation) {
        reject(violation.code, violation.message, correlation: violation.correlation)
        guard violation.code.isFatal else { return }
        closing = true
        context.shared.logger.info("closing connection", [
            "peer": connection.peer?.description ?? "?", "code": "\(violation.code)", "reason": violation.message,
        ])
        connection.closeAfterFlush()
    }

    /// Delivers the outcome of one publish.
    func settle(_ ticket: PublishTicket, _ outcome: AppendOutcome) {
        inflightCount -= 1
        inflightBytes -= ticket.payloadBytes
        switch outcome {
        case .stored(let offset, _):
            let ack = Ack(channel: ticket.channel, offset: offset)
            connection.send { FrameEncoder.appendAck(ack, correlation: ticket.correlation, to: &$0) }
        case .duplicate(let offset):
            let ack = Ack(channel: ticket.channel, offset: offset, duplicate: true)
            connection.send { FrameEncoder.appendAck(ack, correlation: ticket.correlation, to: &$0) }
        case .sequenceGap(let expected):
            reject(.sequenceGap, "producer sequence skips ahead; the next accepted is \(expected)", correlation: ticket.correlation)
        case .failed(let error):
            reject(.notStored, "not stored: \(error)", correlation: ticket.correlation)
        case .rejected(let reason):
            reject(.notStored, "not stored: \(reason)", correlation: ticket.correlation)
        case .unknown(let reason):
            reject(.outcomeUnknown, "outcome unknown: \(reason)", correlation: ticket.correlation)
        }
        if pausedForInflight && inflightCount < Limits.inflightPublishesMax / 2
            && inflightBytes < context.shared.config.inflightBytesMax / 2
        {
            pausedForInflight = false
            resumeIfClear()
        }
    }

    /// Refuses further work and says goodbye; used by a graceful shutdown.
    func shutDown() {
        guard !closing else { return }
        fail(ProtocolViolation(.shuttingDown, "the node is shutting down"))
    }
}
