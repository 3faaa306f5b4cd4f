import Auth
import ChaparCore
import Foundation
import Transport

/// Growing, draining and rebalancing a clustered local cluster through its controller
/// (docs/OPERATIONS.md, "Changing the topology"). Commands are signed with the cluster's
/// gossip keyring and sent to the controller's leader, found by following `not_leader`
/// hints from the first reachable node.
enum TopologyCommands {
    static let addUsage = """
        USAGE: chaparctl cluster add --dir DIR [--zone Z] [--weight W]

        Starts one more node (node-N on 127.0.1.N) with the cluster's flags, joining through
        the live nodes, and waits until the controller has registered it. It holds no
        replicas until `chaparctl cluster rebalance`.
        """

    static let commandUsage = """
        USAGE: chaparctl cluster drain|undrain|remove --node ID --dir DIR
               chaparctl cluster rebalance --dir DIR [--timeout S] [--plan]
               chaparctl cluster epsilon VALUE --dir DIR

        drain: the node takes no replicas in the next map (its replicas move away at the next
        rebalance); undrain reverses it. remove: the node leaves the cluster for good (its id
        cannot register again). rebalance: the controller plans a new map with the fewest
        moves, and the command waits (default 300 s) until every shard's replica set matches
        it; with --plan it only shows the moves it would make and the loads after. epsilon: the load bound (no node above (1 + ε) × its share of replicas).
        """

    static let statusUsage = """
        USAGE: chaparctl cluster status --dir DIR [--json]

        The controller's view: map epoch, controller leader, and each registered node's
        zone, weight, draining flag and replica count.
        """

    static func add(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(addUsage); return 0 }
        try arguments.rejectUnknown(["dir", "zone", "weight", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster add needs --dir DIR\n\n\(addUsage)") }
        var cluster = try ClusterCommands.readCluster(dir)
        guard let template = cluster.nodes.first?.args, let chapard = cluster.chapard, cluster.shards != nil else {
            throw CommandArguments.Failure("cluster add needs a clustered local cluster (cluster up --shards)")
        }
        let index = (cluster.nodes.compactMap { Int($0.id.dropFirst("node-".count)) }.max() ?? 0) + 1
        let id = "node-\(index)", host = "127.0.1.\(index)", data = dir + "/" + id
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var overrides = [
            "--data": data, "--listen": "\(host):0", "--gossip": "\(host):0", "--admin": "\(host):0", "--peer": "\(host):0",
            "--node-id": id, "--zone": arguments.option("zone") ?? "z\((index - 1) % 3 + 1)",
        ]
        if let weight = try arguments.integer("weight", in: 1...1000) { overrides["--weight"] = "\(weight)" }
        var flags: [String] = []
        var position = 0
        while position < template.count {
            let flag = template[position]
            let value = position + 1 < template.count ? template[position + 1] : ""
            flags += [flag, overrides.removeValue(forKey: flag) ?? value]
            position += 2
        }
        for (flag, value) in overrides.sorted(by: { $0.key < $1.key }) { flags += [flag, value] }
        let entry = ClusterCommands.NodeEntry(id: id, pid: 0, client: "", peer: "", gossip: "", admin: "", data: data, args: flags)
        let seeds = cluster.nodes.filter { ClusterCommands.isChapard($0.pid) }.map(\.gossip)
        let started = try await ClusterCommands.launch(entry, chapard: chapard, seeds: seeds)
        cluster.nodes.append(started)
        try ClusterCommands.writeCluster(cluster, dir)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let state = try? status(cluster), (state["nodes"] as? [[String: Any]] ?? []).contains(where: { $0["id"] as? String == id }) {
                emit("\(id): running as PID \(started.pid), client \(started.client); registered — `chaparctl cluster rebalance --dir \(dir)` moves replicas onto it")
                return 0
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        throw CommandArguments.Failure("\(id) started (PID \(started.pid)) but the controller did not register it within 60 s")
    }

    /// drain, undrain, remove, rebalance, epsilon.
    static func command(_ name: String, _ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(commandUsage); return 0 }
        try arguments.rejectUnknown(["dir", "node", "timeout", "plan", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster \(name) needs --dir DIR\n\n\(commandUsage)") }
        let cluster = try ClusterCommands.readCluster(dir)
        if name == "rebalance" && arguments.has("plan") { return try showPlan(cluster) }
        var target = "/v1/cluster/\(name)"
        switch name {
        case "drain", "undrain", "remove":
            guard let node = arguments.option("node") else { throw CommandArguments.Failure("cluster \(name) needs --node ID") }
            target += "?node=" + (node.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? node)
        case "epsilon":
            guard arguments.positionals.count == 2, let value = Double(arguments.positionals[1]) else {
                throw CommandArguments.Failure("usage: chaparctl cluster epsilon VALUE --dir DIR")
            }
            target += "?value=\(value)"
        default: break
        }
        let keyring = try GossipKeyring(text: try String(contentsOfFile: dir + "/gossip.keyring", encoding: .utf8))
        let result = try await send(target, cluster: cluster, keyring: keyring)
        let epoch = (result["epoch"] as? NSNumber)?.intValue ?? 0
        emit("\(name): \(result["outcome"] as? String ?? "?") (map epoch \(epoch))")
        guard name == "rebalance" || name == "remove" || name == "drain" else { return 0 }
        let timeout = Double(try arguments.integer("timeout", in: 1...3600) ?? 300)
        guard name == "rebalance" else { return 0 }
        try await waitForMap(epoch: epoch, dir: dir, seconds: timeout)
        emit("every shard's replica set matches map epoch \(epoch)")
        return 0
    }

    /// Posts a signed command to the controller leader, following hints; retries while the
    /// controller elects a leader.
    static func send(_ target: String, cluster: ClusterCommands.ClusterFile, keyring: GossipKeyring) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(30)
        var candidates = cluster.nodes.map(\.admin)
        var lastProblem = "no node answered"
        while Date() < deadline {
            for admin in candidates {
                guard let address = try? SocketAddress(parsing: admin) else { continue }
                let header = AdminSignature.header(keyring: keyring, method: "POST", target: target, wallMs: WallClock.nowMs())
                guard let (status, body) = try? httpRequest(address, method: "POST", target, headers: ["Authorization": header]) else {
                    continue
                }
                let object = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
                switch status {
                case 200: return object
                case 421:
                    // Ask the leader it names first next time round; a node that knows of none
                    // (it holds no controller seat) goes last.
                    if let leader = object["leader"] as? String, let node = cluster.nodes.first(where: { $0.id == leader }) {
                        candidates = [node.admin] + candidates.filter { $0 != node.admin }
                    } else {
                        candidates = candidates.filter { $0 != admin } + [admin]
                    }
                    lastProblem = "no controller leader reachable"
                case 409: throw CommandArguments.Failure("refused: \(object["message"] as? String ?? "")")
                case 503: lastProblem = object["message"] as? String ?? "controller unavailable"
                default:
                    throw CommandArguments.Failure("\(admin) answered HTTP \(status): \(String(decoding: body, as: UTF8.self))")
                }
                break
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        throw CommandArguments.Failure("the controller did not take the command within 30 s: \(lastProblem)")
    }

    /// The controller's state, from its leader when one is known (it answered the last
    /// command only after applying it), else as the first reachable node knows it.
    static func status(_ cluster: ClusterCommands.ClusterFile) throws -> [String: Any] {
        func fetch(_ admin: String) -> [String: Any]? { fetchJSON(admin, "/v1/cluster") }
        var fallback: [String: Any]?
        for node in cluster.nodes {
            guard let state = fetch(node.admin) else { continue }
            let leader = state["controller_leader"] as? String ?? ""
            if leader == node.id { return state }
            if let admin = cluster.nodes.first(where: { $0.id == leader })?.admin, let fresh = fetch(admin) { return fresh }
            // A node without a controller seat knows no leader: ask the others first.
            fallback = fallback ?? state
        }
        guard let fallback else { throw CommandArguments.Failure("no node of cluster.json answered GET /v1/cluster") }
        return fallback
    }

    /// Waits until every running node knows map `epoch`, every shard's leader runs exactly
    /// the map's replicas as voters (no learners left), and replicas outside the map are
    /// gone — judged only from shard rows of that epoch or later (a node refreshes its rows
    /// every 200 ms, so right after adopting a map its rows still show the old one).
    static func waitForMap(epoch: Int, dir: String, seconds: Double) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        var pending = -1
        while Date() < deadline {
            // Read afresh each time: nodes restarted meanwhile have new addresses.
            let cluster = try ClusterCommands.readCluster(dir)
            let admins = cluster.nodes.filter { ClusterCommands.isChapard($0.pid) }.map(\.admin)
            pending = unsettledShards(admins, epoch: epoch)
            if pending == 0 { return }
            try await Task.sleep(nanoseconds: 250_000_000)
        }
        throw CommandArguments.Failure("\(pending) shard(s) had not reached map epoch \(epoch) after \(Int(seconds)) s")
    }

    /// Shards whose leader's configuration differs from the map (or with no leader), or
    /// that a node outside the map still holds; -1 while some node has an older map.
    static func unsettledShards(_ admins: [String], epoch: Int) -> Int {
        var nodes: [String: String] = [:]  // admin address → node id
        var shardCount = 0
        for admin in admins {
            guard let state = fetchJSON(admin, "/v1/cluster"), (state["epoch"] as? NSNumber)?.intValue ?? 0 >= epoch else { return -1 }
            shardCount = (state["shards"] as? NSNumber)?.intValue ?? 0
            nodes[admin] = state["node"] as? String ?? ""
        }
        var rows: [String: [ShardCommands.ShardRow]] = [:]
        for (admin, nodeRows) in ShardCommands.rows(admins) { rows[nodes[admin] ?? "", default: []] += nodeRows }
        return unsettled(rows, shards: shardCount, epoch: epoch).count
    }

    /// The shards of `rows` (each node's shard rows, by node id) not yet settled on map
    /// `epoch`. A row older than the epoch settles nothing: it may show the previous map's
    /// replicas, which the leader's voters still match.
    static func unsettled(_ rows: [String: [ShardCommands.ShardRow]], shards: Int, epoch: Int) -> [Int] {
        var leaders: [Int: ShardCommands.ShardRow] = [:]
        var stale: Set<Int> = []
        for (node, nodeRows) in rows {
            for row in nodeRows {
                guard row.epoch >= epoch else { stale.insert(row.shard); continue }
                if row.role == "leader" { leaders[row.shard] = row }
                if !row.replicas.contains(node) { stale.insert(row.shard) }
            }
        }
        return (0..<shards).filter { shard in
            guard let row = leaders[shard], !stale.contains(shard) else { return true }
            return Set(row.voters) != Set(row.replicas) || !row.learners.isEmpty
        }
    }

    /// The moves a rebalance would make now, as the controller's leader computes them.
    static func showPlan(_ cluster: ClusterCommands.ClusterFile) throws -> Int32 {
        let leader = try status(cluster)["controller_leader"] as? String ?? ""
        let admins = cluster.nodes.filter { $0.id == leader }.map(\.admin) + cluster.nodes.filter { $0.id != leader }.map(\.admin)
        for admin in admins {
            guard let plan = fetchJSON(admin, "/v1/cluster/plan") else { continue }
            let moves = plan["moves"] as? [[String: Any]] ?? []
            emit("\(moves.count) move(s) from map epoch \(plan["epoch"] ?? "?") (nothing changes until `cluster rebalance`)")
            ClusterCommands.printTable(moves.map { ["\($0["shard"] ?? "")", $0["from"] as? String ?? "-", $0["to"] as? String ?? ""] },
                                       header: ["shard", "from", "to"])
            let loads = (plan["loads_after"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
            emit("replicas per node after: " + loads.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            return 0
        }
        throw CommandArguments.Failure("no node answered GET /v1/cluster/plan")
    }

    static func showStatus(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(statusUsage); return 0 }
        try arguments.rejectUnknown(["dir", "json", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster status needs --dir DIR") }
        let state = try status(try ClusterCommands.readCluster(dir))
        if arguments.has("json") {
            let data = try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
            return 0
        }
        let epoch = (state["epoch"] as? NSNumber)?.intValue ?? 0
        emit("map epoch \(epoch), controller leader \(state["controller_leader"] as? String ?? "?"), "
            + "\(state["shards"] ?? "?") shards × \(state["replicas"] ?? "?") replicas, epsilon \(state["epsilon"] ?? "?")")
        let rows = (state["nodes"] as? [[String: Any]] ?? []).map { node in
            [node["id"] as? String ?? "?", node["zone"] as? String ?? "", "\(node["weight"] ?? 1)",
             (node["draining"] as? Bool ?? false) ? "yes" : "no", "\(node["replicas"] ?? 0)"]
        }
        ClusterCommands.printTable(rows, header: ["id", "zone", "weight", "draining", "replicas"])
        return 0
    }
}
