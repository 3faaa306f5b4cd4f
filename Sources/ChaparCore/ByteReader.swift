/// Why a byte sequence could not be decoded. Codecs map these to protocol errors.
public enum DecodeFailure: Error, Equatable, Sendable {
    /// A field runs past the end of the bytes it was read from.
    case truncated(field: String)
    /// Bytes are left over after the last field.
    case trailingBytes(count: Int)
    /// A field holds a value the format does not allow.
    case invalid(field: String, reason: String)
}

/// Reads big-endian integers and length-prefixed fields from borrowed bytes.
///
/// It never copies unless asked (`readBytes`), so a decoder can walk a frame that
/// still sits in the event loop's receive buffer. The bytes MUST outlive the reader.
///
/// Inlinable, as `ByteWriter`: every decoder in other modules calls it per field.
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    @usableFromInline var cursor: Int

    @inlinable public var position: Int { cursor }

    @inlinable public init(_ base: UnsafeRawBufferPointer, position: Int = 0) {
        self.base = base
        self.cursor = position
    }

    @inlinable public var remaining: Int { base.count - position }
    @inlinable public var isAtEnd: Bool { position == base.count }

    @inlinable @inline(__always)
    mutating func need(_ count: Int, _ field: String) throws(DecodeFailure) {
        if count > remaining { throw .truncated(field: field) }
    }

    @inlinable public mutating func readUInt8(_ field: String) throws(DecodeFailure) -> UInt8 {
        try need(1, field)
        defer { cursor += 1 }
        return base[cursor]
    }

    @inlinable public mutating func readUInt16(_ field: String) throws(DecodeFailure) -> UInt16 {
        try need(2, field)
        defer { cursor += 2 }
        return UInt16(base[cursor]) << 8 | UInt16(base[cursor + 1])
    }

    @inlinable public mutating func readUInt32(_ field: String) throws(DecodeFailure) -> UInt32 {
        try need(4, field)
        defer { cursor += 4 }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: cursor, as: UInt32.self))
    }

    @inlinable public mutating func readUInt64(_ field: String) throws(DecodeFailure) -> UInt64 {
        try need(8, field)
        defer { cursor += 8 }
        return UInt64(bigEndian: base.loadUnaligned(fromByteOffset: cursor, as: UInt64.self))
    }

    @inlinable public mutating func readInt64(_ field: String) throws(DecodeFailure) -> Int64 {
        Int64(bitPattern: try readUInt64(field))
    }

    /// Borrows `count` bytes without copying.
    @inlinable public mutating func readSlice(_ count: Int, _ field: String) throws(DecodeFailure) -> UnsafeRawBufferPointer {
        try need(count, field)
        defer { cursor += count }
        return UnsafeRawBufferPointer(rebasing: base[cursor..<cursor + count])
    }

    @inlinable public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeFailure) -> [UInt8] {
        Self.copied(try readSlice(count, field))
    }

    /// One memcpy into storage of the exact size: the generic sequence copy walked bytes.
    @inlinable static func copied(_ slice: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: slice.count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: slice)
            initialized = slice.count
        }
    }

    /// Reads a u8 length then that many bytes.
    @inlinable public mutating func readShortBytes(_ field: String) throws(DecodeFailure) -> [UInt8] {
        let count = Int(try readUInt8(field))
        return try readBytes(count, field)
    }

    /// Reads a u16 length then that many bytes, refusing lengths above `max`.
    @inlinable public mutating func readMediumBytes(_ field: String, max: Int) throws(DecodeFailure) -> [UInt8] {
        let count = Int(try readUInt16(field))
        if count > max { throw .invalid(field: field, reason: "length \(count) exceeds \(max)") }
        return try readBytes(count, field)
    }

    /// Reads a u32 length then that many bytes, refusing lengths above `max`.
    @inlinable public mutating func readLongBytes(_ field: String, max: Int) throws(DecodeFailure) -> [UInt8] {
        Self.copied(UnsafeRawBufferPointer(rebasing: base[try readLongRange(field, max: max)]))
    }

    /// Reads a u32 length and steps over that many bytes, refusing lengths above `max`:
    /// where they lie, for a caller that slices the bytes it reads from instead of copying.
    @inlinable public mutating func readLongRange(_ field: String, max: Int) throws(DecodeFailure) -> Range<Int> {
        let count = Int(try readUInt32(field))
        if count > max { throw .invalid(field: field, reason: "length \(count) exceeds \(max)") }
        let start = cursor
        _ = try readSlice(count, field)
        return start..<start + count
    }

    /// Fails unless every byte was consumed: a frame whose inner lengths disagree
    /// with its outer length is malformed, not "mostly fine".
    @inlinable public func expectEnd() throws(DecodeFailure) {
        if remaining != 0 { throw .trailingBytes(count: remaining) }
    }
}
