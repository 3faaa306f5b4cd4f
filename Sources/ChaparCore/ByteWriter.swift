/// Appends big-endian integers and length-prefixed fields to a growable byte array.
///
/// Every multi-byte integer Chapar puts on the wire or on disk is big-endian
/// (network order); this type is the one place that decides it.
///
/// Inlinable: its generic writes are called from every codec in other modules, and
/// unspecialised they appended through protocol witnesses (perf: most of encoding a
/// Raft entry's publishes).
public struct ByteWriter: Sendable {
    @usableFromInline var storage: [UInt8]

    @inlinable public var bytes: [UInt8] { storage }

    @inlinable public init(capacity: Int = 64) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    @inlinable public var count: Int { storage.count }

    @inlinable public mutating func write(_ value: UInt8) {
        storage.append(value)
    }

    @inlinable public mutating func write(_ value: UInt16) {
        storage.append(UInt8(truncatingIfNeeded: value >> 8))
        storage.append(UInt8(truncatingIfNeeded: value))
    }

    @inlinable public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { storage.append(contentsOf: $0) }
    }

    @inlinable public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { storage.append(contentsOf: $0) }
    }

    @inlinable public mutating func write(_ value: Int64) {
        write(UInt64(bitPattern: value))
    }

    @inlinable public mutating func write<C: Collection>(contentsOf data: C) where C.Element == UInt8 {
        storage.append(contentsOf: data)
    }

    /// Writes a u8 length then the bytes. The caller MUST have checked `data.count <= 255`.
    @inlinable public mutating func writeShortBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt8.max), "short field longer than 255 bytes")
        write(UInt8(data.count))
        storage.append(contentsOf: data)
    }

    /// Writes a u16 length then the bytes. The caller MUST have checked `data.count <= 65535`.
    @inlinable public mutating func writeMediumBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt16.max), "medium field longer than 65535 bytes")
        write(UInt16(data.count))
        storage.append(contentsOf: data)
    }

    /// Writes a u32 length then the bytes.
    @inlinable public mutating func writeLongBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        precondition(data.count <= Int(UInt32.max), "long field longer than 4 GiB")
        write(UInt32(data.count))
        storage.append(contentsOf: data)
    }

    /// Overwrites a u32 at `position`, for length fields known only after the body is written.
    @inlinable public mutating func patch(_ value: UInt32, at position: Int) {
        precondition(position >= 0 && position + 4 <= storage.count, "patch outside the written bytes")
        storage[position] = UInt8(truncatingIfNeeded: value >> 24)
        storage[position + 1] = UInt8(truncatingIfNeeded: value >> 16)
        storage[position + 2] = UInt8(truncatingIfNeeded: value >> 8)
        storage[position + 3] = UInt8(truncatingIfNeeded: value)
    }

    /// Hands the bytes over without copying.
    @inlinable public consuming func finish() -> [UInt8] { storage }
}
