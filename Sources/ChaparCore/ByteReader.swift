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
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    public private(set) var position: Int

    public init(_ base: UnsafeRawBufferPointer, position: Int = 0) {
        self.base = base
        self.position = position
    }

    public var remaining: Int { base.count - position }
    public var isAtEnd: Bool { position == base.count }

    @inline(__always)
    private mutating func need(_ count: Int, _ field: String) throws(DecodeFailure) {
        if count > remaining { throw .truncated(field: field) }
    }

    public mutating func readUInt8(_ field: String) throws(DecodeFailure) -> UInt8 {
        try need(1, field)
        defer { position += 1 }
        return base[position]
    }

    public mutating func readUInt16(_ field: String) throws(DecodeFailure) -> UInt16 {
        try need(2, field)
        defer { position += 2 }
        return UInt16(base[position]) << 8 | UInt16(base[position + 1])
    }

    public mutating func readUInt32(_ field: String) throws(DecodeFailure) -> UInt32 {
        try need(4, field)
        defer { position += 4 }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    public mutating func readUInt64(_ field: String) throws(DecodeFailure) -> UInt64 {
        try need(8, field)
        defer { position += 8 }
        return UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    public mutating func readInt64(_ field: String) throws(DecodeFailure) -> Int64 {
        Int64(bitPattern: try readUInt64(field))
    }

    /// Borrows `count` bytes without copying.
    public mutating func readSlice(_ count: Int, _ field: String) throws(DecodeFailure) -> UnsafeRawBufferPointer {
        try need(count, field)
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: base[position..<position + count])
    }

    public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeFailure) -> [UInt8] {
        Array(try readSlice(count, field))
    }

    /// Reads a u8 length then that many bytes.
    public mutating func readShortBytes(_ field: String) throws(DecodeFailure) -> [UInt8] {
        let count = Int(try readUInt8(field))
        return try readBytes(count, field)
    }

    /// Reads a u16 length then that many bytes, refusing lengths above `max`.
    public mutating func readMediumBytes(_ field: String, max: Int) throws(DecodeFailure) -> [UInt8] {
        let count = Int(try readUInt16(field))
        if count > max { throw .invalid(field: field, reason: "length \(count) exceeds \(max)") }
        return try readBytes(count, field)
    }

    /// Reads a u32 length then that many bytes, refusing lengths above `max`.
    public mutating func readLongBytes(_ field: String, max: Int) throws(DecodeFailure) -> [UInt8] {
        let count = Int(try readUInt32(field))
        if count > max { throw .invalid(field: field, reason: "length \(count) exceeds \(max)") }
        return try readBytes(count, field)
    }

    /// Fails unless every byte was consumed: a frame whose inner lengths disagree
    /// with its outer length is malformed, not "mostly fine".
    public func expectEnd() throws(DecodeFailure) {
        if remaining != 0 { throw .trailingBytes(count: remaining) }
    }
}
