/// The cluster's gossip keys. Packets are sent under the primary key and accepted under
/// any key of the ring, so keys rotate without a flag day: add the new key everywhere,
/// make it primary everywhere, then remove the old one.
public struct GossipKeyring: Sendable {
    public struct Key: Equatable, Sendable {
        public var id: UInt8
        public var bytes: [UInt8]

        public init(id: UInt8, bytes: [UInt8]) {
            self.id = id
            self.bytes = bytes
        }
    }

    public let primary: Key
    private let keys: [UInt8: [UInt8]]
    /// Domain separation: a gossip MAC can never be mistaken for any other HMAC use.
    static let context = Array("chapar-gossip-v1".utf8)

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case shortKey(id: UInt8)
        case duplicateId(UInt8)
        case malformed(line: Int)

        public var description: String {
            switch self {
            case .empty: "the gossip keyring has no key"
            case .shortKey(let id): "gossip key \(id) is shorter than 32 bytes"
            case .duplicateId(let id): "gossip key id \(id) appears twice"
            case .malformed(let line): "keyring line \(line) is not 'ID HEX' (ID 0-255, HEX at least 64 hex digits)"
            }
        }
    }

    /// `keys[0]` is the primary.
    public init(_ keys: [Key]) throws(Problem) {
        guard let first = keys.first else { throw .empty }
        var map: [UInt8: [UInt8]] = [:]
        for key in keys {
            guard key.bytes.count >= 32 else { throw .shortKey(id: key.id) }
            guard map[key.id] == nil else { throw .duplicateId(key.id) }
            map[key.id] = key.bytes
        }
        primary = first
        self.keys = map
    }

    /// Parses a keyring file: one key per line, `ID HEX`, the first line primary;
    /// blank lines and `#` comments are ignored.
    public init(text: String) throws(Problem) {
        var keys: [Key] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = trimmed.split(separator: " ", omittingEmptySubsequences: true)
            if fields.isEmpty { continue }
            guard fields.count == 2, let id = UInt8(fields[0]), let bytes = Self.hexBytes(fields[1]), bytes.count >= 32 else {
                throw .malformed(line: index + 1)
            }
            keys.append(Key(id: id, bytes: bytes))
        }
        try self.init(keys)
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    /// The tag for `body` under the primary key.
    public func mac(_ body: [UInt8]) -> [UInt8] {
        HMACSHA256.mac(key: primary.bytes, data: Self.context + body)
    }

    /// Whether `tag` is right for `body` under key `keyId`; nil when the ring lacks the key.
    public func verify(keyId: UInt8, body: ArraySlice<UInt8>, tag: ArraySlice<UInt8>) -> Bool? {
        guard let key = keys[keyId] else { return nil }
        return HMACSHA256.equal(HMACSHA256.mac(key: key, data: Self.context + Array(body)), tag)
    }
}
