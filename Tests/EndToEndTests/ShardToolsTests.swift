import Client
import Foundation
import Testing
import Transport

@Suite(.serialized) struct ShardToolsTests {
    /// The operator's view of a sharded local cluster: `cluster up --shards`, `pub`/`sub
    /// --dir` through different nodes, `channel info --json` (shard, replicas, leader, a
    /// head read through the leader's read index), `shards --json`, a crash and a restart
    /// with `cluster kill|restart`, and `cluster down` by PID.
    @Test func shardedClusterTools() async throws {
        try await withLocalCluster("shards", nodes: 3, shards: 8) { dir in

            for text in ["one", "two", "three"] {
                let (status, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-1", "news", text])
                #expect(status == 0, "\(stderr)")
            }
            let (subStatus, lines, _) = try chaparctl(["sub", "--dir", dir, "--node", "node-3", "news", "--from", "earliest", "--count", "3"])
            #expect(subStatus == 0)
            #expect(lines == "1 one\n2 two\n3 three\n")

            let (infoStatus, infoJSON, _) = try chaparctl(["channel", "info", "news", "--dir", dir, "--json"])
            #expect(infoStatus == 0)
            let info = try JSONSerialization.jsonObject(with: Data(infoJSON.utf8)) as? [String: Any] ?? [:]
            #expect((info["head"] as? NSNumber)?.intValue == 3)
            #expect(info["linearizable"] as? Bool == true)
            #expect((info["replicas"] as? [String])?.sorted() == ["node-1", "node-2", "node-3"])
            let leader = try #require(info["leader"] as? String)
            #expect((0..<8).contains((info["shard"] as? NSNumber)?.intValue ?? -1))

            // LOCATE through every node: the same shard, replicas and leader, with the
            // nodes' client addresses.
            for node in ["node-1", "node-2", "node-3"] {
                let client = try await ChaparClient.connect(to: try SocketAddress(parsing: try nodeField(dir, node, "client")))
                defer { client.close() }
                let location = try await client.locate("news")
                #expect(Int(location.shard) == (info["shard"] as? NSNumber)?.intValue)
                #expect(location.nodes.map(\.id).sorted() == ["node-1", "node-2", "node-3"])
                for entry in location.nodes { #expect(entry.address == (try nodeField(dir, entry.id, "client")), "\(node): \(entry)") }
                #expect(location.leaderNode?.id == leader, "through \(node)")
            }

            let (shardsStatus, shardsJSON, _) = try chaparctl(["shards", "--dir", dir, "--json"])
            #expect(shardsStatus == 0)
            let rows = try JSONSerialization.jsonObject(with: Data(shardsJSON.utf8)) as? [[String: Any]] ?? []
            #expect(rows.count == 8 && rows.allSatisfy { !($0["leader"] as? String ?? "").isEmpty })

            // Crash the channel's leader; publishing goes on through another node; restart it.
            let (killed, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", leader])
            #expect(killed == 0)
            let survivor = leader == "node-1" ? "node-2" : "node-1"
            try await waitUntilAsync("a publish after the crash", seconds: 30) {
                (try chaparctl(["pub", "--dir", dir, "--node", survivor, "news", "four"])).0 == 0
            }
            let (restarted, _, restartErrors) = try chaparctl(["cluster", "restart", "--dir", dir, "--node", leader], seconds: 60)
            #expect(restarted == 0, "\(restartErrors)")
            try await waitUntilAsync("the restarted node serves the channel", seconds: 30) {
                let (status, text, _) = try chaparctl(["sub", "--dir", dir, "--node", leader, "news", "--from", "4", "--count", "1"], seconds: 10)
                return status == 0 && text == "4 four\n"
            }
        }
    }
}
