import Auth
import ChaparCore
import Foundation
import Transport

/// Local clusters on loopback: each node on its own 127.0.1.N address, ports picked by
/// the kernel, all in one directory that `cluster.json` describes.
enum ClusterCommands {
    static let upUsage = """
        USAGE: chaparctl cluster up --nodes N --dir DIR [--shards S] [--replicas R] [--loops L]
                                   [--election-ms MS] [--moves-max N] [--raft-log-keep N]
                                   [--config FILE] [--chapard PATH]

        Starts N nodes on loopback (node-i on 127.0.1.i, zone z1..z3, ports chosen by the
        kernel) with a fresh cluster id and gossip keyring, writes DIR/cluster.json, and
        returns once every node sees every other alive — and, with --shards, once every
        shard has a leader. With --shards S the nodes run clustered: channels hash into S
        shards, each a Raft group on R nodes (default 3, at most N). Stop them with
        `chaparctl cluster down --dir DIR`. --loops, --election-ms, --moves-max, --raft-log-keep
        and --config (a chapard config file, e.g. with retention) are passed to every chapard.
        """

    static let downUsage = """
        USAGE: chaparctl cluster down --dir DIR

        Stops the nodes listed in DIR/cluster.json by their PIDs (SIGTERM, then SIGKILL
        after 10 s), and checks each PID still runs chapard before signalling it.
        """

    static let membersUsage = """
        USAGE: chaparctl members (--dir DIR | --admin HOST:PORT) [--json]

        Prints each member's id, state, incarnation, zone and addresses as seen by one
        node (the first reachable node of DIR/cluster.json, or the given admin address).
        """

    struct NodeEntry: Codable {
        var id: String
        var pid: Int32
        var client: String
        var peer: String
        var gossip: String
        var admin: String
        var data: String
        /// chapard's flags, but for --seeds (chosen at each start among the live nodes).
        var args: [String]?
    }

    struct ClusterFile: Codable {
        var cluster_id: String
        var chapard: String?
        var shards: Int?
        var replicas: Int?
        var nodes: [NodeEntry]
    }

    static func up(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(upUsage); return 0 }
        try arguments.rejectUnknown([
            "nodes", "dir", "chapard", "shards", "replicas", "loops", "election-ms", "moves-max", "raft-log-keep", "config", "help",
        ])
        guard let count = try arguments.integer("nodes", in: 1...200), let dir = arguments.option("dir") else {
            throw CommandArguments.Failure("cluster up needs --nodes N and --dir DIR\n\n\(upUsage)")
        }
        let shards = try arguments.integer("shards", in: 1...4096)
        let replicas = try arguments.integer("replicas", in: 1...7) ?? min(3, count)
        if shards != nil && replicas > count {
            throw CommandArguments.Failure("--replicas \(replicas) needs at least \(replicas) nodes (--nodes \(count))")
        }
        let bootstrap = (1...count).map { "node-\($0)@z\(($0 - 1) % 3 + 1)" }.joined(separator: ",")
        let chapard = arguments.option("chapard")
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("chapard").path
        guard FileManager.default.isExecutableFile(atPath: chapard) else {
            throw CommandArguments.Failure("no chapard at \(chapard) (use --chapard PATH)")
        }
        if FileManager.default.fileExists(atPath: dir + "/cluster.json") {
            throw CommandArguments.Failure("\(dir)/cluster.json exists: run `chaparctl cluster down --dir \(dir)` first")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let keyring = dir + "/gossip.keyring"
        try Data("1 \(TokenSecret.generateHex())\n".utf8).write(to: URL(fileURLWithPath: keyring))
        _ = chmod(keyring, 0o600)
        let clusterId = "local-" + String(TokenSecret.generateHex().prefix(8))
        var nodes: [NodeEntry] = []
        // No cluster.json until every node runs, so `cluster down` could not find the ones
        // started before a failure: stop those here.
        do {
            for index in 1...count {
                let host = "127.0.1.\(index)"
                let data = dir + "/node-\(index)"
                try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: data + "/chapard.json")
                var flags = ["--data", data, "--listen", "\(host):0", "--gossip", "\(host):0", "--admin", "\(host):0",
                             "--node-id", "node-\(index)", "--zone", "z\((index - 1) % 3 + 1)", "--cluster-id", clusterId,
                             "--gossip-key-file", keyring]
                if let shards {
                    flags += ["--shards", "\(shards)", "--replicas", "\(replicas)", "--bootstrap", bootstrap, "--peer", "\(host):0"]
                }
                for name in ["loops", "election-ms", "moves-max", "raft-log-keep"] {
                    if let value = arguments.option(name) { flags += ["--\(name)", value] }
                }
                if let config = arguments.option("config") {
                    flags += ["--config", URL(fileURLWithPath: config).standardizedFileURL.path]
                }
                let entry = NodeEntry(id: "node-\(index)", pid: 0, client: "", peer: "", gossip: "", admin: "", data: data, args: flags)
                nodes.append(try await launch(entry, chapard: chapard, seeds: nodes.map(\.gossip)))
            }
        } catch {
            try await stop(nodes)
            throw error
        }
        let file = ClusterFile(
            cluster_id: clusterId, chapard: chapard, shards: shards, replicas: shards == nil ? nil : replicas, nodes: nodes)
        try writeCluster(file, dir)
        // Done when every node sees every node alive.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let views = nodes.map { (try? fetchMembers($0.admin)) ?? [] }
            let alive = views.allSatisfy { view in nodes.allSatisfy { node in view.contains { $0.id == node.id && $0.state == "alive" } } }
            if alive, let shards, ShardCommands.leaderless(nodes.map(\.admin), shards: shards) > 0 {
                try await Task.sleep(nanoseconds: 100_000_000)
                continue
            }
            if alive {
                let sharding = shards.map { ", \($0) shards × \(replicas) replicas, every shard led" } ?? ""
                emit("cluster \(clusterId): \(count) node(s) up, all alive\(sharding); \(dir)/cluster.json")
                printTable(nodes.map { [$0.id, "\($0.pid)", $0.client, $0.gossip, $0.admin] },
                           header: ["id", "pid", "client", "gossip", "admin"])
                return 0
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw CommandArguments.Failure("the nodes did not all see each other alive within 60 s (logs in \(dir)/node-*/chapard.log)")
    }

    /// Starts one node from its entry's flags (joining through `seeds`, if any) and returns
    /// the entry with its PID and bound addresses.
    static func launch(_ node: NodeEntry, chapard: String, seeds: [String]) async throws -> NodeEntry {
        try? FileManager.default.removeItem(atPath: node.data + "/chapard.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chapard)
        let live = seeds.filter { !$0.isEmpty }
        process.arguments = (node.args ?? []) + (live.isEmpty ? [] : ["--seeds", live.joined(separator: ",")])
        let logPath = node.data + "/chapard.log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let details: [String: String]
        do { details = try await waitForDetails(data: node.data, process: process) } catch {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            throw CommandArguments.Failure("\(error)\(tail.isEmpty ? "" : "; its log ends:\n" + tail)")
        }
        var started = node
        started.pid = process.processIdentifier
        started.client = details["client"] ?? ""
        started.peer = details["peer"] ?? ""
        started.gossip = details["gossip"] ?? ""
        started.admin = details["admin"] ?? ""
        return started
    }

    static func writeCluster(_ file: ClusterFile, _ dir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(file).write(to: URL(fileURLWithPath: dir + "/cluster.json"), options: .atomic)
    }

    static func waitForDetails(data: String, process: Process) async throws -> [String: String] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let bytes = FileManager.default.contents(atPath: data + "/chapard.json"),
               let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] {
                return object.compactMapValues { $0 as? String }
            }
            if !process.isRunning { throw CommandArguments.Failure("chapard for \(data) exited; see \(data)/chapard.log") }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw CommandArguments.Failure("chapard for \(data) did not start within 20 s")
    }

    static func readCluster(_ dir: String) throws -> ClusterFile {
        guard let bytes = FileManager.default.contents(atPath: dir + "/cluster.json") else {
            throw CommandArguments.Failure("no \(dir)/cluster.json (start one with `chaparctl cluster up`)")
        }
        return try JSONDecoder().decode(ClusterFile.self, from: bytes)
    }

    static func down(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(downUsage); return 0 }
        try arguments.rejectUnknown(["dir", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster down needs --dir DIR") }
        let cluster = try readCluster(dir)
        try await stop(cluster.nodes)
        try FileManager.default.removeItem(atPath: dir + "/cluster.json")
        emit("cluster \(cluster.cluster_id): \(cluster.nodes.count) node(s) stopped")
        return 0
    }

    /// SIGTERM to each node's PID, SIGKILL to any still running 10 s later.
    static func stop(_ nodes: [NodeEntry]) async throws {
        for node in nodes where isChapard(node.pid) { kill(node.pid, SIGTERM) }
        for node in nodes {
            let deadline = Date().addingTimeInterval(10)
            while isChapard(node.pid) && Date() < deadline { try await Task.sleep(nanoseconds: 50_000_000) }
            if isChapard(node.pid) { kill(node.pid, SIGKILL) }
        }
    }

    /// True while `pid` is a chapard (not a recycled PID) with any thread not yet dead.
    /// After SIGKILL the main thread can be a zombie while another still finishes a system
    /// call (an fsync) holding the process's files — the data directory's lock among them —
    /// so a node restarted at that moment would find its directory locked.
    static func isChapard(_ pid: Int32) -> Bool {
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
              comm.hasPrefix("chapard"),
              let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        else { return false }
        return tasks.contains { task in
            // stat: "tid (comm) S …" — the state follows the last ')'.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
            return state != nil && state != "Z" && state != "X"
        }
    }

    struct MemberRow {
        var id, state: String
        var incarnation: Int
        var zone, client, gossip, admin: String
        var raw: [String: Any]
    }

    static func fetchMembers(_ admin: String) throws -> [MemberRow] {
        let (status, body) = try httpGet(try SocketAddress(parsing: admin), "/v1/members")
        guard status == 200, let array = try JSONSerialization.jsonObject(with: Data(body)) as? [[String: Any]] else {
            throw CommandArguments.Failure("\(admin) answered HTTP \(status): \(String(decoding: body, as: UTF8.self))")
        }
        return array.map { object in
            MemberRow(
                id: object["id"] as? String ?? "?", state: object["state"] as? String ?? "?",
                incarnation: (object["incarnation"] as? NSNumber)?.intValue ?? 0, zone: object["zone"] as? String ?? "",
                client: object["client"] as? String ?? "", gossip: object["gossip"] as? String ?? "",
                admin: object["admin"] as? String ?? "", raw: object)
        }
    }

    static func members(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(membersUsage); return 0 }
        try arguments.rejectUnknown(["dir", "admin", "json", "help"])
        var admins: [String] = []
        if let admin = arguments.option("admin") { admins = [admin] }
        else if let dir = arguments.option("dir") { admins = try readCluster(dir).nodes.map(\.admin) }
        else { throw CommandArguments.Failure("members needs --dir DIR or --admin HOST:PORT\n\n\(membersUsage)") }
        var lastError: Error?
        for admin in admins {
            do {
                let rows = try fetchMembers(admin)
                if arguments.has("json") {
                    let data = try JSONSerialization.data(withJSONObject: rows.map(\.raw), options: [.prettyPrinted, .sortedKeys])
                    emit(String(decoding: data, as: UTF8.self))
                } else {
                    printTable(rows.map { [$0.id, $0.state, "\($0.incarnation)", $0.zone, $0.client, $0.gossip, $0.admin] },
                               header: ["id", "state", "incarnation", "zone", "client", "gossip", "admin"])
                }
                return 0
            } catch {
                lastError = error
            }
        }
        throw lastError ?? CommandArguments.Failure("no node to ask")
    }

    static func printTable(_ rows: [[String]], header: [String]) {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        for row in all {
            let line = row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
            emit(String(line.reversed().drop { $0 == " " }.reversed()))
        }
    }
}
