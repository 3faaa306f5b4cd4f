import ChaparCore

/// A shard replica's state machine as of one applied index, as a file: what a leader sends
/// a follower whose missing entries it no longer stores (docs/PROTOCOL.md, "Snapshots").
///
/// Layout (big-endian): the magic `CHSNAP01`, shard u32, index u64, term u64, the Raft
/// configuration (u16 length + bytes, empty: the bootstrap one); then records, each a
/// kind byte and its fields; then the end record: kind 0, the number of records before
/// it (u64) and the CRC-32C of every byte before that CRC (u32).
public struct SnapshotHeader: Equatable, Sendable {
    public var shard: Int
    public var index: UInt64
    public var term: UInt64
    /// The configuration in force at `index`, encoded by Consensus (opaque here).
    public var configuration: [UInt8]

    public init(shard: Int, index: UInt64, term: UInt64, configuration: [UInt8]) {
        self.shard = shard
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// One record of a snapshot. Messages and producers belong to the channel before them.
enum SnapshotRecord: Equatable {
    case channel(name: String, head: UInt64, earliest: UInt64, bytes: Int64, lastTimestamp: Int64)
    case message(offset: UInt64, timestamp: Int64, payload: [UInt8])
    case producer(id: UInt64, sequence: UInt64, offset: UInt64, updated: Int64)
    /// The controller's state (the controller's group only).
    case clusterState([UInt8])

    enum Kind: UInt8 { case end = 0, channel, message, producer, clusterState }

    static let magic = Array("CHSNAP01".utf8)
    /// Largest payload or state in a record (a publish is at most 1 MiB).
    static let bytesMax = 16 << 20

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .channel(let name, let head, let earliest, let bytes, let lastTimestamp):
            writer.write(Kind.channel.rawValue)
            writer.writeMediumBytes(Array(name.utf8))
            writer.write(head)
            writer.write(earliest)
            writer.write(bytes)
            writer.write(lastTimestamp)
        case .message(let offset, let timestamp, let payload):
            writer.write(Kind.message.rawValue)
            writer.write(offset)
            writer.write(timestamp)
            writer.writeLongBytes(payload)
        case .producer(let id, let sequence, let offset, let updated):
            writer.write(Kind.producer.rawValue)
            writer.write(id)
            writer.write(sequence)
            writer.write(offset)
            writer.write(updated)
        case .clusterState(let bytes):
            writer.write(Kind.clusterState.rawValue)
            writer.writeLongBytes(bytes)
        }
    }
}
