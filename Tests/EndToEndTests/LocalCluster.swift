import Foundation
import Testing

/// Runs `body` with a clustered local cluster started by `chaparctl cluster up` in a
/// fresh directory (election timeout 500 ms); stops it by its PIDs and deletes the
/// directory afterwards, whatever happened (kept, with the nodes' logs, when
/// CHAPAR_KEEP_TEST_DIRS is set).
func withLocalCluster(
    _ name: String, nodes: Int, shards: Int, replicas: Int = 3, _ body: (String) async throws -> Void
) async throws {
    let dir = FileManager.default.temporaryDirectory.path + "/chapar-\(name)-\(UInt32.random(in: 0...UInt32.max))"
    defer {
        _ = try? chaparctl(["cluster", "down", "--dir", dir], seconds: 60)
        if ProcessInfo.processInfo.environment["CHAPAR_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }
    let (up, out, errors) = try chaparctl(
        ["cluster", "up", "--nodes", "\(nodes)", "--shards", "\(shards)", "--replicas", "\(replicas)", "--election-ms", "500",
         "--dir", dir], seconds: 120)
    #expect(up == 0, "\(out)\(errors)")
    #expect(out.contains("\(shards) shards × \(replicas) replicas, every shard led"))
    guard up == 0 else { return }
    try await body(dir)
}
