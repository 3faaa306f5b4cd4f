import Testing
@testable import Storage

@Suite struct ChecksumTests {
    @Test func knownVectors() {
        // RFC 3720 B.4 test vectors for CRC-32C, plus the classic check value.
        #expect(Checksum.crc32c(Array(repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(Checksum.crc32c(Array(repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(Checksum.crc32c(Array(0..<32)) == 0x46DD_794E)
        #expect(Checksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func incrementalEqualsWhole() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = Checksum.crc32c(data)
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let partial = data.withUnsafeBytes { bytes in
                Checksum.crc32c(
                    Checksum.crc32c(0, UnsafeRawBufferPointer(rebasing: bytes[..<cut])),
                    UnsafeRawBufferPointer(rebasing: bytes[cut...]))
            }
            #expect(partial == whole, "cut at \(cut)")
        }
    }
}
