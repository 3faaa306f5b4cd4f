/// The one-byte type of every client-protocol frame. Values are stable wire constants.
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case publish = 0x03
    case ack = 0x04
    case subscribe = 0x05
    case subscribed = 0x06
    case unsubscribe = 0x07
    case unsubscribed = 0x08
    case message = 0x09
    case fetch = 0x0A
    case batch = 0x0B
    case ping = 0x0C
    case pong = 0x0D
    case error = 0x0E
    case locate = 0x0F
    case location = 0x10

    /// Frames a client may send; the server answers any other type with `unexpectedFrame`.
    public var isClientToServer: Bool {
        switch self {
        case .hello, .publish, .subscribe, .unsubscribe, .fetch, .ping, .locate: true
        default: false
        }
    }
}
