import ChaparCore
import FoundationEssentials
import LoadSim
import Transport
#if canImport(Glibc)
import Glibc
#endif

enum Usage {
    static let main = """
        chapar-loadsim — a messenger's traffic against Chapar, NATS or Redis, with a correctness oracle

        USAGE:
          chapar-loadsim run --scenario NAME|FILE --target URL [--duration S] [--workers N]
                             [--json FILE] [--svg FILE] [overrides]
          chapar-loadsim compare --scenario NAME|FILE --target URL --target URL … [--json FILE] [overrides]
          chapar-loadsim scenarios [--show NAME]
          chapar-loadsim idle --target chapar://HOST:PORT --connections N [--hold S]

        TARGETS:  chapar://HOST:PORT[,HOST:PORT…]   nats://HOST:PORT   redis://HOST:PORT

        OVERRIDES (every workload of the scenario):
          --subscribers N   subscribers per channel      --size BYTES     message size (≥ 32)
          --rate N|max      msg/s in all, or max speed   --window N       in-flight publishes with max
          --users N         subscriber connections      --channels N     channels per workload
          --publishers N    dedicated publishers per channel             --duration S

        --setting KEY=VALUE records a fact about the run in the report (build, durability).
        --token TOKEN is sent in HELLO to Chapar targets that require one (chaparctl token).
        --no-locate: with several Chapar nodes, publish-only connections stay on the node they
        connected to (by default they ask it where their channel's shard leader is, LOCATE,
        and publish there: no forwarding hop).
        Exit status: 0 clean, 1 oracle violations or a failed run, 2 bad usage or input.
        """
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

enum Commands {
    static let overrideFlags: Set<String> = ["subscribers", "size", "rate", "window", "users", "channels", "publishers", "duration"]

    static func scenario(_ arguments: CommandArguments) throws -> Scenario {
        guard let name = arguments.option("scenario") else { throw UsageError(description: "--scenario NAME|FILE is required") }
        var scenario: Scenario
        if let builtin = BuiltinScenarios.named(name) {
            scenario = builtin
        } else {
            guard let data = FileManager.default.contents(atPath: name) else {
                throw UsageError(description: "no built-in scenario or readable file named '\(name)' (see `chapar-loadsim scenarios`)")
            }
            do {
                let value = try JSONDecoder().decode(JSONValue.self, from: data)
                scenario = try ScenarioFile.parse(value)
            } catch let error as JSONFieldError {
                throw UsageError(description: "scenario \(name): \(error)")
            } catch {
                throw UsageError(description: "scenario \(name): not valid JSON (\(error))")
            }
        }
        var overrides = ScenarioOverrides()
        overrides.subscribers = try arguments.integer("subscribers", in: 0...10_000_000)
        overrides.size = try arguments.integer("size", in: 0...Int(Int32.max))
        overrides.users = try arguments.integer("users", in: 1...10_000_000)
        overrides.channels = try arguments.integer("channels", in: 1...10_000_000)
        overrides.publishers = try arguments.integer("publishers", in: 1...10_000)
        overrides.duration = try arguments.number("duration", in: 0.1...86_400)
        let window = try arguments.integer("window", in: 1...65_536)
        if let rate = arguments.option("rate") {
            if rate == "max" { overrides.rate = .max(window: window ?? 512) }
            else if let value = Double(rate), value > 0 { overrides.rate = .perSecond(value, poisson: true) }
            else { throw UsageError(description: "--rate must be messages per second or max, not '\(rate)'") }
        } else if let window {
            overrides.rate = .max(window: window)
        }
        do { scenario = try overrides.apply(to: scenario) } catch { throw UsageError(description: error.description) }
        return scenario
    }

    static func settings(_ arguments: CommandArguments) throws -> [String: String] {
        var settings: [String: String] = [:]
        for entry in arguments.all("setting") {
            guard let equals = entry.firstIndex(of: "=") else { throw UsageError(description: "--setting takes KEY=VALUE, not '\(entry)'") }
            settings[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return settings
    }

    static func runOne(_ scenario: Scenario, target: Target, workers: Int, settings: [String: String]) throws -> RunReport {
        let runId = String(UInt64(WallClock.nowUs()) ^ UInt64(getpid()), radix: 36)
        let run = LoadRun(scenario: scenario, target: target, workers: workers, runId: runId)
        let live = isatty(1) != 0
        emit("running \(scenario.name) against \(target) for \(ReportFormat.fixed(scenario.durationSeconds, 1)) s "
              + "(\(run.plan.connectionCount) connections, \(run.plan.channels.count) channels, \(workers) worker(s))")
        let report = try run.execute(settings: settings) { second, stats, cpu in
            let line = ReportFormat.progressLine(second: second, stats: stats, cpu: cpu)
            if live {
                let total = max(1, Int(scenario.durationSeconds.rounded(.up)))
                let filled = min(20, second * 20 / total)
                emit("\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] " + line + "\u{1B}[K", newline: false)
            } else {
                emit(line)
            }
        }
        if live { emit("") }
        return report
    }

    static func write(_ text: String, to path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw UsageError(description: "cannot write \(path): \(error)")
        }
    }

    static func rejectPositionals(_ arguments: CommandArguments) throws {
        if let stray = arguments.positionals.first { throw UsageError(description: "unexpected argument '\(stray)'") }
    }

    static func run(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(Usage.main); return 0 }
        try rejectPositionals(arguments)
        try arguments.rejectUnknown(overrideFlags.union(["scenario", "target", "workers", "json", "svg", "setting", "token", "no-locate", "help"]))
        let scenario = try scenario(arguments)
        guard let url = arguments.option("target") else { throw UsageError(description: "--target URL is required") }
        var target = try Target(parsing: url)
        target.token = arguments.option("token").map { Array($0.utf8) }
        target.locatePublishers = !arguments.has("no-locate")
        let workers = try arguments.integer("workers", in: 1...64) ?? 1
        var recorded = try settings(arguments)
        if target.kind == .chapar && target.addresses.count > 1 {
            recorded["publish_route"] = target.locatePublishers ? "shard leader (LOCATE)" : "connected node (forwarded)"
        }
        let report = try runOne(scenario, target: target, workers: workers, settings: recorded)
        print(ReportFormat.text(report), terminator: "")
        if let path = arguments.option("json") { try write(ReportFormat.encode(ReportFormat.json(report)), to: path) }
        if let path = arguments.option("svg") { try write(SVGChart.render(report), to: path) }
        return report.failed ? 1 : 0
    }

    static func compare(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(Usage.main); return 0 }
        try rejectPositionals(arguments)
        try arguments.rejectUnknown(overrideFlags.union(["scenario", "target", "workers", "json", "setting", "token", "help"]))
        let scenario = try scenario(arguments)
        let token = arguments.option("token").map { Array($0.utf8) }
        let targets = try arguments.all("target").map { url throws -> Target in
            var target = try Target(parsing: url)
            target.token = token
            return target
        }
        guard targets.count >= 2 else { throw UsageError(description: "compare needs at least two --target URLs") }
        let workers = try arguments.integer("workers", in: 1...64) ?? 1
        let settings = try settings(arguments)
        var reports: [RunReport] = []
        for target in targets {
            var perTarget = settings.filter { !$0.key.contains("@") }
            for (key, value) in settings where key.hasSuffix("@\(target.kind.rawValue)") {
                perTarget[String(key.dropLast(target.kind.rawValue.count + 1))] = value
            }
            let report = try runOne(scenario, target: target, workers: workers, settings: perTarget)
            print(ReportFormat.text(report))
            reports.append(report)
        }
        print("comparison: \(scenario.name), ratios to \(targets[0])")
        print(ReportFormat.comparison(reports), terminator: "")
        if let path = arguments.option("json") {
            try write(ReportFormat.encode(.object(["runs": .array(reports.map(ReportFormat.json))])), to: path)
        }
        return reports.contains { $0.failed } ? 1 : 0
    }

    static func scenarios(_ arguments: CommandArguments) throws -> Int32 {
        if let name = arguments.option("show") {
            guard let scenario = BuiltinScenarios.named(name) else { throw UsageError(description: "no built-in scenario '\(name)'") }
            print(ReportFormat.encode(ScenarioFile.json(scenario)), terminator: "")
            return 0
        }
        let width = BuiltinScenarios.all.map(\.name.count).max() ?? 0
        for scenario in BuiltinScenarios.all {
            print(scenario.name + String(repeating: " ", count: width - scenario.name.count) + "  " + scenario.description)
        }
        return 0
    }

    static func idle(_ arguments: CommandArguments) throws -> Int32 {
        try arguments.rejectUnknown(["target", "connections", "hold", "help"])
        guard let url = arguments.option("target") else { throw UsageError(description: "--target chapar://HOST:PORT is required") }
        let target = try Target(parsing: url)
        let count = try arguments.integer("connections", in: 1...1_000_000) ?? 1000
        let hold = try arguments.number("hold", in: 0...3600) ?? 5
        let opened = try IdleConnections.open(target: target, count: count)
        emit("ready \(opened)")
        usleep(UInt32(hold * 1_000_000))
        return opened == count ? 0 : 1
    }
}

/// Writes straight to standard output (no stdio buffering), so progress shows at once.
func emit(_ text: String, newline: Bool = true) {
    var bytes = Array((newline ? text + "\n" : text).utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
        if written <= 0 { return }
        offset += written
    }
}
