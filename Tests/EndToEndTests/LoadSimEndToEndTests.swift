import Foundation
import Testing

@Suite(.serialized) struct LoadSimEndToEndTests {
    func loadsim(_ arguments: [String]) throws -> (Int32, String, String) {
        try runTool("chapar-loadsim", arguments, seconds: 120)
    }

    /// A short run of each built-in scenario shape against a real node passes the oracle
    /// and writes the JSON report with the documented fields.
    @Test(arguments: ["broadcast", "groups", "reconnect-storm", "catch-up"])
    func shortRunPassesTheOracle(_ scenario: String) throws {
        let node = NodeProcess()
        defer { node.cleanUp() }
        try node.start()
        let json = node.data + "-report.json"
        let svg = node.data + "-report.svg"
        defer { try? FileManager.default.removeItem(atPath: json); try? FileManager.default.removeItem(atPath: svg) }
        var arguments = ["run", "--scenario", scenario, "--target", "chapar://\(node.address)", "--json", json, "--svg", svg]
        switch scenario {
        case "broadcast": arguments += ["--duration", "2", "--subscribers", "20", "--rate", "2000"]
        case "groups": arguments += ["--duration", "2", "--users", "200", "--channels", "40"]
        case "reconnect-storm": arguments += ["--users", "100", "--subscribers", "50", "--rate", "500"]
        default: arguments += ["--users", "40", "--subscribers", "10", "--rate", "500"]
        }
        let (status, out, errors) = try loadsim(arguments)
        #expect(status == 0, "\(out)\n\(errors)")
        #expect(out.contains("oracle     order 0  gaps 0  duplicates 0  lost 0   OK"), "\(out)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let violations = report?["violations"] as? [String: Any]
        #expect(violations?["lost"] as? Double == 0)
        #expect((report?["delivered_msgs_per_s"] as? Double ?? 0) > 0)
        #expect((report?["latency_us"] as? [String: Any])?["p99"] != nil)
        #expect(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<svg"))
        if scenario == "reconnect-storm" { #expect((report?["reconnects"] as? Double ?? 0) > 0) }
    }

    /// A publish-only connection moves to its channel's leader even when it first lands on
    /// a node that does not host the shard (that node knows no leader, only the replicas;
    /// one of them does): one shard, one replica, the publisher started on another node.
    @Test func aPublisherMovesToTheLeaderThroughAReplica() async throws {
        try await withLocalCluster("locate", nodes: 3, shards: 1, replicas: 1) { dir in
            let rows = try shardRows(try nodeAdmin(dir, "node-1"))
            let leader = try #require(rows.first?["leader"] as? String)
            let others = ["node-1", "node-2", "node-3"].filter { $0 != leader }
            let clients = try (others + [leader]).map { try nodeField(dir, $0, "client") }
            let json = dir + "/report.json"
            let (status, out, errors) = try loadsim([
                "run", "--scenario", "broadcast", "--subscribers", "0", "--duration", "2", "--rate", "2000",
                "--target", "chapar://" + clients.joined(separator: ","), "--json", json,
            ])
            #expect(status == 0, "\(out)\n\(errors)")
            #expect(out.contains("lost 0"), "\(out)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            let notes = report?["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("publishes at \(clients[2]), its channel's leader") }, "leader \(leader) at \(clients[2]): \(notes)")
        }
    }

    @Test func badScenarioFileNamesTheField() throws {
        let path = FileManager.default.temporaryDirectory.path + "/chapar-bad-scenario-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"name": "x", "users": 5, "duration_s": 1, "workloads": [{"subscribers": {"fixed": 2}, "rate": 10, "size": 3}]}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        let (status, _, errors) = try loadsim(["run", "--scenario", path, "--target", "chapar://127.0.0.1:1"])
        #expect(status == 2)
        #expect(errors.contains("workloads[0].size"), "\(errors)")
    }
}
