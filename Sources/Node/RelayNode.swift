import Auth
import ChaparCore
import FoundationEssentials
import Placement
import Storage
import Synchronization
import Transport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A single relay node: event loops serving the client protocol, a group committer
/// storing channel logs, and the feeds that fan committed messages out.
///
/// Threads: one per event loop (`chapar-loop-N`), one group committer
/// (`chapar-commit`) and one WAL checkpointer (`chapar-ckpt`). The committer's thread reports commits through per-loop
/// mailboxes; it never touches a connection.
public final class RelayNode: Sendable {
    public let config: NodeConfig
    public let address: SocketAddress
    private let shared: NodeShared
    private let group: EventLoopGroup
    private let contexts: [LoopContextBox]
    private let listener: ListenerBox
    private let committerThread: OSThread
    private let checkpointer: Checkpointer
    private let checkpointerThread: OSThread
    private let cluster: ClusterBox
    /// Where gossip and the admin API listen (nil when not configured).
    public let gossipAddress: SocketAddress?
    public let adminAddress: SocketAddress?
    public let peerAddress: SocketAddress?
    private let links: PeerLinksBox

    public init(config: NodeConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        let directory = try DataDirectory(path: config.data)
        let feeds = FeedRegistry(cacheBytesMax: config.tailCacheBytesPerChannel, totalBytesMax: config.tailCacheBytesTotal)
        let loopCount = config.loops > 0 ? config.loops : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let group = try EventLoopGroup(count: loopCount, name: "chapar-loop")
        let mailboxes = MailboxTable()
        let loopTable = LoopTable()
        let onCommit: (CommitReport<PublishTicket>) -> Void = { report in Self.fanOut(report, feeds: feeds, mailboxes: mailboxes) }
        let sink: any PublishSink
        let runBackend: @Sendable () -> Void
        let recovered: [String: ChannelBounds]
        let links = PeerLinksBox()
        let replicatedStore = config.sharding.enabled ? try ReplicatedStore(directory: directory, durability: config.durability) : nil
        let storedStates = try replicatedStore.map { try Self.storedClusterStates($0, config: config) }
        let shardContext = replicatedStore.map { _ in
            ShardContext(config: config, stored: storedStates?.newest, logger: logger)
        }
        let cluster = ClusterBox()
        var shardHost: ShardHost?
        if let shardContext, let replicatedStore {
            let host = try ShardHost(
                context: shardContext, store: replicatedStore, controllerState: storedStates?.controller,
                onCommit: onCommit,
                send: { frames in _ = links.loop?.execute { links.links?.send(frames) } },
                onMapChange: { epoch in _ = links.loop?.execute { cluster.gossip?.setMapEpoch(epoch) } },
                onShardDropped: { shard in
                    for box in loopTable.all { _ = box.context.loop.execute { box.context.replicaMoved(shard: shard) } }
                })
            recovered = host.channelBounds()
            sink = host
            runBackend = { host.run() }
            shardHost = host
        } else {
            let committer = try GroupCommitter<PublishTicket>(
                directory: directory, durability: config.durability, retention: config.retention,
                clock: { WallClock.nowMs() }, onCommit: onCommit,
                onRetentionError: { error in logger.error("retention failed", ["error": error.description]) })
            recovered = committer.channelBounds()
            sink = committer
            runBackend = { committer.run() }
        }
        logger.info("store opened", [
            "data": config.data, "channels": "\(recovered.count)", "durability": config.durability.rawValue,
            "messages": "\(recovered.values.reduce(0) { $0 + ($1.head + 1 - $1.earliest) })",
        ])
        var tokenSecret: TokenSecret?
        if !config.tokenSecretFile.isEmpty {
            guard let bytes = FileManager.default.contents(atPath: config.tokenSecretFile) else {
                throw NodeConfig.Problem.invalid(field: "token-secret-file", reason: "cannot read \(config.tokenSecretFile)")
            }
            do { tokenSecret = try TokenSecret(Array(bytes)) } catch {
                throw NodeConfig.Problem.invalid(field: "token-secret-file", reason: error.description)
            }
        }
        var edgeRelay: EdgeRelay?
        if let shardContext {
            let secret = tokenSecret
            edgeRelay = group.sync(on: 0) {
                let relay = EdgeRelay(loop: group.loops[0], context: shardContext, feeds: feeds) {
                    // Relays present a token of their own when clients must (any node holds the secret).
                    let name = String(config.nodeId.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.@".contains($0)) }.prefix(50))
                    let token = AccessToken(subject: "relay." + name, expiresAt: WallClock.nowMs() / 1000 + 3600)
                    return secret.map { Array(token.signed(with: $0).utf8) }
                }
                relay.announce = { feed, mask in Self.announce(feed, mask: mask, mailboxes: mailboxes) }
                return relay
            }
        }
        let shared = NodeShared(
            config: config, logger: logger, directory: directory, feeds: feeds, committer: sink,
            tokenSecret: tokenSecret, edge: edgeRelay,
            hosts: { [shardContext] shard in shardContext?.hosts(shard) ?? true },
            shardOf: { [shardContext] channel in shardContext?.shard(of: channel) ?? 0 },
            reportDamage: { [shardContext, shardHost] channel in
                if let shardContext, let shardHost { shardHost.reportDamage(shard: shardContext.shard(of: channel)) }
            },
            readIndex: Self.readIndexFunction(shardHost, shardContext),
            channelHead: Self.channelHeadFunction(shardHost),
            clusterLocate: Self.locateFunction(shardHost, shardContext))
        var contexts: [LoopContextBox] = []
        for loop in group.loops {
            let box = group.sync(on: loop.index) { () -> Result<LoopContextBox, StorageError> in
                do throws(StorageError) { return .success(LoopContextBox(try LoopContext(loop: loop, shared: shared))) }
                catch { return .failure(error) }
            }
            contexts.append(try box.get())
        }
        loopTable.install(contexts)
        mailboxes.install(contexts.map { box in
            LoopMailbox(loop: box.context.loop) { outcomes, feeds in box.context.deliver(outcomes, feeds) }
        })
        let listenAddress = try SocketAddress(parsing: config.listen)
        let loopContexts = contexts
        let listenerResult = group.sync(on: 0) { () -> Result<ListenerBox, SystemError> in
            var next = 0
            do throws(SystemError) {
                let listener = try TCPListener(address: listenAddress, loop: group.loops[0]) { fd, peer in
                    // Round-robin: each connection belongs to one loop for its whole life.
                    let target = loopContexts[next % loopContexts.count]
                    next += 1
                    if !target.context.loop.execute({ target.context.adopt(fd: fd, peer: peer) }) { close(fd) }
                }
                return .success(ListenerBox(listener))
            } catch { return .failure(error) }
        }
        listener = try listenerResult.get()
        address = listener.listener.address
        let clientAddress = address.description
        shared.clientAddress.withLock { $0 = clientAddress }
        if !config.membership.admin.isEmpty {
            let adminRequested = try SocketAddress(parsing: config.membership.admin)
            let result = group.sync(on: 0) { () -> Result<Bool, ErrorBox> in
                do {
                    cluster.admin = try AdminServer(address: adminRequested, loop: group.loops[0]) { cluster.gossip?.machine.view }
                    return .success(true)
                } catch { return .failure(ErrorBox(description: "\(error)")) }
            }
            _ = try result.get()
        }
        let boundAdmin = group.sync(on: 0) { cluster.admin?.address?.description ?? "" }
        let edge = edgeRelay
        if let shardContext, let shardHost {
            let keyring = try GossipService.loadKeyring(config)
            let peerAddress = try SocketAddress(parsing: config.sharding.peer)
            let result = group.sync(on: 0) { () -> Result<Bool, ErrorBox> in
                do {
                    let peerLinks = try PeerLinks(
                        loop: group.loops[0], address: peerAddress, context: shardContext, keyring: keyring,
                        clusterId: config.membership.clusterId)
                    peerLinks.deliver = { node, frame in shardHost.received(from: node, frame) }
                    peerLinks.down = { node in shardHost.linkDown(node) }
                    peerLinks.members = {
                        (cluster.gossip?.machine.view ?? []).filter { $0.status <= .suspect && !$0.info.peer.isEmpty }.map {
                            PeerMember(
                                id: $0.id, peer: $0.info.peer, zone: $0.info.zone, weight: Int($0.info.weight),
                                mapEpoch: $0.info.mapEpoch, origin: $0.info.origin, client: $0.info.client)
                        }
                    }
                    links.links = peerLinks
                    links.loop = group.loops[0]
                    cluster.admin?.shards = { shardHost.status.withLock { $0 }.filter { $0.shard != ShardContext.controllerShard } }
                    cluster.admin?.controller = ControllerEndpoint(host: shardHost, context: shardContext, keyring: keyring, loop: group.loops[0])
                    edge?.addresses = {
                        var addresses: [String: String] = [:]
                        for member in cluster.gossip?.machine.view ?? [] where member.status <= .suspect && !member.info.client.isEmpty {
                            addresses[member.id] = member.info.client
                        }
                        return addresses
                    }
                    let adminLoop = group.loops[0]
                    cluster.admin?.channel = { name, reply in
                        let info: @Sendable (Bool, UInt64?) -> JSONValue = { linearizable, edgeHead in
                            Self.channelInfo(
                                name, context: shardContext, host: shardHost, directory: directory, relayFrom: edge?.relayed[name],
                                linearizable: linearizable, edgeHead: edgeHead)
                        }
                        // The leader confirms its head with a read index first, an edge asks a
                        // replica for a confirmed head; followers answer at once.
                        let shard = shardContext.shard(of: name)
                        let role = shardHost.status.withLock { $0.first { $0.shard == shard }?.role }
                        let answer = LoopBound(ReplyBox(reply))
                        if role == nil {
                            return shardHost.channelHead(name) { head in
                                _ = adminLoop.execute { answer.value.reply(info(head != nil, head)) }
                            }
                        }
                        guard role == "leader" else { return reply(info(false, nil)) }
                        shardHost.readIndex(shard: shard) { index in
                            _ = adminLoop.execute { answer.value.reply(info(index != nil, nil)) }
                        }
                    }
                    return .success(true)
                } catch { return .failure(ErrorBox(description: "\(error)")) }
            }
            _ = try result.get()
        }
        let boundPeer = group.sync(on: 0) { links.links?.address?.description ?? "" }
        if !config.membership.gossip.isEmpty {
            let result = group.sync(on: 0) { () -> Result<Bool, ErrorBox> in
                do {
                    cluster.gossip = try GossipService(
                        loop: group.loops[0], logger: logger, config: config, clientAddress: clientAddress, adminAddress: boundAdmin,
                        peerAddress: boundPeer, mapEpoch: shardContext?.mapEpoch ?? 0,
                        origin: shardContext?.bootstrapState.origin ?? 0, dataDirectory: config.data)
                    return .success(true)
                } catch { return .failure(ErrorBox(description: "\(error)")) }
            }
            _ = try result.get()
        }
        self.cluster = cluster
        gossipAddress = group.sync(on: 0) { cluster.gossip?.address }
        adminAddress = group.sync(on: 0) { cluster.admin?.address }
        committerThread = OSThread(name: shardHost == nil ? "chapar-commit" : "chapar-raft", runBackend)
        self.links = links
        peerAddress = group.sync(on: 0) { links.links?.address }
        let checkpointer = try Checkpointer(directory: directory, durability: config.durability)
        self.checkpointer = checkpointer
        checkpointerThread = OSThread(name: "chapar-ckpt") {
            // Copying pages into the database can wait; the replication and event-loop
            // threads cannot (on Linux this sets the calling thread's nice value). The log
            // stays bounded under full load (BENCHMARKS.md).
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            checkpointer.run { error in logger.error("checkpoint failed", ["error": error.description]) }
        }
        self.shared = shared
        self.group = group
        self.contexts = contexts
        logger.info("listening", [
            "addr": address.description, "node": config.nodeId, "loops": "\(loopCount)",
            "gossip": gossipAddress?.description ?? "off", "admin": adminAddress?.description ?? "off",
            "peer": peerAddress?.description ?? "off",
            "shards": shardContext.map { "\($0.hostedCount)/\($0.shardCount)" } ?? "off",
        ])
    }

    /// Runs on the committer thread after each transaction: encode each channel's new
    /// records once, hand them to the feeds, and post acknowledgements to their loops.
    private static func fanOut(_ report: CommitReport<PublishTicket>, feeds: FeedRegistry, mailboxes: MailboxTable) {
        var notify: [Int: [ChannelFeed]] = [:]
        for append in report.appended {
            guard let feed = feeds.lookup(append.channel) else { continue }
            var mask = feed.append(EncodedChunk(channel: append.channel, records: append.records))
            while mask != 0 {
                let loop = mask.trailingZeroBitCount
                mask &= mask - 1
                notify[loop, default: []].append(feed)
            }
        }
        // (Edge feeds announce themselves through `announce`.)
        var outcomes: [Int: [(PublishTicket, AppendOutcome)]] = [:]
        for (ticket, outcome) in report.outcomes { outcomes[ticket.loop, default: []].append((ticket, outcome)) }
        for loop in Set(notify.keys).union(outcomes.keys) {
            let mailbox = mailboxes[loop]
            let loopFeeds = notify[loop] ?? []
            mailbox.post(outcomes: outcomes[loop] ?? [], feed: loopFeeds.first)
            for feed in loopFeeds.dropFirst() { mailbox.post(feed: feed) }
        }
    }

    /// The cluster states stored in the data directory: the one this node's controller
    /// replica applied, and the newest it knows. They must match the configured shard
    /// count (a channel's shard is fixed for the life of the cluster).
    static func storedClusterStates(
        _ store: ReplicatedStore, config: NodeConfig
    ) throws -> (controller: ClusterState?, newest: ClusterState?) {
        let stored = try store.loadClusterStates()
        let states = try [stored.controller, stored.learned].map { bytes -> ClusterState? in
            guard let bytes else { return nil }
            let state = try ClusterState(decoding: bytes)
            guard state.settings.shards == config.sharding.shards, state.origin == Self.origin(config) else {
                throw NodeConfig.Problem.invalid(
                    field: "shards",
                    reason: "the data directory belongs to a cluster bootstrapped with \(state.settings.shards) shards × "
                        + "\(state.settings.replicas) replicas and other founders; start it with that cluster's --shards, --replicas and --bootstrap")
            }
            return state
        }
        let newest = states.compactMap { $0 }.max { $0.map.epoch < $1.map.epoch }
        return (states[0], newest)
    }

    static func channelHeadFunction(
        _ host: ShardHost?
    ) -> (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)? {
        guard let host else { return nil }
        return { channel, reply in host.channelHead(channel, reply: reply) }
    }

    /// LOCATE on a clustered node: the shard's replicas by the map this node knows, with
    /// their gossiped client addresses, and its leader when this node hosts the shard.
    static func locateFunction(_ host: ShardHost?, _ context: ShardContext?) -> (@Sendable (String, Location.Node) -> Location)? {
        guard let host, let context else { return nil }
        return { channel, own in
            let shard = context.shard(of: channel)
            let replicas = Array(context.replicas(of: shard).prefix(Location.nodesMax))
            let nodes = replicas.map { $0 == own.id ? own : Location.Node(id: $0, address: context.clientAddress(of: $0) ?? "") }
            let leader = host.leader(of: shard).flatMap { replicas.firstIndex(of: $0) }
            return Location(channel: channel, shard: UInt32(shard), leader: leader, nodes: nodes)
        }
    }

    static func origin(_ config: NodeConfig) -> UInt64 {
        ClusterState(settings: PlacementSettings(shards: config.sharding.shards, replicas: config.sharding.replicas),
                     founders: config.sharding.members).origin
    }

    static func readIndexFunction(
        _ host: ShardHost?, _ context: ShardContext?
    ) -> (@Sendable (String, @escaping @Sendable (UInt64?) -> Void) -> Void)? {
        guard let host, let context else { return nil }
        return { channel, reply in host.readIndex(shard: context.shard(of: channel), reply: reply) }
    }

    /// Tells the loops in `mask` that `feed` advanced.
    static func announce(_ feed: ChannelFeed, mask: UInt64, mailboxes: MailboxTable) {
        var mask = mask
        while mask != 0 {
            let loop = mask.trailingZeroBitCount
            mask &= mask - 1
            mailboxes[loop].post(feed: feed)
        }
    }

    /// Stops gracefully: stop accepting and reading, commit and acknowledge everything
    /// already received, say goodbye to every client, then stop the threads.
    public func shutdown() {
        shared.logger.info("shutting down")
        group.sync(on: 0) { [listener] in listener.listener.close() }
        group.sync(on: 0) { [cluster] in cluster.gossip?.leave() }
        if cluster.hasGossip { usleep(300_000) }  // a few gossip rounds carry the leave
        group.sync(on: 0) { [cluster, links, shared] in
            cluster.gossip?.close()
            cluster.admin?.close()
            links.links?.close()
            shared.edge?.close()
        }
        for box in contexts { group.sync(on: box.context.loop.index) { box.context.quiesce() } }
        shared.committer.stop()
        committerThread.join()
        checkpointer.stop()
        checkpointerThread.join()
        for box in contexts {
            // The mailbox job posted by the last commit runs before this one.
            group.sync(on: box.context.loop.index) { box.context.closeAll() }
        }
        let deadline = MonotonicClock.nowMs() + 3000
        for box in contexts {
            while MonotonicClock.nowMs() < deadline && group.sync(on: box.context.loop.index, { box.context.sessionCount }) > 0 {
                usleep(10_000)
            }
        }
        group.shutdown()
        shared.logger.info("stopped")
    }
}

extension RelayNode {
    /// `GET /v1/channels/NAME`: the channel's shard, replicas and leader as this node sees
    /// them, and this node's copy (head, earliest; a follower's head may trail the leader's).
    static func channelInfo(
        _ name: String, context: ShardContext, host: ShardHost, directory: DataDirectory, relayFrom: String?,
        linearizable: Bool, edgeHead: UInt64?
    ) -> JSONValue {
        let shard = context.shard(of: name)
        let row = host.status.withLock { rows in rows.first { $0.shard == shard } }
        var bounds: ChannelBounds?
        if row != nil, let reader = try? directory.makeReader() { bounds = try? reader.bounds(name) }
        let replicas: [JSONValue] = context.replicas(of: shard).map { JSONValue.string($0) }
        var fields: [String: JSONValue] = [:]
        fields["channel"] = .string(name)
        fields["shard"] = .number(Double(shard))
        fields["replicas"] = .array(replicas)
        fields["leader"] = .string(row?.leader ?? "")
        fields["role"] = .string(row?.role ?? "none")
        fields["node"] = .string(context.localName)
        fields["head"] = .number(Double(bounds?.head ?? edgeHead ?? 0))
        fields["earliest"] = .number(Double(bounds?.earliest ?? 1))
        if row == nil { fields["relay_from"] = .string(relayFrom ?? "") }
        // True when `head` was read after a confirmed read index (on the leader, or on a
        // replica an edge asked): it covers every publish acknowledged before the request.
        fields["linearizable"] = .bool(linearizable)
        return .object(fields)
    }
}

/// A reply closure carried to another thread and back (called only on loop 0).
final class ReplyBox {
    let reply: (JSONValue?) -> Void
    init(_ reply: @escaping (JSONValue?) -> Void) { self.reply = reply }
}

/// Holds a loop's context so closures can carry it across threads; the context itself
/// is only ever used on its loop.
final class LoopContextBox: @unchecked Sendable {  // context guarded by: its loop thread
    let context: LoopContext
    init(_ context: LoopContext) { self.context = context }
}

final class ListenerBox: @unchecked Sendable {  // listener guarded by: loop 0's thread
    let listener: TCPListener
    init(_ listener: TCPListener) { self.listener = listener }
}

/// The peer links, owned by loop 0 and set once during init.
final class PeerLinksBox: @unchecked Sendable {  // guarded by: loop 0's thread (loop set before use)
    var links: PeerLinks?
    var loop: EventLoop?
}

/// The membership shell and admin API, owned by loop 0.
final class ClusterBox: @unchecked Sendable {  // guarded by: loop 0's thread (set during init)
    var gossip: GossipService?
    var admin: AdminServer?
    var hasGossip: Bool { gossip != nil }
}

struct ErrorBox: Error, CustomStringConvertible {
    var description: String
}

/// The loops' contexts, for the replication thread to reach them (installed once the
/// loops exist; it is created before them).
final class LoopTable: Sendable {
    private let boxes = Mutex<[LoopContextBox]>([])
    func install(_ contexts: [LoopContextBox]) { boxes.withLock { $0 = contexts } }
    var all: [LoopContextBox] { boxes.withLock { $0 } }
}

/// Mailboxes by loop index, installed once the loops exist (the committer's callback
/// is created before them).
final class MailboxTable: Sendable {
    private let boxes = Mutex<[LoopMailbox]>([])

    func install(_ mailboxes: [LoopMailbox]) { boxes.withLock { $0 = mailboxes } }

    subscript(loop: Int) -> LoopMailbox { boxes.withLock { $0[loop] } }
}
