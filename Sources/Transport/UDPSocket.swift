import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking UDP socket on one loop, bound to the node's own address. Datagrams
/// are handed to `onDatagram` on the loop thread; sends never block (a full socket
/// buffer drops the datagram, as the network could have).
public final class UDPSocket: IOHandler {
    // guarded by: loop thread
    public let loop: EventLoop
    public let address: SocketAddress
    private var fd: Int32
    private var token: UInt64 = 0
    private let onDatagram: (UnsafeRawBufferPointer, SocketAddress?) -> Void
    /// Datagrams read per readiness event, so a flood cannot starve the loop.
    static let readsPerEventMax = 64
    public private(set) var droppedSends: UInt64 = 0

    public init(
        address: SocketAddress, loop: EventLoop, onDatagram: @escaping (UnsafeRawBufferPointer, SocketAddress?) -> Void
    ) throws(SystemError) {
        loop.assertInLoop()
        self.loop = loop
        self.onDatagram = onDatagram
        let fd = clinux_socket_udp(address.family)
        if fd < 0 { throw .last("socket(UDP)") }
        self.fd = fd
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        if bound != 0 { let error = SystemError.last("bind(UDP \(address))"); Glibc.close(fd); throw error }
        self.address = SocketAddress.local(of: fd) ?? address
        token = try loop.register(fd: fd, events: CLINUX_EPOLLIN, handler: self)
    }

    public func send(_ bytes: [UInt8], to destination: SocketAddress) {
        let sent = bytes.withUnsafeBytes { raw in
            destination.withSockaddr { sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), $0, $1) }
        }
        if sent < 0 { droppedSends += 1 }
    }

    public func handle(events: UInt32) {
        let buffer = loop.receiveBuffer
        for _ in 0..<Self.readsPerEventMax {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length) }
            }
            if count < 0 { return }
            onDatagram(UnsafeRawBufferPointer(rebasing: buffer[..<count]), withUnsafePointer(to: &storage) { SocketAddress($0) })
        }
    }

    public func close() {
        guard fd >= 0 else { return }
        loop.deregister(fd: fd, token: token)
        Glibc.close(fd)
        fd = -1
    }
}
