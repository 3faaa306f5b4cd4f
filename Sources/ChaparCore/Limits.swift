/// Protocol limits shared by the codecs, the node and the clients.
///
/// Units are last in every name. A server announces its values in WELCOME; these
/// are the defaults and the hard ceilings a server cannot exceed.
public enum Limits {
    /// Largest message payload a PUBLISH may carry.
    public static let payloadBytesMax = 1 << 20
    /// Largest channel name, in UTF-8 bytes (the wire length prefix is one byte).
    public static let channelBytesMax = 200
    /// Largest client or server name in HELLO and WELCOME.
    public static let nameBytesMax = 255
    /// Largest token in HELLO.
    public static let tokenBytesMax = 4096
    /// Largest error text in ERROR.
    public static let errorTextBytesMax = 1024
    /// Room for every header and field of the largest frame around a maximal payload.
    public static let frameOverheadBytesMax = 1024
    /// Largest frame, counted from the type byte to the end of the body.
    public static let frameBytesMax = payloadBytesMax + frameOverheadBytesMax
    /// Most messages one FETCH may ask for.
    public static let fetchMessagesMax: UInt32 = 10_000
    /// Most publishes a connection may have unacknowledged; beyond it the server stops reading.
    public static let inflightPublishesMax = 4096
    /// Most channels one connection may subscribe to at once.
    public static let subscriptionsPerConnectionMax = 1024

    static func checkRelationships() {
        precondition(channelBytesMax <= Int(UInt8.max))
        precondition(payloadBytesMax + channelBytesMax + 64 < frameBytesMax)
        precondition(frameBytesMax < Int(UInt32.max))
    }
}
