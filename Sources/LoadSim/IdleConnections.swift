import ChaparCore
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// Opens many greeted, idle connections to any target, for measuring a server's memory
/// per connection. They stay open until the process exits.
public enum IdleConnections {
    /// Returns how many connections completed HELLO/WELCOME.
    public static func open(target: Target, count: Int) throws -> Int {
        var sockets: [Int32] = []
        sockets.reserveCapacity(count)
        let hello = target.makeCodec().greeting()
        for index in 0..<count {
            let fd = try connectTCP(to: target.addresses[index % target.addresses.count])
            _ = hello.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            sockets.append(fd)
        }
        // Every target answers the greeting (WELCOME, INFO, the HELLO map); wait for each (bounded).
        var welcomed = 0
        var buffer = [UInt8](repeating: 0, count: 512)
        for fd in sockets {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 10_000) == 1,
               buffer.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, 0) }) > 0 {
                welcomed += 1
            }
        }
        return welcomed
    }
}
