/// Counters and latency of one second of a run (or of a whole run, when merged).
public struct RunStats: Sendable {
    /// Publishes the schedule called for (open loop), whether or not they could be sent.
    public var offered: UInt64 = 0
    public var published: UInt64 = 0
    public var acked: UInt64 = 0
    public var delivered: UInt64 = 0
    public var deliveredBytes: UInt64 = 0
    public var errors: UInt64 = 0
    public var reconnects: UInt64 = 0
    /// Publish (intended send time) to delivery, microseconds.
    public var deliverLatency = Histogram()
    /// Publish to acknowledgement, microseconds.
    public var ackLatency = Histogram()

    public init() {}

    public mutating func merge(_ other: RunStats) {
        offered += other.offered
        published += other.published
        acked += other.acked
        delivered += other.delivered
        deliveredBytes += other.deliveredBytes
        errors += other.errors
        reconnects += other.reconnects
        deliverLatency.merge(other.deliverLatency)
        ackLatency.merge(other.ackLatency)
    }
}
