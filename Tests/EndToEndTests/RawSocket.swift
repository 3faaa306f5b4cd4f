import ChaparCore
import Foundation
import Transport
import Wire

/// A blocking socket that speaks bytes, for feeding a node malformed input and reading
/// exactly what it answers.
final class RawSocket {
    let fd: Int32
    private var reader = FrameReader()
    private var received: [Envelope] = []
    private(set) var closedByPeer = false

    init(_ address: String) throws {
        fd = try connectTCP(to: SocketAddress(parsing: address))
        // Back to blocking with a receive timeout: reads below wait on the socket.
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    func send(_ frame: Frame, correlation: UInt32 = 1) {
        send(FrameEncoder.encode(Envelope(frame, correlation: correlation)))
    }

    func hello() throws {
        send(.hello(Hello(clientName: "raw")), correlation: 1)
        let reply = try next()
        guard case .welcome = reply.frame else { throw TimedOut(description: "expected WELCOME, got \(reply)") }
    }

    /// The next frame from the node, waiting up to `seconds`.
    func next(seconds: Double = 10) throws -> Envelope {
        let deadline = Date().addingTimeInterval(seconds)
        while received.isEmpty {
            if closedByPeer { throw TimedOut(description: "connection closed before a frame arrived") }
            if Date() > deadline { throw TimedOut(description: "no frame within \(seconds) s") }
            pump()
        }
        return received.removeFirst()
    }

    /// Whatever bytes arrive within one receive timeout (for protocols other than the
    /// client's); notes a close.
    func receiveRaw() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { closedByPeer = true }
        return count > 0 ? Array(buffer[..<count]) : []
    }

    /// Waits until the node closes the connection (read returns 0 or reset).
    func waitForClose(seconds: Double = 10) throws {
        try waitUntil("the node to close the connection", seconds: seconds) {
            pump()
            return closedByPeer
        }
    }

    private func pump() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            closedByPeer = true
            return
        }
        guard count > 0 else { return }
        do {
            try buffer.withUnsafeBytes { raw in
                try reader.feed(UnsafeRawBufferPointer(rebasing: raw[..<count])) { received.append($0) }
            }
        } catch {
            closedByPeer = true
        }
    }
}
