#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard output at once (no stdio buffer), so a follower piped into
/// another program or stopped by a signal never loses lines it has printed.
func emit(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
        if written <= 0 { return }
        offset += written
    }
}
