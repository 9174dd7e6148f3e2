import Foundation
import Logging
import MenshenAssessment
import MenshenConfig
import MenshenCore
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenPolicyEngine
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// The assessment's measurements from a real SQLite store, seeded through the
/// real code paths: the demo organisation, passwords and a TOTP enrolment
/// through `IdentityService`, sign-ins that write the real OCSF 3002 events,
/// gateway decisions through `DecisionLog`. Then the facts, the verdicts
/// they lead to, and the demo deployment assessed end to end.
@Suite("Assessment facts from a seeded store")
struct AssessmentFactsTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    struct World {
        let dir: URL
        let store: any MenshenStore
        let clock: FixedClock
        let identity: IdentityService
        var config: MenshenConfiguration
    }

    /// A store seeded with the demo organisation: SQLite, or a fresh PostgreSQL database at `postgresURL`.
    static func world(postgresURL: String? = nil) async throws -> World {
        let dir = try Harness.tempDir()
        let path = dir.appendingPathComponent("menshen.sqlite").path
        var config = MenshenConfiguration.defaults
        config.store.sqlitePath = path
        let store: any MenshenStore
        if let postgresURL {
            config.store.driver = .postgres
            config.store.postgresURL = postgresURL
            config.identity.secretsKeyFile = dir.appendingPathComponent("secrets.key").path
            store = try await StoreFactory.open(config, logger: Logger(label: "test"))
        } else {
            store = try SQLiteStore(path: path)
        }
        let clock = FixedClock(t0)
        try await DemoOrganisation.seed(into: store, upstream: "http://127.0.0.1:9", host: "localhost", clock: clock)
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource(), settings: SessionSettings())
        let rp = RelyingPartyConfiguration(rpID: "localhost", allowedOrigins: ["http://localhost:8080"])
        let identity = IdentityService(store: store, clock: clock, random: SystemRandomSource(),
                                       settings: IdentitySettings(issuer: "Menshen", relyingParty: rp,
                                                                  secretBox: try SecretBox(keyBytes: SystemRandomSource().bytes(32)), bcryptCost: 4),
                                       sessions: sessions)
        return World(dir: dir, store: store, clock: clock, identity: identity, config: config)
    }

    static func close(_ w: World) async {
        try? await w.store.close()
        try? FileManager.default.removeItem(at: w.dir)
    }

    static let password = "correct horse battery staple"

    /// Sets a password and signs in with it, then with TOTP when `totpURI` is given.
    static func signIn(_ w: World, _ user: UserID, totpURI: String? = nil) async throws {
        let outcome = try await w.identity.signIn(userName: user.rawValue, password: password, source: "198.51.100.7")
        switch outcome {
        case .signedIn: #expect(totpURI == nil)
        case .secondFactorRequired(let pending, _):
            let uri = try #require(totpURI)
            let components = try #require(URLComponents(string: uri))
            let secret = try TOTPSecret(base32: try #require(components.queryItems?.first { $0.name == "secret" }?.value))
            let code = try #require(TOTPVerifier().code(secret: secret, at: w.clock.now()))
            guard case .signedIn = try await w.identity.continueWithTOTP(pendingToken: pending, code: code, source: "198.51.100.7") else {
                Issue.record("TOTP sign-in refused"); return
            }
        default: Issue.record("sign-in of \(user) failed: \(outcome)")
        }
    }

    static func decision(_ log: DecisionLog, _ clock: FixedClock, user: String, device: AccessRequest.Device?, outcome: DecisionTrail.Outcome) {
        var t = DecisionTrail(requestID: UUID().uuidString, time: clock.now(), mode: .proxy, method: "GET", host: "localhost", path: "/",
                              sourceIP: "198.51.100.7", outcome: outcome)
        t.user = user
        t.application = "branch-portal"
        t.access = AccessRequest(principal: .init(id: user, groups: ["staff"]),
                                 session: .init(levelOfAssurance: 3, amr: ["pwd", "otp"], factorAgeSeconds: 60, ageSeconds: 60),
                                 device: device,
                                 context: .init(time: clock.now(), sourceIP: "198.51.100.7", networkZone: "internet", method: "GET", path: "/"),
                                 resource: .init(applicationID: "branch-portal", classification: "confidential", scenario: "remote-work"))
        log.record(t)
    }

    @Test("facts and verdicts from users, credentials, sign-ins and decisions seeded through the real code paths")
    func seeded() async throws {
        var w = try await Self.world()
        do { try await Self.seededBody(&w) } catch { await Self.close(w); throw error }
        await Self.close(w)
    }

    @Test("the same facts from PostgreSQL (skipped without MENSHEN_TEST_POSTGRES_URL; required under CI)")
    func seededPostgres() async throws {
        guard let url = try await Harness.offPool({ try TimedMultiNodeTests.createDatabase() }) else { return }
        var w = try await Self.world(postgresURL: url)
        #expect(w.store.backendName == "postgres")
        do { try await Self.seededBody(&w) } catch { await Self.close(w); throw error }
        await Self.close(w)
    }

    static func seededBody(_ w: inout World) async throws {
        let users = try await w.store.listUsers()
        func user(_ id: String) throws -> UserRecord { try #require(users.first { $0.id.rawValue == id } as UserRecord?) }
        for id in ["alice", "bob", "vendor.lee"] {
            #expect(try await w.identity.setPassword(user: try user(id), password: Self.password, actor: "test").isEmpty)
        }
        let pending = try await w.identity.beginTOTPEnrolment(user: try user("alice"))
        let code = try #require(TOTPVerifier().code(secret: pending.enrollment.secret, at: w.clock.now()))
        #expect(try await w.identity.confirmTOTPEnrolment(user: try user("alice"), handle: pending.handle, code: code, actor: "test"))
        let uri = pending.enrollment.keyURI.uri
        // A TOTP seed stored in clear (as an old import might have): counted as not sealed.
        try await w.store.createCredential(CredentialRecord(id: "legacy-totp", userID: "carol", kind: .totp, label: "legacy",
                                                           data: #"{"secret":"JBSWY3DPEHPK3PXP"}"#, createdAt: Self.t0))
        // An old sign-in, outside the 30-day window: not counted.
        w.clock.set(Self.t0.addingTimeInterval(-40 * 86_400))
        try await Self.signIn(w, "vendor.lee")
        w.clock.set(Self.t0.addingTimeInterval(3600))
        try await Self.signIn(w, "alice", totpURI: uri)
        w.clock.advance(by: 60)
        try await Self.signIn(w, "vendor.lee")
        // Gateway decisions: three from an enrolled device (one hardware-bound), one without a device, one step-up.
        let log = DecisionLog(store: w.store, clock: w.clock)
        let enrolled = AccessRequest.Device(enrolled: true, managed: true, compliant: true, hardwareBound: false, external: false,
                                            postureAgeSeconds: 60, maxVulnerabilitySeverity: 0)
        var bound = enrolled; bound.hardwareBound = true
        Self.decision(log, w.clock, user: "alice", device: enrolled, outcome: .allow)
        Self.decision(log, w.clock, user: "alice", device: enrolled, outcome: .allow)
        Self.decision(log, w.clock, user: "alice", device: bound, outcome: .stepUp)
        Self.decision(log, w.clock, user: "bob", device: nil, outcome: .deny)
        await log.flush()
        // The secrets key next to the database, owner-only.
        let key = w.dir.appendingPathComponent("secrets.key").path
        #expect(FileManager.default.createFile(atPath: key, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o600]))

        let now = Self.t0.addingTimeInterval(7200)
        let f = try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 30 * 86_400, now: now)
        #expect(f.identity.activeUsers.value == 5)
        #expect(f.identity.externalUsers.value == 1)
        #expect(f.identity.usersWithMFA.value == 2)          // alice (TOTP enrolled), carol (the legacy seed)
        #expect(f.identity.usersWithTOTP.value == 2)
        #expect(f.identity.usersWithWebAuthn.value == 0)
        #expect(f.identity.signIns.value == 2)               // the one 40 days ago is outside the window
        #expect(f.identity.signInsMultiFactor.value == 1)
        #expect(f.identity.signInsOTP.value == 1)
        #expect(f.identity.signInsPhishingResistant.value == 0)
        #expect(f.identity.internalMinimumSignInLoA.value == 3)
        #expect(f.identity.externalMinimumSignInLoA.value == 1)
        #expect(f.decisions.decided.value == 4)
        #expect(f.decisions.fromEnrolledDevice.value == 3)
        #expect(f.decisions.fromHardwareBoundDevice.value == 1)
        #expect(f.decisions.steppedUp.value == 1)
        #expect(f.data.totpCredentials.value == 2 && f.data.totpCredentialsSealed.value == 1)
        #expect(f.data.secretsKeyPresent.value && f.data.secretsKeyOwnerOnly.value && f.data.secretsKeyAgeDays.value == 0)
        #expect(f.roles.usersMixingPrivileged.value == ["bob"])   // ops-engineer (sensitive) and db-admin (privileged)
        #expect(f.network.routes.value.map(\.id).sorted() == ["branch-portal", "core-maintenance"])
        #expect(f.network.routes.value.allSatisfy { $0.source == "store" })
        #expect(f.policies.problem == nil)
        #expect(f.policies.inForce.value.count == DemoOrganisation.policies.count * 2)
        #expect(f.policies.inForce.value.first { $0.id == "remote-work-read" }?.applications == ["branch-portal"])
        #expect(f.policies.inForce.value.first { $0.id == "vendor-maintenance-window" }?.alert == "medium")
        #expect(f.policies.inForce.value.first { $0.id == "baseline-disabled-accounts" }?.applications == nil)
        #expect(f.devices.baselines.value.map(\.deviceClass) == ["byod", "managed", "vendor"])
        #expect(f.visibility.detections.value.count >= 11)
        // Queries are reproducible: they name the window in milliseconds.
        #expect(f.identity.signIns.query.contains("class_uid = 3002 AND time >= \(StoreCoding.millis(now.addingTimeInterval(-30 * 86_400)))"))

        let e = PrincipleRules.evaluate(facts: f, attestations: [], now: now)
        #expect(e["1.1"]?.verdict == .partiallyMet)    // 2 of 5 users (40 %), but 1 of 2 sign-ins (50 %, the partial edge)
        #expect(e["1.3"]?.verdict == .notMet)          // the vendor signed in at LoA 1, staff at LoA 3
        #expect(e["2.1"]?.verdict == .notMet)          // no device certificates asked for
        #expect(e["3.4"]?.verdict == .notMet)          // plain HTTP gateway
        #expect(e["4.1"]?.verdict == .notMet)          // bob mixes privileged and ordinary roles
        #expect(e["4.2"]?.verdict == .notMeasurable)
        #expect(e["5.6"]?.verdict == .notMet)          // one TOTP seed in clear
        #expect(e["5.5"]?.verdict == .met)             // both sensitive routes are covered by step-up obligations
        #expect(e["4.4"]?.verdict == .notMet)          // attestation-only, none given
        // The same store, one more user enrolled: counted at the next assessment.
        let bob = try user("bob")
        let p2 = try await w.identity.beginTOTPEnrolment(user: bob)
        #expect(try await w.identity.confirmTOTPEnrolment(user: bob, handle: p2.handle,
                                                          code: try #require(TOTPVerifier().code(secret: p2.enrollment.secret, at: w.clock.now())), actor: "test"))
        let f2 = try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 30 * 86_400, now: now)
        #expect(f2.identity.usersWithMFA.value == 3 && f2.identity.usersWithTOTP.value == 3)
        w.config.gateway.routesFile = w.dir.appendingPathComponent("missing-routes.yaml").path
        let broken = try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 30 * 86_400, now: now)
        #expect(broken.policies.problem != nil)        // a routes file that does not load: the policy-based principles fail closed
        let be = PrincipleRules.evaluate(facts: broken, attestations: [], now: now)
        for id in ["3.2", "3.4", "5.3", "5.5"] { #expect(be[id]?.verdict == .notMet, "\(id) with a broken routes file") }
        #expect(be["3.2"]?.rationale.en.contains("missing-routes.yaml") == true)
    }

    @Test("a long event scan reports its progress (a line per N events read, and when it is done)")
    func scanProgress() async throws {
        let w = try await Self.world()
        do { try await Self.scanProgressBody(w) } catch { await Self.close(w); throw error }
        await Self.close(w)
    }

    static func scanProgressBody(_ w: World) async throws {
        let users = try await w.store.listUsers()
        for id in ["alice", "bob"] {
            let user = try #require(users.first { $0.id.rawValue == id })
            #expect(try await w.identity.setPassword(user: user, password: Self.password, actor: "test").isEmpty)
            try await signIn(w, user.id)
        }
        final class Lines: @unchecked Sendable {
            private let lock = NSLock()
            private var lines: [String] = []
            func add(_ l: String) { lock.lock(); lines.append(l); lock.unlock() }
            var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
        }
        let lines = Lines()
        var visited = 0
        try await AssessmentFacts.scan(w.store, classes: [3002], start: t0.addingTimeInterval(-86_400), now: t0.addingTimeInterval(60),
                                       progress: { lines.add($0) }, every: 1) { _ in visited += 1 }
        #expect(visited >= 2)
        #expect(lines.all.first == "read \(visited) events of class 3002 (up to \(ISO8601DateFormatter().string(from: t0)))", "\(lines.all)")
        #expect(lines.all.last == "read \(visited) events of class 3002: done")
        // Below the threshold nothing is said.
        let quiet = Lines()
        try await AssessmentFacts.scan(w.store, classes: [3002], start: t0.addingTimeInterval(-86_400), now: t0.addingTimeInterval(60),
                                       progress: { quiet.add($0) }, every: 1_000) { _ in }
        #expect(quiet.all.isEmpty)
    }

    @Test("the demo deployment assesses without error; nothing is met without a measurement or a valid attestation behind it")
    func demo() async throws {
        let w = try await Self.world()
        do { try await Self.demoBody(w) } catch { await Self.close(w); throw error }
        await Self.close(w)
    }

    static func demoBody(_ w: World) async throws {
        let now = Self.t0
        let att = Attestation(id: "a1", principleID: "4.4", statement: "Annual penetration test", attestedBy: "CISO", attestedAt: now.addingTimeInterval(-86_400),
                              expiresAt: now.addingTimeInterval(86_400 * 300), files: [.init(name: "pentest.pdf", sha256: String(repeating: "0", count: 64), size: 1)])
        let expired = Attestation(id: "a2", principleID: "5.4", statement: "Backups", attestedBy: "CIO", attestedAt: now.addingTimeInterval(-86_400 * 400),
                                  expiresAt: now.addingTimeInterval(-86_400), files: [.init(name: "restore.pdf", sha256: String(repeating: "1", count: 64), size: 1)])
        let a = try await AssessmentRunner.assess(configuration: w.config, store: w.store, window: 30 * 86_400, now: now,
                                                  attestations: [att, expired], previous: nil)
        #expect(a.principles.count == 36)
        for r in a.principles where r.verdict.satisfies {
            let attested = r.attestations.contains { $0.state == .valid && !$0.attestation.files.isEmpty }
            #expect(!r.measurements.isEmpty || attested, "\(r.principleID) is \(r.verdict) without evidence")
        }
        for r in a.principles {
            for m in r.measurements { #expect(!m.query.isEmpty, "\(r.principleID): \(m.id) has no query") }
            #expect(!r.rationale.en.isEmpty && !r.rationale.zhTW.isEmpty)
        }
        #expect(a.result("4.4")?.verdict == .met)
        #expect(a.result("5.4")?.verdict == .notMet && a.result("5.4")?.rationale.en.contains("expired on") == true)
        #expect(a.result("5.1")?.verdict == .notMeasurable)
        #expect(a.routes.count == 2 && a.routes.allSatisfy { !$0.checks.isEmpty })
        // A level is claimed only where every principle up to it is satisfied.
        for p in a.pillars where p.level > 0 {
            let below = a.principles.filter { $0.pillar == p.pillar && $0.level <= p.level }
            #expect(below.allSatisfy { $0.verdict.satisfies }, "\(p.pillar) claims level \(p.level)")
        }
        #expect(a.overallLevel == 0)   // no DLP (5.1): the data pillar cannot reach Level I
    }

    @Test("every built-in detection with an ATT&CK mapping is assigned to the pillars whose events it reads")
    func detectionPillars() throws {
        var metadata = BuiltInRules.detectors().map(\.metadata)
        metadata += try BuiltInRules.ruleSet().allMetadata
        for m in metadata where !m.techniques.isEmpty {
            #expect(AssessmentFacts.detectionPillars[m.title]?.isEmpty == false, "\(m.title) has no pillar")
        }
    }
}
