import COpenSSL

/// HMAC-SHA256 through OpenSSL, and a constant-time comparison for checking tags.
public enum HMACSHA256 {
    public static func mac(key: [UInt8], data: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let message = Array(data)
        let ok = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                copenssl_hmac_sha256(keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress, messageBytes.count, &out)
            }
        }
        precondition(ok == 1, "HMAC-SHA256 failed")
        return out
    }

    /// True when `a` and `b` are equal, in time that does not depend on where they differ.
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        let left = Array(a), right = Array(b)
        guard left.count == right.count else { return false }
        return left.withUnsafeBytes { l in right.withUnsafeBytes { r in CRYPTO_memcmp(l.baseAddress, r.baseAddress, l.count) == 0 } }
    }
}
