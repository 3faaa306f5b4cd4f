import Foundation
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 GET for the admin API: (status, body). Bounded by `timeoutMs`.
func httpGet(_ address: SocketAddress, _ path: String, timeoutMs: Int32 = 5000) throws -> (Int, [UInt8]) {
    try httpRequest(address, method: "GET", path, timeoutMs: timeoutMs)
}

/// A blocking HTTP/1.1 request without a body: (status, body). Bounded by `timeoutMs`.
func httpRequest(
    _ address: SocketAddress, method: String, _ path: String, headers: [String: String] = [:], timeoutMs: Int32 = 5000
) throws -> (Int, [UInt8]) {
    let fd = try connectTCP(to: address, timeoutMs: timeoutMs)
    defer { close(fd) }
    let extra = headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)\r\n" }.joined()
    let length = method == "POST" ? "Content-Length: 0\r\n" : ""
    let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\n\(extra)\(length)Connection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, timeoutMs) == 1 else { throw SystemError(call: "send(\(address))", errno: ETIMEDOUT) }
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if count < 0 && errno != EAGAIN { throw SystemError.last("send(\(address))") }
        sent += max(0, count)
    }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while response.count < 16 << 20 {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMs) == 1 else { throw SystemError(call: "recv(\(address))", errno: ETIMEDOUT) }
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { break }
        if count < 0 { if errno == EAGAIN { continue }; throw SystemError.last("recv(\(address))") }
        response += chunk[..<count]
    }
    guard let split = response.firstRange(of: [13, 10, 13, 10]) else {
        throw SystemError(call: "HTTP response from \(address)", errno: EPROTO)
    }
    let statusLine = String(decoding: response[..<split.lowerBound], as: UTF8.self).split(separator: " ")
    let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
    return (status, Array(response[split.upperBound...]))
}

/// GET `path` on an admin address and parse the JSON body; nil when unreachable, not 200
/// or not JSON of type `T`.
func fetchJSON<T>(_ admin: String, _ path: String, as type: T.Type = [String: Any].self) -> T? {
    guard let address = try? SocketAddress(parsing: admin), let (status, body) = try? httpGet(address, path), status == 200
    else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(body))) as? T
}
