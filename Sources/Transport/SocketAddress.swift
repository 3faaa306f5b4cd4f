#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address and port, parsed from `HOST:PORT` or `[V6]:PORT`.
/// `localhost` means 127.0.0.1; names are not resolved (nodes are addressed by IP).
public struct SocketAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case format(String)
        public var description: String {
            switch self {
            case .format(let text): "'\(text)' is not HOST:PORT (an IPv4 address, [IPv6] or localhost, and a port 0-65535)"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw .format(text)
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .format(text) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portPart), !hostPart.isEmpty else { throw .format(text) }
        self.init(host: String(hostPart), port: port)
        guard isIPv6 || isIPv4 else { throw .format(text) }
    }

    var isIPv6: Bool {
        var storage = in6_addr()
        return inet_pton(AF_INET6, host, &storage) == 1
    }

    var isIPv4: Bool {
        var storage = in_addr()
        return inet_pton(AF_INET, host, &storage) == 1
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Calls `body` with the C form of the address.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, host, &address.sin6_addr)
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    var family: Int32 { isIPv6 ? AF_INET6 : AF_INET }

    /// Reads the address from a C sockaddr (IPv4 or IPv6).
    init?(_ storage: UnsafePointer<sockaddr_storage>) {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let result: SocketAddress? = storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                var raw = address.pointee.sin_addr
                guard inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil else { return nil }
                return SocketAddress(host: cText(text), port: UInt16(bigEndian: address.pointee.sin_port))
            }
            guard let result else { return nil }
            self = result
        case AF_INET6:
            let result: SocketAddress? = storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                var raw = address.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil else { return nil }
                return SocketAddress(host: cText(text), port: UInt16(bigEndian: address.pointee.sin6_port))
            }
            guard let result else { return nil }
            self = result
        default:
            return nil
        }
    }
}

extension SocketAddress {
    /// The address a socket is bound to (after binding to port 0, the port the kernel chose).
    static func local(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) { SocketAddress($0) }
    }
}

/// A NUL-terminated C string held in an array, as a Swift string.
func cText(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
