import Foundation
import Testing

@Suite(.serialized) struct MembershipEndToEndTests {
    /// The members one node's admin API reports: id → (state, incarnation).
    func members(_ admin: String) -> [String: (String, Int)] {
        guard let (status, body) = try? httpGet(admin, "/v1/members"), status == 200,
              let array = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]]
        else { return [:] }
        var result: [String: (String, Int)] = [:]
        for member in array {
            if let id = member["id"] as? String, let state = member["state"] as? String {
                result[id] = (state, (member["incarnation"] as? Int) ?? Int((member["incarnation"] as? Double) ?? 0))
            }
        }
        return result
    }

    /// Three real nodes gossip on loopback: all alive; `kill -9` one; the others declare it
    /// dead; restart it on the same data: it rejoins alive at a higher incarnation.
    @Test func threeNodesDetectACrashAndARejoin() async throws {
        let keyring = FileManager.default.temporaryDirectory.path + "/chapar-keyring-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: keyring) }
        try Data("1 \(String(repeating: "ab", count: 32))\n".utf8).write(to: URL(fileURLWithPath: keyring))
        func node(_ name: String, seeds: [String]) -> NodeProcess {
            let host = LoopbackAddresses.take()
            var arguments = ["--node-id", name, "--gossip", "\(host):0", "--admin", "\(host):0",
                             "--gossip-key-file", keyring, "--cluster-id", "e2e"]
            if !seeds.isEmpty { arguments += ["--seeds", seeds.joined(separator: ",")] }
            return NodeProcess(extraArguments: arguments, host: host)
        }
        let first = node("n1", seeds: [])
        defer { first.cleanUp() }
        try first.start()
        let seed = try first.details()["gossip"] as? String ?? ""
        let second = node("n2", seeds: [seed])
        let third = node("n3", seeds: [seed])
        defer { second.cleanUp(); third.cleanUp() }
        try second.start()
        try third.start()
        let admins = try [first, second, third].map { try $0.details()["admin"] as? String ?? "" }

        try await waitUntilAsync("all three alive everywhere", seconds: 30) {
            admins.allSatisfy { admin in ["n1", "n2", "n3"].allSatisfy { members(admin)[$0]?.0 == "alive" } }
        }
        let before = members(admins[0])["n3"]?.1 ?? 0

        third.kill9()
        try await waitUntilAsync("n1 and n2 declare n3 dead", seconds: 60) {
            members(admins[0])["n3"]?.0 == "dead" && members(admins[1])["n3"]?.0 == "dead"
        }

        try third.start()
        try await waitUntilAsync("n3 rejoins alive", seconds: 60) {
            let views = [members(admins[0]), members(admins[1])]
            return views.allSatisfy { $0["n3"]?.0 == "alive" && ($0["n3"]?.1 ?? 0) > before }
        }
        let newAdmin = try third.details()["admin"] as? String ?? ""
        #expect(members(newAdmin)["n1"]?.0 == "alive")
        #expect((try? httpGet(admins[0], "/healthz"))?.0 == 200)
        #expect((try? httpGet(admins[0], "/nowhere"))?.0 == 404)
    }
}

@Suite(.serialized) struct LocalClusterTests {
    /// A `cluster up` that fails part-way (node-2's data directory cannot be made) stops the
    /// node it already started: no cluster.json exists for `cluster down` to find it by.
    @Test func aClusterThatCannotStartLeavesNoNodeRunning() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/chapar-cluster-fail-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dir + "/node-2", contents: Data("not a directory".utf8)))
        let (up, _, errors) = try chaparctl(["cluster", "up", "--nodes", "3", "--dir", dir], seconds: 90)
        #expect(up != 0 && errors.contains("node-2"), "\(errors)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cluster.json"))
        try await waitUntilAsync("no chapard left on \(dir)", seconds: 15) {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return !pids.contains { pid in
                guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
                return String(decoding: cmdline, as: UTF8.self).contains(dir + "/node-1")
            }
        }
    }


    /// `chaparctl cluster up` starts a cluster whose members all see each other alive,
    /// `members --json` lists them, and `cluster down` stops every process by PID.
    @Test func clusterUpMembersDown() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/chapar-cluster-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (up, out, errors) = try chaparctl(["cluster", "up", "--nodes", "3", "--dir", dir], seconds: 90)
        #expect(up == 0, "\(out)\(errors)")
        let cluster = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.json"))) as? [String: Any]
        let nodes = cluster?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 3)
        #expect(nodes.allSatisfy { ($0["gossip"] as? String ?? "").hasPrefix("127.0.1.") })
        let pids = nodes.compactMap { ($0["pid"] as? NSNumber)?.int32Value }

        let (status, json, _) = try chaparctl(["members", "--dir", dir, "--json"])
        #expect(status == 0)
        let members = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        #expect(members.count == 3)
        #expect(members.allSatisfy { $0["state"] as? String == "alive" && $0["id"] != nil })

        let (down, _, _) = try chaparctl(["cluster", "down", "--dir", dir], seconds: 60)
        #expect(down == 0)
        for pid in pids {
            try await waitUntilAsync("node \(pid) to exit", seconds: 15) {
                !((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains("chapard") ?? false)
            }
        }
    }
}
