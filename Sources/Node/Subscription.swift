/// The subscribers of one channel on one loop, and the feed they share.
final class LocalChannel {  // guarded by: loop thread
    let name: String
    let feed: ChannelFeed
    /// Relayed from a replica on another node (this node holds no replica of its shard).
    let isEdge: Bool
    /// The highest committed offset this loop knows of: from the store when the first
    /// subscription began, then from feed notifications.
    var head: UInt64 = 0
    var subscriptions: [ObjectIdentifier: Subscription] = [:]

    init(name: String, feed: ChannelFeed, isEdge: Bool) {
        self.name = name
        self.feed = feed
        self.isEdge = isEdge
    }
}

/// One session's subscription to one channel: a cursor over the channel's offsets.
///
/// The cursor is the next offset to send. Live delivery and catch-up are the same loop:
/// take frames at the cursor from the feed's cache when it still holds them, else from
/// the log, until the cursor passes the head or the connection's queue is full. So a
/// slow reader never holds more than its queue and simply falls back to the log.
final class Subscription {  // guarded by: loop thread
    unowned let session: Session
    let channel: LocalChannel
    var cursor: UInt64
    /// Edge channels: the replica's bounds are on their way (nothing is sent before).
    var awaitingBounds = false
    /// Edge channels: a batch of history is being fetched from a replica.
    var fetching = false

    init(session: Session, channel: LocalChannel, cursor: UInt64) {
        self.session = session
        self.channel = channel
        self.cursor = cursor
    }
}
