#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Appends to a file opened with `O_DIRECT`: whole 4 KiB blocks from an aligned buffer,
/// the last one padded with zeros. The block the file's end lies in is kept here and
/// written again, with what follows, by the next append.
///
/// Why: a buffered append copies every byte into page-cache pages the kernel must first
/// find room for, and on this machine class (whose guest memory is reclaimed within
/// seconds) that copy was a fifth of a clustered node's CPU. A direct write reads the
/// bytes where they are. Rewriting the last block is safe for what it already holds:
/// every version of the block carries the same bytes there, so a torn rewrite leaves
/// them intact, and the sync that made them durable is not undone.
final class DirectAppender {
    static let blockBytes = 4096
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// The bytes of the block the end lies in, before the end (less than a block).
    private var tailCount = 0

    /// `tail`: the bytes of the file's last, partial block (empty when the end is at a
    /// block boundary).
    init(tail: [UInt8]) {
        precondition(tail.count < Self.blockBytes)
        capacity = 1 << 20
        buffer = Self.allocate(capacity)
        start(tail: tail)
    }

    deinit { free(buffer) }

    /// Starts over on a file whose last partial block holds `tail`.
    func start(tail: [UInt8]) {
        tail.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: $0.count) } }
        tailCount = tail.count
    }

    /// Writes `bytes` at `end` (the file's end, where the kept block's bytes stop); the
    /// errno of a failure (the kept block is then unchanged).
    func append(_ bytes: UnsafeRawBufferPointer, fd: Int32, at end: UInt64) -> Int32? {
        let used = tailCount + bytes.count
        let padded = (used + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes
        if padded > capacity { grow(to: padded) }
        if let base = bytes.baseAddress { (buffer + tailCount).copyMemory(from: base, byteCount: bytes.count) }
        (buffer + used).initializeMemory(as: UInt8.self, repeating: 0, count: padded - used)
        let blockStart = end - UInt64(tailCount)
        var done = 0
        while done < padded {
            let n = pwrite(fd, buffer + done, padded - done, off_t(blockStart) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return errno }
            // A short direct write stops at a block boundary; a write of none is an error.
            if n == 0 || n % Self.blockBytes != 0 { return EIO }
            done += n
        }
        let kept = used % Self.blockBytes
        memmove(buffer, buffer + (used - kept), kept)
        tailCount = kept
        return nil
    }

    private func grow(to bytes: Int) {
        let bigger = Self.allocate(max(bytes, capacity * 2))
        bigger.copyMemory(from: buffer, byteCount: tailCount)
        free(buffer)
        buffer = bigger
        capacity = max(bytes, capacity * 2)
    }

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, blockBytes, bytes) == 0, let pointer else { fatalError("out of memory (\(bytes) bytes)") }
        return pointer
    }
}
