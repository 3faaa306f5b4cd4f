import ChaparCore
import FoundationEssentials
@testable import Storage
import Synchronization

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
