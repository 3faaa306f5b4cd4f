import ChaparCore

/// Where a subscription starts reading.
public enum StartPosition: Equatable, Sendable {
    /// The oldest offset still retained.
    case earliest
    /// The next offset to be written: only messages published after the subscription.
    case latest
    /// A given offset (1 is the first message a channel ever had).
    case offset(UInt64)
}

public struct Hello: Equatable, Sendable {
    public var version: UInt16
    public var clientName: String
    public var token: [UInt8]?

    public init(version: UInt16 = ProtocolVersion.current, clientName: String, token: [UInt8]? = nil) {
        self.version = version
        self.clientName = clientName
        self.token = token
    }
}

public struct Welcome: Equatable, Sendable {
    public var version: UInt16
    public var serverId: String
    public var frameBytesMax: UInt32
    public var payloadBytesMax: UInt32
    public var channelBytesMax: UInt16
    public var inflightPublishesMax: UInt32

    public init(
        version: UInt16, serverId: String, frameBytesMax: UInt32, payloadBytesMax: UInt32,
        channelBytesMax: UInt16, inflightPublishesMax: UInt32
    ) {
        self.version = version
        self.serverId = serverId
        self.frameBytesMax = frameBytesMax
        self.payloadBytesMax = payloadBytesMax
        self.channelBytesMax = channelBytesMax
        self.inflightPublishesMax = inflightPublishesMax
    }
}

public struct Publish: Equatable, Sendable {
    public var channel: String
    public var producer: ProducerStamp?
    public var payload: [UInt8]

    public init(channel: String, producer: ProducerStamp? = nil, payload: [UInt8]) {
        self.channel = channel
        self.producer = producer
        self.payload = payload
    }
}

public struct Ack: Equatable, Sendable {
    public var channel: String
    public var offset: UInt64
    /// True when the publish repeated a stored producer sequence and was not stored again.
    public var duplicate: Bool

    public init(channel: String, offset: UInt64, duplicate: Bool = false) {
        self.channel = channel
        self.offset = offset
        self.duplicate = duplicate
    }
}

public struct Subscribe: Equatable, Sendable {
    public var channel: String
    public var from: StartPosition

    public init(channel: String, from: StartPosition) {
        self.channel = channel
        self.from = from
    }
}

public struct Subscribed: Equatable, Sendable {
    public var channel: String
    /// The first offset this subscription will deliver.
    public var nextOffset: UInt64
    /// The channel's last stored offset when the subscription began (0 if empty).
    public var head: UInt64

    public init(channel: String, nextOffset: UInt64, head: UInt64) {
        self.channel = channel
        self.nextOffset = nextOffset
        self.head = head
    }
}

public struct Message: Equatable, Sendable {
    public var channel: String
    public var offset: UInt64
    /// Milliseconds since the Unix epoch at which the node stored the message.
    public var timestamp: Int64
    public var payload: [UInt8]

    public init(channel: String, offset: UInt64, timestamp: Int64, payload: [UInt8]) {
        self.channel = channel
        self.offset = offset
        self.timestamp = timestamp
        self.payload = payload
    }
}

public struct Fetch: Equatable, Sendable {
    public var channel: String
    public var from: UInt64
    public var maxMessages: UInt32
    public var maxBytes: UInt32

    public init(channel: String, from: UInt64, maxMessages: UInt32, maxBytes: UInt32) {
        self.channel = channel
        self.from = from
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }
}

/// One stored message inside a BATCH.
public struct Record: Equatable, Sendable {
    public var offset: UInt64
    public var timestamp: Int64
    public var payload: [UInt8]

    public init(offset: UInt64, timestamp: Int64, payload: [UInt8]) {
        self.offset = offset
        self.timestamp = timestamp
        self.payload = payload
    }
}

public struct Batch: Equatable, Sendable {
    public var channel: String
    /// The oldest retained offset (head + 1 when nothing is retained).
    public var earliest: UInt64
    /// The last stored offset (0 if the channel is empty).
    public var head: UInt64
    public var records: [Record]

    public init(channel: String, earliest: UInt64, head: UInt64, records: [Record]) {
        self.channel = channel
        self.earliest = earliest
        self.head = head
        self.records = records
    }
}

/// Where a channel lives (LOCATION): its shard's replicas with their client addresses,
/// and which of them leads. A publish sent to the leader is stored without a forwarding
/// hop; any node accepts it.
public struct Location: Equatable, Sendable {
    public struct Node: Equatable, Sendable {
        public var id: String
        /// `host:port` of the node's client listener; empty when not known.
        public var address: String

        public init(id: String, address: String) {
            self.id = id
            self.address = address
        }
    }

    public var channel: String
    public var shard: UInt32
    /// Index into `nodes` of the shard's leader; nil when none is known.
    public var leader: Int?
    public var nodes: [Node]

    public init(channel: String, shard: UInt32, leader: Int?, nodes: [Node]) {
        self.channel = channel
        self.shard = shard
        self.leader = leader
        self.nodes = nodes
    }

    public var leaderNode: Node? { leader.map { nodes[$0] } }

    /// Nodes a LOCATION lists at most (the count is a u8; 255 marks "no leader").
    public static let nodesMax = 254
}

public struct ErrorReply: Equatable, Sendable {
    /// The raw code, kept even when this build does not know it.
    public var code: UInt16
    public var message: String

    public init(code: ErrorCode, message: String) {
        self.code = code.rawValue
        self.message = message
    }

    public init(rawCode: UInt16, message: String) {
        self.code = rawCode
        self.message = message
    }

    public var knownCode: ErrorCode? { ErrorCode(rawValue: code) }
}

public enum ProtocolVersion {
    public static let current: UInt16 = 1
}

/// A decoded frame body.
public enum Frame: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case publish(Publish)
    case ack(Ack)
    case subscribe(Subscribe)
    case subscribed(Subscribed)
    case unsubscribe(channel: String)
    case unsubscribed(channel: String)
    case message(Message)
    case fetch(Fetch)
    case batch(Batch)
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)
    case error(ErrorReply)
    case locate(channel: String)
    case location(Location)

    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .publish: .publish
        case .ack: .ack
        case .subscribe: .subscribe
        case .subscribed: .subscribed
        case .unsubscribe: .unsubscribe
        case .unsubscribed: .unsubscribed
        case .message: .message
        case .fetch: .fetch
        case .batch: .batch
        case .ping: .ping
        case .pong: .pong
        case .error: .error
        case .locate: .locate
        case .location: .location
        }
    }
}

/// A frame with the correlation id that ties a reply to its request (0: unsolicited).
public struct Envelope: Equatable, Sendable {
    public var correlation: UInt32
    public var frame: Frame

    public init(_ frame: Frame, correlation: UInt32 = 0) {
        self.correlation = correlation
        self.frame = frame
    }
}
