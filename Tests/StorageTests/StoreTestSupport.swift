import ChaparCore
import FoundationEssentials
@testable import Storage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TempDirectory {
    let path: String

    init(_ label: String = "store") {
        path = FileManager.default.temporaryDirectory.path + "/chapar-\(label)-\(UInt64.random(in: 0...UInt64.max))"
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Drives a `LogWriter` synchronously, as the committer thread would.
func openWriter(_ directory: DataDirectory, durability: Durability = .fsync) throws -> LogWriter {
    try LogWriter(db: Schema.openWriter(path: directory.databasePath, durability: durability))
}

/// Runs `body` with a writer on a fresh store directory, removed afterwards.
func withWriter(_ label: String = "store", _ body: (DataDirectory, LogWriter) throws -> Void) throws {
    let temp = TempDirectory(label)
    defer { temp.remove() }
    let directory = try DataDirectory(path: temp.path)
    try body(directory, try openWriter(directory))
}

func input(_ channel: String, _ text: String, producer: ProducerStamp? = nil) -> AppendInput {
    AppendInput(channel: channel, producer: producer, payload: Array(text.utf8))
}

func offsets(_ outcomes: [AppendOutcome]) -> [UInt64] {
    outcomes.compactMap { if case .stored(let offset, _) = $0 { offset } else { nil } }
}

/// Overwrites the stored data of Raft entry `index` of `shard` in the store at `path`
/// (in the entry log, or in its row for entries kept there) with `data` of the same size,
/// as damage on disk would.
func overwriteEntry(_ path: String, shard: Int, index: UInt64, with data: [UInt8]) throws {
    let db = try Database(path: path + "/" + Schema.fileName, readOnly: false)
    let row = try db.prepare("SELECT seg, pos, len FROM raft_log WHERE shard=?1 AND idx=?2")
    row.bind(1, Int64(shard))
    row.bind(2, Int64(index))
    guard try row.step() else { throw StorageError.corruptRecord(channel: "no such entry", offset: index) }
    guard !row.isNull(0) else {
        let update = try db.prepare("UPDATE raft_log SET data=?1 WHERE shard=?2 AND idx=?3")
        update.bind(1, data)
        update.bind(2, Int64(shard))
        update.bind(3, Int64(index))
        return try update.run()
    }
    precondition(Int(row.int64(2)) == data.count, "damage keeps the entry's size")
    let fd = open(EntryLog.name(UInt64(row.int64(0)), in: path + "/entries"), O_WRONLY)
    guard fd >= 0 else { throw EntryLog.failure("open") }
    defer { close(fd) }
    let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(row.int64(1))) }
    guard written == data.count else { throw EntryLog.failure("pwrite") }
}
