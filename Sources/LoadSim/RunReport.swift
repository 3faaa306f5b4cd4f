/// Everything one run measured, as printed and as written by `--json`.
public struct RunReport: Sendable {
    public var scenario: Scenario
    public var target: String
    public var workers: Int
    /// Seconds publishing was scheduled for (the window rates are computed over).
    public var durationSeconds: Double
    /// Counters over the publishing window.
    public var totals: RunStats
    /// Deliveries and acknowledgements that came after the window, while draining.
    public var drain: RunStats
    /// One entry per second of the window.
    public var timeline: [RunStats]
    public var violations: Violations
    public var supportsAcks: Bool
    public var supportsHistory: Bool
    /// Simulator CPU time over wall time, in percent of one core.
    public var driverCpuPercent: Double
    /// Settings the caller vouches for (build, durability, versions).
    public var settings: [String: String]
    public var notes: [String]
    /// Connections that were not ready when publishing should have started.
    public var setupFailure: String?

    func rate(_ count: UInt64) -> Double { durationSeconds > 0 ? Double(count) / durationSeconds : 0 }

    public var publishedPerSecond: Double { rate(totals.published) }
    public var offeredPerSecond: Double { rate(totals.offered) }
    public var ackedPerSecond: Double { rate(totals.acked) }
    public var deliveredPerSecond: Double { rate(totals.delivered) }
    public var deliveredGbitPerSecond: Double { rate(totals.deliveredBytes) * 8 / 1e9 }

    /// Latency over the window and the drain.
    public var deliverLatency: Histogram {
        var merged = totals.deliverLatency
        merged.merge(drain.deliverLatency)
        return merged
    }

    public var ackLatency: Histogram {
        var merged = totals.ackLatency
        merged.merge(drain.ackLatency)
        return merged
    }

    /// True when the run must fail: a violation, or a setup that never got going.
    public var failed: Bool { violations.total > 0 || setupFailure != nil }
}
