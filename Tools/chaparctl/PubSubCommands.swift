import ChaparCore
import Client
import Transport
import Wire

enum PubSubCommands {
    static let pubUsage = """
        USAGE: chaparctl pub (--server HOST:PORT | --dir DIR [--node ID]) [--token TOKEN] CHANNEL MESSAGE

        Publishes MESSAGE (its UTF-8 bytes) to CHANNEL and prints the acknowledged offset
        once it is stored durably (clustered: on a majority of the shard's replicas).
        --dir picks a node of the local cluster in DIR/cluster.json (--node, or the first
        that accepts a connection).
        """

    static let subUsage = """
        USAGE: chaparctl sub (--server HOST:PORT | --dir DIR [--node ID]) [--token TOKEN] CHANNEL
                             [--from earliest|latest|N] [--count K]

        Prints messages of CHANNEL, one per line: OFFSET, a space, the payload (UTF-8 with
        \\n and \\\\ escaped, or 0x-prefixed hex when it is not UTF-8). Starts at --from
        (default: latest). With --count, exits after K messages; without, follows live
        until interrupted.
        """

    static func pub(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(pubUsage); return 0 }
        try arguments.rejectUnknown(["server", "dir", "node", "token", "help"])
        guard arguments.positionals.count == 2 else { throw CommandArguments.Failure("pub needs CHANNEL and MESSAGE\n\n\(pubUsage)") }
        let client = try await connect(arguments)
        defer { client.close() }
        let ack = try await client.publish(arguments.positionals[0], Array(arguments.positionals[1].utf8))
        emit("\(ack.offset)")
        return 0
    }

    static func sub(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(subUsage); return 0 }
        try arguments.rejectUnknown(["server", "dir", "node", "token", "from", "count", "help"])
        guard arguments.positionals.count == 1 else { throw CommandArguments.Failure("sub needs CHANNEL\n\n\(subUsage)") }
        let from: StartPosition
        switch arguments.option("from") ?? "latest" {
        case "earliest": from = .earliest
        case "latest": from = .latest
        case let text:
            guard let offset = UInt64(text), offset >= 1 else {
                throw CommandArguments.Failure("--from must be earliest, latest or an offset ≥ 1, not '\(text)'")
            }
            from = .offset(offset)
        }
        var remaining: Int?
        if let text = arguments.option("count") {
            guard let count = Int(text), count >= 1 else {
                throw CommandArguments.Failure("--count must be a whole number ≥ 1, not '\(text)'")
            }
            remaining = count
        }
        let client = try await connect(arguments)
        defer { client.close() }
        let stream = try await client.subscribe(arguments.positionals[0], from: from)
        for try await message in stream {
            emit("\(message.offset) \(render(message.payload))")
            if let left = remaining {
                remaining = left - 1
                if left - 1 == 0 { break }
            }
        }
        return 0
    }

    static func connect(_ arguments: CommandArguments) async throws -> ChaparClient {
        let token = arguments.option("token").map { Array($0.utf8) }
        if let server = arguments.option("server") {
            return try await ChaparClient.connect(to: try SocketAddress(parsing: server), clientName: "chaparctl", token: token)
        }
        guard let dir = arguments.option("dir") else {
            throw CommandArguments.Failure("--server HOST:PORT or --dir DIR is required")
        }
        var nodes = try ClusterCommands.readCluster(dir).nodes
        if let id = arguments.option("node") {
            nodes = nodes.filter { $0.id == id }
            if nodes.isEmpty { throw CommandArguments.Failure("no node '\(id)' in \(dir)/cluster.json") }
        }
        var lastError: Error = CommandArguments.Failure("no nodes in \(dir)/cluster.json")
        for node in nodes {
            do {
                return try await ChaparClient.connect(to: try SocketAddress(parsing: node.client), clientName: "chaparctl", token: token)
            } catch { lastError = error }
        }
        throw lastError
    }

    /// Payload as one line of text.
    static func render(_ payload: [UInt8]) -> String {
        guard let text = String(validating: payload, as: UTF8.self) else {
            let digits = Array("0123456789abcdef")
            return "0x" + String(payload.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
        }
        return text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
