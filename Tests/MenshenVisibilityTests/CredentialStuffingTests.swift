import Foundation
import Testing

@Suite("Detection: credential stuffing (T1110.004)")
struct CredentialStuffingTests {
    @Test("forty leaked pairs tried from eight addresses within eight minutes, two succeeding, fire once")
    func fires() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        for n in 0..<40 {
            h.events.advance(12)
            try await h.events.passwordFailure("customer\(n % 30)", from: "192.0.2.\(n % 8 + 1)", detail: n % 3 == 0 ? "unknown user" : "wrong password")
            if n == 20 || n == 30 { try await h.events.signIn("customer\(n % 30)", from: "192.0.2.\(n % 8 + 1)", session: "s-c\(n)") }
        }
        try await h.feed()
        let f = h.fired(RuleID.credentialStuffing)
        #expect(f.count == 1)
        #expect(f.first?.techniques.map(\.uid) == ["T1110.004"] && f.first?.level == .high)
        #expect(f.first?.message.contains("from 8 sources") == true)
    }

    @Test("a busy morning with ordinary mistakes, and spraying from a single address, stay quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic(users: (0..<40).map { "teller\($0)" })
        for n in 0..<35 {
            try await h.events.passwordFailure("staff\(n)", from: "203.0.113.66")
            h.events.advance(10)
        }
        try await h.feed()
        #expect(h.fired(RuleID.credentialStuffing).isEmpty, "one source is spraying, not stuffing")
    }
}
