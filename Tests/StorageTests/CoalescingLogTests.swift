import ChaparCore
import Testing
@testable import Storage

/// A store's write-ahead log gathers each commit's writes into a few pwrites
/// (Sources/CStorageVFS), whether it fsyncs commits or not; what it buffers must never be
/// missing for a reader on another connection, nor after the store is reopened.
@Suite struct CoalescingLogTests {
    /// Without a sync at commit (os-buffer) nothing but the wal-index barrier writes the
    /// buffer before other connections learn of the frames: the reads check that it does.
    @Test(arguments: [Durability.fsync, .osBuffer])
    func aCommitsWritesAreGatheredAndEveryCommitIsReadableAtOnce(durability: Durability) throws {
        let temp = TempDirectory("coalesce")
        defer { temp.remove() }
        let payload = String(repeating: "x", count: 1000)
        let rounds = 20, perRound = 50
        do {
            let directory = try DataDirectory(path: temp.path)
            let writer = try openWriter(directory, durability: durability)
            let reader = try directory.makeReader()
            let before = try #require(writer.db.logWrites)
            for round in 1...rounds {
                _ = writer.append((1...perRound).map { _ in input("c", payload) }, now: Int64(round))
                let head = UInt64(round * perRound)
                #expect(try reader.bounds("c").head == head)
                #expect(try reader.read("c", from: head, maxMessages: 10, maxBytes: 1 << 20).map(\.offset) == [head])
            }
            let after = try #require(writer.db.logWrites)
            // ~50 KiB per commit: 13 pages or more, two writes each without coalescing.
            #expect(after.bytes - before.bytes >= Int64(rounds * perRound * 1000))
            #expect(after.calls - before.calls <= Int64(rounds * 3), "\(after.calls - before.calls) writes")
        }
        let reader = try DataDirectory(path: temp.path).makeReader()
        #expect(try reader.read("c", from: 1, maxMessages: 10_000, maxBytes: 1 << 30).count == rounds * perRound)
    }
}
