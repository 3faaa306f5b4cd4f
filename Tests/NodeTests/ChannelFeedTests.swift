import Storage
import Testing
@testable import Node

/// The live tail of a channel, including the cases where two sources feed it (a node
/// that relays a channel becoming one of its replicas) and where a relay knows records
/// exist that the feed does not hold.
@Suite struct ChannelFeedTests {
    func chunk(_ offsets: ClosedRange<UInt64>) -> EncodedChunk {
        EncodedChunk(channel: "c", records: offsets.map { StoredRecord(offset: $0, timestamp: 1, payload: Array("m\($0)".utf8)) })
    }

    func feed() -> ChannelFeed { ChannelFeed(channel: "c", cacheBytesMax: 1 << 20, budget: CacheBudget(limit: 1 << 30)) }

    @Test func contiguousChunksAreServedByOffset() {
        let feed = feed()
        _ = feed.setInterest(loop: 2, true)
        #expect(feed.append(chunk(1...3)) == 1 << 2)
        #expect(feed.append(chunk(4...6)) == 1 << 2)
        #expect(feed.head == 6)
        #expect(feed.chunk(containing: 2)?.firstOffset == 1)
        #expect(feed.chunk(containing: 5)?.firstOffset == 4)
        #expect(feed.chunk(containing: 7) == nil)
    }

    /// A replica catching up behind what the relay brought: its old records wake the
    /// loops (they read them from the store) but are not cached, and never hide the newer.
    @Test func oldRecordsFromASecondSourceAreNotCached() {
        let feed = feed()
        _ = feed.setInterest(loop: 0, true)
        _ = feed.append(chunk(10...12))
        #expect(feed.append(chunk(1...5)) == 1, "the loops are woken")
        #expect(feed.head == 12)
        #expect(feed.chunk(containing: 11)?.firstOffset == 10, "the newer chunk stays")
        #expect(feed.chunk(containing: 3) == nil)
    }

    /// After a gap (records the feed never held), no chunk is handed out for an offset it
    /// does not hold — the reader goes to the store or the replica instead.
    @Test func aGapIsNeverServedFromTheWrongChunk() {
        let feed = feed()
        _ = feed.append(chunk(1...3))
        #expect(feed.raiseHead(to: 8) == 0, "no loop follows the feed")
        #expect(feed.head == 8)
        #expect(feed.chunk(containing: 5) == nil, "offsets 4…8 are not in the feed")
        #expect(feed.chunk(containing: 2)?.firstOffset == 1)
        _ = feed.setInterest(loop: 1, true)
        #expect(feed.raiseHead(to: 8) == 0, "nothing new")
        #expect(feed.raiseHead(to: 9) == 1 << 1)
        _ = feed.append(chunk(12...13))
        #expect(feed.chunk(containing: 10) == nil)
        #expect(feed.chunk(containing: 13)?.firstOffset == 12)
    }
}
