import ChaparCore
import Foundation
import Transport

/// Shard and channel placement of a clustered local cluster, read from its nodes' admin APIs.
enum ShardCommands {
    static let shardsUsage = """
        USAGE: chaparctl shards --dir DIR [--json]

        One row per shard: its replicas (in the newest map), leader, term, head (the leader's
        last log index), lag (how far the furthest replica that answered trails the leader's
        commit), where the leader's stored log starts (`log from`: entries up to it were trimmed;
        a replica that needs them gets a snapshot) and, while a rebalance moves it, what is
        moving (learners catching up, voters leaving, members still to add). --json adds the
        leader's `voters` and `learners`.
        """

    static let channelUsage = """
        USAGE: chaparctl channel info NAME --dir DIR [--json]

        The channel's shard, replicas, leader and head offset. The head comes from the shard's
        leader after a read index (`linearizable: true`): it covers every publish acknowledged
        before the command ran.
        """

    struct ShardRow {
        var shard: Int
        /// The map epoch the row's replicas come from (0 from a node that does not say).
        var epoch: Int
        var replicas: [String]
        var role: String
        var term: Int
        var leader: String
        var commit: Int
        var lastIndex: Int
        var logStart: Int
        var voters: [String]
        var learners: [String]
    }

    /// Every node's shard rows; unreachable nodes are skipped.
    static func rows(_ admins: [String]) -> [String: [ShardRow]] {
        var result: [String: [ShardRow]] = [:]
        for admin in admins {
            guard let array = fetchJSON(admin, "/v1/shards", as: [[String: Any]].self) else { continue }
            result[admin] = array.map { object in
                ShardRow(
                    shard: (object["shard"] as? NSNumber)?.intValue ?? -1, epoch: (object["epoch"] as? NSNumber)?.intValue ?? 0,
                    replicas: object["replicas"] as? [String] ?? [],
                    role: object["role"] as? String ?? "", term: (object["term"] as? NSNumber)?.intValue ?? 0,
                    leader: object["leader"] as? String ?? "", commit: (object["commit"] as? NSNumber)?.intValue ?? 0,
                    lastIndex: (object["last_index"] as? NSNumber)?.intValue ?? 0,
                    logStart: (object["log_start"] as? NSNumber)?.intValue ?? 0, voters: object["voters"] as? [String] ?? [],
                    learners: object["learners"] as? [String] ?? [])
            }
        }
        return result
    }

    /// How many of shards 0..<count no reachable node reports a leader for.
    static func leaderless(_ admins: [String], shards count: Int) -> Int {
        let led = Set(rows(admins).values.joined().filter { $0.role == "leader" }.map(\.shard))
        return (0..<count).filter { !led.contains($0) }.count
    }

    static func shards(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(shardsUsage); return 0 }
        try arguments.rejectUnknown(["dir", "json", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("shards needs --dir DIR\n\n\(shardsUsage)") }
        let cluster = try ClusterCommands.readCluster(dir)
        guard let count = cluster.shards else { throw CommandArguments.Failure("the cluster in \(dir) is not sharded (no --shards)") }
        let all = rows(cluster.nodes.map(\.admin)).values.joined()
        var output: [[String: Any]] = []
        for shard in 0..<count {
            let views = all.filter { $0.shard == shard }
            let leaderRow = views.filter { $0.role == "leader" }.max { $0.term < $1.term }
            let replicas = views.first?.replicas ?? []
            let commit = leaderRow?.commit ?? views.map(\.commit).max() ?? 0
            let lag = views.map { commit - $0.commit }.max() ?? 0
            // A replica set on the move: the leader's configuration differs from the map.
            var moving = ""
            if let leaderRow {
                let joining = leaderRow.learners + leaderRow.voters.filter { !replicas.contains($0) }.map { $0 + " (leaving)" }
                moving = joining.isEmpty && Set(leaderRow.voters) == Set(replicas) ? "" : joining.joined(separator: ",")
                if moving.isEmpty && Set(leaderRow.voters) != Set(replicas) {
                    moving = "to add: " + replicas.filter { !leaderRow.voters.contains($0) }.joined(separator: ",")
                }
            }
            output.append([
                "shard": shard, "replicas": replicas, "leader": leaderRow?.leader ?? "",
                "term": leaderRow?.term ?? 0, "head": leaderRow?.lastIndex ?? 0, "lag": max(0, lag),
                "log_start": leaderRow?.logStart ?? 0,
                "answered": views.count, "voters": leaderRow?.voters ?? [], "learners": leaderRow?.learners ?? [],
                "moving": moving,
            ])
        }
        if arguments.has("json") {
            let data = try JSONSerialization.data(withJSONObject: output, options: [.prettyPrinted, .sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
        } else {
            ClusterCommands.printTable(output.map { row in
                ["\(row["shard"]!)", (row["replicas"] as! [String]).joined(separator: ","), row["leader"] as! String,
                 "\(row["term"]!)", "\(row["head"]!)", "\(row["lag"]!)", "\(row["log_start"]!)", row["moving"] as! String]
            }, header: ["shard", "replicas", "leader", "term", "head", "lag", "log from", "moving"])
        }
        return 0
    }

    static func channel(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(channelUsage); return 0 }
        try arguments.rejectUnknown(["dir", "json", "help"])
        guard arguments.positionals.count == 2, arguments.positionals[0] == "info", let dir = arguments.option("dir") else {
            throw CommandArguments.Failure("usage: chaparctl channel info NAME --dir DIR [--json]")
        }
        let name = arguments.positionals[1]
        if case .failure(let problem) = ChannelName.validate(name) { throw CommandArguments.Failure("channel '\(name)': \(problem)") }
        let cluster = try ClusterCommands.readCluster(dir)
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
        var answers: [[String: Any]] = []
        for node in cluster.nodes {
            guard let address = try? SocketAddress(parsing: node.admin), let (status, body) = try? httpGet(address, "/v1/channels/\(encoded)"),
                  status == 200, let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
            else { continue }
            answers.append(object)
        }
        guard !answers.isEmpty else { throw CommandArguments.Failure("no node of \(dir) answered (is the cluster up and sharded?)") }
        // The leader's head confirmed by a read index covers every acknowledged publish; a
        // follower's copy may trail it.
        let best = answers.first { $0["role"] as? String == "leader" && $0["linearizable"] as? Bool == true }
            ?? answers.first { $0["role"] as? String == "leader" } ?? answers.max {
            (($0["head"] as? NSNumber)?.intValue ?? 0) < (($1["head"] as? NSNumber)?.intValue ?? 0)
        }!
        let result: [String: Any] = [
            "channel": name, "shard": best["shard"] ?? -1, "replicas": best["replicas"] ?? [],
            "leader": best["leader"] ?? "", "head": best["head"] ?? 0, "earliest": best["earliest"] ?? 1,
            "linearizable": best["linearizable"] ?? false,
        ]
        if arguments.has("json") {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
        } else {
            for key in ["channel", "shard", "replicas", "leader", "head", "earliest", "linearizable"] {
                let value = result[key].map { ($0 as? [String])?.joined(separator: ",") ?? "\($0)" } ?? ""
                emit("\(key + ":")\(String(repeating: " ", count: 14 - key.count))\(value)")
            }
        }
        return 0
    }
}
