import FoundationEssentials

/// `chapard`'s flags. Every setting of `NodeConfig` is a flag of the same name; a
/// `--config FILE` is applied first, then the other flags, whatever their order.
public enum NodeCommandLine {
    public static let usage = """
        chapard — a Chapar relay node

        USAGE: chapard --data DIR [--listen HOST:PORT] [options]

        OPTIONS:
          --data DIR                 store directory (created if missing; locked while running)
          --listen HOST:PORT         client listener (default 127.0.0.1:4600; port 0 picks one,
                                     written to DIR/chapard.addr)
          --node-id NAME             name in WELCOME and logs (default chapar-1)
          --config FILE              JSON file with these settings as keys ("data", "listen", …)
          --loops N                  event loop threads, 0 = one per core (default 0)
          --durability MODE          fsync (default): ack after fsync; os-buffer: ack after the
                                     OS has the write (survives kill -9, not power loss)
          --outbound-bytes-max N     bytes queued per connection before subscribers fall back to
                                     the log (default 4194304)
          --tail-cache-bytes N       recent frames cached per subscribed channel (default 268435456)
          --tail-cache-total-bytes N all channels' caches together (default 1073741824)
          --inflight-bytes-max N     unacknowledged publish bytes per connection before reading
                                     pauses (default 8388608)
          --hello-timeout-ms N       close connections that send no HELLO in time (default 10000)
          --log-level LEVEL          debug, info (default), warn, error
          --token-secret-file FILE   require a token in HELLO, signed with the secret in FILE
                                     (≥ 32 bytes; `chaparctl secret` makes one)
          --gossip HOST:PORT         membership (SWIM/Lifeguard) on UDP and TCP; off if absent
          --admin HOST:PORT          admin HTTP API: GET /healthz, GET /v1/members
          --seeds HOST:PORT,…        gossip addresses of members to join through
          --zone NAME                failure zone announced to the cluster
          --weight N                 relative capacity for shard replicas (default 1)
          --cluster-id NAME          cluster name bound into every gossip packet (default chapar)
          --gossip-key-file FILE     keyring, lines "ID HEX" (first = primary); required with --gossip
          --shards S                 clustered mode: channels hash into S shards, each a Raft group
                                     (0, the default: a single node storing every channel itself)
          --replicas R               replicas per shard (default 3)
          --bootstrap ID@ZONE,…      the founding members the shard map is placed over (same on every node)
          --peer HOST:PORT           peer (Raft and forwarding) listener; required with --shards
          --election-ms MS           Raft election timeout floor (default 1000; heartbeats every MS/5)
          --moves-max N              replicas copied out at once while rebalancing (default 4)
          --raft-log-keep N          applied Raft entries kept for lagging followers before
                                     the log is trimmed (default 64; behind that: snapshots)
          -h, --help                 show this help

        Retention is set in the config file: {"retention": {"default": {"max-messages": N,
        "max-bytes": N, "max-age-seconds": N}, "channels": {"NAME": {…}}}}.
        Signals: SIGTERM or SIGINT stop the node gracefully.
        """

    public enum Outcome: Equatable {
        case run(NodeConfig)
        case help
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ arguments: [String]) throws(Failure) -> Outcome {
        var flags: [(String, String)] = []
        var configFile: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-h" || argument == "--help" { return .help }
            guard argument.hasPrefix("--") else { throw Failure(description: "unexpected argument '\(argument)'") }
            var name = String(argument.dropFirst(2))
            var value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else {
                index += 1
                guard index < arguments.count else { throw Failure(description: "--\(name) needs a value") }
                value = arguments[index]
            }
            if name == "config" { configFile = value } else {
                guard NodeConfig.keys.contains(name), name != "retention" else {
                    throw Failure(description: "unknown flag --\(name) (see --help)")
                }
                flags.append((name, value))
            }
            index += 1
        }
        var config = NodeConfig()
        if let configFile {
            guard let data = FileManager.default.contents(atPath: configFile) else {
                throw Failure(description: "cannot read config file \(configFile)")
            }
            do { try config.apply(json: Array(data)) } catch {
                throw Failure(description: "config file \(configFile): \(error)")
            }
        }
        for (name, value) in flags {
            do { try config.set(name, value) } catch { throw Failure(description: "--\(error)") }
        }
        do { try config.validate() } catch { throw Failure(description: error.description) }
        return .run(config)
    }
}
