#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch

/// A thread that runs one I/O job at a time for its owner, who starts a job, goes on with
/// other work and then waits for the job's errno.
///
/// The entry log runs each cycle's write and sync on one while the replication thread
/// runs the cycle's SQLite statements: the disk's ~0.4 ms under R=3 load and the
/// statements' ~0.1 ms overlap instead of adding up, and the acknowledgements those
/// statements decide go out without waiting for the disk.
final class JobThread: @unchecked Sendable {  // `job`, `result`: handed over by the semaphores
    private let work = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var job: (() -> Int32?)?
    private var result: Int32?
    private var busy = false
    /// The job in flight is known to be done (`poll` took its signal).
    private var polledDone = false
    private var stopping = false
    /// Runs on the thread after each job, once `poll` would see it done: lets an owner
    /// that waits for other work too (a semaphore of its own) wake for this.
    var onDone: (@Sendable () -> Void)?
    private var thread = pthread_t()

    private let name: String

    /// `name`: the thread's (at most 15 bytes).
    init(name: String) {
        self.name = name
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let owner = Unmanaged<JobThread>.fromOpaque(raw!).takeRetainedValue()
            clinux_set_thread_name(owner.name)
            owner.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Starts `body` (returning an errno on failure) on the thread; one job at a time.
    func start(_ body: @escaping () -> Int32?) {
        precondition(!busy, "a job is already running on \(name)")
        busy = true
        job = body
        work.signal()
    }

    /// Waits for the job started last; its errno, or nil when it succeeded.
    func finish() -> Int32? {
        precondition(busy, "no job running on \(name)")
        if !polledDone { done.wait() }
        polledDone = false
        busy = false
        return result
    }

    /// Whether the job started last has ended (`finish` then returns at once).
    func poll() -> Bool {
        precondition(busy, "no job running on \(name)")
        if !polledDone { polledDone = done.wait(timeout: .now()) == .success }
        return polledDone
    }

    var inFlight: Bool { busy }

    /// Ends the thread, once the job in flight (if any) has ended.
    func stop() {
        if busy { _ = finish() }
        stopping = true
        work.signal()
        pthread_join(thread, nil)
    }

    private func run() {
        while true {
            work.wait()
            if stopping { return }
            result = job!()
            job = nil
            let notify = onDone
            done.signal()
            notify?()
        }
    }
}
