import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// What a connection tells its owner. All calls come on the connection's loop thread.
public protocol ConnectionDelegate: AnyObject {
    /// Bytes arrived. They are valid only during the call (they sit in the loop's buffer).
    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer)
    /// Outbound bytes fell below the threshold set with `notifyWhenOutboundBelow`.
    func connectionWritable(_ connection: ByteStream)
    /// The peer closed its sending side. The default closes the connection; a delegate
    /// may first answer (the peer may still read) and close when that is written.
    func connectionReadEnded(_ connection: ByteStream)
    /// The connection is closed; `error` is nil for an orderly close by either side.
    func connectionClosed(_ connection: ByteStream, error: SystemError?)
}

extension ConnectionDelegate {
    public func connectionReadEnded(_ connection: ByteStream) {
        connection.close(error: nil)
    }
}

/// A loop-owned, ordered byte stream to one peer: what the protocol code (sessions,
/// clients, the simulator) sees of a connection. `TCPConnection` is the plain-TCP one;
/// a TLS stream plugs in by conforming, with no change to the protocol code.
public protocol ByteStream: AnyObject {
    var loop: EventLoop { get }
    var peer: SocketAddress? { get }
    var delegate: ConnectionDelegate? { get set }
    /// Bytes queued and not yet written to the socket.
    var outboundBytes: Int { get }
    var isClosed: Bool { get }
    /// Queues bytes (small sends are coalesced until the end of the loop turn).
    func send(_ bytes: [UInt8])
    /// Queues a range of a shared buffer without copying it.
    func send(_ slice: OutboundSlice)
    /// Queues what `write` appends, written straight into the coalescing buffer (small
    /// frames built once per message, such as acknowledgements).
    func send(appending write: (inout [UInt8]) -> Void)
    /// Asks for one `connectionWritable` once outbound bytes drop below `bytes`.
    func notifyWhenOutboundBelow(_ bytes: Int)
    func pauseReading()
    func resumeReading()
    /// Stops reading, writes what is queued (for at most `graceMs`), then closes.
    func closeAfterFlush(graceMs: Int64)
    /// Closes at once, dropping queued output, and tells the delegate.
    func close(error: SystemError?)
}

extension ByteStream {
    public func closeAfterFlush() { closeAfterFlush(graceMs: 2000) }
    public func close() { close(error: nil) }
}

/// A non-blocking TCP stream owned by one event loop.
///
/// Output is queued (small frames are coalesced; shared buffers are referenced, not
/// copied) and written with one `sendmsg` gather per loop turn; a large send with nothing
/// queued ahead of it is written at once instead of being copied. Reading stops while the
/// owner pauses it, which is how back-pressure reaches the peer: its TCP window fills.
/// A TLS stream would take this type's place behind the same delegate protocol.
public final class TCPConnection: ByteStream, IOHandler, FlushTarget {
    // Every stored property is guarded by: loop thread.
    public let loop: EventLoop
    public let peer: SocketAddress?
    public var delegate: ConnectionDelegate?
    private var fd: Int32
    private var token: UInt64 = 0
    private var queue: [OutboundSlice] = []
    private var queueHead = 0
    private var small: [UInt8] = []
    /// What the last turn coalesced (`clearSmall`).
    private var smallHint = 0
    public private(set) var outboundBytes = 0
    private var writableThreshold: Int?
    private var flushScheduled = false
    private var readingPaused = false
    private var writeArmed = false
    private var closeWhenFlushed = false
    public private(set) var isClosed = false

    /// Largest single gather write; the rest waits for the next writable turn.
    static let flushBytesMax = 4 << 20

    /// Adopts a connected, non-blocking socket. Call on `loop`'s thread.
    public init(fd: Int32, loop: EventLoop, peer: SocketAddress?) throws(SystemError) {
        loop.assertInLoop()
        self.fd = fd
        self.loop = loop
        self.peer = peer
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        token = try loop.register(fd: fd, events: interest, handler: self)
    }

    private var interest: UInt32 {
        (readingPaused || closeWhenFlushed ? 0 : CLINUX_EPOLLIN | CLINUX_EPOLLRDHUP) | (writeArmed ? CLINUX_EPOLLOUT : 0)
    }

    private func updateInterest() {
        guard !isClosed else { return }
        do { try loop.modify(fd: fd, token: token, events: interest) } catch { close(error: error) }
    }

    // MARK: Output

    /// Queues bytes; consecutive small sends are coalesced into one buffer. A large one is
    /// not copied into that buffer (it would be copied twice, and grow the buffer past what
    /// it keeps between flushes): with nothing queued before it, it is written at once and
    /// only what the socket does not take is copied; else it is queued on its own.
    public func send(_ bytes: [UInt8]) {
        guard !isClosed, !closeWhenFlushed else { return }
        guard bytes.count >= Self.ownSliceBytes else {
            if small.isEmpty { reserveSmall() }
            small.append(contentsOf: bytes)
            outboundBytes += bytes.count
            return scheduleFlush()
        }
        if queueHead == queue.count && small.isEmpty {
            let sent = bytes.withUnsafeBytes { writeNowQueueingRest($0) }
            outboundBytes += bytes.count - sent
        } else {
            sealSmall()
            bytes.withUnsafeBytes { queue.append(OutboundSlice(SharedBytes(copying: $0))) }
            outboundBytes += bytes.count
        }
        if queueHead < queue.count { scheduleFlush() }
    }

    /// Writes `raw` at once (nothing may be queued ahead of it) and queues a copy of what
    /// the socket did not take; returns how much it took. A failed write queues all of it:
    /// the gather in `flush` retries and closes on a real error (closing here would run the
    /// delegate inside its own send).
    private func writeNowQueueingRest(_ raw: UnsafeRawBufferPointer) -> Int {
        let sent = max(0, Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)))
        if sent < raw.count { queue.append(OutboundSlice(SharedBytes(copying: UnsafeRawBufferPointer(rebasing: raw[sent...])))) }
        return sent
    }

    /// From this size, `send` queues bytes as a slice of their own.
    static let ownSliceBytes = 16 << 10

    public func send(appending write: (inout [UInt8]) -> Void) {
        guard !isClosed, !closeWhenFlushed else { return }
        if small.isEmpty { reserveSmall() }
        let before = small.count
        write(&small)
        outboundBytes += small.count - before
        scheduleFlush()
    }

    /// Queues a range of a shared buffer without copying it.
    public func send(_ slice: OutboundSlice) {
        guard !isClosed, !closeWhenFlushed, slice.count > 0 else { return }
        sealSmall()
        queue.append(slice)
        outboundBytes += slice.count
        scheduleFlush()
    }

    /// Calls `delegate.connectionWritable` once outbound bytes drop below `bytes`.
    public func notifyWhenOutboundBelow(_ bytes: Int) {
        writableThreshold = bytes
    }

    private func sealSmall() {
        guard !small.isEmpty else { return }
        queue.append(OutboundSlice(SharedBytes(small)))
        clearSmall()
    }

    /// Empties the coalescing buffer, keeping its memory only when small, and remembers how
    /// much the turn coalesced: the next turn's first send reserves that much at once, so
    /// a turn of hundreds of frames does not regrow the buffer by doubling (copying it each
    /// time), while an idle connection holds at most `smallKeptBytes`.
    private func clearSmall() {
        smallHint = min(small.count, Self.smallHintBytesMax)
        small.removeAll(keepingCapacity: small.capacity <= Self.smallKeptBytes)
    }

    private func reserveSmall() {
        if small.capacity < smallHint { small.reserveCapacity(smallHint + smallHint / 4) }
    }

    static let smallKeptBytes = 4096
    static let smallHintBytesMax = 4 << 20

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.needsFlush(self)
    }

    func flush() {
        flushScheduled = false
        guard !isClosed else { return }
        if queueHead == queue.count && !small.isEmpty {
            // Only coalesced sends this turn: written from the coalescing buffer itself, and
            // only what the socket does not take is copied out of it.
            outboundBytes -= small.withUnsafeBytes { writeNowQueueingRest($0) }
            clearSmall()
        }
        sealSmall()
        var budget = Self.flushBytesMax
        while queueHead < queue.count && budget > 0 {
            let iovecs = loop.iovecs
            var count = 0
            var total = 0
            var index = queueHead
            while index < queue.count && count < iovecs.count && total < budget {
                let slice = queue[index]
                iovecs[count] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: slice.bytes.base + slice.start), iov_len: slice.count)
                total += slice.count
                count += 1
                index += 1
            }
            var header = msghdr()
            header.msg_iov = iovecs.baseAddress
            header.msg_iovlen = count
            let written = sendmsg(fd, &header, Int32(MSG_NOSIGNAL))
            if written < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                if errno == EINTR { continue }
                close(error: .last("sendmsg"))
                return
            }
            consume(written)
            budget -= written
            if written < total { break }
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: queue.capacity <= 64)
            queueHead = 0
        } else if queueHead > 1024 {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        let pending = queueHead < queue.count
        if pending != writeArmed {
            writeArmed = pending
            updateInterest()
        }
        if !pending && closeWhenFlushed {
            close(error: nil)
            return
        }
        if let threshold = writableThreshold, outboundBytes < threshold {
            writableThreshold = nil
            delegate?.connectionWritable(self)
        }
    }

    private func consume(_ written: Int) {
        var remaining = written
        outboundBytes -= written
        while remaining > 0 {
            let count = queue[queueHead].count
            if remaining >= count {
                remaining -= count
                queueHead += 1
            } else {
                queue[queueHead].start += remaining
                remaining = 0
            }
        }
    }

    // MARK: Input

    public func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    public var isReadingPaused: Bool { readingPaused }

    public func handle(events: UInt32) {
        if events & CLINUX_EPOLLOUT != 0 { flush() }
        guard !isClosed else { return }
        if events & (CLINUX_EPOLLIN | CLINUX_EPOLLRDHUP | CLINUX_EPOLLHUP | CLINUX_EPOLLERR) != 0 && !readingPaused
            && !closeWhenFlushed
        {
            readOnce()
        } else if events & (CLINUX_EPOLLHUP | CLINUX_EPOLLERR) != 0 {
            close(error: events & CLINUX_EPOLLERR != 0 ? socketError() : nil)
        }
    }

    private func readOnce() {
        let buffer = loop.receiveBuffer
        let count = read(fd, buffer.baseAddress, buffer.count)
        if count > 0 {
            delegate?.connection(self, received: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        } else if count == 0 {
            readingPaused = true
            updateInterest()
            if let delegate { delegate.connectionReadEnded(self) } else { close(error: nil) }
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            close(error: .last("read"))
        }
    }

    private func socketError() -> SystemError {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return SystemError(call: "socket", errno: code)
    }

    // MARK: Closing

    /// Stops reading, writes what is queued (bounded by `graceMs`), then closes.
    public func closeAfterFlush(graceMs: Int64) {
        guard !isClosed, !closeWhenFlushed else { return }
        closeWhenFlushed = true
        updateInterest()
        scheduleFlush()
        loop.schedule(afterMs: graceMs) { [weak self] in self?.close(error: nil) }
    }

    /// Closes at once, dropping queued output, and tells the delegate.
    public func close(error: SystemError?) {
        guard !isClosed else { return }
        isClosed = true
        loop.deregister(fd: fd, token: token)
        Glibc.close(fd)
        fd = -1
        queue = []
        small = []
        outboundBytes = 0
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionClosed(self, error: error)
    }
}
