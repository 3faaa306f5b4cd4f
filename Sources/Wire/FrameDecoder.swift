import ChaparCore

/// Decodes the body of one complete frame (docs/PROTOCOL.md, "Frames").
///
/// Every length field is checked against the bytes actually present and against
/// its limit before anything is allocated, so a hostile frame costs at most its size.
public enum FrameDecoder {
    public static func decode(
        typeByte: UInt8, correlation: UInt32, body: UnsafeRawBufferPointer
    ) throws(ProtocolViolation) -> Envelope {
        var names = RecentChannelName()
        return try decode(typeByte: typeByte, correlation: correlation, body: body, names: &names)
    }

    /// The same; `names` remembers the last channel name the stream's frames carried, so a
    /// stream naming one channel frame after frame validates it once.
    public static func decode(
        typeByte: UInt8, correlation: UInt32, body: UnsafeRawBufferPointer, names: inout RecentChannelName
    ) throws(ProtocolViolation) -> Envelope {
        guard let type = FrameType(rawValue: typeByte) else {
            throw ProtocolViolation(.unknownFrameType, "unknown frame type 0x\(hex(typeByte))", correlation: correlation)
        }
        var reader = ByteReader(body)
        do {
            let frame = try decodeBody(type, &reader, correlation: correlation, names: &names)
            try reader.expectEnd()
            return Envelope(frame, correlation: correlation)
        } catch let failure as DecodeFailure {
            throw ProtocolViolation(failure, type: type, correlation: correlation)
        } catch let violation as ProtocolViolation {
            throw violation
        } catch {
            preconditionFailure("unexpected decode error \(error)")
        }
    }

    private static func decodeBody(
        _ type: FrameType, _ r: inout ByteReader, correlation: UInt32, names: inout RecentChannelName
    ) throws -> Frame {
        switch type {
        case .hello:
            let version = try r.readUInt16("version")
            let name = try text(r.readShortBytes("client_name"), "client_name")
            let token = try r.readMediumBytes("token", max: Limits.tokenBytesMax)
            return .hello(Hello(version: version, clientName: name, token: token.isEmpty ? nil : token))
        case .welcome:
            return .welcome(Welcome(
                version: try r.readUInt16("version"),
                serverId: try text(r.readShortBytes("server_id"), "server_id"),
                frameBytesMax: try r.readUInt32("frame_bytes_max"),
                payloadBytesMax: try r.readUInt32("payload_bytes_max"),
                channelBytesMax: try r.readUInt16("channel_bytes_max"),
                inflightPublishesMax: try r.readUInt32("inflight_publishes_max")))
        case .publish:
            let channel = try readChannel(&r, correlation, &names)
            let flags = try r.readUInt8("flags")
            if flags & ~1 != 0 {
                throw DecodeFailure.invalid(field: "flags", reason: "unknown bits 0x\(hex(flags))")
            }
            let producer = flags & 1 == 0
                ? nil : ProducerStamp(id: try r.readUInt64("producer_id"), sequence: try r.readUInt64("sequence"))
            if let producer, producer.sequence == 0 {
                throw ProtocolViolation(.invalidRequest, "producer sequences start at 1", correlation: correlation)
            }
            let payload = try readPayload(&r, correlation)
            return .publish(Publish(channel: channel, producer: producer, payload: payload))
        case .ack:
            let channel = try readChannel(&r, correlation, &names)
            let offset = try r.readUInt64("offset")
            let flags = try r.readUInt8("flags")
            return .ack(Ack(channel: channel, offset: offset, duplicate: flags & 1 != 0))
        case .subscribe:
            let channel = try readChannel(&r, correlation, &names)
            let mode = try r.readUInt8("from_mode")
            let offset = try r.readUInt64("from_offset")
            let from: StartPosition
            switch mode {
            case 0: from = .earliest
            case 1: from = .latest
            case 2 where offset >= 1: from = .offset(offset)
            case 2: throw ProtocolViolation(.invalidRequest, "offsets start at 1", correlation: correlation)
            default: throw ProtocolViolation(.invalidRequest, "unknown from_mode \(mode)", correlation: correlation)
            }
            return .subscribe(Subscribe(channel: channel, from: from))
        case .subscribed:
            return .subscribed(Subscribed(
                channel: try readChannel(&r, correlation, &names), nextOffset: try r.readUInt64("next_offset"),
                head: try r.readUInt64("head")))
        case .unsubscribe:
            return .unsubscribe(channel: try readChannel(&r, correlation, &names))
        case .unsubscribed:
            return .unsubscribed(channel: try readChannel(&r, correlation, &names))
        case .message:
            let channel = try readChannel(&r, correlation, &names)
            let offset = try r.readUInt64("offset")
            let timestamp = try r.readInt64("timestamp")
            let payload = try readPayload(&r, correlation)
            return .message(Message(channel: channel, offset: offset, timestamp: timestamp, payload: payload))
        case .fetch:
            let fetch = Fetch(
                channel: try readChannel(&r, correlation, &names), from: try r.readUInt64("from_offset"),
                maxMessages: try r.readUInt32("max_messages"), maxBytes: try r.readUInt32("max_bytes"))
            if fetch.from == 0 {
                throw ProtocolViolation(.invalidRequest, "offsets start at 1", correlation: correlation)
            }
            if fetch.maxMessages == 0 || fetch.maxMessages > Limits.fetchMessagesMax {
                throw ProtocolViolation(
                    .invalidRequest, "max_messages must be 1...\(Limits.fetchMessagesMax)", correlation: correlation)
            }
            if fetch.maxBytes == 0 {
                throw ProtocolViolation(.invalidRequest, "max_bytes must be at least 1", correlation: correlation)
            }
            return .fetch(fetch)
        case .batch:
            let channel = try readChannel(&r, correlation, &names)
            let earliest = try r.readUInt64("earliest")
            let head = try r.readUInt64("head")
            let count = Int(try r.readUInt32("count"))
            if count > r.remaining / 20 { throw DecodeFailure.truncated(field: "records") }
            var records: [Record] = []
            records.reserveCapacity(count)
            for _ in 0..<count {
                let offset = try r.readUInt64("record.offset")
                let timestamp = try r.readInt64("record.timestamp")
                let payload = try readPayload(&r, correlation)
                records.append(Record(offset: offset, timestamp: timestamp, payload: payload))
            }
            return .batch(Batch(channel: channel, earliest: earliest, head: head, records: records))
        case .ping:
            return .ping(nonce: try r.readUInt64("nonce"))
        case .pong:
            return .pong(nonce: try r.readUInt64("nonce"))
        case .error:
            let code = try r.readUInt16("code")
            let text = try r.readMediumBytes("message", max: Limits.errorTextBytesMax)
            return .error(ErrorReply(rawCode: code, message: String(decoding: text, as: UTF8.self)))
        case .locate:
            return .locate(channel: try readChannel(&r, correlation, &names))
        case .location:
            let channel = try readChannel(&r, correlation, &names)
            let shard = try r.readUInt32("shard")
            let leader = Int(try r.readUInt8("leader"))
            let count = Int(try r.readUInt8("count"))
            if count > Location.nodesMax { throw DecodeFailure.invalid(field: "count", reason: "\(count) nodes; at most \(Location.nodesMax)") }
            if leader != 255 && leader >= count {
                throw DecodeFailure.invalid(field: "leader", reason: "index \(leader) of \(count) nodes")
            }
            var nodes: [Location.Node] = []
            for _ in 0..<count {
                nodes.append(Location.Node(
                    id: try text(r.readShortBytes("node"), "node"), address: try text(r.readShortBytes("address"), "address")))
            }
            return .location(Location(channel: channel, shard: shard, leader: leader == 255 ? nil : leader, nodes: nodes))
        }
    }

    private static func readChannel(
        _ r: inout ByteReader, _ correlation: UInt32, _ names: inout RecentChannelName
    ) throws -> String {
        switch names.validate(try r.readSlice(Int(try r.readUInt8("channel")), "channel")) {
        case .success(let name): return name
        case .failure(let problem):
            throw ProtocolViolation(.invalidChannel, problem.description, correlation: correlation)
        }
    }

    private static func readPayload(_ r: inout ByteReader, _ correlation: UInt32) throws -> [UInt8] {
        let count = Int(try r.readUInt32("payload_length"))
        if count > Limits.payloadBytesMax {
            throw ProtocolViolation(
                .payloadTooLarge, "payload is \(count) bytes; the limit is \(Limits.payloadBytesMax)",
                correlation: correlation)
        }
        return try r.readBytes(count, "payload")
    }

    private static func text(_ bytes: [UInt8], _ field: String) throws -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw DecodeFailure.invalid(field: field, reason: "not valid UTF-8")
        }
        return string
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return byte < 16 ? "0" + digits : digits
    }
}
