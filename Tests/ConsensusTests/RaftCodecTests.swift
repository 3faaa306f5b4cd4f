import ChaparCore
import Consensus
import Testing

@Suite struct RaftCodecTests {
    static let samples: [RaftMessage] = [
        .preVote(term: 4, lastIndex: 10, lastTerm: 3),
        .preVoteResponse(term: 4, granted: true),
        .requestVote(term: 5, lastIndex: 11, lastTerm: 4),
        .voteResponse(term: 5, granted: false),
        .append(term: 6, prevIndex: 7, prevTerm: 5, entries: [
            RaftEntry(term: 6, index: 8, data: Array("a".utf8)),
            RaftEntry(term: 6, index: 9, kind: .configuration, data: [1, 2, 3]),
            RaftEntry(term: 6, index: 10, data: []),
        ], commit: 7),
        .appendResponse(term: 6, success: true, match: 10),
        .timeoutNow(term: 7),
        .readConfirm(term: 7, round: 3),
        .readConfirmResponse(term: 7, round: 3),
        .snapshot(term: 8, index: 120, lastTerm: 7, configuration: RaftConfiguration(voters: [1, 2, 3], learners: [9])),
    ]

    func encode(_ message: RaftMessage) -> [UInt8] {
        var writer = ByteWriter()
        RaftCodec.encode(RaftEnvelope(from: 0xAB, to: 0xCD, message: message), into: &writer)
        return writer.finish()
    }

    func decode(_ bytes: [UInt8]) throws(DecodeFailure) -> RaftEnvelope {
        let result = bytes.withUnsafeBytes { raw -> Result<RaftEnvelope, DecodeFailure> in
            var reader = ByteReader(raw)
            do throws(DecodeFailure) {
                let envelope = try RaftCodec.decode(&reader)
                try reader.expectEnd()
                return .success(envelope)
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    @Test(arguments: samples) func roundTrips(_ message: RaftMessage) throws {
        #expect(try decode(encode(message)) == RaftEnvelope(from: 0xAB, to: 0xCD, message: message))
    }

    /// Every proper prefix of every message is refused as truncated, never misread.
    @Test func truncationIsRefused() {
        for message in Self.samples {
            let bytes = encode(message)
            for cut in 0..<bytes.count {
                #expect(throws: DecodeFailure.self) { try decode(Array(bytes[..<cut])) }
            }
        }
    }

    @Test func hostileFieldsAreRefused() {
        var unknownType = encode(.timeoutNow(term: 1))
        unknownType[16] = 99
        #expect(throws: DecodeFailure.invalid(field: "raft type", reason: "unknown")) { try decode(unknownType) }

        var badFlag = encode(.voteResponse(term: 1, granted: true))
        badFlag[badFlag.count - 1] = 2
        #expect(throws: DecodeFailure.self) { try decode(badFlag) }

        // An entry whose index does not follow prevIndex would break log matching.
        var sparse = encode(.append(term: 2, prevIndex: 4, prevTerm: 1, entries: [RaftEntry(term: 2, index: 5, data: [])], commit: 0))
        sparse[17 + 8 * 4 + 4 + 8 + 7] = 6  // low byte of the entry's index
        #expect(throws: DecodeFailure.invalid(field: "entry index", reason: "not dense after prev index")) { try decode(sparse) }

        // A count far beyond the bytes present fails on the bytes, without allocating for it.
        var huge = encode(.append(term: 2, prevIndex: 0, prevTerm: 0, entries: [], commit: 0))
        huge.replaceSubrange((huge.count - 4)..<huge.count, with: [0, 0, 0x0F, 0xFF])
        #expect(throws: DecodeFailure.self) { try decode(huge) }
        huge.replaceSubrange((huge.count - 4)..<huge.count, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: DecodeFailure.invalid(field: "entry count", reason: "4294967295 exceeds \(RaftCodec.entriesPerMessageMax)")) {
            try decode(huge)
        }

        // A snapshot must name a configuration with voters, in whole 9-byte items of known roles.
        let snapshot = encode(.snapshot(term: 2, index: 9, lastTerm: 1, configuration: RaftConfiguration(voters: [1])))
        let noVoters = Array(snapshot[..<(snapshot.count - 11)]) + [0, 0]
        #expect(throws: DecodeFailure.invalid(field: "configuration", reason: "malformed or without voters")) { try decode(noVoters) }
        var badRole = snapshot
        badRole[snapshot.count - 9] = 7
        #expect(throws: DecodeFailure.invalid(field: "configuration", reason: "malformed or without voters")) { try decode(badRole) }
        let ragged = Array(snapshot[..<(snapshot.count - 11)]) + [0, 5, 1, 0, 0, 0, 0]
        #expect(throws: DecodeFailure.invalid(field: "configuration", reason: "malformed or without voters")) { try decode(ragged) }
    }
}
