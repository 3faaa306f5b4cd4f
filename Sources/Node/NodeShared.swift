import Auth
import Storage
import Transport

/// What every loop of a node shares: configuration, logger, the store's committer
/// and directory, and the channel feeds. All members are thread-safe.
final class NodeShared: Sendable {
    let config: NodeConfig
    let logger: Logger
    let directory: DataDirectory
    let feeds: FeedRegistry
    let committer: GroupCommitter<PublishTicket>
    /// Set when clients must present a token.
    let tokenSecret: TokenSecret?

    init(
        config: NodeConfig, logger: Logger, directory: DataDirectory, feeds: FeedRegistry,
        committer: GroupCommitter<PublishTicket>, tokenSecret: TokenSecret?
    ) {
        self.tokenSecret = tokenSecret
        self.config = config
        self.logger = logger
        self.directory = directory
        self.feeds = feeds
        self.committer = committer
    }
}
