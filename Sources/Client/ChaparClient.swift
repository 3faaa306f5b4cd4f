import ChaparCore
import Synchronization
import Transport
import Wire

/// A Chapar client: connect, publish (pipelined, with acknowledgements), subscribe
/// with resume from an offset, fetch history.
///
/// Calls may come from any task or thread; the connection itself lives on one event
/// loop. Many calls may be in flight at once: that is pipelining, and each publish
/// still gets its own acknowledgement.
public final class ChaparClient: Sendable {
    public let address: SocketAddress
    public let welcome: Welcome
    let loop: EventLoop
    private let box: ConnectionBox

    /// One loop thread shared by every client of this process that is not given a loop.
    public static let sharedLoops: EventLoopGroup = {
        do { return try EventLoopGroup(count: 1, name: "chapar-client") } catch {
            fatalError("cannot start the client event loop: \(error)")
        }
    }()

    /// Connects, sends HELLO and waits for WELCOME.
    public static func connect(
        to address: SocketAddress, clientName: String = "chapar-client", token: [UInt8]? = nil,
        loop: EventLoop? = nil, timeoutMs: Int32 = 5000
    ) async throws(ClientError) -> ChaparClient {
        let loop = loop ?? sharedLoops.loops[0]
        let fd: Int32
        do { fd = try connectTCP(to: address, timeoutMs: timeoutMs) } catch { throw .connect(error) }
        let box = ConnectionBox()
        let result: Result<Welcome, ClientError> = await withCheckedContinuation { continuation in
            let accepted = loop.execute {
                do throws(SystemError) {
                    let connection = try ClientConnection(fd: fd, loop: loop, peer: address)
                    box.connection = connection
                    connection.handler = box
                    connection.request(.hello(Hello(clientName: clientName, token: token))) { reply in
                        switch reply {
                        case .success(.welcome(let welcome)): continuation.resume(returning: .success(welcome))
                        case .success(let other):
                            continuation.resume(returning: .failure(.closed(reason: "expected WELCOME, got \(other.type)")))
                        case .failure(let error): continuation.resume(returning: .failure(error))
                        }
                    }
                } catch {
                    continuation.resume(returning: .failure(.connect(error)))
                }
            }
            if !accepted { continuation.resume(returning: .failure(.closed(reason: "client event loop is stopping"))) }
        }
        return ChaparClient(address: address, welcome: try result.get(), loop: loop, box: box)
    }

    private init(address: SocketAddress, welcome: Welcome, loop: EventLoop, box: ConnectionBox) {
        self.address = address
        self.welcome = welcome
        self.loop = loop
        self.box = box
    }

    /// Sends one request and waits for its reply frame.
    func call(_ frame: Frame) async throws(ClientError) -> Frame {
        let box = self.box
        let result: Result<Frame, ClientError> = await withCheckedContinuation { continuation in
            let accepted = loop.execute {
                guard let connection = box.connection else {
                    return continuation.resume(returning: .failure(.closed(reason: "not connected")))
                }
                connection.request(frame) { continuation.resume(returning: $0) }
            }
            if !accepted { continuation.resume(returning: .failure(.closed(reason: "client event loop is stopping"))) }
        }
        return try result.get()
    }

    /// Publishes and waits for the acknowledgement (the message is then durable per the
    /// server's durability mode). `.closed` means the outcome is unknown: retry with the
    /// same producer stamp to have it stored at most once.
    public func publish(_ channel: String, _ payload: [UInt8], producer: ProducerStamp? = nil) async throws(ClientError)
        -> Ack
    {
        try Self.check(channel: channel)
        guard payload.count <= Int(welcome.payloadBytesMax) else {
            throw .invalidArgument("payload is \(payload.count) bytes; the server accepts \(welcome.payloadBytesMax)")
        }
        let reply = try await call(.publish(Publish(channel: channel, producer: producer, payload: payload)))
        guard case .ack(let ack) = reply else { throw .closed(reason: "expected ACK, got \(reply.type)") }
        return ack
    }

    /// Subscribes from `from`; the stream yields every message from there on, in order,
    /// without gaps (except where retention already removed history) or duplicates. When a
    /// clustered node ends the subscription because the channel's replica moved away
    /// (`replica_moved`), the client subscribes again from the next offset on the same
    /// connection and the stream goes on; other server-side ends finish it with the error.
    public func subscribe(_ channel: String, from: StartPosition, bufferMessagesMax: Int = 8192)
        async throws(ClientError) -> SubscriptionStream
    {
        try Self.check(channel: channel)
        let box = self.box
        let loop = self.loop
        let result: Result<SubscriptionStream, ClientError> = await withCheckedContinuation { continuation in
            let accepted = loop.execute {
                guard let connection = box.connection else {
                    return continuation.resume(returning: .failure(.closed(reason: "not connected")))
                }
                if box.streams[channel] != nil {
                    return continuation.resume(returning: .failure(.invalidArgument("already subscribed to '\(channel)'")))
                }
                // Register the stream when SUBSCRIBED arrives: MESSAGE frames follow it.
                connection.request(.subscribe(Subscribe(channel: channel, from: from))) { reply in
                    switch reply {
                    case .success(.subscribed(let subscribed)):
                        let stream = SubscriptionStream(
                            channel: channel, subscribed: subscribed, bufferMessagesMax: bufferMessagesMax
                        ) { pause in
                            loop.execute {
                                if pause { box.connection?.tcp.pauseReading() } else { box.connection?.tcp.resumeReading() }
                            }
                        }
                        box.streams[channel] = stream
                        box.nextOffsets[channel] = subscribed.nextOffset
                        continuation.resume(returning: .success(stream))
                    case .success(let other):
                        continuation.resume(returning: .failure(.closed(reason: "expected SUBSCRIBED, got \(other.type)")))
                    case .failure(let error):
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
            if !accepted { continuation.resume(returning: .failure(.closed(reason: "client event loop is stopping"))) }
        }
        return try result.get()
    }

    /// Ends a subscription; its stream finishes after the messages already sent.
    public func unsubscribe(_ channel: String) async throws(ClientError) {
        _ = try await call(.unsubscribe(channel: channel))
        let box = self.box
        loop.execute {
            box.nextOffsets[channel] = nil
            box.streams.removeValue(forKey: channel)?.finish(nil)
        }
    }

    /// Reads stored messages without subscribing.
    public func fetch(_ channel: String, from: UInt64, maxMessages: UInt32 = 1000, maxBytes: UInt32 = 1 << 20)
        async throws(ClientError) -> Batch
    {
        try Self.check(channel: channel)
        let reply = try await call(.fetch(Fetch(channel: channel, from: from, maxMessages: maxMessages, maxBytes: maxBytes)))
        guard case .batch(let batch) = reply else { throw .closed(reason: "expected BATCH, got \(reply.type)") }
        return batch
    }

    /// Where the channel lives: its shard's replicas and their client addresses, and which
    /// of them leads (a publish sent to the leader needs no forwarding hop).
    public func locate(_ channel: String) async throws(ClientError) -> Location {
        try Self.check(channel: channel)
        let reply = try await call(.locate(channel: channel))
        guard case .location(let location) = reply else { throw .closed(reason: "expected LOCATION, got \(reply.type)") }
        return location
    }

    /// Round trip time in microseconds.
    public func ping() async throws(ClientError) -> Int64 {
        let started = MonotonicClock.nowNs()
        _ = try await call(.ping(nonce: UInt64(started)))
        return (MonotonicClock.nowNs() - started) / 1000
    }

    /// Closes the connection; pending calls fail with `.closed`.
    public func close() {
        let box = self.box
        loop.execute { box.connection?.close() }
    }

    static func check(channel: String) throws(ClientError) {
        if case .failure(let problem) = ChannelName.validate(channel) { throw .invalidArgument(problem.description) }
    }
}

/// The loop-side state of a `ChaparClient`.
final class ConnectionBox: ClientConnectionHandler, @unchecked Sendable {  // guarded by: the client's loop thread
    var connection: ClientConnection?
    var streams: [String: SubscriptionStream] = [:]
    /// The offset each subscription expects next (where a resumed one starts).
    var nextOffsets: [String: UInt64] = [:]
    /// The last unasked ERROR: the server sends it just before the UNSUBSCRIBED that ends a
    /// subscription.
    private var lastNotice: ErrorReply?

    func clientConnection(_ connection: ClientConnection, message: Message) {
        guard let stream = streams[message.channel] else { return }
        nextOffsets[message.channel] = message.offset + 1
        stream.push(message)
    }

    func clientConnection(_ connection: ClientConnection, notice: ErrorReply) {
        lastNotice = notice
    }

    func clientConnection(_ connection: ClientConnection, ended channel: String) {
        let notice = lastNotice ?? ErrorReply(code: .storageFailure, message: "subscription to '\(channel)' ended by the server")
        lastNotice = nil
        guard let stream = streams[channel] else { return }
        guard notice.code == ErrorCode.replicaMoved.rawValue, let next = nextOffsets[channel] else {
            streams[channel] = nil
            nextOffsets[channel] = nil
            return stream.finish(.server(notice))
        }
        // The node now relays the channel from a replica elsewhere: resume where we were.
        connection.request(.subscribe(Subscribe(channel: channel, from: .offset(next)))) { [weak self] reply in
            guard case .success(.subscribed) = reply else {
                self?.streams[channel] = nil
                self?.nextOffsets[channel] = nil
                if case .failure(let error) = reply { stream.finish(error) } else { stream.finish(.server(notice)) }
                return
            }
        }
    }

    func clientConnection(_ connection: ClientConnection, closedWith error: ClientError) {
        for stream in streams.values { stream.finish(error) }
        streams = [:]
    }
}
