import Client
import Foundation
import Testing

/// Runs `body` with a clustered local cluster started by `chaparctl cluster up` in a
/// fresh directory (election timeout 500 ms); stops it by its PIDs and deletes the
/// directory afterwards, whatever happened (kept, with the nodes' logs, when
/// CHAPAR_KEEP_TEST_DIRS is set).
func withLocalCluster(
    _ name: String, nodes: Int, shards: Int, replicas: Int = 3, extra: [String] = [], _ body: (String) async throws -> Void
) async throws {
    let dir = FileManager.default.temporaryDirectory.path + "/chapar-\(name)-\(UInt32.random(in: 0...UInt32.max))"
    defer {
        _ = try? chaparctl(["cluster", "down", "--dir", dir], seconds: 60)
        if ProcessInfo.processInfo.environment["CHAPAR_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }
    let (up, out, errors) = try chaparctl(
        ["cluster", "up", "--nodes", "\(nodes)", "--shards", "\(shards)", "--replicas", "\(replicas)", "--election-ms", "500",
         "--dir", dir] + extra, seconds: 120)
    #expect(up == 0, "\(out)\(errors)")
    #expect(out.contains("\(shards) shards × \(replicas) replicas, every shard led"))
    guard up == 0 else { return }
    try await body(dir)
}

/// Reads `count` messages as "offset:payload"; a watchdog closes the connection after
/// 30 s, ending the stream. `error` is what ended the stream early, if anything did.
func readMessages(_ stream: SubscriptionStream, count: Int, of client: ChaparClient) async throws -> (seen: [String], error: Error?) {
    let watchdog = Task {
        try await Task.sleep(nanoseconds: 30_000_000_000)
        client.close()
    }
    defer { watchdog.cancel() }
    var seen: [String] = []
    do {
        for try await message in stream {
            seen.append("\(message.offset):\(String(decoding: message.payload, as: UTF8.self))")
            if seen.count == count { break }
        }
    } catch {
        return (seen, error)
    }
    return (seen, nil)
}

/// Starts a built tool in the background (output discarded); the caller waits for it
/// with a deadline and kills it by its PID if it is still running.
func startTool(_ name: String, _ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: builtProduct(name))
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

func clusterStatus(_ dir: String) throws -> [String: Any] {
    let (status, text, stderr) = try chaparctl(["cluster", "status", "--dir", dir, "--json"])
    guard status == 0 else { throw TimedOut(description: "cluster status: \(stderr)") }
    return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
}

func replicas(of node: String, _ status: [String: Any]) -> Int {
    let nodes = status["nodes"] as? [[String: Any]] ?? []
    return (nodes.first { $0["id"] as? String == node }?["replicas"] as? NSNumber)?.intValue ?? -1
}

func nodeAdmin(_ dir: String, _ node: String) throws -> String { try nodeField(dir, node, "admin") }

/// A field of a node's entry in DIR/cluster.json (admin, client, …).
func nodeField(_ dir: String, _ node: String, _ field: String) throws -> String {
    let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.json"))
    let file = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    let nodes = file["nodes"] as? [[String: Any]] ?? []
    return try #require(nodes.first { $0["id"] as? String == node }?[field] as? String)
}

func shardRows(_ admin: String) throws -> [[String: Any]] {
    let (status, body) = try httpGet(admin, "/v1/shards")
    guard status == 200 else { return [] }
    return try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] ?? []
}

/// What a failing cluster test should show: every shard's replicas, leader and progress
/// (`chaparctl shards`) and each node's last warnings and errors — so a failure seen once
/// in CI, whose directories are gone, can still be read.
func clusterDiagnosis(_ dir: String, linesPerNode: Int = 25) -> String {
    var text = "chaparctl shards:\n" + ((try? chaparctl(["shards", "--dir", dir], seconds: 20))?.1 ?? "(unavailable)")
    let nodes = ((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cluster.json")))) as? [String: Any])?["nodes"]
        as? [[String: Any]] ?? []
    for node in nodes {
        guard let id = node["id"] as? String, let data = node["data"] as? String,
              let log = try? String(contentsOfFile: data + "/chapard.log", encoding: .utf8) else { continue }
        let notable = log.split(separator: "\n").filter { $0.contains("level=warn") || $0.contains("level=error") }
        text += "\n\(id): last \(min(linesPerNode, notable.count)) of \(notable.count) warnings/errors:\n"
            + notable.suffix(linesPerNode).joined(separator: "\n")
    }
    return text
}
