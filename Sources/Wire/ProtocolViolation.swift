import ChaparCore

/// Input that breaks the client protocol. The receiver answers with an ERROR frame
/// carrying `code` and `message` (and `correlation` when the request was identified),
/// then closes the connection if `code.isFatal`.
public struct ProtocolViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var correlation: UInt32

    public init(_ code: ErrorCode, _ message: String, correlation: UInt32 = 0) {
        self.code = code
        self.message = message
        self.correlation = correlation
    }

    init(_ failure: DecodeFailure, type: FrameType, correlation: UInt32) {
        let detail: String
        switch failure {
        case .truncated(let field): detail = "field '\(field)' runs past the end of the frame"
        case .trailingBytes(let count): detail = "\(count) bytes follow the last field"
        case .invalid(let field, let reason): detail = "field '\(field)': \(reason)"
        }
        self.init(.malformedFrame, "\(type) frame: \(detail)", correlation: correlation)
    }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }
}
