import Testing
@testable import Storage

/// The write-ahead log starts over under a busy writer (`LogRestart`): past
/// `restartPages` the checkpointer copies what it can and asks the writer to copy the
/// few frames committed meanwhile; the writer's next transaction then restarts the log.
@Suite struct CheckpointerTests {
    let payload = String(repeating: "x", count: 1000)

    /// A store with its writer and checkpointer, removed afterwards.
    func withStore(_ name: String, _ body: (DataDirectory, LogWriter, Checkpointer) throws -> Void) throws {
        let temp = TempDirectory(name)
        defer { temp.remove() }
        let directory = try DataDirectory(path: temp.path)
        try body(directory, try openWriter(directory), try Checkpointer(directory: directory, durability: .fsync))
    }

    /// Appends `commits` transactions of 1,000 messages of ~1 KiB (~1.1 MiB of log each).
    func fill(_ writer: LogWriter, commits: Int) {
        for _ in 0..<commits {
            #expect(offsets(writer.append((1...1000).map { _ in input("c", payload) }, now: 1).outcomes).count == 1000)
        }
    }

    func logFrames(_ checkpointer: Checkpointer) throws -> Int64 { try checkpointer.checkpoint().walFrames }

    /// A read transaction on the store as it is now; `COMMIT` on it ends it.
    func pin(_ directory: DataDirectory) throws -> Database {
        let pinned = try Database(path: directory.databasePath, readOnly: true)
        try pinned.execute("BEGIN")
        let count = try pinned.prepare("SELECT sum(last - first + 1) FROM record_runs")
        #expect(try count.step())
        return pinned
    }

    /// A long log whose pass could not copy the last commit (here a reader holds it back
    /// while the pass runs; under load, commits land during every pass).
    @discardableResult
    func longLogWithACommitAfterThePass(_ directory: DataDirectory, _ writer: LogWriter, _ checkpointer: Checkpointer) throws -> Int64 {
        fill(writer, commits: 2)
        let short = try checkpointer.checkpoint()
        #expect(short.walFrames < Checkpointer.restartPages && !short.askedWriter)
        fill(writer, commits: 18)
        let pinned = try pin(directory)
        fill(writer, commits: 1)
        let long = try checkpointer.checkpoint()
        #expect(long.walFrames >= Checkpointer.restartPages && long.walFrames < Schema.writerCheckpointPages)
        #expect(long.copied < long.walFrames && long.askedWriter && directory.logRestart.isAsked)
        try pinned.execute("COMMIT")
        return long.walFrames
    }

    @Test func aLongLogStartsOverOnceTheWriterCopiesWhatArrivedDuringThePass() throws {
        try withStore("checkpoint-restart") { directory, writer, checkpointer in
            try longLogWithACommitAfterThePass(directory, writer, checkpointer)
            #expect(directory.logRestart.finishIfAsked(on: writer.db))
            #expect(!directory.logRestart.isAsked)
            fill(writer, commits: 1)
            #expect(try logFrames(checkpointer) < Checkpointer.restartPages / 8)
            let reader = try directory.makeReader()
            #expect(try reader.bounds("c").head == 22_000)
            #expect(try reader.read("c", from: 1, maxMessages: 100_000, maxBytes: 1 << 30).count == 22_000)
        }
    }

    /// Without the writer's part the log does not start over: the case the ask exists for.
    @Test func withoutTheWritersCopyTheLogKeepsGrowing() throws {
        try withStore("checkpoint-grow") { directory, writer, checkpointer in
            let long = try longLogWithACommitAfterThePass(directory, writer, checkpointer)
            fill(writer, commits: 1)
            #expect(try logFrames(checkpointer) > long)
        }
    }

    /// A reader pinned to an old snapshot keeps its frames uncopied: the writer is not
    /// asked (it could not finish either), and neither is held up; once the reader is
    /// gone the next checkpoint asks.
    @Test func aReaderOfAnOlderSnapshotPostponesTheRestart() throws {
        try withStore("checkpoint-reader") { directory, writer, checkpointer in
            fill(writer, commits: 1)
            let pinned = try Database(path: directory.databasePath, readOnly: true)
            try pinned.execute("BEGIN")
            let count = try pinned.prepare("SELECT sum(last - first + 1) FROM record_runs")
            #expect(try count.step() && count.int64(0) == 1000)
            fill(writer, commits: 20)
            let blocked = try checkpointer.checkpoint()
            #expect(blocked.walFrames >= Checkpointer.restartPages && !blocked.askedWriter)
            fill(writer, commits: 1)
            count.reset()
            #expect(try count.step() && count.int64(0) == 1000)
            count.reset()
            try pinned.execute("COMMIT")
            #expect(try checkpointer.checkpoint().askedWriter)
        }
    }
}
