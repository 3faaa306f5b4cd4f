/// How much history a channel keeps. A record goes when any bound is exceeded;
/// `nil` means no bound of that kind.
public struct RetentionPolicy: Equatable, Sendable, Codable {
    public var maxMessages: UInt64?
    public var maxBytes: UInt64?
    public var maxAgeSeconds: UInt64?

    public init(maxMessages: UInt64? = nil, maxBytes: UInt64? = nil, maxAgeSeconds: UInt64? = nil) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.maxAgeSeconds = maxAgeSeconds
    }

    public var isUnbounded: Bool { maxMessages == nil && maxBytes == nil && maxAgeSeconds == nil }
}

/// The retention of every channel: a default and per-channel overrides by exact name.
public struct RetentionRules: Equatable, Sendable, Codable {
    public var `default`: RetentionPolicy
    public var channels: [String: RetentionPolicy]

    public init(default: RetentionPolicy = RetentionPolicy(), channels: [String: RetentionPolicy] = [:]) {
        self.default = `default`
        self.channels = channels
    }

    public func policy(for channel: String) -> RetentionPolicy { channels[channel] ?? `default` }
}

extension LogWriter {
    /// Rows removed per channel per pass, so retention never holds the writer for long.
    static let retentionRowsPerPassMax: Int64 = 10_000

    /// Removes records beyond their channel's policy, oldest first, a bounded number per
    /// channel per call, each channel in its own transaction. Returns records removed.
    /// A run of records goes once all of it is past the cutoff; until then the channel's
    /// `earliest` hides its older part.
    func applyRetention(_ rules: RetentionRules, now: Int64) throws(StorageError) -> Int64 {
        var removed: Int64 = 0
        for name in channels.keys.sorted() {
            let policy = rules.policy(for: name)
            guard !policy.isUnbounded, let state = channels[name], state.earliest <= state.head else { continue }
            let (cutoff, bytes) = try retentionCutoff(name, state, policy, now: now)
            guard cutoff > state.earliest else { continue }
            try db.execute("BEGIN IMMEDIATE")
            do throws(StorageError) {
                try db.execute("DELETE FROM record_runs WHERE channel=\(state.id) AND last < \(cutoff)")
                try retired(name: name, earliest: cutoff, bytesRemoved: bytes)
                try db.execute("COMMIT")
                removed += Int64(cutoff - state.earliest)
            } catch {
                try? db.execute("ROLLBACK")
                channels[name] = state
                throw error
            }
        }
        return removed
    }

    /// The first offset to keep — the highest lower bound any of the policy's limits sets,
    /// capped to one pass's worth of records — and the payload bytes of the records before it.
    private func retentionCutoff(_ name: String, _ state: ChannelState, _ policy: RetentionPolicy, now: Int64)
        throws(StorageError) -> (cutoff: UInt64, bytes: Int64)
    {
        let passEnd = min(state.head + 1, state.earliest + UInt64(Self.retentionRowsPerPassMax))
        var cutoff = state.earliest
        if let max = policy.maxMessages, state.head - state.earliest + 1 > max {
            cutoff = Swift.max(cutoff, state.head - max + 1)
        }
        let ageCutoff = policy.maxAgeSeconds.map { now - Int64($0) * 1000 }
        let statement = try db.prepare(
            "SELECT \(RecordRunReader.columns) FROM record_runs WHERE channel=?1 AND last>=?2 AND first<?3 ORDER BY last")
        statement.bind(1, state.id)
        statement.bind(2, Int64(state.earliest))
        statement.bind(3, Int64(passEnd))
        var bytes = state.bytes
        // Walks the retained records in order: those below a bound already reached go, and
        // so does each next one while a byte or age limit is still exceeded.
        runs: while try statement.step() {
            for slot in try RecordRunReader.slots(statement, from: 0, channel: name) where slot.offset >= state.earliest {
                guard slot.offset < passEnd else { break runs }
                let overBytes = policy.maxBytes.map { bytes > Int64($0) } ?? false
                let tooOld = ageCutoff.map { slot.timestamp < $0 } ?? false
                guard slot.offset < cutoff || overBytes || tooOld else { break runs }
                cutoff = Swift.max(cutoff, slot.offset + 1)
                bytes -= Int64(slot.size)
            }
        }
        cutoff = min(cutoff, passEnd)
        return (cutoff, state.bytes - bytes)
    }
}
