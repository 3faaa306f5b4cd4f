import ChaparCore
import Consensus
import Storage

/// Frames of the peer protocol between clustered nodes (docs/PROTOCOL.md, "Peer
/// protocol"): `u32 length` (of what follows), `u8 type`, body. One TCP connection per
/// node pair carries every shard's Raft traffic and forwarded publishes.
enum PeerFrame: Equatable {
    /// First frame of the dialling side: who it is, proven with the cluster keyring.
    case hello(PeerHello)
    /// Raft messages of any number of shards, batched per cycle.
    case raft([ShardEnvelope])
    /// A publish taken by a node that does not lead its shard, for the leader to store.
    case forward(request: UInt64, shard: UInt32, publish: ReplicatedPublish)
    case forwardResult(request: UInt64, result: ForwardResult)
    /// A follower asks the shard's leader for a read index.
    case readIndex(request: UInt64, shard: UInt32)
    /// The leader's confirmed read index (0: it could not confirm one).
    case readIndexResult(request: UInt64, index: UInt64)
    /// "My map epoch is `epoch`": answered with `.clusterState` when the receiver's is newer.
    case mapRequest(epoch: UInt64)
    /// The sender's cluster state (`ClusterState.encoded`).
    case clusterState([UInt8])
    /// A node outside a shard's target replica set asks whether the shard's leader has
    /// removed it (committed), so it may delete its replica.
    case replicaCheck(request: UInt64, shard: UInt32)
    /// `removed`: the leader's committed configuration no longer lists the asker.
    case replicaCheckResult(request: UInt64, shard: UInt32, removed: Bool)
    /// An edge node asks a replica for the channel's head as of a read index (every
    /// publish acknowledged before the request is at or below it).
    case channelHead(request: UInt64, channel: String)
    /// `head` is valid when `ok`; not ok: the replica could not confirm a read index.
    case channelHeadResult(request: UInt64, ok: Bool, head: UInt64)
    /// Bytes `offset..<offset+data.count` of the snapshot file of `shard` at `index`
    /// (`total` bytes in all), sent before the Raft snapshot message that refers to it.
    case snapshotChunk(shard: UInt32, index: UInt64, offset: UInt64, total: UInt64, data: [UInt8])
    /// The receiver stored `received` bytes of that snapshot; not ok: it refused it (the
    /// sender stops and its Raft asks for a new one later).
    case snapshotAck(shard: UInt32, index: UInt64, received: UInt64, ok: Bool)

    static let version: UInt8 = 1
    /// Largest frame accepted: a full Raft batch (1 MiB of entries) plus headers.
    static let frameBytesMax = 4 << 20

    enum Kind: UInt8 {
        case hello = 1, raft = 2, forward = 3, forwardResult = 4, readIndex = 5, readIndexResult = 6, mapRequest = 7,
            clusterState = 8, replicaCheck = 9, replicaCheckResult = 10, channelHead = 11, channelHeadResult = 12,
            snapshotChunk = 13, snapshotAck = 14
    }
    private var capacityHint: Int {
        switch self {
        case .raft(let items): 16 + items.reduce(0) { $0 + 4 + $1.encodedBytesBound }
        case .forward(_, _, let publish): 64 + publish.payload.count + publish.channel.utf8.count
        case .snapshotChunk(_, _, _, _, let data): 64 + data.count
        case .clusterState(let bytes): 16 + bytes.count
        default: 256
        }
    }

    /// Largest snapshot chunk (the sender uses 256 KiB).
    static let snapshotChunkBytesMax = 1 << 20

    func encoded() -> [UInt8] {
        // A RAFT frame may carry megabytes of entries: sized once, it is not copied as it grows.
        var writer = ByteWriter(capacity: capacityHint)
        writer.write(UInt32(0))
        switch self {
        case .hello(let hello):
            writer.write(Kind.hello.rawValue)
            writer.write(Self.version)
            writer.write(hello.keyId)
            writer.write(contentsOf: hello.body)
            writer.write(contentsOf: hello.tag)
        case .raft(let items):
            writer.write(Kind.raft.rawValue)
            writer.write(UInt32(items.count))
            for item in items {
                writer.write(item.shard)
                RaftCodec.encode(item.envelope, into: &writer)
            }
        case .forward(let request, let shard, let publish):
            writer.write(Kind.forward.rawValue)
            writer.write(request)
            writer.write(shard)
            publish.encode(into: &writer)
        case .forwardResult(let request, let result):
            writer.write(Kind.forwardResult.rawValue)
            writer.write(request)
            result.encode(into: &writer)
        case .readIndex(let request, let shard):
            writer.write(Kind.readIndex.rawValue)
            writer.write(request)
            writer.write(shard)
        case .readIndexResult(let request, let index):
            writer.write(Kind.readIndexResult.rawValue)
            writer.write(request)
            writer.write(index)
        case .mapRequest(let epoch):
            writer.write(Kind.mapRequest.rawValue)
            writer.write(epoch)
        case .clusterState(let bytes):
            writer.write(Kind.clusterState.rawValue)
            writer.write(contentsOf: bytes)
        case .replicaCheck(let request, let shard):
            writer.write(Kind.replicaCheck.rawValue)
            writer.write(request)
            writer.write(shard)
        case .replicaCheckResult(let request, let shard, let removed):
            writer.write(Kind.replicaCheckResult.rawValue)
            writer.write(request)
            writer.write(shard)
            writer.write(UInt8(removed ? 1 : 0))
        case .channelHead(let request, let channel):
            writer.write(Kind.channelHead.rawValue)
            writer.write(request)
            writer.writeShortBytes(Array(channel.utf8))
        case .channelHeadResult(let request, let ok, let head):
            writer.write(Kind.channelHeadResult.rawValue)
            writer.write(request)
            writer.write(UInt8(ok ? 1 : 0))
            writer.write(head)
        case .snapshotChunk(let shard, let index, let offset, let total, let data):
            writer.write(Kind.snapshotChunk.rawValue)
            writer.write(shard)
            writer.write(index)
            writer.write(offset)
            writer.write(total)
            writer.writeLongBytes(data)
        case .snapshotAck(let shard, let index, let received, let ok):
            writer.write(Kind.snapshotAck.rawValue)
            writer.write(shard)
            writer.write(index)
            writer.write(received)
            writer.write(UInt8(ok ? 1 : 0))
        }
        var bytes = writer.finish()
        let length = UInt32(bytes.count - 4)
        withUnsafeBytes(of: length.bigEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        return bytes
    }

    /// Decodes one frame body (after its length).
    static func decode(_ body: UnsafeRawBufferPointer) throws(DecodeFailure) -> PeerFrame {
        var reader = ByteReader(body)
        guard let kind = Kind(rawValue: try reader.readUInt8("type")) else {
            throw .invalid(field: "type", reason: "unknown peer frame type")
        }
        let frame: PeerFrame
        switch kind {
        case .hello:
            let version = try reader.readUInt8("version")
            guard version == Self.version else { throw .invalid(field: "version", reason: "peer protocol \(version), this node speaks \(Self.version)") }
            let keyId = try reader.readUInt8("key id")
            guard reader.remaining >= 32 else { throw .truncated(field: "hello tag") }
            let body = try reader.readBytes(reader.remaining - 32, "hello body")
            frame = .hello(PeerHello(keyId: keyId, body: body, tag: try reader.readBytes(32, "hello tag")))
        case .raft:
            let count = Int(try reader.readUInt32("count"))
            guard count <= 1 << 20 else { throw .invalid(field: "count", reason: "too many messages") }
            var items: [ShardEnvelope] = []
            items.reserveCapacity(min(count, reader.remaining / 25))
            for _ in 0..<count {
                let shard = try reader.readUInt32("shard")
                items.append(ShardEnvelope(shard: shard, envelope: try RaftCodec.decode(&reader)))
            }
            frame = .raft(items)
        case .forward:
            let request = try reader.readUInt64("request")
            let shard = try reader.readUInt32("shard")
            frame = .forward(request: request, shard: shard, publish: try ReplicatedPublish.decode(&reader))
        case .forwardResult:
            let request = try reader.readUInt64("request")
            frame = .forwardResult(request: request, result: try ForwardResult.decode(&reader))
        case .readIndex:
            let request = try reader.readUInt64("request")
            frame = .readIndex(request: request, shard: try reader.readUInt32("shard"))
        case .readIndexResult:
            let request = try reader.readUInt64("request")
            frame = .readIndexResult(request: request, index: try reader.readUInt64("index"))
        case .mapRequest:
            frame = .mapRequest(epoch: try reader.readUInt64("epoch"))
        case .clusterState:
            // Checked by ClusterState(decoding:) where it is used.
            frame = .clusterState(try reader.readBytes(reader.remaining, "cluster state"))
        case .replicaCheck:
            let request = try reader.readUInt64("request")
            frame = .replicaCheck(request: request, shard: try reader.readUInt32("shard"))
        case .replicaCheckResult:
            let request = try reader.readUInt64("request")
            let shard = try reader.readUInt32("shard")
            let removed = try reader.readUInt8("removed")
            guard removed <= 1 else { throw .invalid(field: "removed", reason: "not 0 or 1") }
            frame = .replicaCheckResult(request: request, shard: shard, removed: removed == 1)
        case .channelHead:
            let request = try reader.readUInt64("request")
            let name = try reader.readShortBytes("channel")
            guard case .success = ChannelName.validate(name) else { throw .invalid(field: "channel", reason: "invalid channel name") }
            frame = .channelHead(request: request, channel: String(decoding: name, as: UTF8.self))
        case .channelHeadResult:
            let request = try reader.readUInt64("request")
            let ok = try reader.readUInt8("ok")
            guard ok <= 1 else { throw .invalid(field: "ok", reason: "not 0 or 1") }
            frame = .channelHeadResult(request: request, ok: ok == 1, head: try reader.readUInt64("head"))
        case .snapshotChunk:
            let shard = try reader.readUInt32("shard")
            let index = try reader.readUInt64("index")
            let offset = try reader.readUInt64("offset")
            let total = try reader.readUInt64("total")
            let data = try reader.readLongBytes("data", max: snapshotChunkBytesMax)
            guard offset <= total, UInt64(data.count) <= total - offset else { throw .invalid(field: "offset", reason: "beyond the total") }
            frame = .snapshotChunk(shard: shard, index: index, offset: offset, total: total, data: data)
        case .snapshotAck:
            let shard = try reader.readUInt32("shard")
            let index = try reader.readUInt64("index")
            let received = try reader.readUInt64("received")
            let ok = try reader.readUInt8("ok")
            guard ok <= 1 else { throw .invalid(field: "ok", reason: "not 0 or 1") }
            frame = .snapshotAck(shard: shard, index: index, received: received, ok: ok == 1)
        }
        try reader.expectEnd()
        return frame
    }
}

struct ShardEnvelope: Equatable {
    var shard: UInt32
    var envelope: RaftEnvelope

    /// An upper bound of its encoded size.
    var encodedBytesBound: Int {
        guard case .append(_, _, _, let entries, _) = envelope.message else { return 128 }
        return 128 + entries.reduce(0) { $0 + 32 + $1.data.count }
    }
}

extension PeerFrame {
    /// Raft frames bytes, at most.
    static let raftFrameBytesTarget = 3 << 20

    /// `items` in as few RAFT frames as fit `raftFrameBytesTarget` each (one append alone
    /// may carry up to 1 MiB of entries and every shard's may travel in one cycle, so one
    /// frame for all of them could exceed what the receiver accepts).
    static func raftFrames(_ items: [ShardEnvelope]) -> [PeerFrame] {
        var frames: [PeerFrame] = []
        var current: [ShardEnvelope] = []
        var bytes = 0
        for item in items {
            let size = item.encodedBytesBound
            if !current.isEmpty && bytes + size > raftFrameBytesTarget {
                frames.append(.raft(current))
                current = []
                bytes = 0
            }
            current.append(item)
            bytes += size
        }
        if !current.isEmpty { frames.append(.raft(current)) }
        return frames
    }
}

/// HELLO's body is `cluster id (short bytes)`, `node id (short bytes)`, `u64 wall ms`;
/// the tag is HMAC-SHA256 under keyring key `keyId` over the body.
struct PeerHello: Equatable {
    var keyId: UInt8
    var body: [UInt8]
    var tag: [UInt8]

    static func body(clusterId: String, node: String, wallMs: Int64) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeShortBytes(Array("chapar-peer".utf8))
        writer.writeShortBytes(Array(clusterId.utf8))
        writer.writeShortBytes(Array(node.utf8))
        writer.write(wallMs)
        return writer.finish()
    }

    func fields() throws(DecodeFailure) -> (clusterId: String, node: String, wallMs: Int64) {
        let result = body.withUnsafeBytes { raw -> Result<(String, String, Int64), DecodeFailure> in
            do throws(DecodeFailure) {
                var reader = ByteReader(raw)
                guard try reader.readShortBytes("marker") == Array("chapar-peer".utf8) else {
                    throw .invalid(field: "marker", reason: "not a peer hello")
                }
                let cluster = String(decoding: try reader.readShortBytes("cluster id"), as: UTF8.self)
                let node = String(decoding: try reader.readShortBytes("node id"), as: UTF8.self)
                let wall = try reader.readInt64("time")
                try reader.expectEnd()
                return .success((cluster, node, wall))
            } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// What a replicated log entry holds for a publish: the leader stamps the time, so every
/// replica stores an identical record.
struct ReplicatedPublish: Equatable {
    var channel: String
    var producer: ProducerStamp?
    var timestamp: Int64
    /// Decoded from a Raft entry, a slice of that entry's bytes (not copied out).
    var payload: ArraySlice<UInt8>

    init(channel: String, producer: ProducerStamp?, timestamp: Int64, payload: ArraySlice<UInt8>) {
        self.channel = channel
        self.producer = producer
        self.timestamp = timestamp
        self.payload = payload
    }

    init(channel: String, producer: ProducerStamp?, timestamp: Int64, payload: [UInt8]) {
        self.init(channel: channel, producer: producer, timestamp: timestamp, payload: payload[...])
    }

    func encode(into writer: inout ByteWriter) {
        writer.write(timestamp)
        writer.writeShortBytes(Array(channel.utf8))
        if let producer {
            writer.write(UInt8(1))
            writer.write(producer.id)
            writer.write(producer.sequence)
        } else {
            writer.write(UInt8(0))
        }
        writer.writeLongBytes(payload)
    }

    /// Encodes this publish as the next one of an entry being written; returns where its
    /// payload starts in the entry (as `decodeEntry` finds it).
    func encodeInEntry(_ writer: inout ByteWriter) -> Int {
        encode(into: &writer)
        return writer.count - payload.count
    }

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: payload.count + channel.utf8.count + 32)
        encode(into: &writer)
        return writer.finish()
    }

    static func decode(_ reader: inout ByteReader) throws(DecodeFailure) -> ReplicatedPublish {
        var names = RecentChannelName()
        return try decode(&reader, names: &names)
    }

    /// Decodes one publish; `names` spares validating again a channel named by the same
    /// bytes as the one before (an entry's publishes mostly share one channel, and a
    /// follower decodes every publish it applies).
    static func decode(_ reader: inout ByteReader, names: inout RecentChannelName) throws(DecodeFailure) -> ReplicatedPublish {
        try decode(&reader, names: &names, in: nil)
    }

    /// `source`, when given, holds the bytes `reader` reads: the payload is then a slice
    /// of it instead of a copy.
    private static func decode(
        _ reader: inout ByteReader, names: inout RecentChannelName, in source: [UInt8]?
    ) throws(DecodeFailure) -> ReplicatedPublish {
        let timestamp = try reader.readInt64("timestamp")
        let channel: String
        switch names.validate(try reader.readSlice(Int(try reader.readUInt8("channel")), "channel")) {
        case .success(let name): channel = name
        case .failure(let problem): throw .invalid(field: "channel", reason: problem.description)
        }
        var producer: ProducerStamp?
        switch try reader.readUInt8("producer flag") {
        case 0: break
        case 1: producer = ProducerStamp(id: try reader.readUInt64("producer id"), sequence: try reader.readUInt64("sequence"))
        default: throw .invalid(field: "producer flag", reason: "must be 0 or 1")
        }
        let payload: ArraySlice<UInt8>
        if let source {
            payload = source[try reader.readLongRange("payload", max: Limits.payloadBytesMax)]
        } else {
            payload = try reader.readLongBytes("payload", max: Limits.payloadBytesMax)[...]
        }
        return ReplicatedPublish(channel: channel, producer: producer, timestamp: timestamp, payload: payload)
    }

    /// One publish of an entry and where its payload starts in the entry's bytes.
    struct Decoded {
        var publish: ReplicatedPublish
        var payloadStart: Int
    }

    /// An entry's publishes (one or more, back to back), each with where its payload
    /// starts in `bytes` (so a channel record can point at it instead of copying it).
    static func decodeEntry(_ bytes: [UInt8]) throws(DecodeFailure) -> [Decoded] {
        let result = bytes.withUnsafeBytes { raw -> Result<[Decoded], DecodeFailure> in
            do throws(DecodeFailure) {
                var reader = ByteReader(raw)
                var publishes: [Decoded] = []
                var names = RecentChannelName()
                repeat {
                    let publish = try decode(&reader, names: &names, in: bytes)
                    // An entry's publishes are mostly alike: the first one's size tells
                    // how many follow, so the array is allocated once.
                    if publishes.isEmpty { publishes.reserveCapacity(bytes.count / max(1, reader.position) + 1) }
                    publishes.append(Decoded(publish: publish, payloadStart: reader.position - publish.payload.count))
                } while !reader.isAtEnd
                return .success(publishes)
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    var input: AppendInput { AppendInput(channel: channel, producer: producer, payload: payload, timestamp: timestamp) }
}

/// The leader's answer to a forwarded publish.
enum ForwardResult: Equatable {
    case stored(offset: UInt64, duplicate: Bool)
    case sequenceGap(expected: UInt64)
    /// Definitely not stored. `leader` is a hint where to retry (empty: unknown).
    case notStored(reason: String, leader: String)
    case unknown(reason: String)

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .stored(let offset, let duplicate):
            writer.write(UInt8(duplicate ? 1 : 0)); writer.write(offset)
        case .sequenceGap(let expected):
            writer.write(UInt8(2)); writer.write(expected)
        case .notStored(let reason, let leader):
            writer.write(UInt8(3)); writer.writeMediumBytes(Array(reason.utf8.prefix(1024))); writer.writeShortBytes(Array(leader.utf8.prefix(255)))
        case .unknown(let reason):
            writer.write(UInt8(4)); writer.writeMediumBytes(Array(reason.utf8.prefix(1024)))
        }
    }

    static func decode(_ reader: inout ByteReader) throws(DecodeFailure) -> ForwardResult {
        switch try reader.readUInt8("result") {
        case 0: return .stored(offset: try reader.readUInt64("offset"), duplicate: false)
        case 1: return .stored(offset: try reader.readUInt64("offset"), duplicate: true)
        case 2: return .sequenceGap(expected: try reader.readUInt64("expected"))
        case 3:
            let reason = String(decoding: try reader.readMediumBytes("reason", max: 1024), as: UTF8.self)
            return .notStored(reason: reason, leader: String(decoding: try reader.readShortBytes("leader"), as: UTF8.self))
        case 4: return .unknown(reason: String(decoding: try reader.readMediumBytes("reason", max: 1024), as: UTF8.self))
        default: throw .invalid(field: "result", reason: "unknown result code")
        }
    }

    init(_ outcome: AppendOutcome) {
        switch outcome {
        case .stored(let offset, _): self = .stored(offset: offset, duplicate: false)
        case .duplicate(let offset): self = .stored(offset: offset, duplicate: true)
        case .sequenceGap(let expected): self = .sequenceGap(expected: expected)
        case .failed(let error): self = .notStored(reason: error.description, leader: "")
        case .rejected(let reason): self = .notStored(reason: reason, leader: "")
        case .unknown(let reason): self = .unknown(reason: reason)
        }
    }

    var outcome: AppendOutcome {
        switch self {
        case .stored(let offset, false): .stored(offset: offset, timestamp: 0)
        case .stored(let offset, true): .duplicate(offset: offset)
        case .sequenceGap(let expected): .sequenceGap(expected: expected)
        case .notStored(let reason, _): .rejected(reason: reason)
        case .unknown(let reason): .unknown(reason: reason)
        }
    }
}
