import ChaparCore
import Transport
import Wire

/// Receives what a `ClientConnection` decodes. Called on the connection's loop thread.
public protocol ClientConnectionHandler: AnyObject {
    /// A MESSAGE frame of a subscription.
    func clientConnection(_ connection: ClientConnection, message: Message)
    /// An ERROR the server sent unasked that does not end the connection (a
    /// subscription that ended because its history could not be read).
    func clientConnection(_ connection: ClientConnection, notice: ErrorReply)
    /// The connection is gone; every pending request has already been failed.
    func clientConnection(_ connection: ClientConnection, closedWith error: ClientError)
    /// The server ended a subscription (UNSUBSCRIBED with correlation 0, right after the
    /// ERROR notice saying why).
    func clientConnection(_ connection: ClientConnection, ended channel: String)
}

extension ClientConnectionHandler {
    public func clientConnection(_ connection: ClientConnection, ended channel: String) {}
}

/// The loop-side half of a client: frames out, replies matched to requests by
/// correlation id, MESSAGE frames handed to the handler. Everything runs on its loop.
public final class ClientConnection: ConnectionDelegate {  // guarded by: loop thread
    public typealias Reply = (Result<Frame, ClientError>) -> Void

    public let loop: EventLoop
    public let tcp: ByteStream
    public weak var handler: ClientConnectionHandler?
    private var frames = FrameReader()
    private var pending: [UInt32: Reply] = [:]
    private var nextCorrelation: UInt32 = 1
    private var closedError: ClientError?

    /// Adopts a connected socket on `loop`. Call on the loop thread.
    public init(fd: Int32, loop: EventLoop, peer: SocketAddress?) throws(SystemError) {
        self.loop = loop
        tcp = try TCPConnection(fd: fd, loop: loop, peer: peer)
        tcp.delegate = self
    }

    /// Requests awaiting a reply.
    public var pendingCount: Int { pending.count }

    /// Sends `frame` with a fresh correlation id; `reply` gets the answer (or the error
    /// that ended the connection). Returns the correlation id.
    @discardableResult
    public func request(_ frame: Frame, reply: @escaping Reply) -> UInt32 {
        if let closedError {
            reply(.failure(closedError))
            return 0
        }
        let correlation = nextCorrelation
        nextCorrelation = nextCorrelation == .max ? 1 : nextCorrelation + 1
        pending[correlation] = reply
        tcp.send(FrameEncoder.encode(Envelope(frame, correlation: correlation)))
        return correlation
    }

    /// Sends pre-encoded frame bytes whose replies are not tracked (the bytes MUST use
    /// correlation ids that `request` does not: the load simulator uses this).
    public func sendRaw(_ bytes: [UInt8]) {
        tcp.send(bytes)
    }

    public func close() {
        tcp.close()
    }

    public func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        do throws(ProtocolViolation) {
            try frames.feed(bytes) { envelope in dispatch(envelope) }
        } catch {
            finish(.protocolViolation(error))
            tcp.close()
        }
    }

    private func dispatch(_ envelope: Envelope) {
        if case .message(let message) = envelope.frame {
            handler?.clientConnection(self, message: message)
            return
        }
        if envelope.correlation == 0 {
            if case .error(let reply) = envelope.frame {
                // Unsolicited: a fatal error for the whole connection, or a subscription that ended.
                if ErrorCode(rawValue: reply.code)?.isFatal ?? true { finish(.server(reply)) }
                else { handler?.clientConnection(self, notice: reply) }
            } else if case .unsubscribed(let channel) = envelope.frame {
                handler?.clientConnection(self, ended: channel)
            }
            return
        }
        guard let reply = pending.removeValue(forKey: envelope.correlation) else { return }
        if case .error(let error) = envelope.frame {
            reply(.failure(.server(error)))
        } else {
            reply(.success(envelope.frame))
        }
    }

    public func connectionWritable(_ connection: ByteStream) {}

    public func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        finish(.closed(reason: error?.description ?? "closed by the server"))
    }

    private func finish(_ error: ClientError) {
        guard closedError == nil else { return }
        closedError = error
        let waiting = pending
        pending = [:]
        for (_, reply) in waiting.sorted(by: { $0.key < $1.key }) { reply(.failure(error)) }
        handler?.clientConnection(self, closedWith: error)
    }
}
