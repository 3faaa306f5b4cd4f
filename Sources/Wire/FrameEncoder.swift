import ChaparCore

/// Encodes frames into their exact wire bytes (docs/PROTOCOL.md, "Frames").
///
/// Layout: `length:u32 | type:u8 | correlation:u32 | body`, where `length` counts
/// every byte after itself. Callers MUST pass values that already satisfy the limits
/// (validated channel names, payloads within `Limits.payloadBytesMax`).
public enum FrameEncoder {
    /// Bytes before the body: length, type and correlation.
    public static let headerBytes = 9

    public static func encode(_ envelope: Envelope) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + payloadCount(envelope.frame))
        encode(envelope, into: &writer)
        return writer.finish()
    }

    public static func encode(_ envelope: Envelope, into writer: inout ByteWriter) {
        let start = beginFrame(envelope.frame.type, correlation: envelope.correlation, into: &writer)
        writeBody(envelope.frame, into: &writer)
        endFrame(start: start, into: &writer)
    }

    /// Appends one MESSAGE frame. The node builds a committed batch's frames once with
    /// this and shares the bytes among every subscriber.
    public static func encodeMessage(
        channel: [UInt8], offset: UInt64, timestamp: Int64, payload: UnsafeRawBufferPointer,
        into writer: inout ByteWriter
    ) {
        let start = beginFrame(.message, correlation: 0, into: &writer)
        writer.writeShortBytes(channel)
        writer.write(offset)
        writer.write(timestamp)
        writer.writeLongBytes(payload)
        endFrame(start: start, into: &writer)
    }

    /// Appends one ACK frame to `out` in place: a node sends one per publish, and building
    /// it through `encode` cost an envelope, a writer and two arrays each time.
    public static func appendAck(_ ack: Ack, correlation: UInt32, to out: inout [UInt8]) {
        var channel = ack.channel
        channel.withUTF8 { name in
            let bodyBytes = 1 + name.count + 8 + 1
            withUnsafeBytes(of: UInt32(headerBytes - 4 + bodyBytes).bigEndian) { out.append(contentsOf: $0) }
            out.append(FrameType.ack.rawValue)
            withUnsafeBytes(of: correlation.bigEndian) { out.append(contentsOf: $0) }
            out.append(UInt8(name.count))
            out.append(contentsOf: name)
            withUnsafeBytes(of: ack.offset.bigEndian) { out.append(contentsOf: $0) }
            out.append(ack.duplicate ? 1 : 0)
        }
    }

    public static func beginFrame(_ type: FrameType, correlation: UInt32, into writer: inout ByteWriter) -> Int {
        let start = writer.count
        writer.write(UInt32(0))  // patched by endFrame
        writer.write(type.rawValue)
        writer.write(correlation)
        return start
    }

    public static func endFrame(start: Int, into writer: inout ByteWriter) {
        let length = writer.count - start - 4
        precondition(length <= Limits.frameBytesMax, "encoded frame exceeds frameBytesMax")
        writer.patch(UInt32(length), at: start)
    }

    private static func payloadCount(_ frame: Frame) -> Int {
        switch frame {
        case .publish(let p): p.payload.count
        case .message(let m): m.payload.count
        case .batch(let b): b.records.reduce(0) { $0 + $1.payload.count + 20 }
        default: 0
        }
    }

    private static func writeBody(_ frame: Frame, into w: inout ByteWriter) {
        switch frame {
        case .hello(let h):
            w.write(h.version)
            w.writeShortBytes(Array(h.clientName.utf8))
            w.writeMediumBytes(h.token ?? [])
        case .welcome(let m):
            w.write(m.version)
            w.writeShortBytes(Array(m.serverId.utf8))
            w.write(m.frameBytesMax)
            w.write(m.payloadBytesMax)
            w.write(m.channelBytesMax)
            w.write(m.inflightPublishesMax)
        case .publish(let p):
            w.writeShortBytes(Array(p.channel.utf8))
            if let producer = p.producer {
                w.write(UInt8(1))
                w.write(producer.id)
                w.write(producer.sequence)
            } else {
                w.write(UInt8(0))
            }
            w.writeLongBytes(p.payload)
        case .ack(let a):
            w.writeShortBytes(Array(a.channel.utf8))
            w.write(a.offset)
            w.write(UInt8(a.duplicate ? 1 : 0))
        case .subscribe(let s):
            w.writeShortBytes(Array(s.channel.utf8))
            switch s.from {
            case .earliest: w.write(UInt8(0)); w.write(UInt64(0))
            case .latest: w.write(UInt8(1)); w.write(UInt64(0))
            case .offset(let offset): w.write(UInt8(2)); w.write(offset)
            }
        case .subscribed(let s):
            w.writeShortBytes(Array(s.channel.utf8))
            w.write(s.nextOffset)
            w.write(s.head)
        case .unsubscribe(let channel), .unsubscribed(let channel), .locate(let channel):
            w.writeShortBytes(Array(channel.utf8))
        case .message(let m):
            w.writeShortBytes(Array(m.channel.utf8))
            w.write(m.offset)
            w.write(m.timestamp)
            w.writeLongBytes(m.payload)
        case .fetch(let f):
            w.writeShortBytes(Array(f.channel.utf8))
            w.write(f.from)
            w.write(f.maxMessages)
            w.write(f.maxBytes)
        case .batch(let b):
            w.writeShortBytes(Array(b.channel.utf8))
            w.write(b.earliest)
            w.write(b.head)
            w.write(UInt32(b.records.count))
            for record in b.records {
                w.write(record.offset)
                w.write(record.timestamp)
                w.writeLongBytes(record.payload)
            }
        case .ping(let nonce), .pong(let nonce):
            w.write(nonce)
        case .error(let e):
            w.write(e.code)
            w.writeMediumBytes(Array(e.message.utf8.prefix(Limits.errorTextBytesMax)))
        case .location(let l):
            precondition(l.nodes.count <= Location.nodesMax && (l.leader ?? 0) < max(1, l.nodes.count), "invalid LOCATION")
            w.writeShortBytes(Array(l.channel.utf8))
            w.write(l.shard)
            w.write(UInt8(l.leader ?? 255))
            w.write(UInt8(l.nodes.count))
            for node in l.nodes {
                w.writeShortBytes(Array(node.id.utf8.prefix(255)))
                w.writeShortBytes(Array(node.address.utf8.prefix(255)))
            }
        }
    }
}
