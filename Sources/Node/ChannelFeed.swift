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
    let budget: CacheBudget
    private let state = Mutex(State())

    init(channel: String, cacheBytesMax: Int, budget: CacheBudget) {
        self.channel = channel
        self.cacheBytesMax = cacheBytesMax
        self.budget = budget
    }

    deinit {
        budget.release(state.withLock { $0.cachedBytes })
    }

    /// Adds a committed chunk and returns the loops to notify. Called by one source at a
    /// time per channel — the store's commits, or the edge relay — except while a node
    /// that relays a channel becomes one of its replicas and both feed it: records are
    /// byte-identical at equal offsets whichever source brings them.
    func append(_ chunk: EncodedChunk) -> UInt64 {
        state.withLock { s in
            // Old records (a replica catching up behind what the relay brought): nothing to
            // cache, but loops waiting to read them from the store are woken.
            if chunk.lastOffset <= s.head && !s.chunks.isEmpty { return s.interestedLoops }
            if let last = s.chunks.last, last.lastOffset + 1 != chunk.firstOffset {
                // Not contiguous (the feed was created mid-commit): start the cache afresh.
                s.chunks.removeAll()
                budget.release(s.cachedBytes)
                s.cachedBytes = 0
            }
            s.chunks.append(chunk)
            s.cachedBytes += chunk.bytes.count
            budget.take(chunk.bytes.count)
            // The channel's own cap, then the node-wide budget: the channel that adds is
            // the one that sheds, so hot channels keep the newest and idle ones are left alone.
            while (s.cachedBytes > cacheBytesMax || budget.isExceeded) && s.chunks.count > 1 {
                let evicted = s.chunks.removeFirst().bytes.count
                s.cachedBytes -= evicted
                budget.release(evicted)
            }
            s.head = max(s.head, chunk.lastOffset)
            return s.interestedLoops
        }
    }

    /// The highest committed offset this feed has seen.
    var head: UInt64 { state.withLock { $0.head } }

    /// Records up to `offset` exist (a replica said so) though the feed does not hold them:
    /// loops following the feed are told, and fetch what they lack. Returns the loops to
    /// notify (0 when nothing changed).
    func raiseHead(to offset: UInt64) -> UInt64 {
        state.withLock { s in
            guard offset > s.head else { return 0 }
            s.head = offset
            return s.interestedLoops
        }
    }

    /// The cached chunk holding `offset`, if it is still cached.
    func chunk(containing offset: UInt64) -> EncodedChunk? {
        state.withLock { s in
            guard let first = s.chunks.first, offset >= first.firstOffset, offset <= s.head else { return nil }
            // Chunks are contiguous and few; search from the newest, where live readers are.
            for chunk in s.chunks.reversed() where chunk.firstOffset <= offset { return offset <= chunk.lastOffset ? chunk : nil }
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

/// Bytes held by all tail caches of a node, against a node-wide limit.
final class CacheBudget: Sendable {
    private let used = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func take(_ bytes: Int) { used.wrappingAdd(bytes, ordering: .relaxed) }
    func release(_ bytes: Int) { used.wrappingSubtract(bytes, ordering: .relaxed) }
    var isExceeded: Bool { used.load(ordering: .relaxed) > limit }
    var bytes: Int { used.load(ordering: .relaxed) }
}

/// The feeds of every channel with subscribers on this node.
final class FeedRegistry: Sendable {
    private let feeds = Mutex<[String: ChannelFeed]>([:])
    let cacheBytesMax: Int
    let budget: CacheBudget

    init(cacheBytesMax: Int, totalBytesMax: Int) {
        self.cacheBytesMax = cacheBytesMax
        self.budget = CacheBudget(limit: totalBytesMax)
    }

    func lookup(_ channel: String) -> ChannelFeed? {
        feeds.withLock { $0[channel] }
    }

    /// The channel's feed, created if needed, with `loop` marked interested — atomically,
    /// so a commit reported after this call is certain to reach `loop`.
    func subscribe(_ channel: String, loop: Int) -> ChannelFeed {
        feeds.withLock { map in
            let feed = map[channel] ?? ChannelFeed(channel: channel, cacheBytesMax: cacheBytesMax, budget: budget)
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
