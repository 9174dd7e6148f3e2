import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage
import Testing

@Suite("Sessions")
struct SessionTests {
    func grant(_ user: UserID, loa: Int = 3) -> SessionGrant {
        SessionGrant(userID: user, levelOfAssurance: loa, amr: ["hwk", "mfa", "user"], aal: 2, phishingResistant: true)
    }

    @Test("only the SHA-256 of the token is stored, and the token resolves", arguments: [false, true])
    func hashAtRest(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        try await w.addUser("alice")
        let issued = try await w.sessions.issue(grant("alice"))
        #expect(issued.token.utf8.count == SessionManager.tokenLength)
        #expect(issued.record.idHash == SecretHash.sha256Hex(issued.token))
        #expect(try await w.store.session(idHash: issued.token) == nil, "the raw token is not a key in the store")
        let all = try await w.store.sessions(of: "alice")
        #expect(all.count == 1 && !all[0].attributesJSON.contains(issued.token))
        let active = try #require(try await w.sessions.resolve(token: issued.token))
        #expect(active.user.id == "alice" && active.record.levelOfAssurance == 3 && active.attributes.phishingResistant)
        let altered = String(issued.token.dropLast()) + (issued.token.hasSuffix("A") ? "E" : "A")   // a different, well-formed token
        #expect(try await w.sessions.resolve(token: altered) == nil)
        #expect(try await w.sessions.resolve(token: "short") == nil)
        await w.cleanup()
    }

    @Test("idle expiry: activity extends it, silence ends it", arguments: [false, true])
    func idle(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite, settings: SessionSettings(idleTimeout: 600, absoluteLifetime: 3600, touchInterval: 30))
        try await w.addUser("alice")
        let issued = try await w.sessions.issue(grant("alice"))
        for _ in 0..<5 {
            w.clock.advance(by: 500)
            #expect(try await w.sessions.resolve(token: issued.token) != nil, "used within the idle window")
        }
        w.clock.advance(by: 601)
        #expect(try await w.sessions.resolve(token: issued.token) == nil, "idle for longer than the timeout")
        await w.cleanup()
    }

    @Test("absolute expiry holds even for a busy session")
    func absolute() async throws {
        let w = try World.make(settings: SessionSettings(idleTimeout: 600, absoluteLifetime: 1000, touchInterval: 0))
        try await w.addUser("alice")
        let issued = try await w.sessions.issue(grant("alice"))
        w.clock.advance(by: 500)
        #expect(try await w.sessions.resolve(token: issued.token) != nil)
        w.clock.advance(by: 499)
        #expect(try await w.sessions.resolve(token: issued.token) != nil)
        w.clock.advance(by: 1)
        #expect(try await w.sessions.resolve(token: issued.token) == nil)
    }

    @Test("revoking one session or all of a user's is effective on the very next resolve", arguments: [false, true])
    func revocation(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        try await w.addUser("alice")
        try await w.addUser("bob")
        let a1 = try await w.sessions.issue(grant("alice"))
        let a2 = try await w.sessions.issue(grant("alice"))
        let b = try await w.sessions.issue(grant("bob"))
        #expect(try await w.sessions.revoke(idHash: a1.record.idHash, reason: "sign-out"))
        #expect(try await w.sessions.resolve(token: a1.token) == nil)
        #expect(try await w.sessions.resolve(token: a2.token) != nil)
        #expect(try await w.sessions.revokeAll(of: "alice", reason: "incident") == 1)
        #expect(try await w.sessions.resolve(token: a2.token) == nil)
        #expect(try await w.sessions.resolve(token: b.token) != nil)
        await w.cleanup()
    }

    @Test("disabling the user ends their sessions at once")
    func disabledUser() async throws {
        let w = try World.make()
        var alice = try await w.addUser("alice")
        let s = try await w.sessions.issue(grant("alice"))
        alice.disabled = true
        try await w.store.updateUser(alice)
        #expect(try await w.sessions.resolve(token: s.token) == nil)
    }

    @Test("elevation issues a new id and kills the old one (no fixation); LoA and amr only grow")
    func elevationRotates() async throws {
        let w = try World.make()
        try await w.addUser("alice")
        let first = try await w.sessions.issue(SessionGrant(userID: "alice", levelOfAssurance: 1, amr: ["pwd"], aal: 1, phishingResistant: false))
        w.clock.advance(by: 120)
        let active = try #require(try await w.sessions.resolve(token: first.token))
        let raised = try await w.sessions.elevate(active, with: grant("alice", loa: 3))
        #expect(raised.token != first.token && raised.record.idHash != first.record.idHash)
        #expect(try await w.sessions.resolve(token: first.token) == nil, "the pre-elevation id is dead")
        let now = try #require(try await w.sessions.resolve(token: raised.token))
        #expect(now.record.levelOfAssurance == 3)
        #expect(Set(now.record.amr) == ["pwd", "hwk", "mfa", "user"])
        #expect(now.record.absoluteExpiresAt == first.record.absoluteExpiresAt, "elevation never extends the absolute lifetime")
        #expect(now.authenticationAge(at: w.clock.now()) == 0)
        #expect(now.attributes.factorTimes["pwd"] == StoreCoding.millis(World.t0))
        #expect(now.attributes.factorTimes["hwk"] == StoreCoding.millis(w.clock.now()))
        let lower = try await w.sessions.elevate(now, with: SessionGrant(userID: "alice", levelOfAssurance: 2, amr: ["otp"], aal: 1,
                                                                         phishingResistant: false))
        #expect(lower.record.levelOfAssurance == 3, "a weaker factor never lowers the session")
    }

    @Test("an enrolment session is not an access session")
    func purpose() async throws {
        let w = try World.make()
        try await w.addUser("alice")
        let s = try await w.sessions.issue(SessionGrant(userID: "alice", levelOfAssurance: 1, amr: [], aal: nil, phishingResistant: false,
                                                        purpose: .enrolment))
        #expect(try await w.sessions.resolve(token: s.token) == nil)
        #expect(try await w.sessions.resolve(token: s.token, purpose: .enrolment) != nil)
        w.clock.advance(by: SessionSettings().enrolmentLifetime)
        #expect(try await w.sessions.resolve(token: s.token, purpose: .enrolment) == nil, "enrolment sessions are short")
    }

    @Test("privileged roles never share a session with ordinary work (principle 4.1)", arguments: [false, true])
    func privilegedSeparation(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        try await w.addUser("dana")
        try await w.addUser("teller1")
        for (id, tier) in [("teller", RiskTier.standard), ("auditor", .sensitive), ("dba", .privileged)] {
            try await w.store.createRole(RoleRecord(id: RoleID(id), displayName: id, riskTier: tier))
            try await w.store.assignRole(RoleID(id), to: "dana")
        }
        try await w.store.assignRole("teller", to: "teller1")
        let ordinary = try await w.sessions.issue(grant("dana"))
        let active = try #require(try await w.sessions.resolve(token: ordinary.token))
        #expect(Set(active.attributes.activeRoles) == ["teller", "auditor"] && !active.attributes.privileged)

        w.clock.advance(by: 301)
        let stale = try #require(try await w.sessions.resolve(token: ordinary.token))
        #expect(try await w.sessions.startPrivileged(from: stale) == .failure(.needsStepUp(loa: 3, maxAge: 300)))
        let fresh = try await w.sessions.elevate(stale, with: grant("dana"))
        let raised = try #require(try await w.sessions.resolve(token: fresh.token))
        guard case .success(let privileged) = try await w.sessions.startPrivileged(from: raised) else {
            Issue.record("a fresh LoA3 session may start privileged work"); return
        }
        #expect(try await w.sessions.resolve(token: fresh.token) == nil, "the ordinary session ends when privileged work starts")
        let p = try #require(try await w.sessions.resolve(token: privileged.token))
        #expect(p.attributes.activeRoles == ["dba"] && p.attributes.privileged)
        #expect(p.record.absoluteExpiresAt <= w.clock.now().addingTimeInterval(3600))

        let back = try #require(try await w.sessions.endPrivileged(p))
        #expect(try await w.sessions.resolve(token: privileged.token) == nil)
        let o = try #require(try await w.sessions.resolve(token: back.token))
        #expect(Set(o.attributes.activeRoles) == ["teller", "auditor"] && !o.attributes.privileged)
        #expect(try await w.sessions.endPrivileged(o) == nil)

        let t = try #require(try await w.sessions.resolve(token: try await w.sessions.issue(grant("teller1")).token))
        #expect(try await w.sessions.startPrivileged(from: t) == .failure(.noPrivilegedRole))
        await w.cleanup()
    }
}
