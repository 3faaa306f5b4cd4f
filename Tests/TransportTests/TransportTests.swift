import Foundation
import Synchronization
import Testing
@testable import Transport

@Suite struct TimerQueueTests {
    @Test func firesInDeadlineOrderAndSkipsCancelled() {
        var queue = TimerQueue()
        let fired = Locked<[Int]>([])
        _ = queue.add(deadline: 30) { fired.withLock { $0.append(3) } }
        _ = queue.add(deadline: 10) { fired.withLock { $0.append(1) } }
        let cancelled = queue.add(deadline: 20) { fired.withLock { $0.append(2) } }
        _ = queue.add(deadline: 40) { fired.withLock { $0.append(4) } }
        queue.cancel(cancelled)
        #expect(queue.nextTimeoutMs(now: 0) == 10)
        for job in queue.takeDue(now: 35) { job() }
        #expect(fired.withLock { $0 } == [1, 3])
        #expect(queue.nextTimeoutMs(now: 35) == 5)
        for job in queue.takeDue(now: 100) { job() }
        #expect(queue.nextTimeoutMs(now: 100) == -1)
    }
}

@Suite struct ProcessMemoryTests {
    @Test func mallocAcceptsTheSettings() {
        #expect(ProcessMemory.keepFreedBuffers())
    }
}

@Suite struct SocketAddressTests {
    @Test func parsesIPv4IPv6AndLocalhost() throws {
        #expect(try SocketAddress(parsing: "127.0.0.5:4600") == SocketAddress(host: "127.0.0.5", port: 4600))
        #expect(try SocketAddress(parsing: "localhost:0") == SocketAddress(host: "127.0.0.1", port: 0))
        #expect(try SocketAddress(parsing: "[::1]:80").description == "[::1]:80")
    }

    @Test(arguments: ["", "nohost", "1.2.3.4", "1.2.3.4:99999", "example.com:80", ":80", "[::1]80"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: SocketAddress.ParseError.self) { _ = try SocketAddress(parsing: text) }
    }
}

@Suite struct EventLoopTests {
    @Test func executesJobsAndTimersOnItsThread() throws {
        let group = try EventLoopGroup(count: 1, name: "test-loop")
        defer { group.shutdown() }
        let loop = group.loops[0]
        #expect(!loop.inLoop)
        let onLoop = group.sync { loop.inLoop }
        #expect(onLoop)
        let order = Locked<[String]>([])
        group.sync {
            loop.schedule(afterMs: 30) { order.withLock { $0.append("late") } }
            loop.schedule(afterMs: 1) { order.withLock { $0.append("soon") } }
        }
        let deadline = Date().addingTimeInterval(10)
        while order.withLock({ $0.count }) < 2 && Date() < deadline { usleep(1000) }
        #expect(order.withLock { $0 } == ["soon", "late"])
    }

    @Test func tcpRoundTripThroughListenerAndConnection() throws {
        let group = try EventLoopGroup(count: 1, name: "test-tcp")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let echo = EchoServer()
        let address = try listen(group: group, loop: loop, serving: echo)
        let fd = try connectTCP(to: address)
        defer { close(fd) }
        let message = Array("ping through epoll".utf8)
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&poller, 1, 5000)
        #expect(message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == message.count)
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(10)
        while received.count < message.count && Date() < deadline {
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { received += buffer[..<count] } else { usleep(1000) }
        }
        #expect(received == message)
    }

    /// Large sends go out at once or as slices of their own, small ones coalesced: in one
    /// loop turn, mixed, they must still reach the peer whole and in order — also when the
    /// first is written straight away and more than the socket takes (8 MiB).
    @Test(arguments: [false, true]) func largeAndSmallSendsKeepTheirOrder(largeFirst: Bool) throws {
        let large = TCPConnection.ownSliceBytes
        var parts: [[UInt8]] = [
            [UInt8](repeating: 1, count: 10), [UInt8](repeating: 2, count: large),
            [UInt8](repeating: 3, count: 300), [UInt8](repeating: 4, count: large * 3 + 17),
            [UInt8](repeating: 5, count: large - 1), [UInt8](repeating: 6, count: 5),
        ]
        if largeFirst { parts.insert((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }, at: 0) }
        #expect(try delivered(parts) == parts.flatMap { $0 })
    }

    /// A turn of only small sends is written from the coalescing buffer itself; what the
    /// socket does not take (here ~6 MB, far past its buffer) is copied and follows in order.
    @Test func smallSendsPastTheSocketBufferKeepTheirOrder() throws {
        let parts = (0..<6000).map { index in (0..<1000).map { UInt8(truncatingIfNeeded: index &* 13 &+ $0) } }
        #expect(try delivered(parts) == parts.flatMap { $0 })
    }
}

/// What a peer receives (within 20 s) when a connection sends `parts` in one loop turn.
func delivered(_ parts: [[UInt8]]) throws -> [UInt8] {
    let group = try EventLoopGroup(count: 1, name: "test-tcp-turn")
    defer { group.shutdown() }
    let server = ScriptedSender(parts: parts)
    let address = try listen(group: group, loop: group.loops[0], serving: server)
    let fd = try connectTCP(to: address)
    defer { close(fd) }
    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    _ = poll(&poller, 1, 5000)
    var go: UInt8 = 0
    guard send(fd, &go, 1, 0) == 1 else { return [] }
    let expected = parts.reduce(0) { $0 + $1.count }
    var received: [UInt8] = []
    let deadline = Date().addingTimeInterval(20)
    while received.count < expected && Date() < deadline {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count > 0 { received += buffer[..<count] } else { usleep(1000) }
    }
    return received
}

/// A loopback listener whose connections `server` serves; its address.
func listen(group: EventLoopGroup, loop: EventLoop, serving server: some TestServer) throws -> SocketAddress {
    try group.sync { () -> Result<SocketAddress, SystemError> in
        do throws(SystemError) {
            let listener = try TCPListener(address: SocketAddress(host: "127.0.0.1", port: 0), loop: loop) { fd, peer in
                guard let connection = try? TCPConnection(fd: fd, loop: loop, peer: peer) else { return }
                connection.delegate = server
                server.connections.append(connection)
            }
            server.listener = listener
            return .success(listener.address)
        } catch { return .failure(error) }
    }.get()
}

protocol TestServer: ConnectionDelegate, AnyObject, Sendable {
    var listener: TCPListener? { get set }
    var connections: [TCPConnection] { get set }
}

/// Sends its parts, in one loop turn, when the peer sends anything.
final class ScriptedSender: TestServer, @unchecked Sendable {  // guarded by: the test loop thread
    var listener: TCPListener?
    var connections: [TCPConnection] = []
    let parts: [[UInt8]]

    init(parts: [[UInt8]]) { self.parts = parts }

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        for part in parts { connection.send(part) }
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        connections.removeAll { $0 === connection }
    }
}

/// Echoes every byte back: exercises read, queued send and the end-of-turn flush.
final class EchoServer: TestServer, @unchecked Sendable {  // guarded by: the test loop thread
    var listener: TCPListener?
    var connections: [TCPConnection] = []

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        connection.send(Array(bytes))
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) {
        connections.removeAll { $0 === connection }
    }
}

final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
