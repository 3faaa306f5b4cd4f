import Auth
import Storage
import Synchronization
import Transport
import Wire

/// What every loop of a node shares: configuration, logger, the store's committer
/// and directory, and the channel feeds. All members are thread-safe.
final class NodeShared: Sendable {
    let config: NodeConfig
    let logger: Logger
    let directory: DataDirectory
    let feeds: FeedRegistry
    /// Where publishes go: the group committer, or the replication thread when clustered.
    let committer: any PublishSink
    /// Set when clients must present a token.
    let tokenSecret: TokenSecret?
    /// Clustered nodes: relays channels whose shard has no replica here.
    let edge: EdgeRelay?
    /// Clustered nodes: whether this node holds a replica of a shard (changes as
    /// replicas move).
    let hosts: @Sendable (Int) -> Bool
    let shardOf: @Sendable (String) -> Int
    /// Clustered nodes: a channel's record failed its checksum (its shard gets checked).
    let reportDamage: @Sendable (String) -> Void
    /// Clustered nodes: a read index for the channel's shard, answered once applied here
    /// (nil: no reachable leader). Nil on single nodes.
    let readIndex: (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)?
    /// Clustered nodes: the channel's head as of a read index, asked of a replica (edge
    /// `latest`); nil in the reply when none could confirm one.
    let channelHead: (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)?

    /// This node's client listener (`host:port`), once bound.
    let clientAddress = Mutex("")
    /// Clustered nodes: the channel's shard, replicas and leader as this node knows them
    /// (given this node's own entry); nil on single nodes.
    let clusterLocate: (@Sendable (String, Location.Node) -> Location)?

    /// LOCATE: where the channel's publishes are stored without a forwarding hop.
    func locate(_ channel: String) -> Location {
        let own = Location.Node(id: config.nodeId, address: clientAddress.withLock { $0 })
        return clusterLocate?(channel, own) ?? Location(channel: channel, shard: 0, leader: 0, nodes: [own])
    }

    /// True for a channel this node serves by relay from another node.
    func isEdge(_ channel: String) -> Bool { edge != nil && !hosts(shardOf(channel)) }

    init(
        config: NodeConfig, logger: Logger, directory: DataDirectory, feeds: FeedRegistry,
        committer: any PublishSink, tokenSecret: TokenSecret?, edge: EdgeRelay? = nil, hosts: @escaping @Sendable (Int) -> Bool = { _ in true },
        shardOf: @escaping @Sendable (String) -> Int = { _ in 0 },
        reportDamage: @escaping @Sendable (String) -> Void = { _ in },
        readIndex: (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)? = nil,
        channelHead: (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)? = nil,
        clusterLocate: (@Sendable (String, Location.Node) -> Location)? = nil
    ) {
        self.clusterLocate = clusterLocate
        self.channelHead = channelHead
        self.reportDamage = reportDamage
        self.readIndex = readIndex
        self.edge = edge
        self.hosts = hosts
        self.shardOf = shardOf
        self.tokenSecret = tokenSecret
        self.config = config
        self.logger = logger
        self.directory = directory
        self.feeds = feeds
        self.committer = committer
    }
}

/// Takes publishes from sessions; outcomes come back through the loops' mailboxes.
protocol PublishSink: Sendable {
    /// False (nothing queued) once the sink is stopping.
    func submit(_ items: [(AppendInput, PublishTicket)]) -> Bool
    /// Refuses new publishes; the sink's thread settles the rest and returns.
    func stop()
}

extension GroupCommitter: PublishSink where Context == PublishTicket {}
extension ShardHost: PublishSink {}
