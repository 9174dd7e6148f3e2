import Foundation
import Testing

@Suite("Detection: password spraying (T1110.003)")
struct PasswordSprayingTests {
    @Test("one address trying one password on twelve accounts within twenty minutes fires")
    func fires() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        for n in 0..<12 {
            h.events.advance(100)
            try await h.events.passwordFailure("staff\(n)", from: "203.0.113.66", detail: n % 4 == 0 ? "unknown user" : "wrong password")
        }
        try await h.feed()
        let f = h.fired(RuleID.passwordSpraying)
        #expect(f.count == 1)
        #expect(f.first?.sourceIP == "203.0.113.66" && f.first?.level == .high)
        #expect(f.first?.techniques.map(\.uid) == ["T1110.003"])
        #expect(h.fired(RuleID.passwordGuessing).isEmpty, "each account was tried once: not guessing")
    }

    @Test("three users behind one office address each mistyping once stay quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        for user in ["erin", "frank", "grace"] {
            try await h.events.passwordFailure(user, from: "198.51.100.1")
            try await h.events.signIn(user, from: "198.51.100.1", session: "s-\(user)")
            h.events.advance(120)
        }
        try await h.feed()
        #expect(h.fired(RuleID.passwordSpraying).isEmpty)
    }
}
