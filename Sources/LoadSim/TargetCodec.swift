import Transport

/// What a target's bytes mean to the simulator.
enum CodecEvent {
    /// The handshake finished; requests may flow.
    case ready
    /// A subscription took effect; `next` is the first position it will deliver when the
    /// target says so (Chapar), nil when it does not (NATS, Redis).
    case subscribed(channel: String, next: UInt64?)
    /// One publish was acknowledged. `correlation` is nil for targets that answer in
    /// order (Redis); `offset` is the stored position where the target has one.
    case acked(correlation: UInt32?, offset: UInt64?)
    /// `count` publishes are known to be processed, without per-message acknowledgement
    /// (NATS: a PONG after them). Frees publish window, counts no acks.
    case flushed(count: Int)
    /// A delivered message; `offset` where the target has offsets.
    case message(offset: UInt64?, payload: UnsafeRawBufferPointer)
    /// The server ended a subscription (Chapar: UNSUBSCRIBED with correlation 0, after an
    /// ERROR naming why); subscribing again resumes it.
    case subscriptionEnded(channel: String)
    /// The target needs these bytes sent (NATS answers the server's PING).
    case reply([UInt8])
    /// The target refused something; the text says what. `correlation` names the
    /// request when the target says which.
    case failure(String, correlation: UInt32?)
    /// Where a channel's publishes are stored without forwarding (Chapar LOCATION): the
    /// shard leader's client address (nil when the node knows no leader), and the client
    /// addresses of the shard's replicas (any of them knows its leader).
    case located(address: String?, replicas: [String])
}

struct CodecError: Error, CustomStringConvertible {
    var description: String
}

/// Speaks one target's protocol on one connection. Used only on the connection's loop.
protocol TargetCodec: AnyObject {
    /// Per-message publish acknowledgements exist.
    var supportsAcks: Bool { get }
    /// A subscription can start from an older position (history).
    var supportsHistory: Bool { get }
    /// Messages carry a target-assigned offset (ordering is checked per channel).
    var hasOffsets: Bool { get }
    /// Acknowledgements name their publish's correlation (Chapar, JetStream) rather than
    /// arriving in publish order (Redis).
    var acksCarryCorrelation: Bool { get }
    func greeting() -> [UInt8]
    /// `from`: nil for live only, else the first offset wanted (only with history).
    func subscribe(_ channel: String, correlation: UInt32, from: UInt64?) -> [UInt8]
    func publish(_ channel: String, payload: UnsafeRawBufferPointer, correlation: UInt32, into buffer: inout [UInt8])
    /// Bytes that make the target confirm everything before them (NATS: PING). Nil when
    /// publishes are acknowledged one by one.
    func flushMarker(publishes: Int) -> [UInt8]?
    /// Bytes asking where `channel` is led (Chapar LOCATE); nil for targets without it.
    func locate(_ channel: String, correlation: UInt32) -> [UInt8]?
    func consume(_ bytes: UnsafeRawBufferPointer, _ handle: (CodecEvent) -> Void) throws(CodecError)
}

extension TargetCodec {
    var acksCarryCorrelation: Bool { hasOffsets }
    func locate(_ channel: String, correlation: UInt32) -> [UInt8]? { nil }
}

/// The systems the simulator drives: `chapar://H:P[,H:P…]`, `nats://H:P`, `redis://H:P`,
/// and `jetstream://H:P[,H:P…]` (NATS JetStream: a file-backed stream with one replica per
/// address given, at most 3, publishes acknowledged by the stream).
public struct Target: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case chapar, nats, redis, jetstream
    }

    public var kind: Kind
    public var addresses: [SocketAddress]
    /// Sent in HELLO to Chapar nodes that require a token.
    public var token: [UInt8]?
    /// Chapar clusters: a connection that only publishes, to one channel, moves to the
    /// node leading the channel's shard (LOCATE) when that node is one of `addresses`.
    public var locatePublishers = true

    public init(parsing url: String) throws(CodecErrorPublic) {
        guard let separator = url.firstRange(of: "://") else { throw CodecErrorPublic(description: "target '\(url)' is not KIND://HOST:PORT") }
        guard let kind = Kind(rawValue: String(url[..<separator.lowerBound])) else {
            throw CodecErrorPublic(description: "target kind in '\(url)' is not chapar, nats, redis or jetstream")
        }
        var addresses: [SocketAddress] = []
        for part in url[separator.upperBound...].split(separator: ",") {
            do { addresses.append(try SocketAddress(parsing: String(part))) } catch {
                throw CodecErrorPublic(description: "target '\(url)': \(error)")
            }
        }
        guard !addresses.isEmpty else { throw CodecErrorPublic(description: "target '\(url)' names no address") }
        if kind != .chapar && kind != .jetstream && addresses.count > 1 {
            throw CodecErrorPublic(description: "\(kind.rawValue) targets take one address")
        }
        self.kind = kind
        self.addresses = addresses
    }

    public var description: String { "\(kind.rawValue)://" + addresses.map(\.description).joined(separator: ",") }

    /// A connection's codec; `setup`: this connection does the target's one-time setup
    /// (creates the JetStream stream).
    func makeCodec(setup: Bool = true) -> TargetCodec {
        switch kind {
        case .chapar: ChaparCodec(token: token)
        case .nats: NatsCodec()
        case .redis: RedisCodec()
        case .jetstream: JetStreamCodec(replicas: min(3, addresses.count), createsStream: setup)
        }
    }
}

public struct CodecErrorPublic: Error, CustomStringConvertible {
    public var description: String
}

extension Array where Element == UInt8 {
    mutating func append(ascii text: String) {
        append(contentsOf: text.utf8)
    }
}

/// Finds "\r\n" at or after `from`; returns the index of "\r".
func findLineEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
    var index = from
    while index + 1 < bytes.count {
        if bytes[index] == 13 && bytes[index + 1] == 10 { return index }
        index += 1
    }
    return nil
}

/// Parses a non-negative decimal in bytes[range]; nil if anything else is there.
func parseDecimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
    guard !range.isEmpty else { return nil }
    var value = 0
    for index in range {
        let digit = Int(bytes[index]) - 48
        guard digit >= 0 && digit <= 9 else { return nil }
        value = value * 10 + digit
    }
    return value
}

/// Keeps the unparsed tail of a text protocol stream between reads.
struct PendingBytes {
    private var bytes: [UInt8] = []

    /// Calls `parse` with all buffered plus new bytes; `parse` returns how many it used.
    mutating func feed(_ input: UnsafeRawBufferPointer, _ parse: (UnsafeRawBufferPointer) throws(CodecError) -> Int)
        throws(CodecError)
    {
        if bytes.isEmpty {
            let used = try parse(input)
            if used < input.count { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[used...])) }
            return
        }
        bytes.append(contentsOf: input)
        let result: Result<Int, CodecError> = bytes.withUnsafeBytes { buffer in
            do throws(CodecError) { return .success(try parse(buffer)) } catch { return .failure(error) }
        }
        bytes.removeFirst(try result.get())
    }
}
