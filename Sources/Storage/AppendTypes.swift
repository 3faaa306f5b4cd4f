import ChaparCore

/// One publish to store. The channel name MUST already be validated.
public struct AppendInput: Sendable {
    public var channel: String
    public var producer: ProducerStamp?
    public var payload: [UInt8]

    public init(channel: String, producer: ProducerStamp?, payload: [UInt8]) {
        self.channel = channel
        self.producer = producer
        self.payload = payload
    }
}

/// What became of one `AppendInput`.
public enum AppendOutcome: Equatable, Sendable {
    /// Stored durably (per the store's `Durability`) at `offset`.
    case stored(offset: UInt64, timestamp: Int64)
    /// The producer sequence was stored before; nothing new was written. `offset` is the
    /// original offset when the sequence was the producer's latest, 0 when older.
    case duplicate(offset: UInt64)
    /// The producer skipped sequences: `expected` is the next one the store accepts.
    /// Nothing was stored.
    case sequenceGap(expected: UInt64)
    /// The transaction failed; nothing of it was stored.
    case failed(StorageError)
}

/// The records one commit added to one channel, in offset order.
public struct ChannelAppend: Sendable {
    public var channel: String
    public var records: [StoredRecord]
}
