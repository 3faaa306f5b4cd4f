import ChaparCore
import Wire

/// Reading and writing scenarios as JSON (the format of Cluster/scenarios/*.json,
/// documented in docs/OPERATIONS.md). Every problem names the field it is in.
public enum ScenarioFile {
    public static func parse(_ value: JSONValue) throws(JSONFieldError) -> Scenario {
        let root = try JSONObjectReader(value)
        try root.allowOnly(["name", "description", "users", "duration_s", "ramp_up_s", "seed", "workloads",
                            "churn", "storm", "late_joiners"])
        guard let name = try root.string("name"), !name.isEmpty else {
            throw JSONFieldError(path: "name", reason: "required, a non-empty string")
        }
        guard let users = try root.integer("users", in: 1...1_000_000) else {
            throw JSONFieldError(path: "users", reason: "required, the number of subscriber connections")
        }
        guard let duration = try root.number("duration_s"), duration > 0, duration <= 86_400 else {
            throw JSONFieldError(path: "duration_s", reason: "required, seconds in (0, 86400]")
        }
        let ramp = try root.number("ramp_up_s") ?? 0
        if ramp < 0 || ramp >= duration { throw JSONFieldError(path: "ramp_up_s", reason: "must be in [0, duration_s)") }
        guard let items = try root.array("workloads"), !items.isEmpty else {
            throw JSONFieldError(path: "workloads", reason: "required, a non-empty array")
        }
        var workloads: [Workload] = []
        for (index, item) in items.enumerated() {
            workloads.append(try workload(JSONObjectReader(item, path: "workloads[\(index)]"), users: Int(users)))
        }
        var scenario = Scenario(
            name: name, description: try root.string("description") ?? "", users: Int(users),
            durationSeconds: duration, rampUpSeconds: ramp, workloads: workloads,
            seed: UInt64(try root.integer("seed", in: 0...Int64.max) ?? 1))
        if let churn = try root.object("churn") {
            try churn.allowOnly(["disconnects_per_s", "reconnect_delay_ms"])
            guard let rate = try churn.number("disconnects_per_s"), rate >= 0 else {
                throw JSONFieldError(path: "churn.disconnects_per_s", reason: "required, ≥ 0")
            }
            scenario.churn = Churn(
                disconnectsPerSecond: rate,
                reconnectDelayMs: Int(try churn.integer("reconnect_delay_ms", in: 0...600_000) ?? 200))
        }
        if let storm = try root.object("storm") {
            try storm.allowOnly(["at_s", "fraction", "reconnect_delay_ms"])
            scenario.storm = ReconnectStorm(
                atSeconds: try seconds(storm, "at_s", below: duration),
                fraction: try fraction(storm, "fraction"),
                reconnectDelayMs: Int(try storm.integer("reconnect_delay_ms", in: 0...600_000) ?? 200))
        }
        if let late = try root.object("late_joiners") {
            try late.allowOnly(["fraction", "at_s"])
            scenario.lateJoiners = LateJoiners(
                fraction: try fraction(late, "fraction"), atSeconds: try seconds(late, "at_s", below: duration))
        }
        return scenario
    }

    static func seconds(_ object: JSONObjectReader, _ key: String, below duration: Double) throws(JSONFieldError) -> Double {
        guard let value = try object.number(key), value >= 0, value < duration else {
            throw JSONFieldError(path: "\(object.path).\(key)", reason: "required, seconds in [0, duration_s)")
        }
        return value
    }

    static func fraction(_ object: JSONObjectReader, _ key: String) throws(JSONFieldError) -> Double {
        guard let value = try object.number(key), value > 0, value <= 1 else {
            throw JSONFieldError(path: "\(object.path).\(key)", reason: "required, a fraction in (0, 1]")
        }
        return value
    }

    static func workload(_ object: JSONObjectReader, users: Int) throws(JSONFieldError) -> Workload {
        try object.allowOnly(["name", "channels", "subscribers", "publishers", "rate", "window", "schedule", "size"])
        let path = object.path
        let channels = Int(try object.integer("channels", in: 1...1_000_000) ?? 1)
        let subscribers: SubscriberDistribution
        guard let shape = try object.object("subscribers") else {
            throw JSONFieldError(path: "\(path).subscribers", reason: #"required: {"fixed": N} or {"zipf": {"exponent": S, "max": N}}"#)
        }
        try shape.allowOnly(["fixed", "zipf"])
        if let fixed = try shape.integer("fixed", in: 0...Int64(users)) {
            subscribers = .fixed(Int(fixed))
        } else if let zipf = try shape.object("zipf") {
            try zipf.allowOnly(["exponent", "max"])
            guard let exponent = try zipf.number("exponent"), exponent > 0, exponent <= 5 else {
                throw JSONFieldError(path: "\(zipf.path).exponent", reason: "required, in (0, 5]")
            }
            guard let max = try zipf.integer("max", in: 1...Int64(users)) else {
                throw JSONFieldError(path: "\(zipf.path).max", reason: "required, 1 to users (\(users))")
            }
            subscribers = .zipf(exponent: exponent, max: Int(max))
        } else {
            throw JSONFieldError(path: "\(path).subscribers", reason: #"expected {"fixed": N} or {"zipf": {...}}"#)
        }
        let publishers: PublisherRole
        switch object.raw("publishers") {
        case nil, .string("members")?: publishers = .members
        case .object?:
            let dedicated = try object.object("publishers")!
            try dedicated.allowOnly(["dedicated"])
            guard let count = try dedicated.integer("dedicated", in: 1...1000) else {
                throw JSONFieldError(path: "\(path).publishers.dedicated", reason: "required, 1 to 1000")
            }
            publishers = .dedicated(count: Int(count))
        case let other?:
            throw JSONFieldError(path: "\(path).publishers", reason: #"expected "members" or {"dedicated": N}, found \#(other.typeName)"#)
        }
        let window = Int(try object.integer("window", in: 1...65_536) ?? 512)
        let schedule = try object.string("schedule") ?? "poisson"
        guard schedule == "poisson" || schedule == "fixed" else {
            throw JSONFieldError(path: "\(path).schedule", reason: "expected \"poisson\" or \"fixed\"")
        }
        let rate: PublishRate
        switch object.raw("rate") {
        case .string("max")?: rate = .max(window: window)
        case .number(let value)? where value > 0 && value <= 10_000_000: rate = .perSecond(value, poisson: schedule == "poisson")
        case nil: throw JSONFieldError(path: "\(path).rate", reason: "required: messages per second, or \"max\"")
        case let other?: throw JSONFieldError(path: "\(path).rate", reason: "expected a rate in (0, 10000000] or \"max\", found \(other)")
        }
        let size: SizeDistribution
        let sizes: ClosedRange<Int64> = Int64(PayloadStamp.bytes)...Int64(Limits.payloadBytesMax)
        switch object.raw("size") {
        case .number?: size = .fixed(Int(try object.integer("size", in: sizes)!))
        case .object?:
            let uniform = try object.object("size")!
            try uniform.allowOnly(["uniform"])
            guard let bounds = try uniform.array("uniform"), bounds.count == 2,
                  case .number(let low) = bounds[0], case .number(let high) = bounds[1],
                  low >= Double(sizes.lowerBound), high <= Double(sizes.upperBound), low <= high
            else {
                throw JSONFieldError(path: "\(path).size.uniform", reason: "expected [min, max] within \(sizes)")
            }
            size = .uniform(min: Int(low), max: Int(high))
        default:
            throw JSONFieldError(path: "\(path).size", reason: "required: bytes (\(sizes)) or {\"uniform\": [min, max]}")
        }
        if publishers == .members, subscribers == .fixed(0) {
            throw JSONFieldError(path: "\(path).publishers", reason: "members publish, so a channel needs at least one subscriber")
        }
        return Workload(
            name: try object.string("name") ?? "workload", channels: channels, subscribers: subscribers,
            publishers: publishers, rate: rate, size: size)
    }

    /// The scenario as JSON, in the same format `parse` reads.
    public static func json(_ scenario: Scenario) -> JSONValue {
        var root: [String: JSONValue] = [
            "name": .string(scenario.name), "description": .string(scenario.description),
            "users": .number(Double(scenario.users)), "duration_s": .number(scenario.durationSeconds),
            "ramp_up_s": .number(scenario.rampUpSeconds), "seed": .number(Double(scenario.seed)),
        ]
        root["workloads"] = .array(scenario.workloads.map { workload in
            var object: [String: JSONValue] = ["name": .string(workload.name), "channels": .number(Double(workload.channels))]
            switch workload.subscribers {
            case .fixed(let n): object["subscribers"] = .object(["fixed": .number(Double(n))])
            case .zipf(let exponent, let max):
                object["subscribers"] = .object(["zipf": .object(["exponent": .number(exponent), "max": .number(Double(max))])])
            }
            switch workload.publishers {
            case .members: object["publishers"] = .string("members")
            case .dedicated(let count): object["publishers"] = .object(["dedicated": .number(Double(count))])
            }
            switch workload.rate {
            case .max(let window):
                object["rate"] = .string("max")
                object["window"] = .number(Double(window))
            case .perSecond(let rate, let poisson):
                object["rate"] = .number(rate)
                object["schedule"] = .string(poisson ? "poisson" : "fixed")
            }
            switch workload.size {
            case .fixed(let n): object["size"] = .number(Double(n))
            case .uniform(let low, let high): object["size"] = .object(["uniform": .array([.number(Double(low)), .number(Double(high))])])
            }
            return .object(object)
        })
        if let churn = scenario.churn {
            root["churn"] = .object(["disconnects_per_s": .number(churn.disconnectsPerSecond),
                                     "reconnect_delay_ms": .number(Double(churn.reconnectDelayMs))])
        }
        if let storm = scenario.storm {
            root["storm"] = .object(["at_s": .number(storm.atSeconds), "fraction": .number(storm.fraction),
                                     "reconnect_delay_ms": .number(Double(storm.reconnectDelayMs))])
        }
        if let late = scenario.lateJoiners {
            root["late_joiners"] = .object(["fraction": .number(late.fraction), "at_s": .number(late.atSeconds)])
        }
        return .object(root)
    }
}

/// Command-line overrides of a scenario's main parameters; they apply to every workload.
public struct ScenarioOverrides: Sendable {
    public var subscribers: Int?
    public var size: Int?
    public var rate: PublishRate?
    public var users: Int?
    public var channels: Int?
    public var publishers: Int?
    public var duration: Double?

    public init() {}

    public func apply(to scenario: Scenario) throws(JSONFieldError) -> Scenario {
        var result = scenario
        if let users { result.users = users }
        if let subscribers {
            result.users = Swift.max(result.users, subscribers)
            for index in result.workloads.indices { result.workloads[index].subscribers = .fixed(subscribers) }
        }
        if let size {
            guard size >= PayloadStamp.bytes && size <= Limits.payloadBytesMax else {
                throw JSONFieldError(path: "--size", reason: "must be \(PayloadStamp.bytes) to \(Limits.payloadBytesMax)")
            }
            for index in result.workloads.indices { result.workloads[index].size = .fixed(size) }
        }
        if let rate { for index in result.workloads.indices { result.workloads[index].rate = rate } }
        if let channels { for index in result.workloads.indices { result.workloads[index].channels = channels } }
        if let publishers {
            for index in result.workloads.indices { result.workloads[index].publishers = .dedicated(count: publishers) }
        }
        for workload in result.workloads where workload.publishers == .members && workload.subscribers == .fixed(0) {
            throw JSONFieldError(path: "--subscribers", reason: "workload \(workload.name) has member publishers, so it needs subscribers")
        }
        if let duration { result.durationSeconds = duration }
        for workload in result.workloads {
            if case .fixed(let n) = workload.subscribers, n > result.users {
                throw JSONFieldError(path: "--subscribers", reason: "\(n) subscribers per channel exceed \(result.users) users")
            }
        }
        return result
    }
}
