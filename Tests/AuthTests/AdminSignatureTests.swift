import Auth
import Testing

@Suite struct AdminSignatureTests {
    let keyring = try! GossipKeyring(text: "1 " + String(repeating: "ab", count: 32) + "\n2 " + String(repeating: "cd", count: 32) + "\n")

    @Test func aSignedRequestVerifies() {
        let header = AdminSignature.header(keyring: keyring, method: "POST", target: "/v1/cluster/rebalance", wallMs: 1_000_000)
        #expect(AdminSignature.verify(header: header, keyring: keyring, method: "POST", target: "/v1/cluster/rebalance", nowMs: 1_010_000) == nil)
    }

    /// The signature covers method, target (query included) and time; anything else fails
    /// with a reason an operator can act on.
    @Test func tamperedStaleOrForeignRequestsFail() throws {
        let header = AdminSignature.header(keyring: keyring, method: "POST", target: "/v1/cluster/drain?node=a", wallMs: 1_000_000)
        func check(_ header: String?, target: String = "/v1/cluster/drain?node=a", now: Int64 = 1_000_000) -> AdminSignature.Failure? {
            AdminSignature.verify(header: header, keyring: keyring, method: "POST", target: target, nowMs: now)
        }
        #expect(check(header, target: "/v1/cluster/drain?node=b") == .badSignature)
        #expect(check(header, now: 1_000_000 + AdminSignature.skewMs + 1) == .stale)
        #expect(check(nil) == .missing)
        #expect(check("Bearer x") == .malformed)
        #expect(check("Chapar 1:1000000:zz") == .malformed)
        let foreign = try GossipKeyring(text: "9 " + String(repeating: "ef", count: 32) + "\n")
        #expect(check(AdminSignature.header(keyring: foreign, method: "POST", target: "/v1/cluster/drain?node=a", wallMs: 1_000_000)) == .unknownKey)
        let other = try GossipKeyring(text: "1 " + String(repeating: "99", count: 32) + "\n")
        #expect(check(AdminSignature.header(keyring: other, method: "POST", target: "/v1/cluster/drain?node=a", wallMs: 1_000_000)) == .badSignature)
    }
}
