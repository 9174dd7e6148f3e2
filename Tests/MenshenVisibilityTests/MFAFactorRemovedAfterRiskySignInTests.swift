import Foundation
import Testing

@Suite("Detection: MFA factor removed after a risky sign-in (T1556.006)")
struct MFAFactorRemovedAfterRiskySignInTests {
    @Test("failed attempts, a recovery-code sign-in, then the passkey removed fire")
    func fires() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.passwordFailure("alice", from: "203.0.113.61")
        h.events.advance(60)
        try await h.events.signIn("alice", from: "203.0.113.61", session: "s-x", detail: "password and recovery code", factors: ["pwd", "recovery"])
        try await h.events.accountChange(.mfaFactorDisable, "alice", detail: "recovery code used; 9 left")
        h.events.advance(300)
        try await h.events.accountChange(.mfaFactorDisable, "alice", detail: "passkey \"YubiKey 5\" removed")
        try await h.feed()
        let f = h.fired(RuleID.mfaRemoved)
        #expect(f.count == 1 && f.first?.user == "alice" && f.first?.level == .high)
        #expect(f.first?.techniques.map(\.uid) == ["T1556.006"])
        #expect(f.first?.evidence.count == 3, "the failure, the recovery-code sign-in and the removal (the recovery code used up is filtered)")
    }

    @Test("a normal sign-in then removing an old passkey, and a recovery code used alone, stay quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.signIn("carol", from: "198.51.100.12", session: "s-c2")
        try await h.events.accountChange(.mfaFactorDisable, "carol", detail: "passkey \"old phone\" removed")
        try await h.events.signIn("dave", from: "198.51.100.13", session: "s-d2", detail: "password and recovery code")
        try await h.events.accountChange(.mfaFactorDisable, "dave", detail: "recovery code used; 9 left")
        // A factor removed two hours after a mistyped password.
        try await h.events.passwordFailure("bob", from: "198.51.100.11")
        h.events.advance(2 * 3600)
        try await h.events.accountChange(.mfaFactorDisable, "bob", detail: "passkey \"old\" removed")
        try await h.feed()
        #expect(h.fired(RuleID.mfaRemoved).isEmpty)
    }
}
