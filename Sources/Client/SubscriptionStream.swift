import Synchronization
import Wire

/// The messages of one subscription, in offset order, as an async sequence.
///
/// It buffers at most `bufferMessagesMax` messages; beyond that the client stops
/// reading from the socket (the server then falls back to serving this subscriber from
/// its log), so a slow consumer costs bounded memory on both sides.
public final class SubscriptionStream: AsyncSequence, Sendable {
    public typealias Element = Message

    public let channel: String
    /// The first offset the server will deliver, and the channel head at subscribe time.
    public let nextOffset: UInt64
    public let head: UInt64

    private struct State {
        var buffer: [Message] = []
        var bufferHead = 0
        var waiter: CheckedContinuation<Message?, Error>?
        var failure: ClientError?
        var finished = false
        var paused = false
    }

    private let state = Mutex(State())
    let bufferMessagesMax: Int
    private let pauseReading: @Sendable (Bool) -> Void

    init(channel: String, subscribed: Subscribed, bufferMessagesMax: Int, pauseReading: @escaping @Sendable (Bool) -> Void) {
        self.channel = channel
        self.nextOffset = subscribed.nextOffset
        self.head = subscribed.head
        self.bufferMessagesMax = bufferMessagesMax
        self.pauseReading = pauseReading
    }

    /// Loop thread: a message arrived.
    func push(_ message: Message) {
        let (waiter, pause) = state.withLock { s -> (CheckedContinuation<Message?, Error>?, Bool) in
            if let waiter = s.waiter {
                s.waiter = nil
                return (waiter, false)
            }
            s.buffer.append(message)
            if !s.paused && s.buffer.count - s.bufferHead >= bufferMessagesMax {
                s.paused = true
                return (nil, true)
            }
            return (nil, false)
        }
        waiter?.resume(returning: message)
        if pause { pauseReading(true) }
    }

    /// Ends the sequence: normally (`nil`) after UNSUBSCRIBED, or with an error.
    func finish(_ error: ClientError?) {
        let waiter = state.withLock { s -> CheckedContinuation<Message?, Error>? in
            guard !s.finished else { return nil }
            s.finished = true
            s.failure = error
            defer { s.waiter = nil }
            return s.waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    func next() async throws -> Message? {
        try await withCheckedThrowingContinuation { continuation in
            let (result, resume) = state.withLock { s -> (Result<Message?, Error>?, Bool) in
                if s.bufferHead < s.buffer.count {
                    let message = s.buffer[s.bufferHead]
                    s.bufferHead += 1
                    if s.bufferHead == s.buffer.count {
                        s.buffer.removeAll(keepingCapacity: true)
                        s.bufferHead = 0
                    }
                    let resume = s.paused && s.buffer.count - s.bufferHead <= bufferMessagesMax / 2
                    if resume { s.paused = false }
                    return (.success(message), resume)
                }
                if s.finished {
                    if let failure = s.failure { return (.failure(failure), false) }
                    return (.success(nil), false)
                }
                s.waiter = continuation
                return (nil, false)
            }
            if resume { pauseReading(false) }
            if let result { continuation.resume(with: result) }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: SubscriptionStream
        public mutating func next() async throws -> Message? { try await stream.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }
}
