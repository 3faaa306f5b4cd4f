import Dispatch
import Synchronization

extension EventLoop {
    /// Runs `job` on the loop and blocks the caller until it returns. For setup and
    /// tools; MUST NOT be called on a loop thread (it would wait for itself).
    public func syncCall<T: Sendable>(_ job: @escaping @Sendable () -> T) -> T {
        precondition(!inLoop, "syncCall from the loop's own thread would deadlock")
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let accepted = execute {
            let value = job()
            result.withLock { $0 = value }
            done.signal()
        }
        precondition(accepted, "event loop inbox refused a synchronous call")
        done.wait()
        return result.withLock { $0! }
    }
}
