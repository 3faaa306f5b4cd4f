#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch

/// A thread that runs one I/O job at a time for the entry log: the replication thread
/// hands it a cycle's write and sync, runs the cycle's SQLite statements meanwhile, and
/// waits for the result before committing them.
///
/// Why: the direct write and the sync wait for the disk (0.3 ms each under R=3 load on
/// this machine class), and the SQLite work that follows needs only the positions, known
/// before the bytes land — so the two can overlap instead of adding up. Acknowledgements
/// of entries synced earlier, decided by that SQLite work, go out sooner too.
final class EntryLogFlusher: @unchecked Sendable {  // `job`, `result`: handed over by the semaphores
    private let work = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var job: (() -> Int32?)?
    private var result: Int32?
    private var busy = false
    private var stopping = false
    private var thread = pthread_t()

    init() {
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let flusher = Unmanaged<EntryLogFlusher>.fromOpaque(raw!).takeRetainedValue()
            clinux_set_thread_name("chapar-entrylog")
            flusher.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Starts `body` (returning an errno on failure) on the thread; one job at a time.
    func start(_ body: @escaping () -> Int32?) {
        precondition(!busy, "an entry-log write is already in flight")
        busy = true
        job = body
        work.signal()
    }

    /// Waits for the job started last; its errno, or nil when it succeeded.
    func finish() -> Int32? {
        precondition(busy, "no entry-log write in flight")
        done.wait()
        busy = false
        return result
    }

    var inFlight: Bool { busy }

    /// Ends the thread (after the job in flight, which the caller must have finished).
    func stop() {
        precondition(!busy, "stopping with an entry-log write in flight")
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
            done.signal()
        }
    }
}
