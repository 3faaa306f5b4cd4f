import Testing
@testable import Auth

@Suite struct AccessTokenTests {
    let secret = try! TokenSecret(Array("0123456789abcdef0123456789abcdef\n".utf8))

    @Test func signedTokenVerifies() throws {
        let text = AccessToken(subject: "bot-7@news", expiresAt: 2_000_000_000).signed(with: secret)
        #expect(text.hasPrefix("v1:bot-7@news:2000000000:"))
        #expect(try AccessToken.verify(Array(text.utf8), secret: secret, now: 1_000) == AccessToken(subject: "bot-7@news", expiresAt: 2_000_000_000))
    }

    @Test func hmacMatchesAKnownVector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = TokenSecretForVector.mac(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(AccessToken.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func tamperedExpiredAndMalformedTokensAreRefused() {
        let text = AccessToken(subject: "alice", expiresAt: 5_000).signed(with: secret)
        let other = try! TokenSecret(Array(repeating: 0x41, count: 40))
        #expect(throws: AccessToken.Problem.badSignature) { _ = try AccessToken.verify(Array(text.utf8), secret: other, now: 1) }
        let forged = text.replacingOccurrences("alice", "mallory")
        #expect(throws: AccessToken.Problem.badSignature) { _ = try AccessToken.verify(Array(forged.utf8), secret: secret, now: 1) }
        #expect(throws: AccessToken.Problem.expired(at: 5_000)) { _ = try AccessToken.verify(Array(text.utf8), secret: secret, now: 5_000) }
        for bad in ["", "v1:alice", "v2:alice:5000:" + String(repeating: "0", count: 64), "v1:a b:5000:" + String(repeating: "0", count: 64), "v1:alice:soon:00"] {
            #expect(throws: AccessToken.Problem.self, "\(bad)") { _ = try AccessToken.verify(Array(bad.utf8), secret: secret, now: 1) }
        }
    }

    @Test func shortSecretsAreRefused() {
        #expect(throws: TokenSecret.Problem.tooShort(5)) { _ = try TokenSecret(Array("short\n".utf8)) }
        #expect(TokenSecret.generateHex().count == 64)
    }
}

/// RFC 4231's keys are shorter than our minimum secret; reach the MAC directly.
enum TokenSecretForVector {
    static func mac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        TokenSecret(unchecked: key).mac(data)
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
