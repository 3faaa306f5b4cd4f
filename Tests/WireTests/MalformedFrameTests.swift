import ChaparCore
import Testing
@testable import Wire

/// Builds a raw frame with an arbitrary length field, type and body.
func rawFrame(length: UInt32? = nil, type: UInt8, correlation: UInt32 = 1, body: [UInt8]) -> [UInt8] {
    var w = ByteWriter()
    w.write(length ?? UInt32(5 + body.count))
    w.write(type)
    w.write(correlation)
    w.write(contentsOf: body)
    return w.finish()
}

func violation(_ bytes: [UInt8]) -> ProtocolViolation? {
    do { _ = try decodeAll(bytes); return nil } catch { return error }
}

func publishBody(channel: [UInt8], flags: UInt8 = 0, payloadLength: UInt32? = nil, payload: [UInt8]) -> [UInt8] {
    var w = ByteWriter()
    w.write(UInt8(channel.count))
    w.write(contentsOf: channel)
    w.write(flags)
    w.write(payloadLength ?? UInt32(payload.count))
    w.write(contentsOf: payload)
    return w.finish()
}

@Suite struct MalformedFrameTests {
    @Test func oversizedLengthIsRefusedBeforeTheBodyArrives() {
        // Only the 4 length bytes are present: the reader must not wait for 4 GiB.
        #expect(violation([0xFF, 0xFF, 0xFF, 0xFF])?.code == .frameTooLarge)
        #expect(violation([0x80, 0x00, 0x00, 0x00])?.code == .frameTooLarge)  // "negative" as Int32
        let justOver = UInt32(Limits.frameBytesMax + 1)
        #expect(violation(rawFrame(length: justOver, type: 0x03, body: []))?.code == .frameTooLarge)
    }

    @Test func oversizedLengthSplitAcrossReadsIsRefused() {
        var reader = FrameReader()
        var thrown: ProtocolViolation?
        for byte: UInt8 in [0xFF, 0xFF, 0xFF, 0xFF] where thrown == nil {
            [byte].withUnsafeBytes { raw in
                do throws(ProtocolViolation) { try reader.feed(raw) { _ in } } catch { thrown = error }
            }
        }
        #expect(thrown?.code == .frameTooLarge)
        #expect(reader.bufferedBytes <= 4)
    }

    @Test func lengthBelowHeaderIsMalformed() {
        #expect(violation([0, 0, 0, 0])?.code == .malformedFrame)
        #expect(violation([0, 0, 0, 4, 0x0C, 0, 0, 0])?.code == .malformedFrame)
    }

    @Test func unknownFrameTypeIsRefused() {
        #expect(violation(rawFrame(type: 0x7F, body: []))?.code == .unknownFrameType)
        #expect(violation(rawFrame(type: 0x00, body: []))?.code == .unknownFrameType)
        // Known as soon as the type byte arrives, even if the body never does.
        #expect(violation([0, 0, 1, 0, 0x55])?.code == .unknownFrameType)
    }

    @Test func truncatedBodyIsMalformed() {
        // A ping whose length covers only 4 of the 8 nonce bytes.
        let v = violation(rawFrame(type: FrameType.ping.rawValue, correlation: 9, body: [0, 0, 0, 1]))
        #expect(v?.code == .malformedFrame)
        #expect(v?.correlation == 9)
    }

    @Test func innerLengthLongerThanFrameIsMalformed() {
        let body = publishBody(channel: Array("news".utf8), payloadLength: 100, payload: [1, 2, 3])
        #expect(violation(rawFrame(type: 0x03, body: body))?.code == .malformedFrame)
    }

    @Test func trailingBytesAfterLastFieldAreMalformed() {
        let body = publishBody(channel: Array("news".utf8), payload: [1]) + [0xAA]
        #expect(violation(rawFrame(type: 0x03, body: body))?.code == .malformedFrame)
    }

    @Test func channelLengthPastEndIsMalformed() {
        #expect(violation(rawFrame(type: 0x07, body: [50, 0x61]))?.code == .malformedFrame)
    }

    @Test func invalidChannelNamesAreRefused() {
        for channel: [UInt8] in [[], Array("a b".utf8), [0xC3, 0x28], Array(repeating: 0x61, count: 201)] {
            let v = violation(rawFrame(type: 0x03, body: publishBody(channel: channel, payload: [1])))
            #expect(v?.code == .invalidChannel, "channel \(channel.prefix(8))")
        }
    }

    /// A stream's frames remember its last channel name; a bad name after good ones, and a
    /// good one after that, are still judged on their own bytes.
    @Test func namesAcrossAStreamAreEachChecked() throws {
        let frame = { (channel: String) in rawFrame(type: 0x03, body: publishBody(channel: Array(channel.utf8), payload: [1])) }
        let good = frame("news") + frame("news") + frame("sport") + frame("news")
        let names = try decodeAll(good, chunk: 7).compactMap { if case .publish(let p) = $0.frame { p.channel } else { nil } }
        #expect(names == ["news", "news", "sport", "news"])
        #expect(violation(frame("news") + frame("new s"))?.code == .invalidChannel)
        #expect(violation(frame("news") + frame("newsy") + frame("news")) == nil)
    }

    @Test func payloadOverLimitIsRefused() {
        let over = UInt32(Limits.payloadBytesMax + 1)
        let body = publishBody(channel: Array("a".utf8), payloadLength: over, payload: [])
        #expect(violation(rawFrame(type: 0x03, body: body))?.code == .payloadTooLarge)
    }

    @Test func unknownPublishFlagsAreMalformed() {
        let body = publishBody(channel: Array("a".utf8), flags: 0x80, payload: [])
        #expect(violation(rawFrame(type: 0x03, body: body))?.code == .malformedFrame)
    }

    @Test func invalidRequestValuesAreRefused() {
        var subscribe = ByteWriter()
        subscribe.writeShortBytes(Array("a".utf8))
        subscribe.write(UInt8(7))
        subscribe.write(UInt64(0))
        #expect(violation(rawFrame(type: 0x05, body: subscribe.finish()))?.code == .invalidRequest)

        var fetch = ByteWriter()
        fetch.writeShortBytes(Array("a".utf8))
        fetch.write(UInt64(1))
        fetch.write(UInt32(0))
        fetch.write(UInt32(100))
        #expect(violation(rawFrame(type: 0x0A, body: fetch.finish()))?.code == .invalidRequest)
    }

    @Test func locationWithALeaderOutsideItsNodesIsMalformed() {
        var body = ByteWriter()
        body.writeShortBytes(Array("a".utf8))
        body.write(UInt32(0))
        body.write(UInt8(1))  // leader index 1 of one node
        body.write(UInt8(1))
        body.writeShortBytes(Array("n".utf8))
        body.writeShortBytes([])
        #expect(violation(rawFrame(type: 0x10, body: body.finish()))?.code == .malformedFrame)
        // A count the body does not hold.
        #expect(violation(rawFrame(type: 0x10, body: [1, 0x61, 0, 0, 0, 0, 255, 9, 1, 0x6E]))?.code == .malformedFrame)
    }

    @Test func invalidUTF8ClientNameIsMalformed() {
        let body: [UInt8] = [0, 1, 2, 0xFF, 0xFE, 0, 0]
        #expect(violation(rawFrame(type: 0x01, body: body))?.code == .malformedFrame)
    }

    @Test func framesBeforeAViolationAreDelivered() {
        var reader = FrameReader()
        var delivered: [Envelope] = []
        let good = FrameEncoder.encode(Envelope(.ping(nonce: 1), correlation: 1))
        let bytes = good + rawFrame(type: 0x7F, body: [])
        let thrown = bytes.withUnsafeBytes { raw -> ProtocolViolation? in
            do throws(ProtocolViolation) { try reader.feed(raw) { delivered.append($0) }; return nil }
            catch { return error }
        }
        #expect(delivered.count == 1)
        #expect(thrown?.code == .unknownFrameType)
    }

    @Test func fatalCodesAreBelowOneHundred() {
        for code in ErrorCode.allCases {
            #expect(code.isFatal == (code.rawValue < 100))
        }
        #expect(ErrorCode.invalidChannel.isFatal)
        #expect(!ErrorCode.notSubscribed.isFatal)
    }
}
