import ChaparCore
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

    /// The lanes path (three chains joined by table) against the byte-at-a-time table, at
    /// every length around the lane boundaries, from unaligned starts and running CRCs.
    @Test func fastPathMatchesTheTable() {
        var random = SeededRandom(seed: 0xC5C3)
        let data = (0..<60_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var lengths = Array(0...64) + [1_023, 1_024, 1_052, 60_000 - 7]
        for lane in [336, 4_096] {
            for multiple in 1...4 { lengths += ((lane * 3 * multiple - 9)...(lane * 3 * multiple + 9)).map { $0 } }
        }
        for _ in 0..<200 { lengths.append(Int(random.next() % 59_000)) }
        data.withUnsafeBytes { bytes in
            for length in lengths {
                let start = Int(random.next() % 7)
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
                let seed = UInt32(truncatingIfNeeded: random.next())
                #expect(Checksum.crc32c(seed, slice) == Checksum.crc32cPortable(seed, slice), "length \(length) from \(start)")
            }
        }
    }
}
