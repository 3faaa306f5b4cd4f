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
    /// channel per call, each channel in its own transaction. Returns rows removed.
    func applyRetention(_ rules: RetentionRules, now: Int64) throws(StorageError) -> Int64 {
        var removed: Int64 = 0
        for name in channels.keys.sorted() {
            let policy = rules.policy(for: name)
            guard !policy.isUnbounded, let state = channels[name], state.earliest <= state.head else { continue }
            let cutoff = try retentionCutoff(state, policy, now: now)
            guard cutoff > state.earliest else { continue }
            try db.execute("BEGIN IMMEDIATE")
            do throws(StorageError) {
                let bytes = try sumPayloadBytes(channelId: state.id, below: cutoff)
                try db.execute("DELETE FROM messages WHERE channel=\(state.id) AND offset < \(cutoff)")
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

    /// The first offset to keep: the highest lower bound any of the policy's limits sets,
    /// capped to one pass's worth of rows.
    private func retentionCutoff(_ state: ChannelState, _ policy: RetentionPolicy, now: Int64) throws(StorageError)
        -> UInt64
    {
        let passEnd = min(state.head + 1, state.earliest + UInt64(Self.retentionRowsPerPassMax))
        var cutoff = state.earliest
        if let max = policy.maxMessages, state.head - state.earliest + 1 > max {
            cutoff = Swift.max(cutoff, state.head - max + 1)
        }
        if policy.maxBytes != nil || policy.maxAgeSeconds != nil {
            let statement = try db.prepare(
                "SELECT offset, ts, coalesce(bytes, length(payload)) FROM messages WHERE channel=?1 AND offset>=?2 AND offset<?3 ORDER BY offset")
            statement.bind(1, state.id)
            statement.bind(2, Int64(state.earliest))
            statement.bind(3, Int64(passEnd))
            var bytes = state.bytes
            let ageCutoff = policy.maxAgeSeconds.map { now - Int64($0) * 1000 }
            while try statement.step() {
                let offset = UInt64(statement.int64(0))
                let overBytes = policy.maxBytes.map { bytes > Int64($0) } ?? false
                let tooOld = ageCutoff.map { statement.int64(1) < $0 } ?? false
                if !overBytes && !tooOld { break }
                cutoff = Swift.max(cutoff, offset + 1)
                bytes -= statement.int64(2)
            }
        }
        return min(cutoff, passEnd)
    }

    private func sumPayloadBytes(channelId: Int64, below cutoff: UInt64) throws(StorageError) -> Int64 {
        let statement = try db.prepare("SELECT coalesce(sum(coalesce(bytes, length(payload))), 0) FROM messages WHERE channel=?1 AND offset<?2")
        statement.bind(1, channelId)
        statement.bind(2, Int64(cutoff))
        _ = try statement.step()
        return statement.int64(0)
    }
}
