import ChaparCore

/// One message as the store holds it.
public struct StoredRecord: Equatable, Sendable {
    public var offset: UInt64
    /// Milliseconds since the Unix epoch; never decreases within a channel.
    public var timestamp: Int64
    /// A slice: a record applied from a Raft entry shares that entry's bytes.
    public var payload: ArraySlice<UInt8>

    public init(offset: UInt64, timestamp: Int64, payload: [UInt8]) {
        self.init(offset: offset, timestamp: timestamp, payload: payload[...])
    }

    public init(offset: UInt64, timestamp: Int64, payload: ArraySlice<UInt8>) {
        self.offset = offset
        self.timestamp = timestamp
        self.payload = payload
    }
}

/// The first retained and the last stored offset of a channel.
public struct ChannelBounds: Equatable, Sendable {
    /// Oldest retained offset; `head + 1` when nothing is retained.
    public var earliest: UInt64
    /// Last stored offset; 0 for a channel that never had a message.
    public var head: UInt64

    public init(earliest: UInt64, head: UInt64) {
        self.earliest = earliest
        self.head = head
    }

    public static let empty = ChannelBounds(earliest: 1, head: 0)
}

/// The checksum stored beside every record: CRC-32C over the channel's row id, the
/// offset, the timestamp (each 8 bytes big-endian) and the payload. Binding the row id
/// and offset catches a record that is intact but in the wrong place.
enum RecordChecksum {
    static func compute(channelId: Int64, offset: UInt64, timestamp: Int64, payload: UnsafeRawBufferPointer) -> UInt32 {
        var header = (channelId.bigEndian, offset.bigEndian, timestamp.bigEndian)
        let crc = withUnsafeBytes(of: &header) { Checksum.crc32c(0, $0) }
        return Checksum.crc32c(crc, payload)
    }
}
