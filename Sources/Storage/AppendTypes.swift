import ChaparCore

/// One publish to store. The channel name MUST already be validated.
public struct AppendInput: Sendable {
    public var channel: String
    public var producer: ProducerStamp?
    /// A slice, so a follower's publishes can share the bytes of the Raft entry they were
    /// decoded from instead of each copying its payload out.
    public var payload: ArraySlice<UInt8>
    /// Wall time (ms) to stamp the record with; nil: the time of the commit. Replicas
    /// apply the timestamp the leader chose, so every copy of a record is identical.
    public var timestamp: Int64?
    /// Clustered: the payload is already stored, at the end of this Raft log entry; the
    /// record points there instead of holding a second copy.
    public var reference: PayloadReference?

    public init(channel: String, producer: ProducerStamp?, payload: [UInt8], timestamp: Int64? = nil,
                reference: PayloadReference? = nil) {
        self.init(channel: channel, producer: producer, payload: payload[...], timestamp: timestamp, reference: reference)
    }

    public init(channel: String, producer: ProducerStamp?, payload: ArraySlice<UInt8>, timestamp: Int64? = nil,
                reference: PayloadReference? = nil) {
        self.channel = channel
        self.producer = producer
        self.payload = payload
        self.timestamp = timestamp
        self.reference = reference
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
    /// Clustered: definitely not stored (no leader in time; overwritten by a new term).
    case rejected(reason: String)
    /// Clustered: may or may not have been stored; a retry with the producer stamp is safe.
    case unknown(reason: String)
}

/// The records one commit added to one channel, in offset order.
public struct ChannelAppend: Sendable {
    public var channel: String
    public var records: [StoredRecord]
}

/// Where a record's payload lies in the Raft log: entry (`shard`, `index`), from byte `skip`.
public struct PayloadReference: Equatable, Sendable {
    public var shard: Int
    public var index: UInt64
    public var skip: Int

    public init(shard: Int, index: UInt64, skip: Int) {
        self.shard = shard
        self.index = index
        self.skip = skip
    }
}

/// Committed entries a replication cycle applies while its entry-log write is in flight
/// (`ReplicatedStore.commit(whileWriting:)`): their inputs, how far each replica then
/// applied, and who gets the outcomes (lined up with `apply`).
public struct AppliedWhileWriting {
    public var apply: [AppendInput]
    public var appliedThrough: [Int: UInt64]
    public var staged: ([AppendOutcome]) -> Void

    public init(apply: [AppendInput], appliedThrough: [Int: UInt64], staged: @escaping ([AppendOutcome]) -> Void) {
        self.apply = apply
        self.appliedThrough = appliedThrough
        self.staged = staged
    }
}
