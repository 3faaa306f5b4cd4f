import ChaparCore
import Testing
@testable import Wire

/// One instance of every frame type, with edge values where they matter.
let sampleEnvelopes: [Envelope] = [
    Envelope(.hello(Hello(clientName: "tests", token: [1, 2, 3])), correlation: 1),
    Envelope(.hello(Hello(clientName: "", token: nil)), correlation: 2),
    Envelope(.welcome(Welcome(
        version: 1, serverId: "node-1", frameBytesMax: UInt32(Limits.frameBytesMax),
        payloadBytesMax: UInt32(Limits.payloadBytesMax), channelBytesMax: 200, inflightPublishesMax: 4096)),
        correlation: 1),
    Envelope(.publish(Publish(channel: "news", payload: Array("hello".utf8))), correlation: 3),
    Envelope(.publish(Publish(channel: "خبر", producer: ProducerStamp(id: .max, sequence: 7), payload: [])),
        correlation: .max),
    Envelope(.ack(Ack(channel: "news", offset: 42)), correlation: 3),
    Envelope(.ack(Ack(channel: "news", offset: 0, duplicate: true)), correlation: 4),
    Envelope(.subscribe(Subscribe(channel: "a", from: .earliest)), correlation: 5),
    Envelope(.subscribe(Subscribe(channel: "a", from: .latest)), correlation: 6),
    Envelope(.subscribe(Subscribe(channel: "a", from: .offset(99))), correlation: 7),
    Envelope(.subscribed(Subscribed(channel: "a", nextOffset: 1, head: 0)), correlation: 7),
    Envelope(.unsubscribe(channel: "a"), correlation: 8),
    Envelope(.unsubscribed(channel: "a"), correlation: 8),
    Envelope(.message(Message(channel: "a", offset: 1, timestamp: -1, payload: [0, 255]))),
    Envelope(.fetch(Fetch(channel: "a", from: 1, maxMessages: 10, maxBytes: 1 << 20)), correlation: 9),
    Envelope(.batch(Batch(channel: "a", earliest: 1, head: 2, records: [
        Record(offset: 1, timestamp: 1_700_000_000_000, payload: [1]),
        Record(offset: 2, timestamp: 1_700_000_000_001, payload: []),
    ])), correlation: 9),
    Envelope(.batch(Batch(channel: "a", earliest: 1, head: 0, records: [])), correlation: 10),
    Envelope(.ping(nonce: 0xFEED), correlation: 11),
    Envelope(.pong(nonce: 0xFEED), correlation: 11),
    Envelope(.error(ErrorReply(code: .notSubscribed, message: "no such subscription")), correlation: 12),
    Envelope(.error(ErrorReply(rawCode: 9999, message: "from a newer server"))),
    Envelope(.locate(channel: "news"), correlation: 13),
    Envelope(.location(Location(channel: "news", shard: 7, leader: 2, nodes: [
        Location.Node(id: "node-1", address: "127.0.1.1:4222"), Location.Node(id: "node-2", address: ""),
        Location.Node(id: "node-3", address: "127.0.1.3:4222"),
    ])), correlation: 13),
    Envelope(.location(Location(channel: "news", shard: .max, leader: nil, nodes: [])), correlation: 14),
]

func decodeAll(_ bytes: [UInt8], chunk: Int? = nil) throws(ProtocolViolation) -> [Envelope] {
    var reader = FrameReader()
    var out: [Envelope] = []
    let step = chunk ?? max(bytes.count, 1)
    var start = 0
    while start < bytes.count {
        let end = min(start + step, bytes.count)
        let result: Result<Void, ProtocolViolation> = bytes.withUnsafeBytes { raw in
            do throws(ProtocolViolation) {
                try reader.feed(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { out.append($0) }
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
        start = end
    }
    return out
}

@Suite struct FrameRoundTripTests {
    @Test(arguments: sampleEnvelopes)
    func everyFrameRoundTrips(_ envelope: Envelope) throws {
        let bytes = FrameEncoder.encode(envelope)
        #expect(try decodeAll(bytes) == [envelope])
    }

    @Test func headerLayoutMatchesProtocolDocument() {
        let bytes = FrameEncoder.encode(Envelope(.ping(nonce: 1), correlation: 0x0102_0304))
        // length = 1 (type) + 4 (correlation) + 8 (nonce) = 13
        #expect(bytes == [0, 0, 0, 13, 0x0C, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 1])
    }

    @Test func publishLayoutMatchesProtocolDocument() {
        let bytes = FrameEncoder.encode(Envelope(
            .publish(Publish(channel: "ab", producer: ProducerStamp(id: 5, sequence: 6), payload: [0xEE])),
            correlation: 7))
        let expected: [UInt8] = [0, 0, 0, 30, 0x03, 0, 0, 0, 7, 2, 0x61, 0x62, 1,
                                 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1, 0xEE]
        #expect(bytes == expected)
    }

    @Test func locationLayoutMatchesProtocolDocument() {
        let location = Location(channel: "ab", shard: 3, leader: 1, nodes: [
            Location.Node(id: "n1", address: "h:1"), Location.Node(id: "n2", address: "h:2"),
        ])
        let bytes = FrameEncoder.encode(Envelope(.location(location), correlation: 9))
        let expected: [UInt8] = [0, 0, 0, 28, 0x10, 0, 0, 0, 9, 2, 0x61, 0x62, 0, 0, 0, 3, 1, 2,
                                 2, 0x6E, 0x31, 3, 0x68, 0x3A, 0x31, 2, 0x6E, 0x32, 3, 0x68, 0x3A, 0x32]
        #expect(bytes == expected)
    }

    /// The worked example at the end of docs/PROTOCOL.md, byte for byte.
    @Test func protocolDocumentExampleIsExact() {
        let publish = FrameEncoder.encode(Envelope(.publish(Publish(channel: "news", payload: Array("hi".utf8))), correlation: 7))
        #expect(publish == [0x00, 0x00, 0x00, 0x11, 0x03, 0x00, 0x00, 0x00, 0x07, 0x04, 0x6E, 0x65, 0x77, 0x73, 0x00,
                            0x00, 0x00, 0x00, 0x02, 0x68, 0x69])
        let ack = FrameEncoder.encode(Envelope(.ack(Ack(channel: "news", offset: 1)), correlation: 7))
        #expect(ack == [0x00, 0x00, 0x00, 0x13, 0x04, 0x00, 0x00, 0x00, 0x07, 0x04, 0x6E, 0x65, 0x77, 0x73,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00])
    }

    @Test func sharedMessageEncodingEqualsFrameEncoding() {
        let message = Message(channel: "news", offset: 77, timestamp: 123, payload: Array(repeating: 9, count: 300))
        var writer = ByteWriter()
        message.payload.withUnsafeBytes {
            FrameEncoder.encodeMessage(
                channel: Array("news".utf8), offset: 77, timestamp: 123, payload: $0, into: &writer)
        }
        #expect(writer.finish() == FrameEncoder.encode(Envelope(.message(message))))
    }

    @Test func inPlaceAckEncodingEqualsFrameEncoding() {
        var out: [UInt8] = [0xAA]
        for ack in [Ack(channel: "news", offset: 1), Ack(channel: "خبر", offset: 1 << 40, duplicate: true)] {
            FrameEncoder.appendAck(ack, correlation: 0x0102_0304, to: &out)
        }
        let expected = [0xAA] + FrameEncoder.encode(Envelope(.ack(Ack(channel: "news", offset: 1)), correlation: 0x0102_0304))
            + FrameEncoder.encode(Envelope(.ack(Ack(channel: "خبر", offset: 1 << 40, duplicate: true)), correlation: 0x0102_0304))
        #expect(out == expected)
    }

    @Test func streamSplitAtEveryByteBoundaryDecodesTheSame() throws {
        let stream = sampleEnvelopes.flatMap { FrameEncoder.encode($0) }
        for cut in 0...stream.count {
            var reader = FrameReader()
            var out: [Envelope] = []
            let result: Result<Void, ProtocolViolation> = stream.withUnsafeBytes { raw in
                do throws(ProtocolViolation) {
                    try reader.feed(UnsafeRawBufferPointer(rebasing: raw[..<cut])) { out.append($0) }
                    try reader.feed(UnsafeRawBufferPointer(rebasing: raw[cut...])) { out.append($0) }
                    return .success(())
                } catch { return .failure(error) }
            }
            try result.get()
            #expect(out == sampleEnvelopes, "split at byte \(cut)")
            #expect(reader.bufferedBytes == 0)
        }
    }

    @Test func streamFedOneByteAtATimeDecodesTheSame() throws {
        let stream = sampleEnvelopes.flatMap { FrameEncoder.encode($0) }
        #expect(try decodeAll(stream, chunk: 1) == sampleEnvelopes)
    }
}
