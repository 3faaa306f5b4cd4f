/// Appends big-endian integers and length-prefixed fields to a growable byte array.
///
/// Every multi-byte integer Chapar puts on the wire or on disk is big-endian
/// (network order); this type is the one place that decides it.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func write(_ value: UInt8) {
        bytes.append(value)
    }

    public mutating func write(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Int64) {
        write(UInt64(bitPattern: value))
    }

    public mutating func write<C: Collection>(contentsOf data: C) where C.Element == UInt8 {
        bytes.append(contentsOf: data)
    }

    /// Writes a u8 length then the bytes. The caller MUST have checked `data.count <= 255`.
    public mutating func writeShortBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt8.max), "short field longer than 255 bytes")
        write(UInt8(data.count))
        bytes.append(contentsOf: data)
    }

    /// Writes a u16 length then the bytes. The caller MUST have checked `data.count <= 65535`.
    public mutating func writeMediumBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt16.max), "medium field longer than 65535 bytes")
        write(UInt16(data.count))
        bytes.append(contentsOf: data)
    }

    /// Writes a u32 length then the bytes.
    public mutating func writeLongBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt32.max), "long field longer than 4 GiB")
        write(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    /// Overwrites a u32 at `position`, for length fields known only after the body is written.
    public mutating func patch(_ value: UInt32, at position: Int) {
        precondition(position >= 0 && position + 4 <= bytes.count, "patch outside the written bytes")
        bytes[position] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[position + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[position + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[position + 3] = UInt8(truncatingIfNeeded: value)
    }

    /// Hands the bytes over without copying.
    public consuming func finish() -> [UInt8] { bytes }
}
