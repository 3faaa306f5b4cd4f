/// The scenarios shipped with the simulator (also as JSON under Cluster/scenarios/).
public enum BuiltinScenarios {
    public static let all: [Scenario] = [broadcast, groups, direct, mixed, reconnectStorm, catchUp]

    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }

    /// The Telegram-channel case: one channel, one publisher, many readers.
    public static let broadcast = Scenario(
        name: "broadcast", description: "1 channel, 1 publisher at full speed, 100 subscribers, 1 KiB messages",
        users: 100, durationSeconds: 10,
        workloads: [Workload(
            name: "broadcast", channels: 1, subscribers: .fixed(100), publishers: .dedicated(count: 1),
            rate: .max(window: 512), size: .fixed(1024))])

    /// Many small groups where every member posts.
    public static let groups = Scenario(
        name: "groups", description: "200 groups of 5 members, every member posts, 2,000 msg/s in all, 256 B",
        users: 1000, durationSeconds: 10, rampUpSeconds: 1,
        workloads: [Workload(
            name: "groups", channels: 200, subscribers: .fixed(5), publishers: .members,
            rate: .perSecond(2000, poisson: true), size: .fixed(256))])

    /// One-to-one chats.
    public static let direct = Scenario(
        name: "direct", description: "500 direct chats between 1,000 users, 2,000 msg/s in all, 32-512 B",
        users: 1000, durationSeconds: 10, rampUpSeconds: 1,
        workloads: [Workload(
            name: "direct", channels: 500, subscribers: .fixed(2), publishers: .members,
            rate: .perSecond(2000, poisson: true), size: .uniform(min: 32, max: 512))])

    /// A messenger's mix: Zipf-popular broadcast channels, groups and direct chats.
    public static let mixed = Scenario(
        name: "mixed", description: "20 Zipf-popular channels (up to 1,000 readers), 100 groups, 250 chats",
        users: 1000, durationSeconds: 10, rampUpSeconds: 1,
        workloads: [
            Workload(
                name: "channels", channels: 20, subscribers: .zipf(exponent: 1.0, max: 1000),
                publishers: .dedicated(count: 1), rate: .perSecond(500, poisson: true), size: .uniform(min: 256, max: 4096)),
            Workload(
                name: "groups", channels: 100, subscribers: .fixed(8), publishers: .members,
                rate: .perSecond(1000, poisson: true), size: .uniform(min: 64, max: 1024)),
            Workload(
                name: "direct", channels: 250, subscribers: .fixed(2), publishers: .members,
                rate: .perSecond(1000, poisson: true), size: .uniform(min: 32, max: 512)),
        ])

    /// Most clients drop at once and come back, resuming from their last offset.
    public static let reconnectStorm = Scenario(
        name: "reconnect-storm", description: "500 readers of 10 channels; at 3 s, 80% drop and reconnect together",
        users: 500, durationSeconds: 8, rampUpSeconds: 0.5,
        workloads: [Workload(
            name: "channels", channels: 10, subscribers: .fixed(100), publishers: .dedicated(count: 1),
            rate: .perSecond(1000, poisson: false), size: .fixed(512))],
        storm: ReconnectStorm(atSeconds: 3, fraction: 0.8, reconnectDelayMs: 200))

    /// Subscribers join late and read the history before going live.
    public static let catchUp = Scenario(
        name: "catch-up", description: "10 channels, 200 readers; half join at 4 s and read history from offset 1",
        users: 200, durationSeconds: 8,
        workloads: [Workload(
            name: "channels", channels: 10, subscribers: .fixed(40), publishers: .dedicated(count: 1),
            rate: .perSecond(2000, poisson: false), size: .fixed(1024))],
        lateJoiners: LateJoiners(fraction: 0.5, atSeconds: 4))
}
