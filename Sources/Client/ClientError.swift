import Transport
import Wire

/// Why a client call failed.
public enum ClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The TCP connection could not be made.
    case connect(SystemError)
    /// The server answered the request with an ERROR frame.
    case server(ErrorReply)
    /// The connection closed before the answer came; `reason` says how. For a publish
    /// this means the outcome is unknown: it may or may not have been stored.
    case closed(reason: String)
    /// The server sent bytes that break the protocol.
    case protocolViolation(ProtocolViolation)
    /// An argument was refused before anything was sent.
    case invalidArgument(String)
    /// No answer within the deadline.
    case timeout

    public var description: String {
        switch self {
        case .connect(let error): "cannot connect: \(error)"
        case .server(let reply):
            "server error \(reply.knownCode.map { "\($0)" } ?? "code") (\(reply.code)): \(reply.message)"
        case .closed(let reason): "connection closed: \(reason)"
        case .protocolViolation(let violation): "protocol violation from server: \(violation)"
        case .invalidArgument(let text): text
        case .timeout: "timed out"
        }
    }
}
