import Client
import Foundation
import Testing
import Transport

@Suite(.serialized) struct TopologyTests {
    /// An admin grows a 3-node cluster by one node and rebalances: the controller registers
    /// the node, the new map moves replicas onto it (every move onto the new node, none
    /// above the load bound), its replicas catch up with the history, and every channel
    /// still reads complete through every node. Then the node is drained (its replicas
    /// move away and are deleted; it relays instead) and removed for good.
    @Test func growRebalanceDrainRemove() async throws {
        try await withLocalCluster("topology", nodes: 3, shards: 8) { dir in
            let channels = (0..<8).map { "topic-\($0)" }
            for channel in channels {
                for text in ["a", "b", "c"] {
                    let (status, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-1", channel, text])
                    #expect(status == 0, "\(stderr)")
                }
            }
            let before = try clusterStatus(dir)
            #expect((before["epoch"] as? NSNumber)?.intValue == 1)

            // Grow, by a node in a zone of its own (zone spread outranks balance: a second node
            // in an existing zone would share that zone's replicas).
            let (added, addOut, addErrors) = try chaparctl(["cluster", "add", "--dir", dir, "--zone", "z4"], seconds: 90)
            #expect(added == 0, "\(addOut)\(addErrors)")
            #expect(replicas(of: "node-4", try clusterStatus(dir)) == 0, "registering alone moves nothing")
            let (planned, plan, planErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--plan"])
            #expect(planned == 0 && plan.contains("node-4") && plan.contains("from map epoch 1"), "\(plan)\(planErrors)")
            #expect((try clusterStatus(dir)["epoch"] as? NSNumber)?.intValue == 1, "a plan changes nothing")
            let (rebalanced, rebalanceOut, rebalanceErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "180"], seconds: 200)
            #expect(rebalanced == 0, "\(rebalanceOut)\(rebalanceErrors)")
            let grown = try clusterStatus(dir)
            #expect((grown["epoch"] as? NSNumber)?.intValue == 2)
            let onNew = replicas(of: "node-4", grown)
            // 8 shards × 3 replicas over 4 nodes: a mean of 6, at most ⌈6 × 1.1⌉ = 7 each.
            #expect(onNew >= 5 && onNew <= 7, "node-4 holds \(onNew) replicas")
            for node in ["node-1", "node-2", "node-3"] { #expect(replicas(of: node, grown) <= 7) }

            // The history is complete through every node, the new one included, and new
            // publishes reach it.
            for channel in channels {
                let (status, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-2", channel, "d"])
                #expect(status == 0, "\(stderr)")
            }
            for node in ["node-4", "node-3"] {
                for channel in channels {
                    let (status, text, stderr) = try chaparctl(
                        ["sub", "--dir", dir, "--node", node, channel, "--from", "earliest", "--count", "4"], seconds: 30)
                    #expect(status == 0 && text == "1 a\n2 b\n3 c\n4 d\n", "\(node) \(channel): \(text)\(stderr)")
                }
            }
            let admin4 = try nodeAdmin(dir, "node-4")
            let hosted = try shardRows(admin4)
            #expect(hosted.count == onNew, "node-4 runs a replica of each shard the map gives it")

            // A client library subscriber on node-4, to a channel node-4 now holds a replica of:
            // when that replica moves away, the client resumes by itself.
            let hostedChannel = try #require(channels.first { channel in
                let (status, body) = (try? httpGet(admin4, "/v1/channels/\(channel)")) ?? (0, "")
                return status == 200 && !body.contains("\"role\":\"none\"")
            })
            let reader = try await ChaparClient.connect(to: SocketAddress(parsing: try nodeField(dir, "node-4", "client")), clientName: "e2e")
            defer { reader.close() }
            let stream = try await reader.subscribe(hostedChannel, from: .earliest)

            // Drain: the node's replicas move away, are deleted there, and it relays instead.
            let (drained, _, drainErrors) = try chaparctl(["cluster", "drain", "--dir", dir, "--node", "node-4"])
            #expect(drained == 0, "\(drainErrors)")
            let (emptied, _, emptyErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "180"], seconds: 200)
            #expect(emptied == 0, "\(emptyErrors)")
            #expect(replicas(of: "node-4", try clusterStatus(dir)) == 0)
            try await waitUntilAsync("node-4 deletes its replicas", seconds: 60) { try shardRows(admin4).isEmpty }
            for channel in channels {
                let (status, text, stderr) = try chaparctl(
                    ["sub", "--dir", dir, "--node", "node-4", channel, "--from", "earliest", "--count", "4"], seconds: 30)
                #expect(status == 0 && text == "1 a\n2 b\n3 c\n4 d\n", "relayed \(channel): \(text)\(stderr)")
            }
            let (published, _, publishErrors) = try chaparctl(["pub", "--dir", dir, "--node", "node-1", hostedChannel, "e"])
            #expect(published == 0, "\(publishErrors)")
            let (seen, ended) = try await readMessages(stream, count: 5, of: reader)
            #expect(ended == nil, "the subscription ended: \(ended.map { "\($0)" } ?? "")")
            #expect(seen == ["1:a", "2:b", "3:c", "4:d", "5:e"])

            // Remove for good: the id is retired and cannot register again.
            let (removed, _, removeErrors) = try chaparctl(["cluster", "remove", "--dir", dir, "--node", "node-4"])
            #expect(removed == 0, "\(removeErrors)")
            let final = try clusterStatus(dir)
            #expect((final["retired"] as? [String]) == ["node-4"])
            #expect(!((final["nodes"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == "node-4" })
        }
    }

    /// Healing: a founder holding a controller seat crashes for good; gossip declares it
    /// dead but nothing moves until the admin removes it and rebalances. Then its replicas
    /// are re-created on the survivors from the others' logs, nothing acknowledged is lost,
    /// and the controller gives its seat to the spare node — so it outlives one more loss.
    @Test func removeADeadNodeAndHeal() async throws {
        // Replicas keep 2 applied entries, so the controller's log is trimmed: its new seat
        // starts from a snapshot of the cluster state.
        try await withLocalCluster("heal", nodes: 4, shards: 8, extra: ["--raft-log-keep", "2"]) { dir in
            for epsilon in ["0.2", "0.15", "0.1", "0.12", "0.1"] {
                let (status, _, stderr) = try chaparctl(["cluster", "epsilon", epsilon, "--dir", dir], seconds: 30)
                #expect(status == 0, "\(stderr)")
            }
            let channels = (0..<8).map { "heal-\($0)" }
            for channel in channels {
                for text in ["a", "b"] {
                    let (status, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-2", channel, text])
                    #expect(status == 0, "\(stderr)")
                }
            }
            // node-3 holds replicas and one of the controller's three seats.
            let before = try clusterStatus(dir)
            let held = replicas(of: "node-3", before)
            #expect(held > 0 && (before["controller_voters"] as? [String]) == ["node-1", "node-2", "node-3"])
            let (killed, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", "node-3"])
            #expect(killed == 0)
            let admin1 = try nodeAdmin(dir, "node-1")
            try await waitUntilAsync("gossip declares node-3 dead", seconds: 30) {
                let (_, body) = try httpGet(admin1, "/v1/members")
                let members = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] ?? []
                return members.contains { $0["id"] as? String == "node-3" && $0["state"] as? String == "dead" }
            }
            #expect(replicas(of: "node-3", try clusterStatus(dir)) == held, "gossip alone moves nothing")
            // Shards that lost a replica still take publishes (2 of 3 remain).
            for channel in channels {
                let (status, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-1", channel, "c"], seconds: 30)
                #expect(status == 0, "\(stderr)")
            }
            let (removed, _, removeErrors) = try chaparctl(["cluster", "remove", "--dir", dir, "--node", "node-3"])
            #expect(removed == 0, "\(removeErrors)")
            let (healed, healOut, healErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "180"], seconds: 200)
            #expect(healed == 0, "\(healOut)\(healErrors)")
            let survivors = ["node-1", "node-2", "node-4"]
            let after = try clusterStatus(dir)
            for node in survivors { #expect(replicas(of: node, after) == 8) }
            for node in survivors {
                // Followers learn the last configuration with the leader's next append.
                let admin = try nodeAdmin(dir, node)
                try await waitUntilAsync("\(node) runs all 8 shards with 3 voters", seconds: 10) {
                    let rows = try shardRows(admin)
                    return rows.count == 8 && rows.allSatisfy { ($0["voters"] as? [String])?.count == 3 }
                }
                for channel in channels {
                    let (status, text, stderr) = try chaparctl(
                        ["sub", "--dir", dir, "--node", node, channel, "--from", "earliest", "--count", "3"], seconds: 30)
                    #expect(status == 0 && text == "1 a\n2 b\n3 c\n", "\(node) \(channel): \(text)\(stderr)")
                }
            }
            // The controller moved its seat from node-3 to node-4 by itself …
            try await waitUntilAsync("the controller runs on node-1, node-2 and node-4", seconds: 30) {
                let state = try clusterStatus(dir)
                let group = state["controller_group"] as? [String: Any]
                return (state["controller_voters"] as? [String]) == survivors && group?["role"] as? String == "leader"
                    && (group?["voters"] as? [String]) == survivors && (group?["learners"] as? [String])?.isEmpty == true
            }
            let log4 = try String(contentsOfFile: dir + "/node-4/chapard.log", encoding: .utf8)
            #expect(log4.contains("msg=\"snapshot installed\" shard=4294967295"), "node-4's controller seat started from a snapshot")
            // … so it survives losing one more founder: commands still commit.
            let (killedFounder, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", "node-1"])
            #expect(killedFounder == 0)
            let (drained, _, drainErrors) = try chaparctl(["cluster", "drain", "--dir", dir, "--node", "node-4"], seconds: 60)
            #expect(drained == 0, "\(drainErrors)")
        }
    }

    /// Replicas move while the load simulator publishes to and subscribes on every node
    /// with its oracle: a node joins and takes replicas, another drains; subscriptions
    /// whose replica leaves their node end with `replica_moved` and resume through the
    /// relay. No acknowledged message is lost, duplicated or reordered. One copy at a time
    /// per leading node (`--moves-max 1`): the moves wait their turn and all complete.
    @Test func rebalanceUnderLoad() async throws {
        try await withLocalCluster("rebalance-load", nodes: 3, shards: 8, extra: ["--moves-max", "1"]) { dir in
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.json"))
            let file = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            let clients = (file["nodes"] as? [[String: Any]] ?? []).compactMap { $0["client"] as? String }
            let report = dir + "/report.json"
            let loadsim = Process()
            loadsim.executableURL = URL(fileURLWithPath: builtProduct("chapar-loadsim"))
            loadsim.arguments = [
                "run", "--scenario", "groups", "--target", "chapar://" + clients.joined(separator: ","), "--duration", "14",
                "--rate", "600", "--json", report,
            ]
            loadsim.standardOutput = FileHandle.nullDevice
            loadsim.standardError = FileHandle.nullDevice
            try loadsim.run()
            let loadsimPid = loadsim.processIdentifier
            defer { if loadsim.isRunning { kill(loadsimPid, SIGKILL) } }

            let (added, _, addErrors) = try chaparctl(["cluster", "add", "--dir", dir, "--zone", "z4"], seconds: 90)
            #expect(added == 0, "\(addErrors)")
            let (grown, _, growErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "120"], seconds: 130)
            #expect(grown == 0, "\(growErrors)")
            // Draining node-1 also moves its controller seat (to node-4): the commands after
            // it find the controller through the other nodes.
            let (drained, _, drainErrors) = try chaparctl(["cluster", "drain", "--dir", dir, "--node", "node-1"])
            #expect(drained == 0, "\(drainErrors)")
            let (moved, _, moveErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "120"], seconds: 130)
            #expect(moved == 0, "\(moveErrors)")
            let after = try clusterStatus(dir)
            #expect(replicas(of: "node-1", after) == 0)
            try await waitUntilAsync("the seat moves from node-1 to node-4", seconds: 30) {
                (try clusterStatus(dir)["controller_voters"] as? [String]).map { !$0.contains("node-1") && $0.contains("node-4") } == true
            }
            let (undrained, _, undrainErrors) = try chaparctl(["cluster", "undrain", "--dir", dir, "--node", "node-1"])
            #expect(undrained == 0, "\(undrainErrors)")

            try await waitUntilAsync("the load simulator finishes", seconds: 90) { !loadsim.isRunning }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
            #expect(loadsim.terminationStatus == 0, "the oracle found violations: \(json?["violations"] ?? "") \(json?["notes"] ?? "")")
            let violations = json?["violations"] as? [String: Any] ?? [:]
            for kind in ["order", "gaps", "duplicates", "lost"] {
                #expect((violations[kind] as? NSNumber)?.intValue == 0, "\(kind): \(json?["notes"] ?? "")")
            }
            #expect(((json?["delivered_msgs_per_s"] as? NSNumber)?.doubleValue ?? 0) > 0)
            let notes = json?["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("ended by the server; resubscribing") }, "draining node-1 ended its subscriptions: \(notes)")
        }
    }

    /// Crashes in the middle of a move: the joining node is killed while it catches up and
    /// restarted, then a source node too. The move completes, and the load simulator's
    /// oracle finds nothing acknowledged lost, duplicated or reordered.
    @Test func crashesDuringARebalance() async throws {
        try await withLocalCluster("rebalance-crash", nodes: 3, shards: 8) { dir in
            let clients = try ["node-1", "node-2", "node-3"].map { try nodeField(dir, $0, "client") }
            let report = dir + "/report.json"
            let loadsim = try startTool("chapar-loadsim", [
                "run", "--scenario", "groups", "--target", "chapar://" + clients.joined(separator: ","), "--duration", "20",
                "--rate", "600", "--json", report,
            ])
            defer { if loadsim.isRunning { kill(loadsim.processIdentifier, SIGKILL) } }
            // History for the joiner to copy.
            try await waitUntilAsync("history builds up", seconds: 30) {
                let rows = try shardRows(try nodeAdmin(dir, "node-1"))
                return rows.reduce(0) { $0 + (($1["commit"] as? NSNumber)?.intValue ?? 0) } > 400
            }
            let (added, _, addErrors) = try chaparctl(["cluster", "add", "--dir", dir, "--zone", "z4"], seconds: 90)
            #expect(added == 0, "\(addErrors)")
            let rebalance = try startTool("chaparctl", ["cluster", "rebalance", "--dir", dir, "--timeout", "150"])
            defer { if rebalance.isRunning { kill(rebalance.processIdentifier, SIGKILL) } }
            let admin4 = try nodeAdmin(dir, "node-4")
            try await waitUntilAsync("node-4 starts joining shards", seconds: 30) { !(try shardRows(admin4)).isEmpty }
            for node in ["node-4", "node-2"] {
                let (killed, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", node])
                #expect(killed == 0)
                let (restarted, _, restartErrors) = try chaparctl(["cluster", "restart", "--dir", dir, "--node", node], seconds: 60)
                #expect(restarted == 0, "\(restartErrors)")
            }
            do {
                try await waitUntilAsync("the rebalance completes", seconds: 170) { !rebalance.isRunning }
            } catch {
                Issue.record("\(error)\n\(clusterDiagnosis(dir))")
                throw error
            }
            #expect(rebalance.terminationStatus == 0, "rebalance did not complete\n\(clusterDiagnosis(dir))")
            #expect(replicas(of: "node-4", try clusterStatus(dir)) > 0)
            try await waitUntilAsync("the load simulator finishes", seconds: 90) { !loadsim.isRunning }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
            let violations = json?["violations"] as? [String: Any] ?? [:]
            let clean = ["order", "gaps", "duplicates", "lost"].allSatisfy { (violations[$0] as? NSNumber)?.intValue == 0 }
            #expect(clean, "the oracle found violations: \(violations) \(json?["notes"] ?? "")\n\(clusterDiagnosis(dir))")
            #expect(loadsim.terminationStatus == 0, "the oracle found violations: \(violations)")
            // `kill -9` loses nothing a cycle persisted: a restarted node finds its Raft logs
            // whole (a gap would mean an entry counted as stored that never was).
            for node in ["node-2", "node-4"] {
                let log = (try? String(contentsOfFile: dir + "/\(node)/chapard.log", encoding: .utf8)) ?? ""
                #expect(!log.contains("raft log damaged"), "\(node) restarted with a damaged log\n\(clusterDiagnosis(dir))")
            }
        }
    }

    /// A node started with other bootstrap flags than the cluster's (here another shard
    /// count) stops with a clear error as soon as gossip shows it the cluster's members,
    /// rather than serve channels from the wrong shards; the cluster sets it apart (no
    /// peer link, no registration) and goes on.
    @Test func aNodeWithAnotherBootstrapStops() async throws {
        try await withLocalCluster("misconfigured", nodes: 3, shards: 8) { dir in
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.json"))
            let file = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            let template = try #require((file["nodes"] as? [[String: Any]])?.first?["args"] as? [String])
            let seeds = (file["nodes"] as? [[String: Any]] ?? []).compactMap { $0["gossip"] as? String }
            var overrides = [
                "--data": dir + "/wrong", "--listen": "127.0.1.9:0", "--gossip": "127.0.1.9:0", "--admin": "127.0.1.9:0",
                "--peer": "127.0.1.9:0", "--node-id": "node-9", "--shards": "16",
            ]
            var arguments: [String] = []
            for index in stride(from: 0, to: template.count - 1, by: 2) {
                arguments += [template[index], overrides.removeValue(forKey: template[index]) ?? template[index + 1]]
            }
            try FileManager.default.createDirectory(atPath: dir + "/wrong", withIntermediateDirectories: true)
            let log = dir + "/wrong.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let node = Process()
            node.executableURL = URL(fileURLWithPath: builtProduct("chapard"))
            node.arguments = arguments + ["--seeds", seeds.joined(separator: ",")]
            node.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            node.standardOutput = FileHandle.nullDevice
            try node.run()
            defer { if node.isRunning { kill(node.processIdentifier, SIGKILL) } }
            try await waitUntilAsync("the misconfigured node stops", seconds: 30) { !node.isRunning }
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(text.contains("node configuration does not match the cluster"), "\(text.suffix(600))")
            #expect(text.contains("members were started with another cluster bootstrap"))
            let node1Log = (try? String(contentsOfFile: dir + "/node-1/chapard.log", encoding: .utf8)) ?? ""
            #expect(node1Log.contains("member started with another cluster bootstrap"))
            #expect(!((try clusterStatus(dir)["nodes"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == "node-9" })
            // The cluster is unaffected.
            let (published, _, stderr) = try chaparctl(["pub", "--dir", dir, "--node", "node-1", "still", "fine"])
            #expect(published == 0, "\(stderr)")
        }
    }

    /// Controller commands must carry a valid signature: unsigned, forged and unknown
    /// commands are refused with a clear status, and the cluster is unchanged.
    @Test func unsignedCommandsAreRefused() async throws {
        try await withLocalCluster("topology-auth", nodes: 3, shards: 4) { dir in
            let admin = try nodeAdmin(dir, "node-1")
            let unsigned = try httpRequest(admin, "POST /v1/cluster/rebalance HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            #expect(unsigned.0 == 401 && unsigned.1.contains("missing Authorization"))
            let forged = try httpRequest(
                admin, "POST /v1/cluster/rebalance HTTP/1.1\r\nAuthorization: Chapar 1:\(Int64(Date().timeIntervalSince1970 * 1000)):"
                    + String(repeating: "ab", count: 32) + "\r\nContent-Length: 0\r\n\r\n")
            #expect(forged.0 == 401 && forged.1.contains("bad signature"))
            // A copy of the cluster file with another keyring: chaparctl's commands are refused.
            let other = dir + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dir + "/cluster.json", toPath: other + "/cluster.json")
            try Data("1 \(String(repeating: "cd", count: 32))\n".utf8).write(to: URL(fileURLWithPath: other + "/gossip.keyring"))
            let (status, _, stderr) = try chaparctl(["cluster", "drain", "--dir", other, "--node", "node-1"])
            #expect(status != 0 && stderr.contains("401"), "\(stderr)")
            try FileManager.default.removeItem(atPath: other + "/cluster.json")
            let (unknown, _, unknownErrors) = try chaparctl(["cluster", "drain", "--dir", dir, "--node", "nobody"])
            #expect(unknown != 0 && unknownErrors.contains("no node 'nobody'"), "\(unknownErrors)")
            #expect((try clusterStatus(dir)["epoch"] as? NSNumber)?.intValue == 1)
        }
    }
}
