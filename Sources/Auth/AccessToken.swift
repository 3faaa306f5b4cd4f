import COpenSSL

/// Bearer tokens for HELLO: `v1:SUBJECT:EXPIRES:SIGNATURE`, where EXPIRES is Unix seconds
/// and SIGNATURE is the lowercase hex HMAC-SHA256, under the cluster's token secret, of
/// `v1:SUBJECT:EXPIRES`. A node holding the secret can check a token without any lookup.
public struct AccessToken: Equatable, Sendable {
    public var subject: String
    public var expiresAt: Int64

    public init(subject: String, expiresAt: Int64) {
        self.subject = subject
        self.expiresAt = expiresAt
    }

    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(String)
        case badSignature
        case expired(at: Int64)

        public var description: String {
            switch self {
            case .malformed(let why): "malformed token: \(why)"
            case .badSignature: "token signature does not match"
            case .expired(let at): "token expired at \(at) (Unix seconds)"
            }
        }
    }

    /// Subjects: 1-64 bytes of letters, digits and `_ - . @`.
    public static func isValidSubject(_ subject: String) -> Bool {
        !subject.isEmpty && subject.utf8.count <= 64 && subject.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2D || byte == 0x2E || byte == 0x40
        }
    }

    /// The token text, signed with `secret`.
    public func signed(with secret: TokenSecret) -> String {
        precondition(Self.isValidSubject(subject), "invalid token subject")
        let body = "v1:\(subject):\(expiresAt)"
        return body + ":" + Self.hex(secret.mac(Array(body.utf8)))
    }

    /// Checks `text` against `secret` at wall time `now` (Unix seconds).
    public static func verify(_ text: [UInt8], secret: TokenSecret, now: Int64) throws(Problem) -> AccessToken {
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].elementsEqual("v1".utf8) else {
            throw .malformed("expected v1:SUBJECT:EXPIRES:SIGNATURE")
        }
        let subject = String(decoding: parts[1], as: UTF8.self)
        guard isValidSubject(subject) else { throw .malformed("subject must be 1-64 of [A-Za-z0-9_.@-]") }
        guard let expires = Int64(String(decoding: parts[2], as: UTF8.self)) else { throw .malformed("EXPIRES is not a number") }
        guard parts[3].count == 64 else { throw .malformed("SIGNATURE must be 64 hex digits") }
        let body = Array(text[..<(text.count - 65)])
        let expected = Array(hex(secret.mac(body)).utf8)
        guard HMACSHA256.equal(expected, parts[3]) else { throw .badSignature }
        guard expires > now else { throw .expired(at: expires) }
        return AccessToken(subject: subject, expiresAt: expires)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The cluster's token secret: at least 32 bytes, usually read from a file.
public struct TokenSecret: Sendable {
    let bytes: [UInt8]

    public static let bytesMin = 32

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case tooShort(Int)
        public var description: String {
            switch self {
            case .tooShort(let count): "token secret is \(count) bytes; at least \(TokenSecret.bytesMin) are required"
            }
        }
    }

    /// Trailing newlines (as editors and `echo` leave them) are not part of the secret.
    public init(_ bytes: [UInt8]) throws(Problem) {
        var trimmed = bytes
        while let last = trimmed.last, last == 0x0A || last == 0x0D { trimmed.removeLast() }
        guard trimmed.count >= Self.bytesMin else { throw .tooShort(trimmed.count) }
        self.bytes = trimmed
    }

    /// For known-answer tests only: any key length.
    init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// A new random secret as 64 hex characters (from OpenSSL's CSPRNG).
    public static func generateHex() -> String {
        var raw = [UInt8](repeating: 0, count: 32)
        precondition(RAND_bytes(&raw, 32) == 1, "RAND_bytes failed")
        return AccessToken.hex(raw)
    }

    func mac(_ data: [UInt8]) -> [UInt8] { HMACSHA256.mac(key: bytes, data: data) }
}
