#if canImport(Glibc)
import Glibc
#endif

/// Immutable bytes at a stable address, shared by reference.
///
/// A committed batch of MESSAGE frames is encoded once into one of these and every
/// subscriber's outbound queue points into it; `writev` reads the same memory for all.
public final class SharedBytes: @unchecked Sendable {  // immutable after init
    public let base: UnsafeRawPointer
    public let count: Int

    public init(copying bytes: UnsafeRawBufferPointer) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        if let source = bytes.baseAddress, bytes.count > 0 { memory.copyMemory(from: source, byteCount: bytes.count) }
        base = UnsafeRawPointer(memory)
        count = bytes.count
    }

    public init(_ bytes: [UInt8]) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { source in
            if let from = source.baseAddress, source.count > 0 { memory.copyMemory(from: from, byteCount: source.count) }
        }
        base = UnsafeRawPointer(memory)
        count = bytes.count
    }

    deinit { UnsafeMutableRawPointer(mutating: base).deallocate() }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// A range of shared bytes waiting in a connection's outbound queue.
public struct OutboundSlice: Sendable {
    public let bytes: SharedBytes
    public var start: Int
    public let end: Int

    public init(_ bytes: SharedBytes, start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.start = start
        self.end = end ?? bytes.count
        precondition(self.start >= 0 && self.start <= self.end && self.end <= bytes.count)
    }

    public var count: Int { end - start }
}
