import ChaparCore

/// Splits a byte stream into frames, keeping at most one partial frame between reads.
///
/// Complete frames are decoded straight from the caller's buffer; only a frame cut
/// by the end of a read is copied, so an idle connection holds no buffer at all.
/// A frame's length is checked as soon as its 4 bytes arrive: an oversized frame is
/// refused before its body is read.
public struct FrameReader: Sendable {
    /// The start of a frame that has not fully arrived. Never larger than one frame.
    private var pending: [UInt8] = []
    /// The stream's last channel name (a publisher's frames mostly name one channel).
    private var names = RecentChannelName()

    public init() {}

    /// Bytes held for a partial frame.
    public var bufferedBytes: Int { pending.count }

    /// Decodes every complete frame in `pending + input`, in order, calling `deliver` for each.
    /// On a violation, frames before it have been delivered; the stream is then unusable.
    public mutating func feed(
        _ input: UnsafeRawBufferPointer, _ deliver: (Envelope) -> Void
    ) throws(ProtocolViolation) {
        var names = self.names
        defer { self.names = names }
        try feedRaw(input) { (type, correlation, body) throws(ProtocolViolation) in
            deliver(try FrameDecoder.decode(typeByte: type, correlation: correlation, body: body, names: &names))
        }
    }

    /// Like `feed`, but hands over each complete frame undecoded: its type byte,
    /// correlation id and body, borrowed (valid only during the call). For readers that
    /// decode hot frames in place (the load simulator reads MESSAGE frames this way).
    public mutating func feedRaw(
        _ input: UnsafeRawBufferPointer,
        _ deliver: (UInt8, UInt32, UnsafeRawBufferPointer) throws(ProtocolViolation) -> Void
    ) throws(ProtocolViolation) {
        var input = input
        if !pending.isEmpty {
            // Complete the one partial frame with just the bytes it lacks, so a busy
            // stream never copies a whole read buffer, only the frame cut by its end.
            guard let rest = try completePending(input, deliver) else { return }
            input = rest
        }
        let consumed = try Self.split(input, deliver)
        if consumed < input.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[consumed...]))
        }
    }

    /// Moves bytes from `input` into `pending` until it holds a whole frame, delivers it
    /// and returns the unused input; nil when `input` ran out first.
    private mutating func completePending(
        _ input: UnsafeRawBufferPointer,
        _ deliver: (UInt8, UInt32, UnsafeRawBufferPointer) throws(ProtocolViolation) -> Void
    ) throws(ProtocolViolation) -> UnsafeRawBufferPointer? {
        var used = 0
        if pending.count < 4 {
            used = min(4 - pending.count, input.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<used]))
            if pending.count < 4 { return nil }
        }
        let length = pending.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self))) }
        let missing = min(max(0, 4 + length - pending.count), input.count - used)
        if length <= Limits.frameBytesMax {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[used..<(used + missing)]))
            used += missing
        }
        // `split` validates the header (length bounds, type) whether or not the body is complete.
        let result: Result<Int, ProtocolViolation> = pending.withUnsafeBytes { bytes in
            do throws(ProtocolViolation) { return .success(try Self.split(bytes, deliver)) }
            catch { return .failure(error) }
        }
        let consumed = try result.get()
        if consumed == 0 { return nil }
        precondition(consumed == pending.count, "pending holds exactly one frame")
        pending = []  // give the memory back: an idle connection holds no buffer
        return UnsafeRawBufferPointer(rebasing: input[used...])
    }

    /// Returns how many bytes of whole frames were consumed.
    static func split(
        _ bytes: UnsafeRawBufferPointer,
        _ deliver: (UInt8, UInt32, UnsafeRawBufferPointer) throws(ProtocolViolation) -> Void
    ) throws(ProtocolViolation) -> Int {
        var position = 0
        while bytes.count - position >= 4 {
            let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            if length > Limits.frameBytesMax {
                throw ProtocolViolation(
                    .frameTooLarge, "frame length \(length) exceeds \(Limits.frameBytesMax)")
            }
            if length < FrameEncoder.headerBytes - 4 {
                throw ProtocolViolation(.malformedFrame, "frame length \(length) is below the 5-byte minimum")
            }
            if bytes.count - position >= 5, FrameType(rawValue: bytes[position + 4]) == nil {
                throw ProtocolViolation(
                    .unknownFrameType, "unknown frame type 0x\(FrameDecoder.hex(bytes[position + 4]))")
            }
            if bytes.count - position < 4 + length { break }
            let type = bytes[position + 4]
            let correlation = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position + 5, as: UInt32.self))
            let body = UnsafeRawBufferPointer(rebasing: bytes[(position + 9)..<(position + 4 + length)])
            try deliver(type, correlation, body)
            position += 4 + length
        }
        return position
    }
}
