/// Identifies one ordered stream a subscriber receives: a channel as a whole (Chapar:
/// positions are offsets, `publisher` is 0) or one publisher's messages in a channel
/// (NATS, Redis: positions are the publisher's sequence numbers).
public struct StreamKey: Hashable, Sendable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(subscriber) << 32 | UInt64(channel) ^ UInt64(publisher) << 20)
    }

    public var subscriber: UInt32
    public var channel: UInt32
    public var publisher: UInt32

    public init(subscriber: UInt32, channel: UInt32, publisher: UInt32) {
        self.subscriber = subscriber
        self.channel = channel
        self.publisher = publisher
    }
}

/// Violations the oracle found.
public struct Violations: Equatable, Sendable {
    /// Messages that arrived after a later position of the same stream.
    public var order: UInt64 = 0
    /// Positions skipped over (counted per missing message).
    public var gaps: UInt64 = 0
    /// Messages that arrived twice in a row.
    public var duplicates: UInt64 = 0
    /// Acknowledged messages a subscriber should have received and never did.
    public var lost: UInt64 = 0
    /// The first few violations, described with channel and positions.
    public var examples: [String] = []

    public var total: UInt64 { order + gaps + duplicates + lost }

    public mutating func merge(_ other: Violations, examplesMax: Int = 20) {
        order += other.order
        gaps += other.gaps
        duplicates += other.duplicates
        lost += other.lost
        examples.append(contentsOf: other.examples.prefix(Swift.max(0, examplesMax - examples.count)))
    }
}

/// Checks every delivered message against what came before on its stream: each stream
/// must advance by exactly one position per message. At the end, `settle` counts what
/// was acknowledged but never delivered.
public struct Oracle: Sendable {
    struct Track: Sendable {
        /// The first position this subscription should deliver (0: learn it from the first message).
        var start: UInt64
        /// The last position delivered (start - 1 before any).
        var last: UInt64
    }

    private var tracks: [StreamKey: Track] = [:]
    public private(set) var violations = Violations()
    let examplesMax: Int
    /// Names channels in examples.
    let channelName: @Sendable (UInt32) -> String

    public init(examplesMax: Int = 20, channelName: @escaping @Sendable (UInt32) -> String = { "#\($0)" }) {
        self.examplesMax = examplesMax
        self.channelName = channelName
    }

    /// A subscription confirmed that it starts at `position` (Chapar's SUBSCRIBED). A
    /// resumed subscription keeps its history: the new start must continue it.
    public mutating func expect(_ key: StreamKey, from position: UInt64) {
        if let track = tracks[key] {
            if position > track.last + 1 { note(key, "resumed at \(position) after \(track.last)", gap: position - track.last - 1) }
            if position <= track.last { tracks[key]!.last = position - 1 }
            return
        }
        tracks[key] = Track(start: position, last: position - 1)
    }

    /// Forgets a stream (a target without history re-subscribed: it starts afresh).
    public mutating func forget(_ key: StreamKey) {
        tracks[key] = nil
    }

    public mutating func observe(_ key: StreamKey, position: UInt64) {
        // One hash lookup per message: this runs for every delivery of a run.
        guard let index = tracks.index(forKey: key) else {
            tracks[key] = Track(start: position, last: position)
            return
        }
        let track = tracks.values[index]
        if position == track.last + 1 {
            tracks.values[index].last = position
        } else if position > track.last + 1 {
            note(key, "expected \(track.last + 1), got \(position)", gap: position - track.last - 1)
            tracks.values[index].last = position
        } else if position == track.last {
            violations.duplicates += 1
            example(key, "\(position) delivered twice")
        } else {
            violations.order += 1
            example(key, "\(position) arrived after \(track.last)")
        }
    }

    /// The last position delivered on `key`, if any.
    public func last(_ key: StreamKey) -> UInt64? {
        guard let track = tracks[key], track.last >= track.start else { return nil }
        return track.last
    }

    /// Where a resumed subscription must start: after the last position delivered, or at
    /// the original start when nothing was delivered yet. Nil for an unknown stream.
    public func resumePosition(_ key: StreamKey) -> UInt64? {
        tracks[key].map { $0.last + 1 }
    }

    public var streams: [StreamKey] { Array(tracks.keys) }

    /// Forgets every stream of `subscriber` in `channel` (all publishers).
    public mutating func forget(subscriber: UInt32, channel: UInt32) {
        for key in tracks.keys where key.subscriber == subscriber && key.channel == channel { tracks[key] = nil }
    }

    /// Whether some stream still lacks an acknowledged position (what `settle` would count).
    public func owes(acked: [ChannelPublisher: UInt64]) -> Bool {
        tracks.contains { key, track in
            guard let top = acked[ChannelPublisher(channel: key.channel, publisher: key.publisher)] else { return false }
            return top > track.last && top >= track.start
        }
    }

    /// Counts acknowledged positions beyond what each stream delivered. `acked` gives the
    /// highest acknowledged position per (channel, publisher); a stream owes every
    /// position from its start up to that.
    public mutating func settle(acked: [ChannelPublisher: UInt64]) {
        for (key, track) in tracks.sorted(by: { ($0.key.subscriber, $0.key.channel) < ($1.key.subscriber, $1.key.channel) }) {
            guard let top = acked[ChannelPublisher(channel: key.channel, publisher: key.publisher)], top > track.last,
                  top >= track.start
            else { continue }
            let missing = top - track.last
            violations.lost += missing
            example(key, "\(missing) acknowledged message(s) up to \(top) never delivered (last \(track.last))")
        }
    }

    private mutating func note(_ key: StreamKey, _ text: String, gap: UInt64) {
        violations.gaps += gap
        example(key, text)
    }

    private mutating func example(_ key: StreamKey, _ text: String) {
        guard violations.examples.count < examplesMax else { return }
        let publisher = key.publisher == 0 ? "" : " publisher \(key.publisher)"
        violations.examples.append("channel \(channelName(key.channel)) subscriber \(key.subscriber)\(publisher): \(text)")
    }
}

public struct ChannelPublisher: Hashable, Sendable {
    public var channel: UInt32
    public var publisher: UInt32

    public init(channel: UInt32, publisher: UInt32) {
        self.channel = channel
        self.publisher = publisher
    }
}
