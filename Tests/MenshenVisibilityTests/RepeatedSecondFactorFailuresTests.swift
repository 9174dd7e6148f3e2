import Foundation
import Testing

@Suite("Detection: repeated second-factor failures (T1621)")
struct RepeatedSecondFactorFailuresTests {
    @Test("three wrong codes and a failed step-up for one user within five minutes fire")
    func fires() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.secondFactorFailure("bob", from: "203.0.113.40")
        h.events.advance(60)
        try await h.events.secondFactorFailure("bob", from: "203.0.113.40", method: "recovery code")
        h.events.advance(60)
        try await h.events.identity.authentication(.other, user: .init("bob"), userName: "bob", success: false,
                                                   detail: "step-up: wrong totp", source: "203.0.113.40", sessionHash: "abc")
        try await h.feed()
        let f = h.fired(RuleID.secondFactorFailures)
        #expect(f.count == 1 && f.first?.user == "bob")
        #expect(f.first?.techniques.map(\.uid) == ["T1621"])
    }

    @Test("one wrong code followed by the right one stays quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.secondFactorFailure("bob", from: "198.51.100.11")
        try await h.events.signIn("bob", from: "198.51.100.11", session: "s-bob2")
        h.events.advance(3600)
        try await h.events.secondFactorFailure("bob", from: "198.51.100.11")
        try await h.events.signIn("bob", from: "198.51.100.11", session: "s-bob3")
        try await h.feed()
        #expect(h.fired(RuleID.secondFactorFailures).isEmpty)
    }
}
