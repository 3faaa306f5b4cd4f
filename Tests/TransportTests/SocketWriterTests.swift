import Foundation
import Testing
@testable import Transport

/// A writer used from a thread that is not the loop's: bytes arrive whole and in order
/// through a socket that fills up, a peer that reads nothing is cut off at the bound, and
/// a closed writer takes nothing.
@Suite(.serialized) struct SocketWriterTests {
    /// A connected non-blocking pair with a small send buffer, so back-pressure comes soon.
    private func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw SystemError.last("socketpair") }
        var small: Int32 = 16 << 10
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        return (fds[0], fds[1])
    }

    private func makeWriter(_ fd: Int32, on loop: EventLoop, bound: Int, failures: Locked<[String]>) -> SocketWriter? {
        loop.syncCall {
            try? SocketWriter(socket: fd, loop: loop, pendingBytesMax: bound) { reason in failures.withLock { $0.append(reason) } }
        }
    }

    /// Reads until `count` bytes arrived or the deadline passed.
    private func read(_ fd: Int32, count: Int, deadline: Date) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while received.count < count && Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got > 0 { received += buffer[..<got] }
        }
        return received
    }

    @Test func bytesFromAnotherThreadArriveInOrderThroughAFullSocket() throws {
        let group = try EventLoopGroup(count: 1, name: "test-writer")
        defer { group.shutdown() }
        let (local, remote) = try socketPair()
        defer { close(local); close(remote) }
        let failures = Locked<[String]>([])
        let writer = try #require(makeWriter(local, on: group.loops[0], bound: 64 << 20, failures: failures))
        // 4 MiB in chunks of varying sizes, each byte a function of its position.
        var expected: [UInt8] = []
        var chunk = 1
        while expected.count < 4 << 20 {
            let start = expected.count
            let bytes = (0..<(chunk * 997 % 70_000 + 1)).map { UInt8(truncatingIfNeeded: (start + $0) * 31 / 7) }
            #expect(writer.write(bytes))
            expected += bytes
            chunk += 1
        }
        let received = read(remote, count: expected.count, deadline: Date().addingTimeInterval(30))
        #expect(received.count == expected.count)
        #expect(received == expected)
        #expect(failures.withLock { $0 }.isEmpty)
        group.loops[0].syncCall { writer.close() }
    }

    @Test func aPeerThatReadsNothingIsCutOffAtTheBound() throws {
        let group = try EventLoopGroup(count: 1, name: "test-writer")
        defer { group.shutdown() }
        let (local, remote) = try socketPair()
        defer { close(local); close(remote) }
        let failures = Locked<[String]>([])
        let writer = try #require(makeWriter(local, on: group.loops[0], bound: 1 << 20, failures: failures))
        let block = [UInt8](repeating: 7, count: 64 << 10)
        var accepted = 0
        while accepted < 100 && writer.write(block) { accepted += 1 }
        // Up to the bound plus what the socket holds; then refused, and the owner told why.
        #expect(accepted > 0 && accepted < 100)
        let deadline = Date().addingTimeInterval(10)
        while failures.withLock({ $0.isEmpty }) && Date() < deadline { usleep(1000) }
        #expect(failures.withLock { $0.first?.contains("unread") } == true)
        #expect(!writer.write([1]))
        group.loops[0].syncCall { writer.close() }
    }

    @Test func aClosedWriterTakesNothingAndLeavesTheSocketOpen() throws {
        let group = try EventLoopGroup(count: 1, name: "test-writer")
        defer { group.shutdown() }
        let (local, remote) = try socketPair()
        defer { close(local); close(remote) }
        let failures = Locked<[String]>([])
        let writer = try #require(makeWriter(local, on: group.loops[0], bound: 1 << 20, failures: failures))
        #expect(writer.write(Array("before".utf8)))
        group.loops[0].syncCall { writer.close() }
        #expect(!writer.write(Array("after".utf8)))
        // The writer wrote through its own descriptor: the original still works.
        #expect(Array("own".utf8).withUnsafeBytes { send(local, $0.baseAddress, $0.count, 0) } == 3)
        let received = read(remote, count: 9, deadline: Date().addingTimeInterval(10))
        #expect(received == Array("beforeown".utf8))
    }
}
