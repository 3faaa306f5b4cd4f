// chapar-sim: runs Chapar's protocol machines on a virtual clock and network, from a
// seed, and reports what they did. Every run replays exactly from its seed.
import ChaparCore
import Membership
import Simulation
#if canImport(Glibc)
import Glibc
#endif

let usage = """
    chapar-sim — deterministic simulation of Chapar's membership protocol

    USAGE:
      chapar-sim membership [--members N] [--loss P] [--lifeguard on|off] [--seed S]
                            [--duration SECONDS] [--crashes K]
      chapar-sim sweep [--members N,N] [--loss P,P,…] [--duration SECONDS] [--seed S]

    membership: one run — converge, then run under loss while K members crash and one
    changes its metadata; prints detection times, false deaths per member-hour,
    dissemination time and gossip bandwidth. sweep: the matrix, as a Markdown table,
    Lifeguard on and off. Virtual time; the same seed gives the same run.
    """

func fail(_ text: String) -> Never {
    var bytes = Array("chapar-sim: \(text)\n".utf8)
    _ = write(2, &bytes, bytes.count)
    exit(2)
}

func percentile(_ values: [UInt64], _ p: Double) -> String {
    guard !values.isEmpty else { return "—" }
    let sorted = values.sorted()
    let rank = max(1, Int((p / 100 * Double(sorted.count)).rounded(.up)))
    return "\(Double(sorted[rank - 1]) / 1000) s"
}

func describe(_ experiment: MembershipExperiment, _ result: MembershipExperiment.Result) -> [String] {
    [
        "\(experiment.members)", "\(Int(experiment.loss * 100))%", experiment.lifeguard ? "on" : "off",
        percentile(result.firstDetectionMs, 50), percentile(result.firstDetectionMs, 99),
        percentile(result.fullDetectionMs, 50), percentile(result.fullDetectionMs, 99),
        "\(result.falseDeaths) (\(String(format1: result.falseDeathsPerMemberHour))/member-h)",
        result.disseminationPeriods.map { String(format1: $0) } ?? "—",
        "\(Int(result.bytesPerMemberPerSecond))",
    ]
}

extension String {
    init(format1 value: Double) {
        let scaled = Int((value * 100).rounded())
        let fraction = abs(scaled % 100)
        self = "\(scaled / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

let header = ["members", "loss", "lifeguard", "detect first p50", "p99", "detect all p50", "p99",
              "false dead", "dissemination (periods)", "bytes/member/s"]

func printTable(_ rows: [[String]]) {
    print("| " + header.joined(separator: " | ") + " |")
    print("|" + String(repeating: "---|", count: header.count))
    for row in rows { print("| " + row.joined(separator: " | ") + " |") }
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let command = argv.first, !["-h", "--help", "help"].contains(command) else {
    print(usage)
    exit(argv.isEmpty ? 2 : 0)
}
let arguments: CommandArguments
do { arguments = try CommandArguments(Array(argv.dropFirst()), booleans: ["help"]) } catch { fail(error.description) }
if arguments.has("help") { print(usage); exit(0) }

switch command {
case "membership":
    do {
        try arguments.rejectUnknown(["members", "loss", "lifeguard", "seed", "duration", "crashes"])
        let lifeguard = arguments.option("lifeguard") ?? "on"
        guard lifeguard == "on" || lifeguard == "off" else { fail("--lifeguard must be on or off") }
        let experiment = MembershipExperiment(
            members: try arguments.integer("members", in: 3...5000) ?? 100,
            loss: try arguments.number("loss", in: 0...0.5) ?? 0,
            lifeguard: lifeguard == "on",
            seed: UInt64(try arguments.integer("seed", in: 0...Int.max) ?? 1),
            durationSeconds: UInt64(try arguments.integer("duration", in: 10...86_400) ?? 300),
            crashes: try arguments.integer("crashes", in: 0...1000) ?? 5)
        let result = experiment.run()
        print("converged in \(Double(result.convergedAfterMs) / 1000) s (virtual), seed \(experiment.seed)")
        printTable([describe(experiment, result)])
    } catch {
        fail("\(error)")
    }
case "sweep":
    do {
        try arguments.rejectUnknown(["members", "loss", "duration", "seed"])
        let sizes = (arguments.option("members") ?? "100,1000").split(separator: ",").compactMap { Int($0) }
        let losses = (arguments.option("loss") ?? "0,0.01,0.05,0.1").split(separator: ",").compactMap { Double($0) }
        let seed = UInt64(try arguments.integer("seed", in: 0...Int.max) ?? 1)
        let duration = try arguments.integer("duration", in: 10...86_400)
        var rows: [[String]] = []
        for size in sizes {
            for loss in losses {
                for lifeguard in [true, false] {
                    let experiment = MembershipExperiment(
                        members: size, loss: loss, lifeguard: lifeguard, seed: seed,
                        durationSeconds: UInt64(duration ?? (size >= 1000 ? 120 : 600)), crashes: 5)
                    rows.append(describe(experiment, experiment.run()))
                    var progress = Array("done: \(size) members, loss \(loss), lifeguard \(lifeguard)\n".utf8)
                    _ = write(2, &progress, progress.count)
                }
            }
        }
        printTable(rows)
    } catch {
        fail("\(error)")
    }
default:
    fail("unknown command '\(command)'\n\n\(usage)")
}
