import ChaparCore

/// Byte encoding of Raft envelopes for the peer protocol (docs/PROTOCOL.md, "Peer
/// protocol"). Big-endian; every count is bounded so a hostile peer cannot make a node
/// allocate more than the frame it already received.
public enum RaftCodec {
    /// Largest entry payload accepted (a publish of 1 MiB plus its header).
    public static let entryBytesMax = (1 << 20) + 4096
    public static let entriesPerMessageMax = 4096

    enum Tag: UInt8 {
        case preVote = 1, preVoteResponse, requestVote, voteResponse, append, appendResponse, timeoutNow, readConfirm,
             readConfirmResponse, snapshot
    }
    /// Members listed in a snapshot's configuration, at most.
    static let configurationMembersMax = 4096

    public static func encode(_ envelope: RaftEnvelope, into writer: inout ByteWriter) {
        writer.write(envelope.from)
        writer.write(envelope.to)
        switch envelope.message {
        case .preVote(let term, let lastIndex, let lastTerm):
            writer.write(Tag.preVote.rawValue); writer.write(term); writer.write(lastIndex); writer.write(lastTerm)
        case .preVoteResponse(let term, let granted):
            writer.write(Tag.preVoteResponse.rawValue); writer.write(term); writer.write(UInt8(granted ? 1 : 0))
        case .requestVote(let term, let lastIndex, let lastTerm):
            writer.write(Tag.requestVote.rawValue); writer.write(term); writer.write(lastIndex); writer.write(lastTerm)
        case .voteResponse(let term, let granted):
            writer.write(Tag.voteResponse.rawValue); writer.write(term); writer.write(UInt8(granted ? 1 : 0))
        case .append(let term, let prevIndex, let prevTerm, let entries, let commit):
            writer.write(Tag.append.rawValue); writer.write(term); writer.write(prevIndex); writer.write(prevTerm)
            writer.write(commit)
            writer.write(UInt32(entries.count))
            for entry in entries {
                writer.write(entry.term)
                writer.write(entry.index)
                writer.write(entry.kind.rawValue)
                writer.writeLongBytes(entry.data)
            }
        case .appendResponse(let term, let success, let match):
            writer.write(Tag.appendResponse.rawValue); writer.write(term); writer.write(UInt8(success ? 1 : 0))
            writer.write(match)
        case .timeoutNow(let term):
            writer.write(Tag.timeoutNow.rawValue); writer.write(term)
        case .readConfirm(let term, let round):
            writer.write(Tag.readConfirm.rawValue); writer.write(term); writer.write(round)
        case .readConfirmResponse(let term, let round):
            writer.write(Tag.readConfirmResponse.rawValue); writer.write(term); writer.write(round)
        case .snapshot(let term, let index, let lastTerm, let configuration):
            writer.write(Tag.snapshot.rawValue); writer.write(term); writer.write(index); writer.write(lastTerm)
            writer.writeMediumBytes(configuration.encoded)
        }
    }

    public static func decode(_ reader: inout ByteReader) throws(DecodeFailure) -> RaftEnvelope {
        let from = try reader.readUInt64("from")
        let to = try reader.readUInt64("to")
        guard let tag = Tag(rawValue: try reader.readUInt8("raft type")) else {
            throw .invalid(field: "raft type", reason: "unknown")
        }
        let term = try reader.readUInt64("term")
        let message: RaftMessage
        switch tag {
        case .preVote:
            message = .preVote(term: term, lastIndex: try reader.readUInt64("last index"), lastTerm: try reader.readUInt64("last term"))
        case .preVoteResponse:
            message = .preVoteResponse(term: term, granted: try readFlag(&reader, "granted"))
        case .requestVote:
            message = .requestVote(term: term, lastIndex: try reader.readUInt64("last index"), lastTerm: try reader.readUInt64("last term"))
        case .voteResponse:
            message = .voteResponse(term: term, granted: try readFlag(&reader, "granted"))
        case .append:
            let prevIndex = try reader.readUInt64("prev index")
            let prevTerm = try reader.readUInt64("prev term")
            let commit = try reader.readUInt64("commit")
            let count = Int(try reader.readUInt32("entry count"))
            guard count <= entriesPerMessageMax else { throw .invalid(field: "entry count", reason: "\(count) exceeds \(entriesPerMessageMax)") }
            var entries: [RaftEntry] = []
            entries.reserveCapacity(min(count, reader.remaining / 21))
            for position in 0..<count {
                let entryTerm = try reader.readUInt64("entry term")
                let index = try reader.readUInt64("entry index")
                guard index == prevIndex + UInt64(position) + 1 else { throw .invalid(field: "entry index", reason: "not dense after prev index") }
                guard let kind = RaftEntry.Kind(rawValue: try reader.readUInt8("entry kind")) else {
                    throw .invalid(field: "entry kind", reason: "unknown")
                }
                let data = try reader.readLongBytes("entry data", max: entryBytesMax)
                entries.append(RaftEntry(term: entryTerm, index: index, kind: kind, data: data))
            }
            message = .append(term: term, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case .appendResponse:
            message = .appendResponse(term: term, success: try readFlag(&reader, "success"), match: try reader.readUInt64("match"))
        case .timeoutNow:
            message = .timeoutNow(term: term)
        case .readConfirm:
            message = .readConfirm(term: term, round: try reader.readUInt64("round"))
        case .readConfirmResponse:
            message = .readConfirmResponse(term: term, round: try reader.readUInt64("round"))
        case .snapshot:
            let index = try reader.readUInt64("snapshot index")
            let lastTerm = try reader.readUInt64("snapshot term")
            let bytes = try reader.readMediumBytes("configuration", max: 9 * configurationMembersMax)
            guard let configuration = RaftConfiguration(decoding: bytes), !configuration.voters.isEmpty else {
                throw .invalid(field: "configuration", reason: "malformed or without voters")
            }
            message = .snapshot(term: term, index: index, lastTerm: lastTerm, configuration: configuration)
        }
        return RaftEnvelope(from: from, to: to, message: message)
    }

    private static func readFlag(_ reader: inout ByteReader, _ field: String) throws(DecodeFailure) -> Bool {
        switch try reader.readUInt8(field) {
        case 0: return false
        case 1: return true
        default: throw .invalid(field: field, reason: "must be 0 or 1")
        }
    }
}
