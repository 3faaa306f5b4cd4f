import ChaparCore
import Testing
@testable import Storage

@Suite struct RetentionTests {
    func filled(_ temp: TempDirectory, count: Int, size: Int = 10, now: (Int) -> Int64 = { _ in 1000 }) throws
        -> (DataDirectory, LogWriter)
    {
        let directory = try DataDirectory(path: temp.path)
        let writer = try openWriter(directory)
        for index in 1...count {
            _ = writer.append([AppendInput(channel: "c", producer: nil, payload: Array(repeating: 7, count: size))], now: now(index))
        }
        return (directory, writer)
    }

    @Test func maxMessagesKeepsTheNewest() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let (directory, writer) = try filled(temp, count: 50)
        let removed = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 20)), now: 2000)
        #expect(removed == 30)
        let reader = try directory.makeReader()
        #expect(try reader.bounds("c") == ChannelBounds(earliest: 31, head: 50))
        #expect(try reader.read("c", from: 1, maxMessages: 100, maxBytes: 1 << 20).map(\.offset) == Array(31...50))
        // Offsets continue after the head, never reusing retired ones.
        #expect(offsets(writer.append([input("c", "next")], now: 3000).outcomes) == [51])
    }

    @Test func maxBytesKeepsTotalUnderTheBound() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let (directory, writer) = try filled(temp, count: 30, size: 100)
        _ = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxBytes: 1050)), now: 2000)
        #expect(try directory.makeReader().bounds("c") == ChannelBounds(earliest: 21, head: 30))
    }

    @Test func maxAgeRemovesOlderRecords() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        // Record i was stored at i seconds.
        let (directory, writer) = try filled(temp, count: 10, now: { Int64($0) * 1000 })
        _ = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxAgeSeconds: 3)), now: 10_500)
        // Kept: stored at or after 7.5 s, so offsets 8, 9, 10.
        #expect(try directory.makeReader().bounds("c") == ChannelBounds(earliest: 8, head: 10))
    }

    @Test func everythingExpiredLeavesAnEmptyRangeThatKeepsItsHead() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let (directory, writer) = try filled(temp, count: 5)
        _ = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxAgeSeconds: 1)), now: 100_000)
        #expect(try directory.makeReader().bounds("c") == ChannelBounds(earliest: 6, head: 5))
        #expect(offsets(writer.append([input("c", "after")], now: 100_001).outcomes) == [6])
    }

    @Test func perChannelOverrideWins() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let directory = try DataDirectory(path: temp.path)
        let writer = try openWriter(directory)
        _ = writer.append((1...10).map { _ in input("keep", "x") } + (1...10).map { _ in input("trim", "x") }, now: 1)
        let rules = RetentionRules(channels: ["trim": RetentionPolicy(maxMessages: 2)])
        _ = try writer.applyRetention(rules, now: 2)
        let reader = try directory.makeReader()
        #expect(try reader.bounds("keep") == ChannelBounds(earliest: 1, head: 10))
        #expect(try reader.bounds("trim") == ChannelBounds(earliest: 9, head: 10))
    }

    @Test func onePassRemovesABoundedNumberOfRows() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let directory = try DataDirectory(path: temp.path)
        let writer = try openWriter(directory)
        let total = Int(LogWriter.retentionRowsPerPassMax) + 500
        _ = writer.append((1...total).map { _ in input("c", "x") }, now: 1)
        let first = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 1)), now: 2)
        #expect(first == LogWriter.retentionRowsPerPassMax)
        let second = try writer.applyRetention(RetentionRules(default: RetentionPolicy(maxMessages: 1)), now: 3)
        #expect(second == 499)
        #expect(try directory.makeReader().bounds("c") == ChannelBounds(earliest: UInt64(total), head: UInt64(total)))
    }
}
