import Synchronization

/// The live tail of one channel that has subscribers somewhere on this node.
///
/// The group committer appends each commit's frames as one chunk; loops read slices.
/// Chunks are contiguous in offset and the oldest are dropped beyond the byte budget,
/// after which a subscriber that still needs them reads the log instead.
final class ChannelFeed: Sendable {
    private struct State {
        var chunks: [EncodedChunk] = []
        var cachedBytes = 0
        var head: UInt64 = 0
        /// Bit i set: loop i has subscribers to this channel.
        var interestedLoops: UInt64 = 0
    }

    let channel: String
    let cacheBytesMax: Int
    private let state = Mutex(State())

    init(channel: String, cacheBytesMax: Int) {
        self.channel = channel
        self.cacheBytesMax = cacheBytesMax
    }

    /// Adds a committed chunk and returns the loops to notify. Committer thread only.
    func append(_ chunk: EncodedChunk) -> UInt64 {
        state.withLock { s in
            if let last = s.chunks.last, last.lastOffset + 1 != chunk.firstOffset {
                // Not contiguous (the feed was created mid-commit): start the cache afresh.
                s.chunks.removeAll()
                s.cachedBytes = 0
            }
            s.chunks.append(chunk)
            s.cachedBytes += chunk.bytes.count
            while s.cachedBytes > cacheBytesMax && s.chunks.count > 1 {
                s.cachedBytes -= s.chunks.removeFirst().bytes.count
            }
            s.head = max(s.head, chunk.lastOffset)
            return s.interestedLoops
        }
    }

    /// The highest committed offset this feed has seen.
    var head: UInt64 { state.withLock { $0.head } }

    /// The cached chunk holding `offset`, if it is still cached.
    func chunk(containing offset: UInt64) -> EncodedChunk? {
        state.withLock { s in
            guard let first = s.chunks.first, offset >= first.firstOffset, offset <= s.head else { return nil }
            // Chunks are contiguous and few; search from the newest, where live readers are.
            for chunk in s.chunks.reversed() where chunk.firstOffset <= offset { return chunk }
            return nil
        }
    }

    func setInterest(loop: Int, _ interested: Bool) -> UInt64 {
        state.withLock { s in
            if interested { s.interestedLoops |= 1 << UInt64(loop) } else { s.interestedLoops &= ~(1 << UInt64(loop)) }
            return s.interestedLoops
        }
    }
}

/// The feeds of every channel with subscribers on this node.
final class FeedRegistry: Sendable {
    private let feeds = Mutex<[String: ChannelFeed]>([:])
    let cacheBytesMax: Int

    init(cacheBytesMax: Int) {
        self.cacheBytesMax = cacheBytesMax
    }

    func lookup(_ channel: String) -> ChannelFeed? {
        feeds.withLock { $0[channel] }
    }

    /// The channel's feed, created if needed, with `loop` marked interested — atomically,
    /// so a commit reported after this call is certain to reach `loop`.
    func subscribe(_ channel: String, loop: Int) -> ChannelFeed {
        feeds.withLock { map in
            let feed = map[channel] ?? ChannelFeed(channel: channel, cacheBytesMax: cacheBytesMax)
            map[channel] = feed
            _ = feed.setInterest(loop: loop, true)
            return feed
        }
    }

    /// Clears `loop`'s interest and drops the feed when no loop is left.
    func unsubscribe(_ feed: ChannelFeed, loop: Int) {
        feeds.withLock { map in
            if feed.setInterest(loop: loop, false) == 0, map[feed.channel] === feed {
                map[feed.channel] = nil
            }
        }
    }
}
