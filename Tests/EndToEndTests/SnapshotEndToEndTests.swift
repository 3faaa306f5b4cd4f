import Client
import Foundation
import Testing
import Transport

/// Trimmed Raft logs and snapshots with real processes: replicas delete applied entries
/// retention released (keeping the last few), and a replica that needs deleted entries —
/// one that was down, or a new one — is caught up by a snapshot of the shard.
@Suite(.serialized) struct SnapshotEndToEndTests {
    static let channels = ["snap-a", "snap-b", "snap-c", "snap-d"]

    /// The shards the test channels hash into.
    func channelShards(_ dir: String) throws -> Set<Int> {
        Set(try Self.channels.map { channel in
            let (status, text, stderr) = try chaparctl(["channel", "info", channel, "--dir", dir, "--json"])
            guard status == 0 else { throw TimedOut(description: "channel info: \(stderr)") }
            let info = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
            return try #require((info["shard"] as? NSNumber)?.intValue)
        })
    }

    /// Publishes 60 messages per channel through node-1 (sequentially, so each is its own
    /// Raft entry), under a retention of 30 records per channel, and returns once every
    /// `live` node has trimmed the channels' shards past index `past` of each.
    func publishUntilTrimmed(_ dir: String, live: [String], past: [Int: Int]) async throws {
        // A publish sent while node-1 still takes a killed node for the leader would end
        // "outcome unknown": publish once a live node leads every shard concerned.
        let admin1 = try nodeAdmin(dir, "node-1")
        try await waitUntilAsync("a live node leads shards \(past.keys.sorted())", seconds: 30) {
            let rows = try shardRows(admin1)
            return past.keys.allSatisfy { shard in
                rows.contains { ($0["shard"] as? NSNumber)?.intValue == shard && live.contains($0["leader"] as? String ?? "") }
            }
        }
        let client = try await ChaparClient.connect(to: SocketAddress(parsing: try nodeField(dir, "node-1", "client")), clientName: "e2e-snap")
        defer { client.close() }
        for round in 1...60 {
            for channel in Self.channels { _ = try await client.publish(channel, Array("\(channel)-\(round)".utf8)) }
        }
        for node in live {
            let admin = try nodeAdmin(dir, node)
            try await waitUntilAsync("\(node) trimmed the channels' shards", seconds: 30) {
                let rows = try shardRows(admin)
                return past.allSatisfy { shard, index in
                    rows.contains { ($0["shard"] as? NSNumber)?.intValue == shard && (($0["log_start"] as? NSNumber)?.intValue ?? 0) > index }
                }
            }
        }
    }

    /// Every channel read on `node` from its earliest retained record: records 31…60
    /// (once the node's own retention ran over what it applied after the snapshot).
    func expectRetainedHistory(_ dir: String, on node: String) async throws {
        for channel in Self.channels {
            let expected = (31...60).map { "\($0) \(channel)-\($0)\n" }.joined()
            var last = ""
            do {
                try await waitUntilAsync("\(node) serves records 31…60 of \(channel)", seconds: 15) {
                    let (status, text, stderr) = try chaparctl(
                        ["sub", "--dir", dir, "--node", node, channel, "--from", "earliest", "--count", "30"], seconds: 30)
                    last = "\(status) \(text)\(stderr)"
                    return status == 0 && text == expected
                }
            } catch {
                Issue.record("\(error): \(last)")
            }
        }
    }

    /// The last stored index of each of `shards` on `node`, once the node reports them all
    /// (an empty answer would make every later "trimmed past" check pass at once).
    func lastIndexes(_ dir: String, _ node: String, _ shards: Set<Int>) async throws -> [Int: Int] {
        let admin = try nodeAdmin(dir, node)
        var result: [Int: Int] = [:]
        try await waitUntilAsync("\(node) reports shards \(shards.sorted())", seconds: 30) {
            result = [:]
            for row in try shardRows(admin) {
                guard let shard = (row["shard"] as? NSNumber)?.intValue, shards.contains(shard),
                      let last = (row["last_index"] as? NSNumber)?.intValue else { continue }
                result[shard] = last
            }
            return Set(result.keys) == shards
        }
        return result
    }

    func retentionConfig(_ dir: String) throws -> String {
        let path = dir + "-config.json"
        try Data(#"{"retention": {"default": {"max-messages": 30}}}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aReplicaThatMissedTrimmedEntriesCatchesUpFromASnapshot() async throws {
        let config = FileManager.default.temporaryDirectory.path + "/chapar-snap-restart-\(UInt32.random(in: 0...UInt32.max))"
        let configPath = try retentionConfig(config)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        try await withLocalCluster("snap-restart", nodes: 3, shards: 2, extra: ["--raft-log-keep", "8", "--config", configPath]) { dir in
            // Everything node-3 stores now will be trimmed away on the others.
            let stored = try await lastIndexes(dir, "node-3", try channelShards(dir))
            let (killed, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", "node-3"])
            #expect(killed == 0)
            try await publishUntilTrimmed(dir, live: ["node-1", "node-2"], past: stored)
            let (restarted, _, restartErrors) = try chaparctl(["cluster", "restart", "--dir", dir, "--node", "node-3"], seconds: 60)
            #expect(restarted == 0, "\(restartErrors)")
            let admin1 = try nodeAdmin(dir, "node-1"), admin3 = try nodeAdmin(dir, "node-3")
            try await waitUntilAsync("node-3 applied as far as node-1 on every shard", seconds: 60) {
                let leaders = try shardRows(admin1), caught = try shardRows(admin3)
                return leaders.allSatisfy { row in
                    caught.contains { $0["shard"] as? NSNumber == row["shard"] as? NSNumber
                        && (($0["commit"] as? NSNumber)?.intValue ?? 0) >= ((row["commit"] as? NSNumber)?.intValue ?? 0) }
                }
            }
            let log = try String(contentsOfFile: dir + "/node-3/chapard.log", encoding: .utf8)
            #expect(log.contains("snapshot installed"), "node-3 was caught up by snapshots")
            try await expectRetainedHistory(dir, on: "node-3")
            // It serves on: a publish through it reaches the others.
            let (published, _, publishErrors) = try chaparctl(["pub", "--dir", dir, "--node", "node-3", "snap-a", "after"], seconds: 30)
            #expect(published == 0, "\(publishErrors)")
            let (status, text, _) = try chaparctl(["sub", "--dir", dir, "--node", "node-2", "snap-a", "--from", "61", "--count", "1"], seconds: 30)
            #expect(status == 0 && text == "61 after\n", "\(text)")
        }
    }

    /// The shard's leader is killed as the lagging node comes back, while its snapshot may
    /// be in flight: the survivors elect a leader and the lagging node catches up (nothing
    /// left parked or half-received blocks it).
    @Test func aSnapshotSurvivesItsLeadersDeath() async throws {
        let config = FileManager.default.temporaryDirectory.path + "/chapar-snap-failover-\(UInt32.random(in: 0...UInt32.max))"
        let configPath = try retentionConfig(config)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        try await withLocalCluster("snap-failover", nodes: 3, shards: 1, extra: ["--raft-log-keep", "8", "--config", configPath]) { dir in
            let stored = try await lastIndexes(dir, "node-3", [0])
            let (killed, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", "node-3"])
            #expect(killed == 0)
            try await publishUntilTrimmed(dir, live: ["node-1", "node-2"], past: stored)
            let leader = try #require(try shardRows(try nodeAdmin(dir, "node-1")).first?["leader"] as? String)
            let survivor = leader == "node-1" ? "node-2" : "node-1"
            let (restarted, _, restartErrors) = try chaparctl(["cluster", "restart", "--dir", dir, "--node", "node-3"], seconds: 60)
            #expect(restarted == 0, "\(restartErrors)")
            let (killedLeader, _, _) = try chaparctl(["cluster", "kill", "--dir", dir, "--node", leader])
            #expect(killedLeader == 0)
            let admin3 = try nodeAdmin(dir, "node-3"), adminSurvivor = try nodeAdmin(dir, survivor)
            // Either survivor may lead (node-3 may already hold the snapshot); both must agree.
            try await waitUntilAsync("a survivor leads and node-3 applied as far", seconds: 90) {
                guard let other = try shardRows(adminSurvivor).first, let caught = try shardRows(admin3).first,
                      [other, caught].contains(where: { $0["role"] as? String == "leader" }) else { return false }
                return ((caught["commit"] as? NSNumber)?.intValue ?? 0) >= ((other["commit"] as? NSNumber)?.intValue ?? 1)
            }
            try await expectRetainedHistory(dir, on: "node-3")
        }
    }

    @Test func aNewReplicaStartsFromASnapshot() async throws {
        let config = FileManager.default.temporaryDirectory.path + "/chapar-snap-grow-\(UInt32.random(in: 0...UInt32.max))"
        let configPath = try retentionConfig(config)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        try await withLocalCluster("snap-grow", nodes: 3, shards: 4, extra: ["--raft-log-keep", "8", "--config", configPath]) { dir in
            // Past what a new replica could start from (entry 1).
            let first = Dictionary(uniqueKeysWithValues: try channelShards(dir).map { ($0, 1) })
            try await publishUntilTrimmed(dir, live: ["node-1", "node-2", "node-3"], past: first)
            let (added, _, addErrors) = try chaparctl(["cluster", "add", "--dir", dir], seconds: 60)
            #expect(added == 0, "\(addErrors)")
            // Subscribers on node-4 while it only relays, reading the retained history …
            let reader = try await ChaparClient.connect(to: SocketAddress(parsing: try nodeField(dir, "node-4", "client")), clientName: "e2e-snap-live")
            defer { reader.close() }
            var streams: [SubscriptionStream] = []
            for channel in Self.channels {
                let stream = try await reader.subscribe(channel, from: .offset(31))
                let (seen, error) = try await readMessages(stream, count: 30, of: reader)
                #expect(error == nil && seen == (31...60).map { "\($0):\(channel)-\($0)" }, "\(channel) before: \(seen.prefix(3)) \(String(describing: error))")
                streams.append(stream)
            }
            let (moved, moveOut, moveErrors) = try chaparctl(["cluster", "rebalance", "--dir", dir, "--timeout", "120"], seconds: 150)
            #expect(moved == 0, "\(moveOut)\(moveErrors)")
            #expect(replicas(of: "node-4", try clusterStatus(dir)) > 0)
            let log = try String(contentsOfFile: dir + "/node-4/chapard.log", encoding: .utf8)
            #expect(log.contains("snapshot installed"), "node-4's replicas started from snapshots")
            try await expectRetainedHistory(dir, on: "node-4")
            // … read on across the move (resumed where a replica was replaced): 61…70 once each, in order.
            let writer = try await ChaparClient.connect(to: SocketAddress(parsing: try nodeField(dir, "node-1", "client")), clientName: "e2e-snap-more")
            defer { writer.close() }
            for round in 61...70 {
                for channel in Self.channels { _ = try await writer.publish(channel, Array("\(channel)-\(round)".utf8)) }
            }
            for (channel, stream) in zip(Self.channels, streams) {
                let (seen, error) = try await readMessages(stream, count: 10, of: reader)
                #expect(error == nil && seen == (61...70).map { "\($0):\(channel)-\($0)" }, "\(channel) after: \(seen) \(String(describing: error))")
            }
        }
    }
}
