#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer aligned to `DirectAppender.blockBytes`, written big-endian like
/// `ByteWriter`: what a direct write reads from. The entry log encodes each cycle's records
/// straight into the one its appender writes from, so an entry's data is copied once on its
/// way to the disk (an array would have to be copied again into such a buffer).
final class AlignedBytes {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes written so far.
    private(set) var count = 0

    init(capacity: Int = 1 << 20) {
        self.capacity = max(capacity, DirectAppender.blockBytes)
        base = Self.allocate(self.capacity)
    }

    deinit { free(base) }

    /// Makes room for `more` bytes after `count`, keeping what is there.
    func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        let grown = max(count + more, capacity * 2)
        let bigger = Self.allocate(grown)
        bigger.copyMemory(from: base, byteCount: count)
        free(base)
        base = bigger
        capacity = grown
    }

    func write(_ value: UInt8) {
        reserve(1)
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    func write(_ value: UInt32) {
        reserve(4)
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    func write(_ value: UInt64) {
        reserve(8)
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    func write(contentsOf bytes: [UInt8]) {
        reserve(bytes.count)
        bytes.withUnsafeBytes { if let from = $0.baseAddress { (base + count).copyMemory(from: from, byteCount: $0.count) } }
        count += bytes.count
    }

    /// Overwrites a u32 at `position`, for fields known only after what follows is written.
    func patch(_ value: UInt32, at position: Int) {
        precondition(position >= 0 && position + 4 <= count, "patch outside the written bytes")
        base.storeBytes(of: value.bigEndian, toByteOffset: position, as: UInt32.self)
    }

    /// Zeros from `count` to `end` (not counted).
    func zero(to end: Int) {
        precondition(end >= count && end <= capacity, "zeroing outside the buffer")
        (base + count).initializeMemory(as: UInt8.self, repeating: 0, count: end - count)
    }

    /// CRC-32C of the bytes from `start` to `count`, continuing `crc`.
    func crc32c(_ crc: UInt32, from start: Int) -> UInt32 {
        Checksum.crc32c(crc, UnsafeRawBufferPointer(start: base + start, count: count - start))
    }

    /// Forgets the bytes from `end` on.
    func truncate(to end: Int) {
        precondition(end >= 0 && end <= count, "truncating outside the written bytes")
        count = end
    }

    /// Keeps only the bytes from `start` on, moved to the front.
    func keep(from start: Int) {
        precondition(start >= 0 && start <= count, "keeping from outside the written bytes")
        memmove(base, base + start, count - start)
        count -= start
    }

    /// The bytes from `start` to `count`.
    func bytes(from start: Int = 0) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + start, count: count - start) }

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, DirectAppender.blockBytes, bytes) == 0, let pointer else { fatalError("out of memory (\(bytes) bytes)") }
        return pointer
    }
}
