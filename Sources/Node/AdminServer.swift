import ChaparCore
import FoundationEssentials
import Membership
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// The admin HTTP/1.1 API (docs/OPERATIONS.md): `GET /healthz`, `GET /v1/members`.
/// One request per connection, answered and closed. Lives on loop 0 beside the gossip
/// service, whose view it reads directly.
final class AdminServer: @unchecked Sendable {  // guarded by: loop 0's thread
    let loop: EventLoop
    private var listener: TCPListener?
    private var requests: [AdminRequest] = []
    let members: () -> [Member]?
    static let requestBytesMax = 8192

    init(address: SocketAddress, loop: EventLoop, members: @escaping () -> [Member]?) throws(SystemError) {
        self.loop = loop
        self.members = members
        listener = try TCPListener(address: address, loop: loop) { [unowned self] fd, peer in
            guard let connection = try? TCPConnection(fd: fd, loop: loop, peer: peer) else { Glibc.close(fd); return }
            let request = AdminRequest(server: self, connection: connection)
            connection.delegate = request
            self.requests.append(request)
            loop.schedule(afterMs: 5000) { [weak request] in request?.connection.close() }
        }
    }

    var address: SocketAddress? { listener?.address }

    func finished(_ request: AdminRequest) { requests.removeAll { $0 === request } }

    func close() {
        listener?.close()
        listener = nil
    }

    /// Status line, content type and body for a request line such as `GET /v1/members HTTP/1.1`.
    func respond(method: String, path: String) -> (Int, String, [UInt8]) {
        guard method == "GET" else { return (405, "text/plain", Array("only GET\n".utf8)) }
        switch path {
        case "/healthz":
            return (200, "text/plain", Array("ok\n".utf8))
        case "/v1/members":
            guard let view = members() else { return (404, "text/plain", Array("membership is off (no --gossip)\n".utf8)) }
            let array: [JSONValue] = view.map { member in
                .object([
                    "id": .string(member.id), "state": .string(member.status.description),
                    "incarnation": .number(Double(member.incarnation)), "zone": .string(member.info.zone),
                    "client": .string(member.info.client), "peer": .string(member.info.peer),
                    "gossip": .string(member.info.gossip), "admin": .string(member.info.admin),
                    "weight": .number(Double(member.info.weight)), "draining": .bool(member.info.draining),
                    "map_epoch": .number(Double(member.info.mapEpoch)),
                ])
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(JSONValue.array(array))).map { Array($0) + [10] } ?? Array("[]\n".utf8)
            return (200, "application/json", body)
        default:
            return (404, "text/plain", Array("no such endpoint: \(path)\n".utf8))
        }
    }
}

final class AdminRequest: ConnectionDelegate {  // guarded by: loop 0's thread
    unowned let server: AdminServer
    let connection: ByteStream
    private var buffer: [UInt8] = []

    init(server: AdminServer, connection: ByteStream) {
        self.server = server
        self.connection = connection
    }

    func connection(_ connection: ByteStream, received bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        guard let end = buffer.firstRange(of: [13, 10, 13, 10]) else {
            if buffer.count > AdminServer.requestBytesMax { reply(431, "text/plain", Array("request too large\n".utf8)) }
            return
        }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let parts = head.split(separator: "\r\n").first?.split(separator: " ") ?? []
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return reply(400, "text/plain", Array("malformed request line\n".utf8))
        }
        let (status, type, body) = server.respond(method: String(parts[0]), path: String(parts[1].split(separator: "?").first ?? ""))
        reply(status, type, body)
    }

    private func reply(_ status: Int, _ type: String, _ body: [UInt8]) {
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large"][status] ?? "Error"
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        connection.send(Array(head.utf8) + body)
        connection.closeAfterFlush()
        buffer = []
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) { server.finished(self) }
}
