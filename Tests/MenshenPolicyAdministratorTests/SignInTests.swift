import Foundation
import MenshenCore
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenStorage
import Testing

@Suite("Sign-in over stored credentials")
struct SignInTests {
    let password = "correct horse battery staple"

    func enrolTOTP(_ w: World, _ user: UserRecord) async throws -> String {
        let pending = try await w.identity.beginTOTPEnrolment(user: user)
        let uri = pending.enrollment.keyURI.uri
        #expect(try await !w.identity.confirmTOTPEnrolment(user: user, handle: pending.handle, code: "000000", actor: "t")
                || totpCode(uri: uri, at: w.clock.now()) == "000000")
        #expect(try await w.identity.confirmTOTPEnrolment(user: user, handle: pending.handle,
                                                          code: try totpCode(uri: uri, at: w.clock.now()), actor: "t"))
        return uri
    }

    @Test("password only: LoA1 session; wrong password, unknown and disabled users fail alike", arguments: [false, true])
    func passwordOnly(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        try await w.addUser("alice")
        try await w.addUser("dora", disabled: true)
        guard case .signedIn(let issued, let grant) = try await w.identity.signIn(userName: "alice", password: password, source: "10.0.0.1")
        else { Issue.record("password sign-in failed"); return }
        #expect(grant.levelOfAssurance == 1 && grant.amr == ["pwd"])
        #expect(try await w.sessions.resolve(token: issued.token)?.user.id == "alice")
        for (name, pwd) in [("alice", "wrong password!!"), ("nobody", password), ("dora", password), ("<script>", password)] {
            guard case .failed = try await w.identity.signIn(userName: name, password: pwd, source: "10.0.0.1") else {
                Issue.record("\(name) should fail"); continue
            }
        }
        let auth = try await w.events(class: 3002)
        #expect(auth.count == 5)
        #expect(auth.filter { $0["status_id"] as? Int == 2 }.count == 4)
        #expect(auth.allSatisfy { ($0["type_uid"] as? Int) == 300201 && $0["metadata"] != nil && $0["user"] != nil })
        await w.cleanup()
    }

    @Test("password then TOTP: LoA3; a used code is refused the second time", arguments: [false, true])
    func totp(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        let alice = try await w.addUser("alice")
        let uri = try await enrolTOTP(w, alice)
        w.clock.advance(by: 30)
        guard case .secondFactorRequired(let pending, let methods) = try await w.identity.signIn(userName: "alice", password: password,
                                                                                                  source: "10.0.0.1")
        else { Issue.record("expected a second factor"); return }
        #expect(methods == [.totp])
        let code = try totpCode(uri: uri, at: w.clock.now())
        guard case .signedIn(_, let grant) = try await w.identity.continueWithTOTP(pendingToken: pending, code: code, source: "10.0.0.1")
        else { Issue.record("TOTP sign-in failed"); return }
        #expect(grant.levelOfAssurance == 3 && Set(grant.amr) == ["pwd", "otp", "mfa"])

        // Replay of the same code in a new sign-in within its validity window.
        guard case .secondFactorRequired(let again, _) = try await w.identity.signIn(userName: "alice", password: password, source: "10.0.0.1")
        else { Issue.record("expected a second factor"); return }
        guard case .secondFactorRequired = try await w.identity.continueWithTOTP(pendingToken: again, code: code, source: "10.0.0.1")
        else { Issue.record("a replayed TOTP code must not sign in"); return }
        await w.cleanup()
    }

    @Test("the pending token is single use and dies after the allowed wrong attempts")
    func pendingLimits() async throws {
        let w = try World.make()
        let alice = try await w.addUser("alice")
        let uri = try await enrolTOTP(w, alice)
        w.clock.advance(by: 60)
        guard case .secondFactorRequired(let pending, _) = try await w.identity.signIn(userName: "alice", password: password, source: "s")
        else { Issue.record("expected a second factor"); return }
        for _ in 0..<2 {
            guard case .secondFactorRequired = try await w.identity.continueWithTOTP(pendingToken: pending, code: "12345x", source: "s")
            else { Issue.record("a wrong code within the limit keeps the sign-in pending"); return }
        }
        guard case .failed = try await w.identity.continueWithTOTP(pendingToken: pending, code: "000001", source: "s") else {
            Issue.record("the third wrong code ends the pending sign-in"); return
        }
        guard case .failed = try await w.identity.continueWithTOTP(pendingToken: pending, code: try totpCode(uri: uri, at: w.clock.now()),
                                                                   source: "s")
        else { Issue.record("a dead pending token never completes"); return }
        // Expiry.
        guard case .secondFactorRequired(let late, _) = try await w.identity.signIn(userName: "alice", password: password, source: "s")
        else { Issue.record("expected a second factor"); return }
        w.clock.advance(by: 301)
        guard case .failed = try await w.identity.continueWithTOTP(pendingToken: late, code: try totpCode(uri: uri, at: w.clock.now()),
                                                                   source: "s")
        else { Issue.record("an expired pending sign-in never completes"); return }
    }

    @Test("recovery codes: each works once, then never again", arguments: [false, true])
    func recoveryCodes(sqlite: Bool) async throws {
        let w = try World.make(sqlite: sqlite)
        try await w.addUser("alice")
        let codes = try await w.identity.regenerateRecoveryCodes(user: "alice", actor: "alice")
        #expect(codes.count == 10)
        let stored = try await w.store.credentials(of: "alice").first { $0.kind == .recoveryCodes }
        #expect(codes.allSatisfy { !(stored?.data.contains($0) ?? true) }, "codes are stored hashed")
        guard case .secondFactorRequired(let p1, let methods) = try await w.identity.signIn(userName: "alice", password: password, source: "s")
        else { Issue.record("expected a second factor"); return }
        #expect(methods == [.recoveryCode])
        guard case .signedIn(_, let grant) = try await w.identity.continueWithRecoveryCode(pendingToken: p1, code: codes[3], source: "s")
        else { Issue.record("recovery code refused"); return }
        #expect(grant.levelOfAssurance == 3)
        guard case .secondFactorRequired(let p2, _) = try await w.identity.signIn(userName: "alice", password: password, source: "s")
        else { Issue.record("expected a second factor"); return }
        guard case .secondFactorRequired = try await w.identity.continueWithRecoveryCode(pendingToken: p2, code: codes[3], source: "s")
        else { Issue.record("a used recovery code must be refused"); return }
        #expect(try await w.identity.factorSummary(of: "alice").recoveryCodesRemaining == 9)
        await w.cleanup()
    }

    @Test("throttling: exponential back-off per account and per source, no permanent lockout")
    func throttling() async throws {
        let w = try World.make(throttle: .init(freeAttempts: 3, baseDelay: 2, maximumDelay: 60))
        try await w.addUser("alice")
        for _ in 0..<3 {
            guard case .failed = try await w.identity.signIn(userName: "alice", password: "nope nope nope", source: "203.0.113.9") else {
                Issue.record("wrong password must fail"); return
            }
        }
        // The 4th attempt, even with the right password, must wait.
        guard case .throttled(let wait) = try await w.identity.signIn(userName: "alice", password: password, source: "198.51.100.1") else {
            Issue.record("the account should be throttled"); return
        }
        #expect(wait > 0 && wait <= 2)
        w.clock.advance(by: 2.1)
        guard case .failed = try await w.identity.signIn(userName: "alice", password: "still wrong!", source: "198.51.100.1") else {
            Issue.record("after the back-off the attempt is considered"); return
        }
        guard case .throttled(let longer) = try await w.identity.signIn(userName: "alice", password: password, source: "198.51.100.1") else {
            Issue.record("the back-off grows"); return
        }
        #expect(longer > 2 && longer <= 4)
        w.clock.advance(by: 61)
        guard case .signedIn = try await w.identity.signIn(userName: "alice", password: password, source: "198.51.100.1") else {
            Issue.record("the account is never locked for good"); return
        }
        // A source spraying many accounts is throttled for every account.
        try await w.addUser("bob")
        for name in ["carol", "dave", "erin"] {
            _ = try await w.identity.signIn(userName: name, password: "guess guess", source: "203.0.113.9")
        }
        guard case .throttled = try await w.identity.signIn(userName: "bob", password: password, source: "203.0.113.9") else {
            Issue.record("the spraying source should be throttled"); return
        }
    }

    @Test("passkey ceremonies refuse malformed, oversized and replayed responses without changing anything")
    func passkeyBadInput() async throws {
        let w = try World.make()
        let alice = try await w.addUser("alice")
        let registration = try await w.identity.beginPasskeyRegistration(user: alice)
        let options = try JSONSerialization.jsonObject(with: Data(registration.optionsJSON.utf8)) as! [String: Any]
        #expect((options["rp"] as? [String: Any])?["id"] as? String == "localhost")
        #expect(((options["authenticatorSelection"] as? [String: Any])?["userVerification"] as? String) == "required")
        for bad in ["", "{", "[]", #"{"type":"public-key"}"#, String(repeating: "x", count: 70_000),
                    #"{"type":"public-key","rawId":"AA","response":{"clientDataJSON":"!!","attestationObject":"AA"}}"#] {
            let r = try await w.identity.beginPasskeyRegistration(user: alice)
            let result = try await w.identity.finishPasskeyRegistration(user: alice, handle: r.handle, response: bad, label: "k", actor: "alice")
            guard case .failure(.malformed) = result else { Issue.record("accepted \(bad.prefix(40))"); continue }
        }
        // A handle is single use.
        _ = try await w.identity.finishPasskeyRegistration(user: alice, handle: registration.handle, response: "{}", label: "", actor: "alice")
        let replay = try await w.identity.finishPasskeyRegistration(user: alice, handle: registration.handle, response: "{}", label: "",
                                                                    actor: "alice")
        #expect(replay == .failure(.expired))
        #expect(try await w.store.credentials(of: "alice").filter { $0.kind == .webauthn }.isEmpty)

        let get = try #require(try await w.identity.beginPasskey())
        guard case .failed = try await w.identity.finishPasskey(handle: get.handle, response: "{\"type\":\"public-key\"}", source: "s") else {
            Issue.record("malformed assertion accepted"); return
        }
        guard case .failed = try await w.identity.finishPasskey(handle: get.handle, response: "{}", source: "s") else {
            Issue.record("replayed handle accepted"); return
        }
    }

    @Test("reset-mfa removes second factors, keeps the password and ends sessions")
    func resetMFA() async throws {
        let w = try World.make()
        let alice = try await w.addUser("alice")
        _ = try await enrolTOTP(w, alice)
        _ = try await w.identity.regenerateRecoveryCodes(user: "alice", actor: "alice")
        let s = try await w.sessions.issue(SessionGrant(userID: "alice", levelOfAssurance: 3, amr: ["otp", "pwd"], aal: 2,
                                                        phishingResistant: false))
        #expect(try await w.identity.resetMFA(user: "alice", actor: "admin") == 2)
        #expect(try await w.sessions.resolve(token: s.token) == nil)
        let summary = try await w.identity.factorSummary(of: "alice")
        #expect(summary.hasPassword && summary.secondFactors.isEmpty)
        let changes = try await w.events(class: 3001)
        #expect(changes.contains { ($0["activity_id"] as? Int) == 11 && ($0["actor"] as? [String: Any]) != nil })
    }

    @Test("NIST SP 800-63B password rules are enforced when setting a password")
    func passwordRules() async throws {
        let w = try World.make()
        let bob = try await w.addUser("bob", password: nil)
        #expect(try await w.identity.setPassword(user: bob, password: "short", actor: "bob").contains(.tooShort(minimum: 8)))
        #expect(try await w.identity.setPassword(user: bob, password: "password123", actor: "bob").contains(.commonPassword))
        #expect(try await w.identity.setPassword(user: bob, password: "bob-is-great-2026", actor: "bob").contains(.containsUserName))
        #expect(try await w.identity.factorSummary(of: "bob").hasPassword == false, "a refused password is not stored")
        #expect(try await w.identity.setPassword(user: bob, password: "lantern orbit 碧潭 mosaic", actor: "bob").isEmpty)
        guard case .signedIn = try await w.identity.signIn(userName: "bob", password: "lantern orbit 碧潭 mosaic", source: "s") else {
            Issue.record("unicode password should work"); return
        }
    }

    @Test("TOTP seeds are sealed at rest: not in the database in any form, bound to their user, useless without the key")
    func totpSealedAtRest() async throws {
        let w = try World.make(sqlite: true)
        let alice = try await w.addUser("alice")
        let uri = try await enrolTOTP(w, alice)
        let secret = try #require(URLComponents(string: uri)?.queryItems?.first { $0.name == "secret" }?.value)
        let stored = try #require(try await w.store.credentials(of: "alice").first { $0.kind == .totp })
        let rawSecret = try TOTPSecret(base32: secret).bytes
        #expect(!stored.data.contains(secret) && !stored.data.contains(Data(rawSecret).base64EncodedString()))
        #expect(stored.data.contains("\"secret_sealed\":\"v1."))

        // The same sealed value copied to another user's row does not open there.
        let box = try SecretBox(keyBytes: Array(repeating: 1, count: 32))
        let sealed = try box.seal(rawSecret, context: "totp:alice")
        #expect(box.open(sealed, context: "totp:alice") == rawSecret)
        #expect(box.open(sealed, context: "totp:mallory") == nil)
        #expect(try SecretBox(keyBytes: Array(repeating: 2, count: 32)).open(sealed, context: "totp:alice") == nil)
        var tampered = Array(sealed.utf8)
        tampered[tampered.count - 3] = tampered[tampered.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(box.open(String(decoding: tampered, as: UTF8.self), context: "totp:alice") == nil)
        #expect(throws: SecretBox.KeyError.self) { try SecretBox(keyBytes: [1, 2, 3]) }
        await w.cleanup()
    }

    @Test("the secrets key file is created once with mode 0600 and read back; a damaged file is refused")
    func secretsKeyFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("secrets.key").path
        let first = try SecretBox.loadOrCreate(path: path, random: SystemRandomSource())
        let sealed = try first.seal([1, 2, 3], context: "c")
        let again = try SecretBox.loadOrCreate(path: path, random: SystemRandomSource())
        #expect(again.open(sealed, context: "c") == [1, 2, 3])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try "not a key".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: SecretBox.KeyError.self) { try SecretBox.loadOrCreate(path: path, random: SystemRandomSource()) }
    }
}
