import ChaparCore

/// The fields of a MESSAGE body read in place, without copying the payload.
/// Valid only as long as the bytes it was read from.
public struct MessageView {
    public var channel: UnsafeRawBufferPointer
    public var offset: UInt64
    public var timestamp: Int64
    public var payload: UnsafeRawBufferPointer

    /// Reads a MESSAGE body (see docs/PROTOCOL.md); nil when it is malformed.
    public init?(body: UnsafeRawBufferPointer) {
        var reader = ByteReader(body)
        do throws(DecodeFailure) {
            let channelCount = Int(try reader.readUInt8("channel"))
            channel = try reader.readSlice(channelCount, "channel")
            offset = try reader.readUInt64("offset")
            timestamp = try reader.readInt64("timestamp")
            let payloadCount = Int(try reader.readUInt32("payload_length"))
            payload = try reader.readSlice(payloadCount, "payload")
            try reader.expectEnd()
        } catch {
            return nil
        }
    }
}
