import ChaparCore

/// Who connects, which channels they read and who publishes what, derived from a
/// scenario and its seed alone, so a run can be repeated exactly.
public final class LoadPlan: Sendable {
    public struct Channel: Sendable {
        public var index: UInt32
        public var name: String
        public var workload: Int
        /// User ids subscribed to this channel.
        public var subscribers: [Int]
    }

    public struct Publisher: Sendable {
        /// 1-based, unique in the run; written into every payload it sends.
        public var id: UInt32
        public var channel: UInt32
        /// The connection that sends: a user id, or `users + k` for dedicated publisher k.
        public var connection: Int
        /// Messages per second, nil for "as fast as acknowledgements allow".
        public var rate: Double?
        public var poisson: Bool
        public var window: Int
        public var size: SizeDistribution
    }

    public let scenario: Scenario
    public let runId: String
    public let channels: [Channel]
    public let publishers: [Publisher]
    /// Connections: users first (0..<users), then dedicated publishers.
    public let connectionCount: Int
    /// Users that connect only at `scenario.lateJoiners.atSeconds` and read history.
    public let lateUsers: Set<Int>
    /// The first connection that starts with the run; it does a target's one-time setup
    /// (the JetStream stream).
    let setupConnection: Int
    let channelIndexByName: [String: UInt32]

    public init(scenario: Scenario, runId: String) {
        self.scenario = scenario
        self.runId = runId
        var random = SeededRandom(seed: scenario.seed)
        var channels: [Channel] = []
        var publishers: [Publisher] = []
        var nextUser = 0
        var dedicated = 0
        for (workloadIndex, workload) in scenario.workloads.enumerated() {
            let perChannelRate: Double?
            switch workload.rate {
            case .perSecond(let rate, _): perChannelRate = rate / Double(workload.channels)
            case .max: perChannelRate = nil
            }
            let window: Int
            let poisson: Bool
            switch workload.rate {
            case .max(let size): window = size; poisson = false
            case .perSecond(_, let isPoisson): window = 1 << 16; poisson = isPoisson
            }
            for rank in 1...workload.channels {
                let count = min(scenario.users, workload.subscribers.subscribers(ofChannel: rank))
                // Small channels take consecutive users so memberships spread evenly; large
                // ones start at a random user so the biggest channels do not all overlap.
                let first: Int
                if count * 4 < scenario.users {
                    first = nextUser
                    nextUser = (nextUser + count) % scenario.users
                } else {
                    first = Int(random.next() % UInt64(scenario.users))
                }
                let members = (0..<count).map { (first + $0) % scenario.users }
                let index = UInt32(channels.count)
                channels.append(Channel(
                    index: index, name: "ls.\(runId).\(workload.name).\(rank)", workload: workloadIndex, subscribers: members))
                switch workload.publishers {
                case .dedicated(let n):
                    for _ in 0..<n {
                        publishers.append(Publisher(
                            id: UInt32(publishers.count + 1), channel: index, connection: scenario.users + dedicated,
                            rate: perChannelRate.map { $0 / Double(n) }, poisson: poisson, window: window, size: workload.size))
                        dedicated += 1
                    }
                case .members:
                    for member in members {
                        publishers.append(Publisher(
                            id: UInt32(publishers.count + 1), channel: index, connection: member,
                            rate: perChannelRate.map { $0 / Double(members.count) }, poisson: poisson,
                            window: max(1, window / members.count), size: workload.size))
                    }
                }
            }
        }
        var late: Set<Int> = []
        if let joiners = scenario.lateJoiners {
            let count = Int((Double(scenario.users) * joiners.fraction).rounded())
            var candidates = Array(0..<scenario.users)
            candidates.shuffle(using: &random)
            late = Set(candidates.prefix(count))
        }
        self.channels = channels
        self.publishers = publishers
        self.connectionCount = scenario.users + dedicated
        self.lateUsers = late
        setupConnection = (0..<(scenario.users + dedicated)).first { !late.contains($0) } ?? 0
        self.channelIndexByName = Dictionary(uniqueKeysWithValues: channels.map { ($0.name, $0.index) })
    }

    /// Channels each user reads, by user id.
    public func subscriptionsByUser() -> [[UInt32]] {
        var result = [[UInt32]](repeating: [], count: scenario.users)
        for channel in channels { for user in channel.subscribers { result[user].append(channel.index) } }
        return result
    }

    /// Deliveries one published message causes in the channel, for reporting fan-out.
    public var totalSubscriptions: Int { channels.reduce(0) { $0 + $1.subscribers.count } }
}
