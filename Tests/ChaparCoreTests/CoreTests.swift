import Testing
@testable import ChaparCore

@Suite struct ByteCodingTests {
    @Test func roundTripsIntegersBigEndian() throws {
        var writer = ByteWriter()
        writer.write(UInt8(0xAB))
        writer.write(UInt16(0x1234))
        writer.write(UInt32(0xDEAD_BEEF))
        writer.write(UInt64(0x0102_0304_0506_0708))
        writer.write(Int64(-2))
        writer.writeShortBytes([1, 2, 3])
        let bytes = writer.finish()
        #expect(Array(bytes[1...2]) == [0x12, 0x34])
        try bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(try reader.readUInt8("a") == 0xAB)
            #expect(try reader.readUInt16("b") == 0x1234)
            #expect(try reader.readUInt32("c") == 0xDEAD_BEEF)
            #expect(try reader.readUInt64("d") == 0x0102_0304_0506_0708)
            #expect(try reader.readInt64("e") == -2)
            #expect(try reader.readShortBytes("f") == [1, 2, 3])
            try reader.expectEnd()
        }
    }

    @Test func bytesAreCopiedOutWhole() throws {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        func readAll(_ raw: UnsafeRawBufferPointer) throws -> [[UInt8]] {
            var reader = ByteReader(raw)
            let parts = [try reader.readBytes(0, "empty"), try reader.readBytes(1, "one"), try reader.readBytes(299, "rest")]
            try reader.expectEnd()
            return parts
        }
        let parts = try bytes.withUnsafeBytes { try readAll($0) }
        #expect(parts == [[], [bytes[0]], Array(bytes[1...])])
        bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, position: 300)
            #expect(throws: DecodeFailure.truncated(field: "more")) { try reader.readBytes(1, "more") }
        }
    }

    @Test func truncatedFieldIsReportedByName() {
        [UInt8(0), 5, 1].withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(throws: DecodeFailure.truncated(field: "name")) { try reader.readMediumBytes("name", max: 100) }
        }
    }

    @Test func lengthAboveLimitIsInvalid() {
        [UInt8(0), 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9].withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(throws: DecodeFailure.self) { try reader.readLongBytes("payload", max: 8) }
        }
    }

    @Test func limitsAreConsistent() {
        Limits.checkRelationships()
    }
}

@Suite struct ChannelNameTests {
    @Test(arguments: ["news", "a", "@soroush.news", "group/123:abc", "خبر_فوری", "x-y_z.0"])
    func acceptsValidNames(_ name: String) {
        #expect((try? ChannelName.validate(name).get()) == name)
    }

    @Test func rejectsInvalidNames() {
        #expect(ChannelName.validate("") == .failure(.empty))
        #expect(ChannelName.validate(String(repeating: "a", count: 201)) == .failure(.tooLong(bytes: 201)))
        #expect(ChannelName.validate("has space") == .failure(.forbiddenCharacter(0x20)))
        #expect(ChannelName.validate("tab\t") == .failure(.forbiddenCharacter(0x09)))
        #expect(ChannelName.validate("star*") == .failure(.forbiddenCharacter(0x2A)))
        #expect(ChannelName.validate([0x61, 0xC3]) == .failure(.invalidUTF8))
        #expect(ChannelName.validate([0xFF]) == .failure(.invalidUTF8))
    }

    /// The same bytes give the remembered name; other bytes, valid or not, are checked.
    @Test func recentNameIsReusedOnlyForTheSameBytes() {
        var names = RecentChannelName()
        func validate(_ text: String) -> Result<String, ChannelName.Problem> {
            Array(text.utf8).withUnsafeBytes { names.validate($0) }
        }
        #expect(validate("news") == .success("news"))
        #expect(validate("news") == .success("news"))
        #expect(validate("newsy") == .success("newsy"))
        #expect(validate("new") == .success("new"))
        #expect(validate("has space") == .failure(.forbiddenCharacter(0x20)))
        #expect(validate("has space") == .failure(.forbiddenCharacter(0x20)), "a refused name is never remembered")
        #expect(validate("") == .failure(.empty))
        #expect(validate("new") == .success("new"))
        // Longer than a word: compared eight bytes at a time, then the tail.
        #expect(validate("orders.eu-west.1234567") == .success("orders.eu-west.1234567"))
        #expect(validate("orders.eu-west.1234568") == .success("orders.eu-west.1234568"))
        #expect(validate("orders.eu-west.1234567") == .success("orders.eu-west.1234567"))
        #expect(validate("orders.eX-west.1234567") == .success("orders.eX-west.1234567"))
        #expect(validate("orders.eu-west.12345678") == .success("orders.eu-west.12345678"))
    }
}

@Suite struct StableMathTests {
    @Test(arguments: [0.001, 0.5, 1.0, 2.0, 2.718281828459045, 10.0, 1234.5, 1e12])
    func lnMatchesKnownIdentities(_ x: Double) {
        // ln(x·y) = ln x + ln y and ln(e) = 1, checked without a reference library.
        #expect(abs(StableMath.ln(x * 3) - (StableMath.ln(x) + StableMath.ln(3))) < 1e-12)
        #expect(abs(StableMath.ln(2.718281828459045) - 1) < 1e-14)
        #expect(abs(StableMath.log10(1000) - 3) < 1e-12)
    }

    @Test func stableHashIsDeterministicAndSpreads() {
        #expect(StableHash.hash64("channel") == StableHash.hash64(Array("channel".utf8)))
        #expect(StableHash.hash64("a") != StableHash.hash64("b"))
        var buckets = [Int](repeating: 0, count: 16)
        for index in 0..<16_000 { buckets[Int(StableHash.hash64("key-\(index)") % 16)] += 1 }
        #expect(buckets.allSatisfy { $0 > 850 && $0 < 1150 }, "\(buckets)")
        let unit = StableHash.unit(0)
        #expect(unit > 0 && unit < 1)
    }
}
