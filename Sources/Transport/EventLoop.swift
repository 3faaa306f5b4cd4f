import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something registered with an event loop that reacts to readiness events.
public protocol IOHandler: AnyObject {
    /// Called on the loop thread with the epoll event bits that fired.
    func handle(events: UInt32)
}

/// One thread's epoll loop: readiness events, timers, a bounded inbox for work from
/// other threads, and a once-per-turn flush of connections that have output.
///
/// Everything a loop owns (handlers, timers, connections) is touched only on its
/// thread; other threads talk to it only through `execute`.
public final class EventLoop: @unchecked Sendable {
    // `inbox` and `wakeFd` are thread-safe; all other stored state is guarded by: loop thread.
    public typealias Job = @Sendable () -> Void

    /// Jobs the inbox holds at most; `execute` refuses beyond it.
    public static let inboxJobsMax = 65_536
    static let eventsPerWaitMax = 256

    public let index: Int
    private let epollFd: Int32
    private let wakeFd: Int32
    private let inbox = Mutex<(jobs: [Job], stopping: Bool)>(([], false))
    private var handlers: [UInt64: IOHandler] = [:]
    private var nextToken: UInt64 = 1
    private var timers = TimerQueue()
    private var flushList: [FlushTarget] = []
    private var threadId: pthread_t?
    private var stopped = false
    /// One receive buffer per loop: a connection reads into it and keeps only a partial
    /// frame, so idle connections cost no buffer memory.
    let receiveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: EventLoop.receiveBytes, alignment: 16)
    /// Scratch iovecs for `writev`, reused by every flush on this loop.
    let iovecs = UnsafeMutableBufferPointer<iovec>.allocate(capacity: EventLoop.iovecsMax)
    static let receiveBytes = 64 * 1024
    static let iovecsMax = 1024

    public init(index: Int = 0) throws(SystemError) {
        self.index = index
        epollFd = clinux_epoll_create()
        if epollFd < 0 { throw .last("epoll_create1") }
        wakeFd = clinux_eventfd()
        if wakeFd < 0 { close(epollFd); throw .last("eventfd") }
        if clinux_epoll_add(epollFd, wakeFd, CLINUX_EPOLLIN, 0) != 0 {
            close(epollFd); close(wakeFd)
            throw .last("epoll_ctl(ADD eventfd)")
        }
    }

    deinit {
        close(epollFd)
        close(wakeFd)
        receiveBuffer.deallocate()
        iovecs.deallocate()
    }

    /// True on the loop's own thread.
    public var inLoop: Bool {
        guard let threadId else { return false }
        return pthread_equal(threadId, pthread_self()) != 0
    }

    @inline(__always)
    public func assertInLoop() {
        assert(inLoop, "called off the loop thread")
    }

    /// Runs `job` on the loop thread soon. Thread-safe. Returns false when the inbox is
    /// full or the loop is stopping; the caller decides what refusing means.
    @discardableResult
    public func execute(_ job: @escaping Job) -> Bool {
        let (accepted, wasEmpty) = inbox.withLock { state -> (Bool, Bool) in
            if state.stopping || state.jobs.count >= Self.inboxJobsMax { return (false, false) }
            state.jobs.append(job)
            return (true, state.jobs.count == 1)
        }
        if accepted && wasEmpty { _ = clinux_eventfd_signal(wakeFd) }
        return accepted
    }

    /// Asks the loop to finish its current turn and return from `run()`. Thread-safe.
    public func stop() {
        inbox.withLock { $0.stopping = true }
        _ = clinux_eventfd_signal(wakeFd)
    }

    // MARK: Loop-thread API

    /// Watches `fd` for `events` and calls `handler` when they fire. Returns the token
    /// to use with `modify` and `deregister`.
    public func register(fd: Int32, events: UInt32, handler: IOHandler) throws(SystemError) -> UInt64 {
        assertInLoop()
        let token = nextToken
        nextToken += 1
        if clinux_epoll_add(epollFd, fd, events, token) != 0 { throw .last("epoll_ctl(ADD)") }
        handlers[token] = handler
        return token
    }

    public func modify(fd: Int32, token: UInt64, events: UInt32) throws(SystemError) {
        assertInLoop()
        if clinux_epoll_modify(epollFd, fd, events, token) != 0 { throw .last("epoll_ctl(MOD)") }
    }

    /// Stops watching `fd`. The caller closes it afterwards.
    public func deregister(fd: Int32, token: UInt64) {
        assertInLoop()
        _ = clinux_epoll_remove(epollFd, fd)
        handlers[token] = nil
    }

    /// Runs `job` on this loop after `delayMs`. Returns an id for `cancelTimer`.
    @discardableResult
    public func schedule(afterMs delayMs: Int64, _ job: @escaping () -> Void) -> UInt64 {
        assertInLoop()
        return timers.add(deadline: MonotonicClock.nowMs() + delayMs, job)
    }

    public func cancelTimer(_ id: UInt64) {
        assertInLoop()
        timers.cancel(id)
    }

    /// Asks for `target.flush()` at the end of this turn, so everything a turn queued for
    /// a connection leaves in one `writev`.
    func needsFlush(_ target: FlushTarget) {
        flushList.append(target)
    }

    /// Number of handlers registered (connections, listeners).
    public var handlerCount: Int { handlers.count }

    /// Runs the loop on the calling thread until `stop()`.
    public func run() {
        threadId = pthread_self()
        var events = [clinux_event](repeating: clinux_event(), count: Self.eventsPerWaitMax)
        while !stopped {
            let timeout = timers.nextTimeoutMs(now: MonotonicClock.nowMs())
            let count = events.withUnsafeMutableBufferPointer {
                clinux_epoll_wait(epollFd, $0.baseAddress, Int32($0.count), timeout)
            }
            if count < 0 && errno != EINTR { fatalError("\(SystemError.last("epoll_wait"))") }
            for i in 0..<max(0, Int(count)) {
                let event = events[i]
                if event.token == 0 {
                    _ = clinux_eventfd_drain(wakeFd)
                    runInbox()
                } else if let handler = handlers[event.token] {
                    handler.handle(events: event.events)
                }
            }
            for job in timers.takeDue(now: MonotonicClock.nowMs()) { job() }
            flushPending()
        }
    }

    private func runInbox() {
        let (jobs, stopping) = inbox.withLock { state -> ([Job], Bool) in
            defer { state.jobs = [] }
            return (state.jobs, state.stopping)
        }
        for job in jobs { job() }
        if stopping { stopped = true }
    }

    private func flushPending() {
        // A flush may queue more flushes (a close that answers, say); drain until quiet.
        while !flushList.isEmpty {
            let targets = flushList
            flushList.removeAll(keepingCapacity: true)
            for target in targets { target.flush() }
        }
    }
}

/// A connection with output to write at the end of the loop turn.
protocol FlushTarget: AnyObject {
    func flush()
}
