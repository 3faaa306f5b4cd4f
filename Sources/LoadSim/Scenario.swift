#if canImport(Glibc)
import Glibc
#endif

/// How many subscribers each channel of a workload has.
public enum SubscriberDistribution: Equatable, Sendable {
    /// Every channel has exactly `n` subscribers.
    case fixed(Int)
    /// Channel i (1-based, by popularity) has about max / i^exponent subscribers, at
    /// least one: a few huge channels and a long tail, as in a messenger.
    case zipf(exponent: Double, max: Int)

    public func subscribers(ofChannel rank: Int) -> Int {
        switch self {
        case .fixed(let n): return n
        case .zipf(let exponent, let max):
            return Swift.max(1, Int((Double(max) / pow(Double(rank), exponent)).rounded()))
        }
    }
}

/// Message payload sizes in bytes (at least `PayloadStamp.bytes`).
public enum SizeDistribution: Equatable, Sendable {
    case fixed(Int)
    case uniform(min: Int, max: Int)

    public var mean: Double {
        switch self {
        case .fixed(let n): Double(n)
        case .uniform(let low, let high): Double(low + high) / 2
        }
    }
}

/// Publish pacing. Open-loop rates send on a schedule whatever the server does, so a
/// slow server shows up as latency, not as a lower offered load (no coordinated omission).
public enum PublishRate: Equatable, Sendable {
    /// Messages per second across the workload, at fixed intervals or as a Poisson process.
    case perSecond(Double, poisson: Bool)
    /// As fast as acknowledgements allow, with at most `window` unacknowledged per publisher.
    case max(window: Int)
}

/// Who publishes to a workload's channels.
public enum PublisherRole: Equatable, Sendable {
    /// `count` extra connections per channel that only publish (broadcast channels).
    case dedicated(count: Int)
    /// The channel's own subscribers take turns publishing (groups, direct chats).
    case members
}

/// One class of traffic: a set of channels with the same shape.
public struct Workload: Equatable, Sendable {
    public var name: String
    public var channels: Int
    public var subscribers: SubscriberDistribution
    public var publishers: PublisherRole
    public var rate: PublishRate
    public var size: SizeDistribution

    public init(
        name: String, channels: Int, subscribers: SubscriberDistribution, publishers: PublisherRole,
        rate: PublishRate, size: SizeDistribution
    ) {
        self.name = name
        self.channels = channels
        self.subscribers = subscribers
        self.publishers = publishers
        self.rate = rate
        self.size = size
    }
}

/// Subscriber connections that drop and come back, resuming after the last offset held.
public struct Churn: Equatable, Sendable {
    /// Disconnects per second, spread over the run.
    public var disconnectsPerSecond: Double
    public var reconnectDelayMs: Int
}

/// Most subscribers drop at one moment and reconnect together.
public struct ReconnectStorm: Equatable, Sendable {
    public var atSeconds: Double
    public var fraction: Double
    public var reconnectDelayMs: Int
}

/// Subscribers that join after the run started and first read the channel's history.
public struct LateJoiners: Equatable, Sendable {
    public var fraction: Double
    public var atSeconds: Double
}

/// A load scenario: who connects, which channels exist, who publishes how much.
public struct Scenario: Equatable, Sendable {
    public var name: String
    public var description: String
    /// Subscriber connections shared by all workloads (each user may be in several channels).
    public var users: Int
    public var durationSeconds: Double
    public var rampUpSeconds: Double
    public var workloads: [Workload]
    public var churn: Churn?
    public var storm: ReconnectStorm?
    public var lateJoiners: LateJoiners?
    /// Seed for every random choice (membership, Poisson gaps, sizes).
    public var seed: UInt64

    public init(
        name: String, description: String, users: Int, durationSeconds: Double, rampUpSeconds: Double = 0,
        workloads: [Workload], churn: Churn? = nil, storm: ReconnectStorm? = nil, lateJoiners: LateJoiners? = nil,
        seed: UInt64 = 1
    ) {
        self.name = name
        self.description = description
        self.users = users
        self.durationSeconds = durationSeconds
        self.rampUpSeconds = rampUpSeconds
        self.workloads = workloads
        self.churn = churn
        self.storm = storm
        self.lateJoiners = lateJoiners
        self.seed = seed
    }
}
