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
import MenshenTestSupport
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

    static func decision(_ log: DecisionLog, _ clock: FixedClock, user: String, device: AccessRequest.Device?, outcome: DecisionTrail.Outcome,
                         mode: DecisionMode = .proxy, deviceID: String? = nil, policies: String? = nil) throws {
        var t = DecisionTrail(requestID: UUID().uuidString, time: clock.now(), mode: mode, method: "GET", host: "localhost", path: "/",
                              sourceIP: "198.51.100.7", outcome: outcome)
        t.user = user
        t.deviceID = deviceID
        t.application = "branch-portal"
        t.access = AccessRequest(principal: .init(id: user, groups: ["staff"]),
                                 session: .init(levelOfAssurance: 3, amr: ["pwd", "otp"], factorAgeSeconds: 60, ageSeconds: 60),
                                 device: device,
                                 context: .init(time: clock.now(), sourceIP: "198.51.100.7", networkZone: "internet", method: "GET", path: "/"),
                                 resource: .init(applicationID: "branch-portal", classification: "confidential", scenario: "remote-work"))
        // The decision itself from the real policy engine, when policies are given (obligations, @alert).
        if let policies, let access = t.access {
            t.decision = try PolicyDecisionPoint(documents: [(name: "test.cedar", text: policies)]).decide(access)
        }
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
        // A role nobody holds: still a role of the inventory (0 holders), as the published roles query must say.
        try await w.store.createRole(RoleRecord(id: "break-glass", displayName: "Break glass", riskTier: .privileged))
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
        try Self.decision(log, w.clock, user: "alice", device: enrolled, outcome: .allow, deviceID: "d-0123456789abcdef")
        try Self.decision(log, w.clock, user: "alice", device: enrolled, outcome: .allow)
        try Self.decision(log, w.clock, user: "alice", device: bound, outcome: .stepUp)
        try Self.decision(log, w.clock, user: "bob", device: nil, outcome: .deny)
        // Dynamic responses, decided by the real policy engine: a read-only allow (narrowed), an allow raising an @alert
        // (which also writes its 2004 finding), and a long-lived connection closed on re-evaluation.
        try Self.decision(log, w.clock, user: "carol", device: nil, outcome: .allow,
                          policies: #"@id("read-only") @obligation("read_only") permit (principal, action, resource);"#)
        try Self.decision(log, w.clock, user: "carol", device: nil, outcome: .allow, policies: #"@id("watched") @alert("medium") permit (principal, action, resource);"#)
        try Self.decision(log, w.clock, user: "carol", device: nil, outcome: .deny, mode: .reevaluation, policies: #"forbid (principal, action, resource);"#)
        await log.flush()
        // Playbook actions (7001) as the detection service writes them: one revoke_sessions taken (counted); a dry run,
        // a webhook, a failed step-up and an operator's approval of a held step (not counted).
        let rule = RuleMetadata(file: "t.yml", id: "2428a622-cf6c-456d-b81a-111debfcafcc", name: nil, title: "Access attempt from an unmanaged device",
                                status: .experimental, level: .medium, tags: ["attack.initial-access", "attack.t1133"], description: nil)
        let finding = DetectionFinding(metadata: rule, user: "bob", sourceIP: "198.51.100.7", device: "d-0123456789abcdef", evidence: ["e1"],
                                       firstTime: w.clock.now(), lastTime: w.clock.now(), message: "unmanaged device")
        // Written 3 s after its last event: the time to alert.
        var response = [try ResponseEvents.finding(finding, id: UUID(), writtenAt: w.clock.now().addingTimeInterval(3))]
        for (step, outcome) in [
            (PlaybookStep(playbook: "contain", action: .revokeSessions(.finding)), ResponseEvents.Outcome(success: true, detail: "2 sessions revoked", users: ["bob"])),
            (PlaybookStep(playbook: "rehearse", action: .disableUser(.finding), dryRun: true), ResponseEvents.Outcome(success: true, detail: "would disable", users: ["bob"])),
            (PlaybookStep(playbook: "ticket", action: .webhook(try WebhookTarget(url: "https://tickets.bank.example/hook"))), ResponseEvents.Outcome(success: true, detail: "delivered")),
            (PlaybookStep(playbook: "challenge", action: .requireStepUp(seconds: 3600, .finding)), ResponseEvents.Outcome(success: false, detail: "store unavailable")),
        ] {
            response.append(try ResponseEvents.action(step, finding: finding, outcome: outcome, id: UUID(), at: w.clock.now()))
        }
        let held = PlaybookApprovalRecord(id: UUID().uuidString.lowercased(), playbook: "contain", action: "revoke_sessions", findingUID: finding.uid,
                                          summary: "revoke bob", step: "{}", createdAt: w.clock.now(), expiresAt: w.clock.now().addingTimeInterval(3600))
        response.append(try ResponseEvents.approvalDecision(held, approved: true, operator: "soc-lead", id: UUID(), at: w.clock.now()))
        _ = try await w.store.appendEvents(response, hasher: EventChain.hasher)
        // The finding filed as a case (2005 Create), then closed (2005 Close).
        let cases = CaseService(store: w.store, clock: w.clock, random: SystemRandomSource())
        let (filed, opened) = try #require(try await cases.file(finding))
        _ = try await w.store.appendEvents([opened], hasher: EventChain.hasher)
        try await cases.setStatus(id: filed.id, status: .closed, verdict: .truePositive, reopen: false, actor: "cli:root")
        // A device turning non-compliant and compliant again (2003), as the device service records it.
        let devices = DeviceEvents(store: w.store, clock: w.clock, random: SystemRandomSource())
        var laptop = DeviceRecord(id: "d-0123456789abcdef", ownerID: "alice", displayName: "Alice's laptop", deviceClass: .managed, platform: "Debian",
                                  hardwareBound: false, compliant: false, complianceReasons: ["firewall_off"], enrolledAt: w.clock.now())
        try await devices.complianceChanged(device: laptop, reasons: ["firewall_off"], sessionsRevoked: 1, source: nil)
        laptop.compliant = true; laptop.complianceReasons = []
        try await devices.complianceChanged(device: laptop, reasons: [], sessionsRevoked: 0, source: nil)
        // bob (db-admin, privileged) switches to privileged work and back through the portal's path: one privileged-work session.
        let bobSession = try await w.identity.sessions.issue(SessionGrant(userID: "bob", levelOfAssurance: 3, amr: ["pwd", "otp"], aal: 2, phishingResistant: false))
        let bobActive = try #require(try await w.identity.sessions.resolve(token: bobSession.token))
        guard case .success(let privileged) = try await w.identity.startPrivilegedWork(bobActive, source: "198.51.100.7") else {
            Issue.record("bob may start privileged work"); return
        }
        let privilegedActive = try #require(try await w.identity.sessions.resolve(token: privileged.token))
        #expect(privilegedActive.attributes.activeRoles == ["db-admin"])
        #expect(try await w.identity.endPrivilegedWork(privilegedActive, source: "198.51.100.7") != nil)
        // alice steps up with TOTP through the real step-up path: the one completed step-up (the switches above are not).
        w.clock.advance(by: 60)
        let aliceSession = try await w.identity.sessions.issue(SessionGrant(userID: "alice", levelOfAssurance: 1, amr: ["pwd"], aal: 1, phishingResistant: false))
        let aliceActive = try #require(try await w.identity.sessions.resolve(token: aliceSession.token))
        let stepCode = try #require(TOTPVerifier().code(secret: pending.enrollment.secret, at: w.clock.now()))
        #expect(try await w.identity.stepUpWithTOTP(aliceActive, code: stepCode, source: "198.51.100.7") != nil)
        w.config.webhookExport.enabled = true
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
        #expect(f.decisions.decided.value == 7)                // the four above and the three decided by the engine
        #expect(f.decisions.withDeviceID.value == 1)
        #expect(f.decisions.narrowed.value == 1 && f.decisions.alerted.value == 1 && f.decisions.revokedOnReevaluation.value == 1)
        #expect(f.decisions.responseActions.value == 1)        // the revoke taken; not the dry run, webhook, failure or approval
        #expect(f.decisions.complianceChanges.value == 2)
        #expect(f.visibility.findings.value == 2)              // the detection's finding and the @alert's
        #expect(f.visibility.meanSecondsToAlert.value == 3, "the detection's finding, 3 s after its last event (the @alert's names none)")
        #expect(f.visibility.decisionAuditFailsClosed.value, "audit.when_unwritten = refuse, the default")
        #expect(!f.visibility.auditChainSigned.value, "no checkpoint signed")
        #expect(f.visibility.casesOpened.value == 1 && f.visibility.casesClosed.value == 1)
        #expect(f.visibility.webhookExport.value && f.visibility.exported)
        #expect(f.identity.stepUpsCompleted.value == 1)         // alice's TOTP step-up; bob's privileged-work start and end are not step-ups
        #expect(f.decisions.fromEnrolledDevice.value == 3)
        if w.store.backendName == "sqlite" { try await Self.publishedQueriesAgree(f, sqlitePath: w.config.store.sqlitePath) }
        #expect(f.decisions.fromHardwareBoundDevice.value == 1)
        #expect(f.decisions.steppedUp.value == 1)
        #expect(f.data.totpCredentials.value == 2 && f.data.totpCredentialsSealed.value == 1)
        #expect(f.data.secretsKeyPresent.value && f.data.secretsKeyOwnerOnly.value && f.data.secretsKeyAgeDays.value == 0)
        #expect(f.roles.usersMixingPrivileged.value == ["bob"])   // ops-engineer (sensitive) and db-admin (privileged)
        #expect(f.roles.privilegedSessionsStarted.value == 1)
        #expect(f.roles.privilegedSessionLifetimeSeconds.value == 3600 && f.roles.ordinarySessionsMayHoldPrivileged.value == false)
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
        // bob holds ops-engineer and db-admin, but db-admin is active only in his privileged-work session: not mixing;
        // partial because no demo policy names a privileged role.
        #expect(e["4.1"]?.verdict == .partiallyMet)
        #expect(e["4.2"]?.verdict == .met)             // db-admin only in a privileged-work session of at most 1 hour, used once
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

    /// Runs the published SQL of every measurement whose query is SQL against the SQLite file, with Python's sqlite3
    /// module (an independent reader), and compares it with the number the assessment reported.
    static func publishedQueriesAgree(_ f: DeploymentFacts, sqlitePath: String) async throws {
        func rows(_ sql: String) async throws -> [[Any]] {
            let (status, out) = try await Harness.offPool { () -> (Int32, Data) in
                // posix_spawn, not Foundation's Process (see `spawnAndWait`).
                let r = try spawnAndWait("/usr/bin/env", ["python3", "-c",
                    "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); print(json.dumps(c.execute(sys.argv[2]).fetchall()))", sqlitePath, sql])
                return (r.status, Data(r.stdout))
            }
            #expect(status == 0, "the published query does not run: \(sql)")
            return (try? JSONSerialization.jsonObject(with: out) as? [[Any]]) ?? []
        }
        /// `SELECT payload …` counts its rows; `SELECT count(*)` or `min(…)` is the value.
        func number(_ sql: String) async throws -> Int? {
            let r = try await rows(sql)
            if sql.hasPrefix("SELECT payload ") { return r.count }
            return (r.first?.first as? NSNumber)?.intValue
        }
        let counts: [(String, Fact<Int>)] = [
            ("active users", f.identity.activeUsers), ("internal users", f.identity.internalUsers), ("external users", f.identity.externalUsers),
            ("users with MFA", f.identity.usersWithMFA), ("users with WebAuthn", f.identity.usersWithWebAuthn), ("users with TOTP", f.identity.usersWithTOTP),
            ("sign-ins", f.identity.signIns), ("multi-factor sign-ins", f.identity.signInsMultiFactor),
            ("phishing-resistant sign-ins", f.identity.signInsPhishingResistant), ("OTP sign-ins", f.identity.signInsOTP),
            ("step-ups", f.identity.stepUpsCompleted), ("privileged-work sessions", f.roles.privilegedSessionsStarted),
            ("users holding a privileged role", f.roles.usersHoldingPrivileged),
            ("TOTP credentials", f.data.totpCredentials), ("sealed TOTP credentials", f.data.totpCredentialsSealed),
            ("decisions", f.decisions.decided), ("from enrolled devices", f.decisions.fromEnrolledDevice),
            ("from hardware-bound devices", f.decisions.fromHardwareBoundDevice), ("naming the device", f.decisions.withDeviceID),
            ("stepped up", f.decisions.steppedUp), ("narrowed", f.decisions.narrowed), ("revoked on re-evaluation", f.decisions.revokedOnReevaluation),
            ("alerted", f.decisions.alerted), ("response actions", f.decisions.responseActions), ("compliance changes", f.decisions.complianceChanges),
            ("findings", f.visibility.findings), ("cases opened", f.visibility.casesOpened), ("cases closed", f.visibility.casesClosed),
            ("active devices", f.devices.active), ("hardware-bound devices", f.devices.hardwareBound), ("compliant devices", f.devices.compliant),
        ]
        for (name, fact) in counts {
            #expect(fact.query.hasPrefix("SELECT "), "\(name): \(fact.query)")
            #expect(try await number(fact.query) == fact.value, "\(name): the published query disagrees with \(fact.value): \(fact.query)")
        }
        for (name, fact) in [("internal", f.identity.internalMinimumSignInLoA), ("external", f.identity.externalMinimumSignInLoA)] {
            #expect(try await number(fact.query) == fact.value, "lowest \(name) LoA: \(fact.query)")
        }
        let toAlert = try await rows(f.visibility.meanSecondsToAlert.query).first?.first as? NSNumber
        #expect(toAlert?.doubleValue == f.visibility.meanSecondsToAlert.value, "mean time to alert: \(f.visibility.meanSecondsToAlert.query)")
        // Roles: every role with its tier and active holders, also a role nobody holds (0).
        let roleRows = try await rows(f.roles.roles.query).map { "\($0[0]) \($0[1]) \(($0[2] as? NSNumber)?.intValue ?? -1)" }
        #expect(roleRows == f.roles.roles.value.sorted { $0.id < $1.id }.map { "\($0.id) \($0.tier) \($0.holders)" }, "\(f.roles.roles.query)")
        #expect(f.roles.roles.value.contains { $0.holders == 0 }, "the seed has a role without an active holder")
    }

    @Test("the event log: access refused while decisions cannot be logged (audit.when_unwritten), and its head signed in the window or at the head")
    func auditTrail() async throws {
        var w = try await Self.world()
        let now = Self.t0.addingTimeInterval(7200)
        func facts() async throws -> DeploymentFacts.Visibility {
            try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 86_400, now: now).visibility
        }
        func append(at time: Date) async throws -> StoredEvent {
            let e = NewEvent(id: UUID(), time: time, classUID: 3002, payloadJSON: #"{"class_uid":3002}"#)
            return try #require(try await w.store.appendEvents([e], hasher: EventChain.hasher).last)
        }
        func sign(_ e: StoredEvent, at time: Date) async throws {
            try await w.store.appendCheckpoint(AuditCheckpointRecord(sequence: e.sequence, eventID: e.event.id, hash: e.hash, time: time,
                                                                     keyID: "k1", signature: "sig"))
        }
        var v = try await facts()
        #expect(v.decisionAuditFailsClosed.value && v.decisionAuditFailsClosed.query == "audit.when_unwritten = refuse")
        #expect(!v.auditChainSigned.value, "no checkpoint: \(v.auditChainSigned.query)")

        let old = try await append(at: now.addingTimeInterval(-3 * 86_400))
        try await sign(old, at: now.addingTimeInterval(-3 * 86_400))
        #expect(try await facts().auditChainSigned.value, "signed before the window, but at the head of a log quiet since")
        let recent = try await append(at: now.addingTimeInterval(-3600))
        v = try await facts()
        #expect(!v.auditChainSigned.value, "the newest signature is older than the window and behind the head: \(v.auditChainSigned.query)")
        try await sign(recent, at: now.addingTimeInterval(-3000))
        _ = try await append(at: now.addingTimeInterval(-60))
        v = try await facts()
        #expect(v.auditChainSigned.value, "signed within the window (the head has moved on since): \(v.auditChainSigned.query)")

        w.config.audit.whenUnwritten = "admit"
        v = try await facts()
        #expect(!v.decisionAuditFailsClosed.value && v.decisionAuditFailsClosed.query == "audit.when_unwritten = admit")
        await Self.close(w)
    }

    @Test("a node that leaves detections to another (response.detections_enabled: false): they count while the shared cursor keeps up with the log, not without a cursor or more than ten minutes behind")
    func detectionsOnAnotherNode() async throws {
        var w = try await Self.world()
        do {
            let now = Self.t0.addingTimeInterval(7200)
            func facts() async throws -> DeploymentFacts.Visibility {
                try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 86_400, now: now).visibility
            }
            func append(at time: Date) async throws -> Int64 {
                let e = NewEvent(id: UUID(), time: time, classUID: 3002, payloadJSON: #"{"class_uid":3002}"#)
                return try #require(try await w.store.appendEvents([e], hasher: EventChain.hasher).last?.sequence)
            }
            let running = try await facts().detections.value.count
            #expect(running >= 11, "this node runs them (the default)")

            w.config.response.detectionsEnabled = false
            let neverFacts = try await AssessmentFacts.gather(configuration: w.config, store: w.store, window: 86_400, now: now)
            let never = neverFacts.visibility
            #expect(never.detections.value.isEmpty)
            #expect(never.detections.query.contains("no node ever saved the consumer cursor `detections`"), "\(never.detections.query)")
            #expect(never.detectionsStopped)
            let verdicts = PrincipleRules.evaluate(facts: neverFacts, attestations: [], now: now)
            for principle in ["4.3", "5.2"] {   // behaviour and risk; data exfiltration
                #expect(verdicts[principle]?.verdict == .notMet)
                #expect(verdicts[principle]?.remedy?.en.hasPrefix("Run the detections on one node (response.detections_enabled: true there") == true,
                        "\(principle): \(verdicts[principle]?.remedy?.en ?? "")")
            }

            let old = try await append(at: now.addingTimeInterval(-11 * 60))
            try await w.store.saveCursor(named: DetectionService.cursorName, sequence: old - 1, at: now)
            let behind = try await facts()
            #expect(behind.detections.value.isEmpty, "the first unexamined event is eleven minutes old")
            #expect(behind.detections.query.contains("left event \(old)") && behind.detections.query.contains("no node keeps up"),
                    "\(behind.detections.query)")

            try await w.store.saveCursor(named: DetectionService.cursorName, sequence: old, at: now)
            let caughtUp = try await facts()
            #expect(caughtUp.detections.value.count == running)
            #expect(caughtUp.detections.query.contains("run by another node") && !caughtUp.detectionsStopped, "\(caughtUp.detections.query)")
            _ = try await append(at: now.addingTimeInterval(-9 * 60))
            #expect(try await facts().detections.value.count == running, "nine minutes behind: still keeping up")
            _ = try await append(at: now.addingTimeInterval(-20 * 60))   // written late with an old time: the next after the cursor is still recent
            #expect(try await facts().detections.value.count == running)
        } catch { await Self.close(w); throw error }
        await Self.close(w)
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
