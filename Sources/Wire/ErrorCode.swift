/// Stable numeric error codes carried by ERROR frames.
///
/// Codes below 100 are fatal: the server sends the ERROR and then closes the
/// connection. Codes from 100 answer one request and leave the connection open.
public enum ErrorCode: UInt16, Sendable, CaseIterable {
    case malformedFrame = 1
    case frameTooLarge = 2
    case unknownFrameType = 3
    case unsupportedVersion = 4
    case helloRequired = 5
    case unexpectedFrame = 6
    case invalidChannel = 7
    case payloadTooLarge = 8
    case unauthorized = 9
    case invalidRequest = 10
    case shuttingDown = 11

    case alreadySubscribed = 100
    case notSubscribed = 101
    case tooManySubscriptions = 102
    case sequenceGap = 103
    case notStored = 104
    case corruptRecord = 105
    case storageFailure = 106
    /// Clustered nodes: the publish may or may not have been stored (the shard's leader
    /// changed or went silent after taking it). Retry with the same producer stamp.
    case outcomeUnknown = 107
    /// Clustered nodes: this node holds no replica of the channel's shard and cannot
    /// serve its history yet.
    case notReplica = 108
    /// Clustered nodes: the channel's replica left this node (a rebalance moved it); the
    /// subscription ended. Subscribe again from the next offset: the node relays it now.
    case replicaMoved = 109

    public var isFatal: Bool { rawValue < 100 }
}
