import Storage
import Transport

/// Everything a node needs to start. Read from `--config FILE` (JSON, the same keys)
/// and then overridden by flags; see `chapard --help` and docs/OPERATIONS.md.
public struct NodeConfig: Equatable, Sendable {
    /// Directory for the store and its lock. Required.
    public var data: String = ""
    /// Client listener, HOST:PORT. Port 0 picks a free port (logged and written to
    /// `DATA/listen.addr` so scripts can find it).
    public var listen: String = "127.0.0.1:4600"
    /// Name announced in WELCOME and logs.
    public var nodeId: String = "chapar-1"
    /// Event loop threads; 0 means one per core.
    public var loops: Int = 0
    public var durability: Durability = .fsync
    public var retention: RetentionRules = RetentionRules()
    /// Bytes queued towards one connection before its subscriptions stop taking live
    /// messages and fall back to reading the log.
    public var outboundBytesMax: Int = 4 << 20
    /// Recent encoded messages kept per subscribed channel, so subscribers a little behind
    /// are served from memory, shared, rather than each reading the log.
    public var tailCacheBytesPerChannel: Int = 256 << 20
    /// All channels' tail caches together (approximate: the channel that adds sheds).
    public var tailCacheBytesTotal: Int = 1 << 30
    /// Unacknowledged publish payload bytes per connection before reading pauses.
    public var inflightBytesMax: Int = 8 << 20
    /// A connection that sends no HELLO within this time is closed.
    public var helloTimeoutMs: Int64 = 10_000
    public var logLevel: String = "info"
    /// File holding the token secret. When set, HELLO must carry a valid token.
    public var tokenSecretFile: String = ""
    public var membership = GossipConfig()
    public var sharding = ShardingConfig()

    public init() {}

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case invalid(field: String, reason: String)

        public var description: String {
            switch self {
            case .invalid(let field, let reason): "\(field): \(reason)"
            }
        }
    }

    /// Checks every field and names the first bad one.
    public func validate() throws(Problem) {
        if data.isEmpty { throw .invalid(field: "data", reason: "a data directory is required (--data DIR)") }
        do { _ = try SocketAddress(parsing: listen) } catch {
            throw .invalid(field: "listen", reason: error.description)
        }
        if nodeId.isEmpty || nodeId.utf8.count > 255 {
            throw .invalid(field: "node-id", reason: "must be 1-255 bytes")
        }
        if loops < 0 || loops > 64 { throw .invalid(field: "loops", reason: "must be 0 (one per core) to 64") }
        if outboundBytesMax < (64 << 10) {
            throw .invalid(field: "outbound-bytes-max", reason: "must be at least 65536")
        }
        if tailCacheBytesPerChannel < (64 << 10) {
            throw .invalid(field: "tail-cache-bytes", reason: "must be at least 65536")
        }
        if tailCacheBytesTotal < tailCacheBytesPerChannel {
            throw .invalid(field: "tail-cache-total-bytes", reason: "must be at least tail-cache-bytes")
        }
        if inflightBytesMax < (1 << 20) + 1024 {
            throw .invalid(field: "inflight-bytes-max", reason: "must exceed the largest publish (1 MiB)")
        }
        if helloTimeoutMs < 100 { throw .invalid(field: "hello-timeout-ms", reason: "must be at least 100") }
        for (field, address) in [("gossip", membership.gossip), ("admin", membership.admin)] where !address.isEmpty {
            do { _ = try SocketAddress(parsing: address) } catch { throw .invalid(field: field, reason: error.description) }
        }
        for seed in membership.seeds {
            do { _ = try SocketAddress(parsing: seed) } catch { throw .invalid(field: "seeds", reason: error.description) }
        }
        if !membership.gossip.isEmpty && membership.keyFile.isEmpty {
            throw .invalid(field: "gossip-key-file", reason: "gossip needs the cluster keyring (chaparctl cluster up makes one)")
        }
        try sharding.validate(gossipOn: !membership.gossip.isEmpty)
        if Logger.Level(name: logLevel) == nil {
            throw .invalid(field: "log-level", reason: "must be debug, info, warn or error")
        }
    }
}
