import ChaparCore
import Client
import Transport
import Wire

enum PubSubCommands {
    static let pubUsage = """
        USAGE: chaparctl pub --server HOST:PORT [--token TOKEN] CHANNEL MESSAGE

        Publishes MESSAGE (its UTF-8 bytes) to CHANNEL and prints the acknowledged offset
        once the node has stored it durably.
        """

    static let subUsage = """
        USAGE: chaparctl sub --server HOST:PORT [--token TOKEN] CHANNEL [--from earliest|latest|N] [--count K]

        Prints messages of CHANNEL, one per line: OFFSET, a space, the payload (UTF-8 with
        \\n and \\\\ escaped, or 0x-prefixed hex when it is not UTF-8). Starts at --from
        (default: latest). With --count, exits after K messages; without, follows live
        until interrupted.
        """

    static func pub(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(pubUsage); return 0 }
        try arguments.rejectUnknown(["server", "token", "help"])
        guard arguments.positionals.count == 2 else { throw CommandArguments.Failure("pub needs CHANNEL and MESSAGE\n\n\(pubUsage)") }
        let client = try await connect(arguments)
        defer { client.close() }
        let ack = try await client.publish(arguments.positionals[0], Array(arguments.positionals[1].utf8))
        emit("\(ack.offset)")
        return 0
    }

    static func sub(_ arguments: CommandArguments) async throws -> Int32 {
        if arguments.has("help") { print(subUsage); return 0 }
        try arguments.rejectUnknown(["server", "token", "from", "count", "help"])
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
        guard let server = arguments.option("server") else {
            throw CommandArguments.Failure("--server HOST:PORT is required")
        }
        let address = try SocketAddress(parsing: server)
        return try await ChaparClient.connect(
            to: address, clientName: "chaparctl", token: arguments.option("token").map { Array($0.utf8) })
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
