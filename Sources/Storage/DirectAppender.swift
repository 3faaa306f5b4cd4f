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
    /// The kept block's bytes (`tailCount` of them), then what the next append writes: the
    /// caller adds it here (`buffer.write…`) and calls `appendBuffered`.
    let buffer = AlignedBytes()
    /// The bytes of the block the end lies in, before the end (less than a block).
    private(set) var tailCount = 0

    /// `tail`: the bytes of the file's last, partial block (empty when the end is at a
    /// block boundary).
    init(tail: [UInt8]) {
        start(tail: tail)
    }

    /// Starts over on a file whose last partial block holds `tail`.
    func start(tail: [UInt8]) {
        precondition(tail.count < Self.blockBytes)
        buffer.truncate(to: 0)
        buffer.write(contentsOf: tail)
        tailCount = tail.count
    }

    /// Writes what was added to `buffer` after the kept block's bytes at `end` (the file's
    /// end, where those bytes stop); the errno of a failure (the buffer is then as it was:
    /// `discardBuffered` drops what was added).
    func appendBuffered(fd: Int32, at end: UInt64) -> Int32? {
        let used = buffer.count
        let padded = (used + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes
        buffer.reserve(padded - used)
        buffer.zero(to: padded)
        let blockStart = end - UInt64(tailCount)
        var done = 0
        while done < padded {
            let n = pwrite(fd, buffer.base + done, padded - done, off_t(blockStart) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return errno }
            // A short direct write stops at a block boundary; a write of none is an error.
            if n == 0 || n % Self.blockBytes != 0 { return EIO }
            done += n
        }
        buffer.keep(from: used - used % Self.blockBytes)
        tailCount = buffer.count
        return nil
    }

    /// Drops what was added to `buffer` since the last append.
    func discardBuffered() { buffer.truncate(to: tailCount) }
}
