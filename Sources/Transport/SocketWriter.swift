import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The sending side of a connection that other threads write to directly: a node's peer
/// links, written by its replication thread rather than handed to loop 0 first.
///
/// Why: a publish under R=3 crossed a dozen thread hand-overs, each a sleep and a wake-up
/// that cost tens of microseconds on this machine class; handing every cycle's frames to
/// loop 0 added two to each replication round trip (leader's appends, follower's answers),
/// and there they also waited behind client traffic. Writes go straight to the socket
/// under a lock; only what the socket does not take waits, and the loop writes it when the
/// socket drains (an edge-triggered watch on a duplicate of the descriptor, so the
/// connection's own registration, which reads, is untouched). The connection itself then
/// only reads: nothing may be sent through it once a writer exists.
public final class SocketWriter: IOHandler, @unchecked Sendable {  // state behind its mutex; token guarded by: loop thread
    private struct State {
        var fd: Int32
        /// Bytes the socket has not taken yet, in order; `headOffset` into the first.
        var pending: [[UInt8]] = []
        var headOffset = 0
        var pendingBytes = 0
        var closed = false
    }

    private let state: Mutex<State>
    public let loop: EventLoop
    private var token: UInt64 = 0
    /// Called on the loop when a write fails or the peer leaves too much unread: the owner
    /// closes the connection.
    private let failed: (String) -> Void
    /// A peer that leaves this much unread is cut off rather than let it hold our memory.
    public let pendingBytesMax: Int

    /// Duplicates `socket` and watches the duplicate for writability on `loop` (call there).
    public init(socket: Int32, loop: EventLoop, pendingBytesMax: Int, failed: @escaping (String) -> Void) throws(SystemError) {
        loop.assertInLoop()
        let fd = dup(socket)
        guard fd >= 0 else { throw .last("dup") }
        self.loop = loop
        self.pendingBytesMax = pendingBytesMax
        self.failed = failed
        state = Mutex(State(fd: fd))
        do {
            token = try loop.register(fd: fd, events: CLINUX_EPOLLOUT | CLINUX_EPOLLET, handler: self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Writes `bytes` after everything written before; thread-safe. Returns false when the
    /// writer is closed or failed (the bytes are dropped).
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        let outcome = state.withLock { state -> WriteOutcome in
            guard !state.closed else { return .closed }
            var sent = 0
            if state.pending.isEmpty {
                switch Self.send(state.fd, bytes, from: 0) {
                case .sent(let count): sent = count
                case .failed(let reason): return fail(&state, reason)
                }
                if sent == bytes.count { return .written }
            }
            state.pending.append(sent == 0 ? bytes : Array(bytes[sent...]))
            state.pendingBytes += bytes.count - sent
            if state.pendingBytes > pendingBytesMax {
                return fail(&state, "peer left \(state.pendingBytes) bytes unread")
            }
            return .written
        }
        switch outcome {
        case .written: return true
        case .closed: return false
        case .failing(let reason):
            _ = loop.execute { self.failed(reason) }
            return false
        }
    }

    private enum WriteOutcome { case written, closed, failing(String) }

    private func fail(_ state: inout State, _ reason: String) -> WriteOutcome {
        state.closed = true
        state.pending = []
        state.pendingBytes = 0
        return .failing(reason)
    }

    private enum SendResult { case sent(Int), failed(String) }

    private static func send(_ fd: Int32, _ bytes: [UInt8], from start: Int) -> SendResult {
        bytes.withUnsafeBytes { raw in
            var offset = start
            while offset < raw.count {
                let count = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if count > 0 { offset += count; continue }
                if count < 0 && errno == EINTR { continue }
                if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
                return .failed("send: \(String(cString: strerror(errno)))")
            }
            return .sent(offset - start)
        }
    }

    /// The socket drained (on the loop): writes what waits, as far as it takes it.
    public func handle(events: UInt32) {
        guard events & CLINUX_EPOLLOUT != 0 else { return }  // errors and hang-ups: the reading side closes
        let failure = state.withLock { state -> String? in
            while !state.closed, let head = state.pending.first {
                switch Self.send(state.fd, head, from: state.headOffset) {
                case .failed(let reason):
                    _ = fail(&state, reason)
                    return reason
                case .sent(let count):
                    state.pendingBytes -= count
                    if state.headOffset + count < head.count {
                        state.headOffset += count
                        return nil
                    }
                    state.pending.removeFirst()
                    state.headOffset = 0
                }
            }
            return nil
        }
        if let failure { failed(failure) }
    }

    /// Stops writing and releases the duplicate descriptor (on the loop). Idempotent.
    public func close() {
        loop.assertInLoop()
        state.withLock { state in
            guard state.fd >= 0 else { return }
            state.closed = true
            state.pending = []
            state.pendingBytes = 0
            loop.deregister(fd: state.fd, token: token)
            Glibc.close(state.fd)
            state.fd = -1
        }
    }
}
