/// Identifies a producer's publish so that a retry is stored once.
public struct ProducerStamp: Equatable, Sendable {
    /// Random per producer instance; a restarted producer MUST pick a new one.
    public var id: UInt64
    /// 1, 2, 3 … per (channel, producer id), without gaps.
    public var sequence: UInt64

    public init(id: UInt64, sequence: UInt64) {
        self.id = id
        self.sequence = sequence
    }
}
