import ChaparCore

/// Authenticates admin API requests that change the cluster (docs/OPERATIONS.md,
/// "Controller commands"): the header `Authorization: Chapar KEYID:WALLMS:HEX`, where HEX
/// is the keyring MAC (HMAC-SHA256 under key KEYID) of
/// `"chapar-admin\n" + METHOD + "\n" + TARGET + "\n" + WALLMS` (TARGET: path and query as
/// sent). Requests more than `skewMs` from the node's clock are refused, bounding replays.
public enum AdminSignature {
    public static let skewMs: Int64 = 30_000

    static func message(method: String, target: String, wallMs: Int64) -> [UInt8] {
        Array("chapar-admin\n\(method)\n\(target)\n\(wallMs)".utf8)
    }

    /// The header value for a request.
    public static func header(keyring: GossipKeyring, method: String, target: String, wallMs: Int64) -> String {
        let tag = keyring.mac(message(method: method, target: target, wallMs: wallMs))
        return "Chapar \(keyring.primary.id):\(wallMs):\(tag.map { String($0, radix: 16).leftPadded(2) }.joined())"
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missing, malformed, unknownKey, badSignature, stale
        public var description: String {
            switch self {
            case .missing: "missing Authorization header (Chapar KEYID:WALLMS:HMAC)"
            case .malformed: "malformed Authorization header"
            case .unknownKey: "unknown key id"
            case .badSignature: "bad signature"
            case .stale: "request time too far from the node's clock"
            }
        }
    }

    public static func verify(
        header: String?, keyring: GossipKeyring, method: String, target: String, nowMs: Int64
    ) -> Failure? {
        guard let header else { return .missing }
        guard header.hasPrefix("Chapar ") else { return .malformed }
        let fields = header.dropFirst("Chapar ".count).split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, let keyId = UInt8(fields[0]), let wallMs = Int64(fields[1]), fields[2].count == 64,
              let tag = GossipKeyring.hexBytes(fields[2])
        else { return .malformed }
        guard abs(wallMs - nowMs) <= skewMs else { return .stale }
        switch keyring.verify(keyId: keyId, body: message(method: method, target: target, wallMs: wallMs)[...], tag: tag[...]) {
        case nil: return .unknownKey
        case false?: return .badSignature
        case true?: return nil
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
