/// The first bytes of every payload the simulator publishes, to any target. They let
/// the oracle check order per publisher even where the target has no offsets (NATS,
/// Redis), and measure latency on the simulator's own clock.
///
/// Layout (little-endian; only this program reads it): magic "CHL1", publisher u32,
/// sequence u64 (1, 2, 3 … per publisher and channel), sent-at µs i64 (the intended
/// send time for open-loop rates), channel index u32, reserved u32. The rest is filler.
public struct PayloadStamp: Equatable, Sendable {
    public static let bytes = 32
    static let magic: UInt32 = 0x314C_4843  // "CHL1" read little-endian

    public var publisher: UInt32
    public var sequence: UInt64
    public var sentMicros: Int64
    public var channel: UInt32

    public init(publisher: UInt32, sequence: UInt64, sentMicros: Int64, channel: UInt32) {
        self.publisher = publisher
        self.sequence = sequence
        self.sentMicros = sentMicros
        self.channel = channel
    }

    /// Writes the stamp over the first 32 bytes of `payload`.
    public func write(into payload: UnsafeMutableRawBufferPointer) {
        precondition(payload.count >= Self.bytes)
        payload.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        payload.storeBytes(of: publisher.littleEndian, toByteOffset: 4, as: UInt32.self)
        payload.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
        payload.storeBytes(of: sentMicros.littleEndian, toByteOffset: 16, as: Int64.self)
        payload.storeBytes(of: channel.littleEndian, toByteOffset: 24, as: UInt32.self)
        payload.storeBytes(of: UInt32(0), toByteOffset: 28, as: UInt32.self)
    }

    public init?(reading payload: UnsafeRawBufferPointer) {
        guard payload.count >= Self.bytes,
              UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == Self.magic
        else { return nil }
        publisher = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        sequence = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        sentMicros = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 16, as: Int64.self))
        channel = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
    }
}
