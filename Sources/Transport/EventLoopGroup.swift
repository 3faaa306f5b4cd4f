/// A fixed set of event loops, one thread each.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads: [OSThread]

    /// Starts `count` loops (at least one), each on its own thread named `name-N`.
    public init(count: Int, name: String) throws(SystemError) {
        var loops: [EventLoop] = []
        for index in 0..<max(1, count) { loops.append(try EventLoop(index: index)) }
        self.loops = loops
        threads = loops.map { loop in OSThread(name: "\(name)-\(loop.index)") { loop.run() } }
    }

    /// Stops every loop and waits for their threads.
    public func shutdown() {
        for loop in loops { loop.stop() }
        for thread in threads { thread.join() }
    }

    /// Runs `job` on loop `index % count` and waits for it. MUST NOT be called from a loop thread.
    public func sync<T: Sendable>(on index: Int = 0, _ job: @escaping @Sendable () -> T) -> T {
        loops[index % loops.count].syncCall(job)
    }
}
