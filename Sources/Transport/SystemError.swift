#if canImport(Glibc)
import Glibc
#endif

/// A failed system call with the errno it left.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the current `errno` for `call`.
    public static func last(_ call: String) -> SystemError {
        SystemError(call: call, errno: Glibc.errno)
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}
