import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A named POSIX thread running one closure; joinable.
public final class OSThread: @unchecked Sendable {  // `handle` is written once before use
    private var handle = pthread_t()

    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread named `name` (Linux keeps the first 15 bytes).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let rc = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            clinux_set_thread_name(String(box.name.prefix(15)))
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    public func join() {
        pthread_join(handle, nil)
    }

    /// For a thread nobody will join: the system reclaims it when it ends.
    public func detach() {
        pthread_detach(handle)
    }
}
