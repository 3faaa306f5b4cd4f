import ChaparCore
import FoundationEssentials
import Storage

extension NodeConfig {
    /// The JSON keys and flag names (flags take a `--` prefix) are the same words.
    static let keys: Set<String> = [
        "data", "listen", "node-id", "loops", "durability", "retention", "outbound-bytes-max",
        "tail-cache-bytes", "tail-cache-total-bytes", "inflight-bytes-max", "hello-timeout-ms", "log-level",
        "token-secret-file", "gossip", "admin", "seeds", "zone", "weight", "cluster-id", "gossip-key-file",
        "shards", "replicas", "bootstrap", "peer", "election-ms", "moves-max", "raft-log-keep",
    ]

    /// Applies a JSON configuration document on top of the current values.
    public mutating func apply(json bytes: [UInt8]) throws(JSONFieldError) {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) } catch {
            throw JSONFieldError(path: "", reason: "not valid JSON (\(error))")
        }
        let object = try JSONObjectReader(value)
        try object.allowOnly(Self.keys)
        for key in Self.keys.sorted() where object.has(key) {
            if key == "retention" {
                retention = try Self.retentionRules(object.object("retention")!)
                continue
            }
            let text: String
            switch object.raw(key)! {
            case .string(let string): text = string
            case .number(let number) where number.rounded() == number: text = String(Int64(number))
            case let other: throw JSONFieldError(path: key, reason: "expected a string or number, found \(other.typeName)")
            }
            do { try set(key, text) } catch { throw JSONFieldError(path: key, reason: error.description) }
        }
    }

    /// Sets one setting from its textual form (a flag's argument or a JSON scalar).
    public mutating func set(_ key: String, _ text: String) throws(Problem) {
        func integer(_ range: ClosedRange<Int64>) throws(Problem) -> Int64 {
            guard let value = Int64(text), range.contains(value) else {
                throw .invalid(field: key, reason: "'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        switch key {
        case "data": data = text
        case "listen": listen = text
        case "node-id": nodeId = text
        case "loops": loops = Int(try integer(0...64))
        case "durability":
            guard let mode = Durability(rawValue: text) else {
                throw .invalid(field: key, reason: "'\(text)' is not one of fsync, os-buffer")
            }
            durability = mode
        case "outbound-bytes-max": outboundBytesMax = Int(try integer(0...(1 << 34)))
        case "tail-cache-bytes": tailCacheBytesPerChannel = Int(try integer(0...(1 << 34)))
        case "tail-cache-total-bytes": tailCacheBytesTotal = Int(try integer(0...(1 << 40)))
        case "inflight-bytes-max": inflightBytesMax = Int(try integer(0...(1 << 34)))
        case "hello-timeout-ms": helloTimeoutMs = try integer(0...3_600_000)
        case "log-level": logLevel = text
        case "token-secret-file": tokenSecretFile = text
        case "gossip": membership.gossip = text
        case "admin": membership.admin = text
        case "seeds": membership.seeds = text.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        case "zone": membership.zone = text
        case "weight": membership.weight = Int(try integer(1...1000))
        case "cluster-id":
            guard !text.isEmpty, text.utf8.count <= 64 else { throw .invalid(field: key, reason: "must be 1-64 bytes") }
            membership.clusterId = text
        case "gossip-key-file": membership.keyFile = text
        case "shards": sharding.shards = Int(try integer(0...4096))
        case "replicas": sharding.replicas = Int(try integer(1...7))
        case "bootstrap": sharding.bootstrap = text.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        case "peer": sharding.peer = text
        case "election-ms": sharding.electionMs = Int(try integer(100...60_000))
        case "moves-max": sharding.movesMax = Int(try integer(1...256))
        case "raft-log-keep": sharding.raftLogKeep = Int(try integer(1...100_000_000))
        default: throw .invalid(field: key, reason: "unknown setting")
        }
    }

    static func retentionRules(_ object: JSONObjectReader) throws(JSONFieldError) -> RetentionRules {
        try object.allowOnly(["default", "channels"])
        var rules = RetentionRules()
        if let defaults = try object.object("default") { rules.default = try retentionPolicy(defaults) }
        if let channels = try object.object("channels") {
            for (name, policy) in try channels.objects() {
                if case .failure(let problem) = ChannelName.validate(name) {
                    throw JSONFieldError(path: policy.path, reason: problem.description)
                }
                rules.channels[name] = try retentionPolicy(policy)
            }
        }
        return rules
    }

    static func retentionPolicy(_ object: JSONObjectReader) throws(JSONFieldError) -> RetentionPolicy {
        try object.allowOnly(["max-messages", "max-bytes", "max-age-seconds"])
        let limit: ClosedRange<Int64> = 1...Int64.max
        return RetentionPolicy(
            maxMessages: try object.integer("max-messages", in: limit).map(UInt64.init),
            maxBytes: try object.integer("max-bytes", in: limit).map(UInt64.init),
            maxAgeSeconds: try object.integer("max-age-seconds", in: limit).map(UInt64.init))
    }
}
