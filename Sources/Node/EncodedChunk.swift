import ChaparCore
import Storage
import Transport
import Wire

/// Consecutive MESSAGE frames of one channel, encoded once and shared by every
/// subscriber that sends them (through `OutboundSlice`s into `bytes`).
final class EncodedChunk: Sendable {
    let bytes: SharedBytes
    let firstOffset: UInt64
    let lastOffset: UInt64
    /// Byte position of each frame in `bytes`, plus the end: `frameStarts[i]` is where
    /// offset `firstOffset + i` begins.
    let frameStarts: [Int]

    init(channel: String, records: [StoredRecord]) {
        precondition(!records.isEmpty, "an encoded chunk holds at least one message")
        let channelBytes = Array(channel.utf8)
        let size = records.reduce(0) { $0 + $1.payload.count + channelBytes.count + 34 }
        var writer = ByteWriter(capacity: size)
        var starts: [Int] = []
        starts.reserveCapacity(records.count + 1)
        var expected = records[0].offset
        for record in records {
            precondition(record.offset == expected, "chunk offsets must be dense")
            expected += 1
            starts.append(writer.count)
            record.payload.withUnsafeBytes {
                FrameEncoder.encodeMessage(
                    channel: channelBytes, offset: record.offset, timestamp: record.timestamp, payload: $0, into: &writer)
            }
        }
        starts.append(writer.count)
        bytes = SharedBytes(writer.finish())
        firstOffset = records[0].offset
        lastOffset = records[records.count - 1].offset
        frameStarts = starts
    }

    /// Frames from `offset` on, cut at a frame boundary after about `bytesMax` (at least
    /// one frame). Returns the slice and the last offset it holds.
    func slice(from offset: UInt64, bytesMax: Int) -> (OutboundSlice, lastOffset: UInt64) {
        precondition(offset >= firstOffset && offset <= lastOffset)
        let first = Int(offset - firstOffset)
        let start = frameStarts[first]
        var last = first
        while last + 1 < frameStarts.count - 1 && frameStarts[last + 2] - start <= bytesMax { last += 1 }
        return (OutboundSlice(bytes, start: start, end: frameStarts[last + 1]), firstOffset + UInt64(last))
    }
}
