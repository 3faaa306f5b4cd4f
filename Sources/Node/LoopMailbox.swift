import Storage
import Synchronization
import Transport

/// Identifies a publish in flight so that its outcome finds its way back.
struct PublishTicket: Sendable {
    var loop: Int
    var session: UInt64
    var correlation: UInt32
    var channel: String
    var payloadBytes: Int
}

/// Work for one loop from the group committer: acknowledgements and advanced feeds.
///
/// Posts coalesce: however many commits happen while a loop is busy, it holds at most
/// one pending job and one entry per feed, so the committer never blocks on a loop and
/// the loop's inbox cannot grow with the commit rate.
final class LoopMailbox: Sendable {
    private struct State {
        var outcomes: [(PublishTicket, AppendOutcome)] = []
        var feeds: [ObjectIdentifier: ChannelFeed] = [:]
        var scheduled = false
    }

    private let state = Mutex(State())
    let loop: EventLoop
    private let deliver: @Sendable ([(PublishTicket, AppendOutcome)], [ChannelFeed]) -> Void

    init(loop: EventLoop, deliver: @escaping @Sendable ([(PublishTicket, AppendOutcome)], [ChannelFeed]) -> Void) {
        self.loop = loop
        self.deliver = deliver
    }

    func post(outcomes: [(PublishTicket, AppendOutcome)] = [], feed: ChannelFeed? = nil) {
        let schedule = state.withLock { s -> Bool in
            s.outcomes.append(contentsOf: outcomes)
            if let feed { s.feeds[ObjectIdentifier(feed)] = feed }
            if s.scheduled { return false }
            s.scheduled = true
            return true
        }
        guard schedule else { return }
        let accepted = loop.execute { [self] in drain() }
        // One job per loop at a time is far below the inbox bound; a refusal means the
        // loop is stopping, when nothing is left to deliver to.
        if !accepted { state.withLock { $0.scheduled = false } }
    }

    private func drain() {
        let (outcomes, feeds) = state.withLock { s -> ([(PublishTicket, AppendOutcome)], [ChannelFeed]) in
            defer {
                s.outcomes = []
                s.feeds = [:]
                s.scheduled = false
            }
            return (s.outcomes, Array(s.feeds.values))
        }
        deliver(outcomes, feeds)
    }
}
