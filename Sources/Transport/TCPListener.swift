import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on one loop. Accepted sockets are handed to `onAccept`
/// on the listener's loop thread; the owner decides which loop adopts them.
public final class TCPListener: IOHandler {
    // guarded by: loop thread (after init)
    public let loop: EventLoop
    public let address: SocketAddress
    private var fd: Int32
    private var token: UInt64 = 0
    private let onAccept: (Int32, SocketAddress?) -> Void
    /// Connections accepted per readiness event, so a connect storm cannot starve the loop.
    static let acceptsPerEventMax = 256

    /// Binds and listens on `address` (port 0 picks a free port; see `address`).
    public init(
        address: SocketAddress, loop: EventLoop, backlog: Int32 = 4096,
        onAccept: @escaping (Int32, SocketAddress?) -> Void
    ) throws(SystemError) {
        loop.assertInLoop()
        self.loop = loop
        self.onAccept = onAccept
        let fd = clinux_socket_tcp(address.family, 1)
        if fd < 0 { throw .last("socket") }
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        if bound != 0 { let error = SystemError.last("bind(\(address))"); Glibc.close(fd); throw error }
        if listen(fd, backlog) != 0 { let error = SystemError.last("listen"); Glibc.close(fd); throw error }
        self.address = SocketAddress.local(of: fd) ?? address
        token = try loop.register(fd: fd, events: CLINUX_EPOLLIN, handler: self)
    }

    public func handle(events: UInt32) {
        for _ in 0..<Self.acceptsPerEventMax {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { clinux_accept(fd, $0, &length) }
            }
            if client < 0 {
                // EAGAIN: drained. EMFILE/ENFILE: out of descriptors; level-triggered epoll
                // retries next turn. Either way, stop for now.
                return
            }
            onAccept(client, withUnsafePointer(to: &storage) { SocketAddress($0) })
        }
    }

    public func close() {
        guard fd >= 0 else { return }
        loop.deregister(fd: fd, token: token)
        Glibc.close(fd)
        fd = -1
    }
}

/// Connects a TCP socket, waiting at most `timeoutMs`, and returns it non-blocking.
/// Blocks the calling thread: for tools and clients, never for a loop thread.
public func connectTCP(to address: SocketAddress, timeoutMs: Int32 = 5000) throws(SystemError) -> Int32 {
    let fd = clinux_socket_tcp(address.family, 1)
    if fd < 0 { throw .last("socket") }
    let rc = address.withSockaddr { connect(fd, $0, $1) }
    if rc != 0 && errno != EINPROGRESS {
        let error = SystemError.last("connect(\(address))")
        close(fd)
        throw error
    }
    if rc != 0 {
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&poller, 1, timeoutMs)
        if ready <= 0 {
            close(fd)
            throw SystemError(call: "connect(\(address))", errno: ready == 0 ? ETIMEDOUT : errno)
        }
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        if code != 0 {
            close(fd)
            throw SystemError(call: "connect(\(address))", errno: code)
        }
    }
    return fd
}
