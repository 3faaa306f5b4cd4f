import ChaparCore
import Client
import Foundation
import Transport

/// Chaos commands for a local cluster: kill a node, restart it, and the failover drill
/// that measures how long a shard stays unwritable after its leader is killed.
enum FailoverDrill {
    static let killUsage = """
        USAGE: chaparctl cluster kill --dir DIR --node ID

        Sends SIGKILL to the node's PID (checked to be a chapard first): a crash, not a stop.
        Returns once all of the node's threads are gone (at most 10 s), so `cluster restart`
        right after finds its data directory unlocked.
        """

    static let restartUsage = """
        USAGE: chaparctl cluster restart --dir DIR --node ID

        Starts a stopped or crashed node again on its data directory with its original flags,
        joining through the live nodes; updates DIR/cluster.json with its new PID and addresses.
        """

    static let drillUsage = """
        USAGE: chaparctl cluster drill --dir DIR [--trials N] [--json]

        Failover drill on a sharded local cluster, N times (default 20): find the leader of
        channel drill-K's shard, publish once through another node, `kill -9` the leader,
        then publish through that node again until a publish is acknowledged; the time from
        the kill to that acknowledgement is the trial's failover time. The node is restarted
        and the cluster left with every shard led before the next trial. Prints each trial
        and the median and maximum.
        """

    static func node(_ arguments: CommandArguments, _ cluster: ClusterCommands.ClusterFile) throws -> Int {
        guard let id = arguments.option("node"), let index = cluster.nodes.firstIndex(where: { $0.id == id }) else {
            throw CommandArguments.Failure("--node ID must name a node of cluster.json")
        }
        return index
    }

    static func kill(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(killUsage); return 0 }
        try arguments.rejectUnknown(["dir", "node", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster kill needs --dir DIR") }
        let cluster = try ClusterCommands.readCluster(dir)
        let node = cluster.nodes[try node(arguments, cluster)]
        guard ClusterCommands.isChapard(node.pid) else { throw CommandArguments.Failure("\(node.id) (PID \(node.pid)) is not running") }
        Glibc.kill(node.pid, SIGKILL)
        try await waitForExit(node)
        emit("\(node.id): SIGKILL sent to PID \(node.pid)")
        return 0
    }

    /// Returns once every thread of a killed node is gone, so a restart right after finds
    /// its data directory unlocked.
    static func waitForExit(_ node: ClusterCommands.NodeEntry) async throws {
        let deadline = Date().addingTimeInterval(10)
        while ClusterCommands.isChapard(node.pid) && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        guard !ClusterCommands.isChapard(node.pid) else {
            throw CommandArguments.Failure("\(node.id) (PID \(node.pid)) still runs 10 s after SIGKILL")
        }
    }

    static func restart(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(restartUsage); return 0 }
        try arguments.rejectUnknown(["dir", "node", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster restart needs --dir DIR") }
        var cluster = try ClusterCommands.readCluster(dir)
        let index = try node(arguments, cluster)
        try await restart(&cluster, index, dir: dir)
        emit("\(cluster.nodes[index].id): running as PID \(cluster.nodes[index].pid), client \(cluster.nodes[index].client)")
        return 0
    }

    static func restart(_ cluster: inout ClusterCommands.ClusterFile, _ index: Int, dir: String) async throws {
        let node = cluster.nodes[index]
        guard !ClusterCommands.isChapard(node.pid) else { throw CommandArguments.Failure("\(node.id) is running (PID \(node.pid))") }
        guard let chapard = cluster.chapard, node.args != nil else {
            throw CommandArguments.Failure("cluster.json lacks the flags to restart \(node.id) (made by an older chaparctl)")
        }
        let seeds = cluster.nodes.filter { $0.id != node.id && ClusterCommands.isChapard($0.pid) }.map(\.gossip)
        cluster.nodes[index] = try await ClusterCommands.launch(node, chapard: chapard, seeds: seeds)
        try ClusterCommands.writeCluster(cluster, dir)
    }

    static func drill(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(drillUsage); return 0 }
        try arguments.rejectUnknown(["dir", "trials", "json", "help"])
        guard let dir = arguments.option("dir") else { throw CommandArguments.Failure("cluster drill needs --dir DIR") }
        let trials = try arguments.integer("trials", in: 1...1000) ?? 20
        var cluster = try ClusterCommands.readCluster(dir)
        guard let shards = cluster.shards else { throw CommandArguments.Failure("the cluster in \(dir) is not sharded") }
        var results: [(trial: Int, leader: String, shard: Int, ms: Double)] = []
        for trial in 1...trials {
            try await waitForAllLed(cluster, shards: shards)
            let channel = "drill-\(trial)"
            let (leaderName, shard) = try await leader(of: channel, cluster)
            guard let victim = cluster.nodes.firstIndex(where: { $0.id == leaderName }),
                  let via = cluster.nodes.firstIndex(where: { $0.id != leaderName && ClusterCommands.isChapard($0.pid) })
            else { throw CommandArguments.Failure("no live node besides the leader \(leaderName)") }
            let client = try await ChaparClient.connect(to: try SocketAddress(parsing: cluster.nodes[via].client), clientName: "chaparctl-drill")
            defer { client.close() }
            _ = try await client.publish(channel, Array("before".utf8))
            Glibc.kill(cluster.nodes[victim].pid, SIGKILL)
            let start = MonotonicClock.nowNs()
            let deadline = start + 60_000_000_000
            var acknowledged = false
            while !acknowledged && MonotonicClock.nowNs() < deadline {
                do {
                    _ = try await client.publish(channel, Array("after".utf8))
                    acknowledged = true
                } catch {
                    try await Task.sleep(nanoseconds: 5_000_000)
                }
            }
            guard acknowledged else { throw CommandArguments.Failure("trial \(trial): no publish acknowledged within 60 s of the kill") }
            let ms = Double(MonotonicClock.nowNs() - start) / 1e6
            results.append((trial, leaderName, shard, ms))
            if !arguments.has("json") { emit("trial \(trial): killed \(leaderName) (leader of shard \(shard)); first ack after \(String(format: "%.0f", ms)) ms") }
            // Wait for the dead node's process to be reaped before reusing its data directory.
            while ClusterCommands.isChapard(cluster.nodes[victim].pid) { try await Task.sleep(nanoseconds: 10_000_000) }
            try await waitForExit(cluster.nodes[victim])
            try await restart(&cluster, victim, dir: dir)
        }
        try await waitForAllLed(cluster, shards: shards)
        let sorted = results.map(\.ms).sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        if arguments.has("json") {
            let object: [String: Any] = [
                "trials": results.map { ["trial": $0.trial, "leader": $0.leader, "shard": $0.shard, "ms": $0.ms] },
                "median_ms": median, "max_ms": sorted.last ?? 0, "min_ms": sorted.first ?? 0,
            ]
            emit(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            emit(String(format: "failover over %d trials: median %.0f ms, max %.0f ms, min %.0f ms", sorted.count, median, sorted.last ?? 0, sorted.first ?? 0))
        }
        return 0
    }

    /// Healthy: every shard led, and every node answering with every replica it holds
    /// knowing its leader (so its peer links are up) — each trial starts from a whole cluster.
    static func waitForAllLed(_ cluster: ClusterCommands.ClusterFile, shards: Int) async throws {
        let deadline = Date().addingTimeInterval(60)
        while true {
            let rows = ShardCommands.rows(cluster.nodes.map(\.admin))
            let led = Set(rows.values.joined().filter { $0.role == "leader" }.map(\.shard))
            let healthy = rows.count == cluster.nodes.count && led.count == shards
                && rows.values.allSatisfy { $0.allSatisfy { !$0.leader.isEmpty } }
            if healthy { return }
            guard Date() < deadline else { throw CommandArguments.Failure("the cluster was not whole again within 60 s") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// The node leading `channel`'s shard, as that node itself reports.
    static func leader(of channel: String, _ cluster: ClusterCommands.ClusterFile) async throws -> (String, Int) {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            for node in cluster.nodes {
                guard let address = try? SocketAddress(parsing: node.admin),
                      let (status, body) = try? httpGet(address, "/v1/channels/\(channel)"), status == 200,
                      let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
                else { continue }
                if object["role"] as? String == "leader" { return (node.id, (object["shard"] as? NSNumber)?.intValue ?? -1) }
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw CommandArguments.Failure("no node leads the shard of \(channel)")
    }
}
