import CLinux

/// CRC-32C over raw bytes, for record checksums (hardware-accelerated where available).
enum Checksum {
    static func crc32c(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        clinux_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32c(0, $0) }
    }

    /// By table, never by the CPU's instruction: the reference the fast path must match.
    static func crc32cPortable(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        clinux_crc32c_portable(crc, bytes.baseAddress, bytes.count)
    }
}
