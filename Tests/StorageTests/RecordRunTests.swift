import ChaparCore
import Testing
@testable import Storage

@Suite struct RecordRunTests {
    func runRows(_ writer: LogWriter) throws -> [String] {
        let rows = try writer.db.prepare("SELECT channel, first, last FROM record_runs ORDER BY channel, first")
        var result: [String] = []
        while try rows.step() { result.append("\(rows.int64(0)):\(rows.int64(1))-\(rows.int64(2))") }
        return result
    }

    /// A commit's records of a channel share a row; a run never passes its record bound.
    @Test func aCommitsRecordsOfAChannelShareARow() throws {
        try withWriter("runs") { directory, writer in
            _ = writer.append([input("a", "1"), input("a", "2"), input("b", "1"), input("a", "3")], now: 1)
            #expect(try runRows(writer) == ["1:1-2", "1:3-3", "2:1-1"])
            let many = RecordRun.recordsMax + 5
            _ = writer.append((1...many).map { input("c", "\($0)") }, now: 2)
            #expect(try runRows(writer).suffix(2) == ["3:1-\(RecordRun.recordsMax)", "3:\(RecordRun.recordsMax + 1)-\(many)"])
            let records = try directory.makeReader().read("c", from: 1000, maxMessages: 100, maxBytes: 1 << 20)
            #expect(records.map(\.offset) == Array(1000...UInt64(many)))
            #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == (1000...many).map { "\($0)" })
        }
    }

    /// Records that lie in one Raft entry form one row pointing into it; a record in the
    /// next entry starts another.
    @Test func referencedRecordsRunUntilTheirEntryChanges() throws {
        try withWriter("runs-ref") { directory, writer in
            let entry1: [UInt8] = Array("..one..two".utf8), entry2: [UInt8] = Array("three".utf8)
            for (index, data) in [(UInt64(1), entry1), (2, entry2)] {
                try writer.db.execute("INSERT INTO raft_log(shard, idx, term, kind, crc, data) VALUES(4, \(index), 1, 0, 0, X'\(data.map { String(format: "%02x", $0) }.joined())')")
            }
            func referenced(_ text: String, _ index: UInt64, _ skip: Int) -> AppendInput {
                AppendInput(channel: "r", producer: nil, payload: Array(text.utf8), reference: PayloadReference(shard: 4, index: index, skip: skip))
            }
            _ = writer.append([referenced("one", 1, 2), referenced("two", 1, 7), referenced("three", 2, 0)], now: 1)
            #expect(try runRows(writer) == ["1:1-2", "1:3-3"])
            #expect(try writer.db.scalarText("SELECT sum(length(payload)) FROM record_runs") == "0")
            let records = try directory.makeReader().read("r", from: 1, maxMessages: 10, maxBytes: 1 << 20)
            #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == ["one", "two", "three"])
        }
    }

    /// Retention inside a run hides its older records; the row goes once all of it is past.
    @Test func retentionInsideARunHidesItsOlderPart() throws {
        try withWriter("runs-retention") { directory, writer in
            _ = writer.append((1...10).map { input("c", "m\($0)") }, now: 1)
            #expect(try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 4)), now: 2) == 6)
            let reader = try directory.makeReader()
            #expect(try reader.bounds("c") == ChannelBounds(earliest: 7, head: 10))
            #expect(try reader.read("c", from: 1, maxMessages: 10, maxBytes: 1 << 20).map(\.offset) == [7, 8, 9, 10])
            #expect(try reader.read("c", from: 9, maxMessages: 10, maxBytes: 1 << 20).map(\.offset) == [9, 10])
            #expect(try runRows(writer) == ["1:1-10"])
            #expect(writer.channels["c"]?.bytes == Int64("m7m8m9m10".utf8.count))
            _ = writer.append((11...14).map { input("c", "m\($0)") }, now: 3)
            #expect(try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 4)), now: 4) == 4)
            #expect(try runRows(writer) == ["1:11-14"])
        }
    }

    /// A row whose records column does not match its range is damage at its first record.
    @Test func aMisshapenRowIsCorruption() throws {
        try withWriter("runs-damage") { directory, writer in
            _ = writer.append([input("c", "1"), input("c", "2")], now: 1)
            _ = writer.append([input("c", "3")], now: 1)
            try writer.db.execute("UPDATE record_runs SET records = substr(records, 1, 20) WHERE first = 1")
            let reader = try directory.makeReader()
            #expect(throws: StorageError.corruptRecord(channel: "c", offset: 1)) {
                _ = try reader.read("c", from: 1, maxMessages: 10, maxBytes: 1 << 20)
            }
            #expect(try reader.read("c", from: 3, maxMessages: 10, maxBytes: 1 << 20).map(\.offset) == [3])
        }
    }

    /// A store written by layout 1 (a row per record, inline or pointing into an entry)
    /// opens with every record readable, as runs of one.
    @Test func aVersionOneStoreIsMigrated() throws {
        let temp = TempDirectory("runs-migrate")
        defer { temp.remove() }
        let directory = try DataDirectory(path: temp.path)
        do {
            let db = try Database(path: directory.databasePath, readOnly: false)
            try db.execute("""
                CREATE TABLE channels(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE, head INTEGER NOT NULL,
                    earliest INTEGER NOT NULL, bytes INTEGER NOT NULL, last_ts INTEGER NOT NULL);
                CREATE TABLE messages(channel INTEGER NOT NULL, offset INTEGER NOT NULL, ts INTEGER NOT NULL,
                    crc INTEGER NOT NULL, payload BLOB NOT NULL);
                CREATE UNIQUE INDEX messages_position ON messages(channel, offset);
                CREATE TABLE producers(channel INTEGER NOT NULL, producer INTEGER NOT NULL, sequence INTEGER NOT NULL,
                    offset INTEGER NOT NULL, updated_ts INTEGER NOT NULL, PRIMARY KEY(channel, producer)) WITHOUT ROWID;
                CREATE TABLE raft_log(shard INTEGER NOT NULL, idx INTEGER NOT NULL, term INTEGER NOT NULL,
                    kind INTEGER NOT NULL, crc INTEGER NOT NULL, data BLOB NOT NULL);
                INSERT INTO channels VALUES(1, CAST('old' AS BLOB), 3, 2, 7, 30);
                INSERT INTO raft_log VALUES(0, 9, 1, 0, 0, CAST('xxtwo' AS BLOB));
                PRAGMA user_version=1;
                """)
            try db.execute("ALTER TABLE messages ADD COLUMN ref_shard INTEGER")
            try db.execute("ALTER TABLE messages ADD COLUMN ref_idx INTEGER")
            try db.execute("ALTER TABLE messages ADD COLUMN ref_skip INTEGER")
            try db.execute("ALTER TABLE messages ADD COLUMN bytes INTEGER")
            let insert = try db.prepare("INSERT INTO messages VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            for (offset, text, referenced) in [(UInt64(1), "one", false), (2, "two", true), (3, "three", false)] {
                let payload = Array(text.utf8)
                let crc = payload.withUnsafeBytes { RecordChecksum.compute(channelId: 1, offset: offset, timestamp: Int64(offset) * 10, payload: $0) }
                insert.bind(1, Int64(offset))
                insert.bind(2, Int64(offset) * 10)
                insert.bind(3, Int64(crc))
                insert.bind(4, referenced ? [] : payload)
                if referenced {
                    insert.bind(5, 0)
                    insert.bind(6, 9)
                    insert.bind(7, 2)
                    insert.bind(8, Int64(payload.count))
                }
                try insert.run()
            }
        }
        let writer = try openWriter(directory)
        #expect(try writer.db.scalarText("PRAGMA user_version") == "\(Schema.version)")
        #expect(try writer.db.scalarText("SELECT count(*) FROM sqlite_master WHERE name='messages'") == "0")
        let records = try directory.makeReader().read("old", from: 1, maxMessages: 10, maxBytes: 1 << 20)
        #expect(records.map(\.offset) == [2, 3], "earliest stays 2")
        #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == ["two", "three"])
        #expect(records.map(\.timestamp) == [20, 30])
        #expect(offsets(writer.append([input("old", "four")], now: 40).outcomes) == [4])
    }
}
