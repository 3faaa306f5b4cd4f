/// A 64-bit hash that is the same on every node, build and run (unlike Swift's `Hasher`,
/// which is seeded per process): FNV-1a over the bytes, then the SplitMix64 finalizer so
/// that nearby inputs spread over the whole range. For placement, never for security.
public enum StableHash {
    public static func hash64(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return mix(hash)
    }

    public static func hash64(_ text: String, seed: UInt64 = 0) -> UInt64 { hash64(text.utf8, seed: seed) }

    /// SplitMix64's finalizer: a bijection that avalanches every input bit.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in (0, 1) from a hash, never 0 (so its logarithm is finite).
    public static func unit(_ hash: UInt64) -> Double {
        (Double(hash >> 11) + 0.5) * (1.0 / Double(UInt64(1) << 53))
    }
}

/// Elementary functions the pure modules need; the standard library has none.
public enum StableMath {
    /// Natural logarithm of a positive number (argument reduction by powers of 2, then a
    /// fast-converging atanh series); accurate to about 1e-15.
    public static func ln(_ value: Double) -> Double {
        precondition(value > 0, "ln of a non-positive number")
        var mantissa = value
        var exponent = 0.0
        while mantissa >= 2 { mantissa /= 2; exponent += 1 }
        while mantissa < 1 { mantissa *= 2; exponent -= 1 }
        let y = (mantissa - 1) / (mantissa + 1)
        let y2 = y * y
        var term = y
        var sum = 0.0
        var denominator = 1.0
        for _ in 0..<30 {
            sum += term / denominator
            term *= y2
            denominator += 2
        }
        return 2 * sum + exponent * 0.693_147_180_559_945_3
    }

    public static func log10(_ value: Double) -> Double { ln(value) / 2.302_585_092_994_046 }
}
