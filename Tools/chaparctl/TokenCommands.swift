import Auth
import ChaparCore
import FoundationEssentials
import Transport

enum TokenCommands {
    static let secretUsage = """
        USAGE: chaparctl secret

        Prints a new random token secret (64 hex characters). Save it to a file readable
        only by the nodes and the token issuer, and start nodes with --token-secret-file.
        """

    static let tokenUsage = """
        USAGE: chaparctl token --secret-file FILE --subject NAME [--ttl SECONDS]

        Prints a token for NAME (1-64 of A-Z a-z 0-9 _ . @ -) valid for SECONDS
        (default 86400), to pass as `--token` to pub and sub.
        """

    static func secret(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(secretUsage); return 0 }
        try arguments.rejectUnknown(["help"])
        emit(TokenSecret.generateHex())
        return 0
    }

    static func token(_ arguments: CommandArguments) throws -> Int32 {
        if arguments.has("help") { print(tokenUsage); return 0 }
        try arguments.rejectUnknown(["secret-file", "subject", "ttl", "help"])
        guard let path = arguments.option("secret-file"), let subject = arguments.option("subject") else {
            throw CommandArguments.Failure("token needs --secret-file FILE and --subject NAME\n\n\(tokenUsage)")
        }
        guard AccessToken.isValidSubject(subject) else {
            throw CommandArguments.Failure("--subject must be 1-64 of A-Z a-z 0-9 _ . @ -")
        }
        let ttl = try arguments.integer("ttl", in: 1...(10 * 365 * 86_400)) ?? 86_400
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw CommandArguments.Failure("cannot read \(path)")
        }
        let secret: TokenSecret
        do { secret = try TokenSecret(Array(bytes)) } catch { throw CommandArguments.Failure(error.description) }
        emit(AccessToken(subject: subject, expiresAt: WallClock.nowMs() / 1000 + Int64(ttl)).signed(with: secret))
        return 0
    }
}
