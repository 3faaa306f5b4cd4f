/// The rules for channel names, enforced by the codec and the node alike.
///
/// A channel name is 1 to `Limits.channelBytesMax` bytes of UTF-8. Allowed:
/// ASCII letters and digits, `.`, `_`, `-`, `:`, `/`, `@`, and any non-ASCII letter,
/// mark or digit (so Persian and other scripts work). Not allowed: spaces, controls,
/// punctuation beyond the list, and invalid UTF-8. Names are compared byte for byte.
public enum ChannelName {
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case tooLong(bytes: Int)
        case invalidUTF8
        case forbiddenCharacter(UInt32)

        public var description: String {
            switch self {
            case .empty: "channel name is empty"
            case .tooLong(let bytes): "channel name is \(bytes) bytes; the limit is \(Limits.channelBytesMax)"
            case .invalidUTF8: "channel name is not valid UTF-8"
            case .forbiddenCharacter(let scalar):
                "channel name contains U+\(String(scalar, radix: 16, uppercase: true)), which is not allowed"
            }
        }
    }

    /// Returns the name as a String, or the first rule it breaks.
    public static func validate(_ bytes: some Collection<UInt8>) -> Result<String, Problem> {
        check(bytes)
    }

    /// The same for the codecs' byte arrays, specialised in this module: called from
    /// another one, the generic version ran through witness tables — a quarter of the
    /// replication thread's time when every replica validated every publish it applied.
    public static func validate(_ bytes: [UInt8]) -> Result<String, Problem> {
        check(bytes)
    }

    private static func check(_ bytes: some Collection<UInt8>) -> Result<String, Problem> {
        if bytes.isEmpty { return .failure(.empty) }
        if bytes.count > Limits.channelBytesMax { return .failure(.tooLong(bytes: bytes.count)) }
        // Most names are ASCII: check the bytes and build the String once (this runs for
        // every frame that names a channel).
        if bytes.allSatisfy({ $0 < 0x80 }) {
            for byte in bytes where !isAllowed(Unicode.Scalar(byte)) { return .failure(.forbiddenCharacter(UInt32(byte))) }
            return .success(String(decoding: bytes, as: UTF8.self))
        }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if !isAllowed(scalar) { return .failure(.forbiddenCharacter(scalar.value)) }
                scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return .failure(.invalidUTF8)
            }
        }
        return .success(String(scalars))
    }

    public static func validate(_ name: String) -> Result<String, Problem> {
        validate(Array(name.utf8))
    }

    static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x2E, 0x5F, 0x2D, 0x3A, 0x2F, 0x40: return true  // . _ - : / @
        case 0..<0x80: return false
        default:
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
                return true
            default:
                return false
            }
        }
    }
}
