/// The last channel name validated from bytes, for decoders that meet the same channel
/// frame after frame (a publisher's stream, a Raft entry's publishes): bytes equal to the
/// last valid name give its String back without validating or allocating again.
public struct RecentChannelName: Sendable {
    private var bytes: [UInt8] = []
    private var name: String?

    public init() {}

    public mutating func validate(_ raw: UnsafeRawBufferPointer) -> Result<String, ChannelName.Problem> {
        if let name, bytes.elementsEqual(raw) { return .success(name) }
        let copy = Array(raw)
        let result = ChannelName.validate(copy)
        if case .success(let valid) = result {
            bytes = copy
            name = valid
        }
        return result
    }
}
