import ChaparCore
import Testing
@testable import Storage

@Suite struct LogWriterTests {
    @Test func offsetsAreDensePerChannelAndStartAtOne() throws {
        try withWriter() { _, writer in
            let (outcomes, appended) = writer.append(
                [input("a", "1"), input("b", "1"), input("a", "2"), input("a", "3"), input("b", "2")], now: 1000)
            #expect(offsets(outcomes) == [1, 1, 2, 3, 2])
            #expect(appended.map(\.channel) == ["a", "b"])
            #expect(appended[0].records.map(\.offset) == [1, 2, 3])
            let (more, _) = writer.append([input("a", "4")], now: 1001)
            #expect(offsets(more) == [4])
        }
    }

    /// Records of a channel whose runs are split by other channels come back together, in
    /// order; a channel whose every publish was a duplicate is left out and unchanged.
    @Test func channelsSplitAcrossTheBatchAndDuplicateOnlyChannels() throws {
        try withWriter() { directory, writer in
            let p = { ProducerStamp(id: 5, sequence: $0) }
            _ = writer.append([input("d", "x", producer: p(1))], now: 1)
            let (outcomes, appended) = writer.append(
                [input("a", "1"), input("d", "x", producer: p(1)), input("a", "2"), input("b", "1"), input("a", "3")], now: 2)
            #expect(outcomes == [.stored(offset: 1, timestamp: 2), .duplicate(offset: 1), .stored(offset: 2, timestamp: 2),
                                 .stored(offset: 1, timestamp: 2), .stored(offset: 3, timestamp: 2)])
            #expect(appended.map(\.channel) == ["a", "b"])
            #expect(appended[0].records.map { String(decoding: $0.payload, as: UTF8.self) } == ["1", "2", "3"])
            let reader = try directory.makeReader()
            #expect(try reader.bounds("d") == ChannelBounds(earliest: 1, head: 1))
            #expect(try reader.bounds("a") == ChannelBounds(earliest: 1, head: 3))
        }
    }

    @Test func timestampsNeverDecreaseWithinAChannel() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let writer = try openWriter(try DataDirectory(path: temp.path))
        _ = writer.append([input("a", "x")], now: 5000)
        let (outcomes, _) = writer.append([input("a", "y")], now: 4000)  // the wall clock stepped back
        #expect(outcomes == [.stored(offset: 2, timestamp: 5000)])
    }

    @Test func reopenedStoreContinuesOffsetsAndReadsBack() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        do {
            let directory = try DataDirectory(path: temp.path)
            let writer = try openWriter(directory)
            _ = writer.append((1...100).map { input("news", "m\($0)") }, now: 1)
        }
        let directory = try DataDirectory(path: temp.path)
        let writer = try openWriter(directory)
        #expect(offsets(writer.append([input("news", "m101")], now: 2).outcomes) == [101])
        let reader = try directory.makeReader()
        let records = try reader.read("news", from: 1, maxMessages: 1000, maxBytes: 1 << 20)
        #expect(records.map(\.offset) == Array(1...101))
        #expect(records.map { String(decoding: $0.payload, as: UTF8.self) } == (1...101).map { "m\($0)" })
        #expect(try reader.bounds("news") == ChannelBounds(earliest: 1, head: 101))
        #expect(try reader.bounds("never-written") == .empty)
    }

    @Test func producerRetryIsStoredOnce() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let writer = try openWriter(try DataDirectory(path: temp.path))
        let p = { ProducerStamp(id: 77, sequence: $0) }
        let first = writer.append([input("c", "a", producer: p(1)), input("c", "b", producer: p(2))], now: 1).outcomes
        #expect(offsets(first) == [1, 2])
        let retry = writer.append([input("c", "a", producer: p(1)), input("c", "b", producer: p(2)),
                                   input("c", "c", producer: p(3))], now: 2).outcomes
        #expect(retry == [.duplicate(offset: 0), .duplicate(offset: 2), .stored(offset: 3, timestamp: 2)])
    }

    @Test func producerSequenceGapIsRefusedAndNothingStored() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let writer = try openWriter(try DataDirectory(path: temp.path))
        _ = writer.append([input("c", "a", producer: ProducerStamp(id: 1, sequence: 5))], now: 1)
        let gap = writer.append([input("c", "b", producer: ProducerStamp(id: 1, sequence: 7))], now: 2).outcomes
        #expect(gap == [.sequenceGap(expected: 6)])
        #expect(offsets(writer.append([input("c", "z")], now: 3).outcomes) == [2])
    }

    @Test func producerStateSurvivesReopen() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        do {
            let writer = try openWriter(try DataDirectory(path: temp.path))
            _ = writer.append([input("c", "a", producer: ProducerStamp(id: 9, sequence: 1))], now: 1)
        }
        let writer = try openWriter(try DataDirectory(path: temp.path))
        let retry = writer.append([input("c", "a", producer: ProducerStamp(id: 9, sequence: 1))], now: 2).outcomes
        #expect(retry == [.duplicate(offset: 1)])
    }

    @Test func secondProcessCannotOpenALockedDirectory() throws {
        let temp = TempDirectory()
        defer { temp.remove() }
        let held = try DataDirectory(path: temp.path)
        // flock locks are per open file description, so a second open in-process conflicts too.
        #expect(throws: StorageError.self) { _ = try DataDirectory(path: temp.path) }
        _ = held
    }

    @Test func corruptedPayloadIsDetectedOnRead() throws {
        try withWriter() { directory, writer in
            _ = writer.append([input("c", "one"), input("c", "two"), input("c", "three")], now: 1)
            // One run holds the three payloads back to back: change the second's bytes.
            try writer.db.execute("UPDATE record_runs SET payload = CAST('onetw!three' AS BLOB)")
            let reader = try directory.makeReader()
            #expect(throws: StorageError.corruptRecord(channel: "c", offset: 2)) {
                _ = try reader.read("c", from: 1, maxMessages: 10, maxBytes: 1 << 20)
            }
            // Records before the damage are still served.
            #expect(try reader.read("c", from: 1, maxMessages: 1, maxBytes: 1 << 20).map(\.offset) == [1])
        }
    }

    @Test func missingRecordInsideRangeIsCorruption() throws {
        try withWriter() { directory, writer in
            for payload in ["1", "2", "3"] { _ = writer.append([input("c", payload)], now: 1) }  // a run each
            try writer.db.execute("DELETE FROM record_runs WHERE first = 2")
            let reader = try directory.makeReader()
            #expect(throws: StorageError.corruptRecord(channel: "c", offset: 2)) {
                _ = try reader.read("c", from: 1, maxMessages: 10, maxBytes: 1 << 20)
            }
        }
    }

    @Test func readHonoursMessageAndByteLimitsButReturnsAtLeastOne() throws {
        try withWriter() { directory, writer in
            _ = writer.append((1...10).map { _ in AppendInput(channel: "c", producer: nil, payload: Array(repeating: 1, count: 100)) }, now: 1)
            let reader = try directory.makeReader()
            #expect(try reader.read("c", from: 3, maxMessages: 4, maxBytes: 1 << 20).map(\.offset) == [3, 4, 5, 6])
            #expect(try reader.read("c", from: 1, maxMessages: 100, maxBytes: 250).map(\.offset) == [1, 2])
            #expect(try reader.read("c", from: 1, maxMessages: 100, maxBytes: 10).map(\.offset) == [1])
            #expect(try reader.read("c", from: 11, maxMessages: 100, maxBytes: 10).isEmpty)
        }
    }
}
