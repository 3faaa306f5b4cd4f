import ChaparCore
import FoundationEssentials
import Membership
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// The admin HTTP/1.1 API (docs/OPERATIONS.md): `GET /healthz`, `GET /v1/members`, and on
/// clustered nodes `GET /v1/shards`, `GET /v1/channels/NAME`, `GET /v1/cluster` and the
/// signed controller commands `POST /v1/cluster/COMMAND`.
/// One request per connection, answered and closed. Lives on loop 0 beside the gossip
/// service, whose view it reads directly.
final class AdminServer: @unchecked Sendable {  // guarded by: loop 0's thread
    let loop: EventLoop
    private var listener: TCPListener?
    private var requests: [AdminRequest] = []
    let members: () -> [Member]?
    /// This node's shard replicas (nil: not clustered).
    var shards: () -> [ShardStatus]? = { nil }
    /// A channel's shard and this node's view of it, answered later (nil: not clustered).
    var channel: (String, @escaping (JSONValue?) -> Void) -> Void = { _, reply in reply(nil) }
    /// The controller endpoints (nil: not clustered).
    var controller: ControllerEndpoint?
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

    /// Answers a request, at once or (channel info, which waits for a read index) later.
    func respond(
        method: String, target: String, authorization: String? = nil, reply: @escaping (Int, String, [UInt8]) -> Void
    ) {
        let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
        if path == "/v1/cluster" || path.hasPrefix("/v1/cluster/") {
            guard let controller else { return reply(404, "text/plain", Array("not clustered (no --shards)\n".utf8)) }
            return controller.handle(
                method: method, path: path, query: Self.query(target), target: target, authorization: authorization, reply: reply)
        }
        guard method == "GET", path.hasPrefix("/v1/channels/") else {
            let (status, type, body) = respond(method: method, path: path)
            return reply(status, type, body)
        }
        let name = Self.percentDecoded(String(path.dropFirst("/v1/channels/".count)))
        channel(name) { info in
            guard let info else { return reply(404, "text/plain", Array("not clustered (no --shards)\n".utf8)) }
            reply(200, "application/json", Self.json(info))
        }
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
            return (200, "application/json", Self.json(.array(array)))
        case "/v1/shards":
            guard let rows = shards() else { return (404, "text/plain", Array("not clustered (no --shards)\n".utf8)) }
            return (200, "application/json", Self.json(.array(rows.map(\.json))))
        default:
            return (404, "text/plain", Array("no such endpoint: \(path)\n".utf8))
        }
    }
}

extension AdminServer {
    static func json(_ value: JSONValue) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { Array($0) + [10] } ?? Array("null\n".utf8)
    }

    /// `a=1&b=x` after the `?`, percent-decoded.
    static func query(_ target: String) -> [String: String] {
        guard let mark = target.firstIndex(of: "?") else { return [:] }
        var fields: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            fields[percentDecoded(String(parts[0]))] = percentDecoded(String(parts[1]))
        }
        return fields
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ShardStatus {
    var json: JSONValue {
        .object([
            "shard": .number(Double(shard)), "epoch": .number(Double(epoch)), "replicas": .array(replicas.map { .string($0) }), "role": .string(role),
            "term": .number(Double(term)), "leader": .string(leader), "commit": .number(Double(commit)),
            "last_index": .number(Double(lastIndex)), "log_start": .number(Double(logStart)),
            "repairing_until": repairingUntil.map { .number(Double($0)) } ?? .null,
            "voters": .array(voters.map { .string($0) }), "learners": .array(learners.map { .string($0) }),
        ])
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
        let lines = head.split(separator: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        let authorization = lines.dropFirst().first { $0.lowercased().hasPrefix("authorization:") }
            .map { String($0.dropFirst("authorization:".count).drop(while: { $0 == " " })) }
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return reply(400, "text/plain", Array("malformed request line\n".utf8))
        }
        buffer = []
        server.respond(method: String(parts[0]), target: String(parts[1]), authorization: authorization) { [weak self] status, type, body in
            self?.reply(status, type, body)
        }
    }

    private func reply(_ status: Int, _ type: String, _ body: [UInt8]) {
        let reason = [
            200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            421: "Misdirected Request", 431: "Request Header Fields Too Large", 503: "Service Unavailable",
        ][status] ?? "Error"
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        connection.send(Array(head.utf8) + body)
        connection.closeAfterFlush()
        buffer = []
    }

    func connectionWritable(_ connection: ByteStream) {}

    func connectionClosed(_ connection: ByteStream, error: SystemError?) { server.finished(self) }
}
