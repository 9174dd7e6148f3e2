import Foundation
import Logging
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import MenshenVisibility
import Synchronization
import Testing

/// Issue #7, Build item "risk score the policy engine can read": the real
/// `menshen serve` on SQLite, with a routes file whose Cedar file forbids
/// `context.risk.score >= 50`. Another process (this test) writes a password
/// spray and a guessing run through the real sign-in event producer into the
/// same database; the server's detection service raises the targeted users'
/// risk and stores it; the server's gateway reads it with the session's facts
/// and denies the riskiest user's next request while a sprayed user under the
/// threshold and an untouched user still pass. The decision events carry the
/// score. A second gateway node (a `PolicyGate` on its own handle of the
/// database, with no detection of its own) decides the same from the store.
@Suite("Risk score reaches the gateway (real menshen serve)", .serialized)
struct RiskScoreGatewayTests {
    static let forbidRisky = """
        @id("deny-risky-users")
        forbid (principal, action, resource) when { context.risk.score >= 50 };
        """

    /// `menshen serve` with a routes file (one route to its own /healthz for group staff) and the risk policy.
    final class Server: @unchecked Sendable {
        // Invariant: created and stopped by one test, off the cooperative pool.
        let process = ChildProcess()
        let err: Harness.Collector
        let gateway: String, database: String

        /// `sqliteExtra` goes under `store.sqlite`, `extra` at the end of the file (top-level sections).
        init(dir: URL, sqliteExtra: String = "", extra: String = "") throws {
            let p = try Harness.freePort(), g = try Harness.freePort(), admin = try Harness.freePort()
            gateway = "http://localhost:\(g)"
            database = dir.appendingPathComponent("menshen.sqlite").path
            try RiskScoreGatewayTests.forbidRisky.write(to: dir.appendingPathComponent("risk.cedar"), atomically: true, encoding: .utf8)
            let routes = dir.appendingPathComponent("routes.yaml")
            try """
                policies: [risk.cedar]
                routes:
                  - id: health
                    host: localhost
                    path_prefix: /healthz
                    upstreams: ["http://127.0.0.1:\(admin)"]
                    classification: internal
                    require:
                      groups: [staff]
                """.write(to: routes, atomically: true, encoding: .utf8)
            let file = dir.appendingPathComponent("menshen.yaml")
            try """
                organisation:
                  name: Test Bank
                server:
                  listen: 127.0.0.1:\(p)
                  public_url: http://localhost:\(p)
                gateway:
                  listen: 127.0.0.1:\(g)
                  public_url: \(gateway)
                  routes_file: \(routes.path)
                admin:
                  listen: 127.0.0.1:\(admin)
                store:
                  driver: sqlite
                  sqlite:
                    path: \(database)
                \(sqliteExtra.isEmpty ? "" : "    " + sqliteExtra)
                \(extra)
                """.write(to: file, atomically: true, encoding: .utf8)
            err = try Harness.Collector()
            process.executableURL = URL(fileURLWithPath: Harness.binary)
            process.arguments = ["serve", "--config", file.path]
            process.errorPath = err.url.path
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let r = try? PortalIdentityTests.httpSync("GET", "http://127.0.0.1:\(admin)/healthz"), r.status == 200 { return }
                if !process.isRunning { throw Harness.HarnessError("menshen serve exited: \(err.text)") }
                Thread.sleep(forTimeInterval: 0.2)
            }
            stop()
            throw Harness.HarnessError("menshen serve did not become healthy")
        }

        func stop() {
            process.signal(SIGTERM)
            process.waitUntilExit()
            _ = err.finish()
        }
    }

    static func payload(_ e: StoredEvent) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(e.event.payloadJSON.utf8))) as? [String: Any] ?? [:]
    }

    static func decision(_ e: StoredEvent) -> [String: Any] {
        (payload(e)["unmapped"] as? [String: Any])?["decision"] as? [String: Any] ?? [:]
    }

    static func status(_ gateway: String, cookie: String) async throws -> Int {
        try await PortalIdentityTests.http("GET", gateway + "/healthz",
                                           headers: ["Accept": "application/json", "Cookie": "__Host-menshen-session=\(cookie)"]).status
    }

    @Test("a spray and guessing against amy raise her score to 55: her next request is denied by `context.risk.score >= 50`, bo (35) and carl (0) pass, the decisions carry the scores, and a second node decides the same from the store")
    func sprayRaisesRiskAndGatewayDenies() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await Harness.offPool { UncheckedBox(value: try Server(dir: dir)) }.value
        defer { server.stop() }

        // The directory and sessions, written by this process into the server's database.
        let store = try SQLiteStore(path: server.database)
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        for u in ["amy", "bo", "carl"] {
            try await store.createUser(UserRecord(id: UserID(u), displayName: u, createdAt: Date()))
            try await store.addMember(UserID(u), to: "staff")
        }
        let sessions = SessionManager(store: store, clock: SystemClock(), random: SystemRandomSource())
        var cookies: [String: String] = [:]
        for u in ["amy", "bo", "carl"] {
            cookies[u] = try await sessions.issue(SessionGrant(userID: UserID(u), levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil,
                                                               phishingResistant: false)).token
        }
        for u in ["amy", "bo", "carl"] {
            #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: try #require(cookies[u]), limit: 10) != nil,
                    "\(u) reaches the application before anything happened")
        }

        // The attack, through the real sign-in event producer: one source sprays twelve names (amy and bo among them),
        // then four more wrong passwords for amy from another address (five in ten minutes: guessing).
        let identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
        for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "svc-batch", "scanner"] {
            try await identity.authentication(.logon, user: ["amy", "bo"].contains(name) ? UserID(name) : nil, userName: name, success: false,
                                              detail: "wrong password", source: "198.51.100.23", factors: ["pwd"])
        }
        for _ in 0..<4 {
            try await identity.authentication(.logon, user: "amy", userName: "amy", success: false, detail: "wrong password",
                                              source: "203.0.113.9", factors: ["pwd"])
        }

        // amy: the spray (high, 35) and the guessing (medium, 20) = 55 → denied on her next request.
        let denied = try await TimedMultiNodeTests.until(403, server.gateway + "/healthz", cookie: try #require(cookies["amy"]), limit: 10)
        #expect(denied != nil, "the gateway still admits amy: \(server.err.text.suffix(1500))")
        #expect(try await Self.status(server.gateway, cookie: try #require(cookies["bo"])) == 200, "bo (35, under the threshold) passes")
        #expect(try await Self.status(server.gateway, cookie: try #require(cookies["carl"])) == 200, "carl was not attacked")

        // The stored scores, computed now from the stored contributions.
        func score(_ u: String) async throws -> Int {
            guard let r = try await store.riskScore(of: UserID(u)) else { return 0 }
            return RiskScore(user: u, contributions: try RiskScore.decode(r.contributions), at: Date()).value
        }
        #expect(try await score("amy") == 55)
        #expect(try await score("bo") == 35)
        #expect(try await score("carl") == 0)
        #expect(try await store.riskScore(of: "carl") == nil)

        // The decision events carry the score the decision was made on, and the forbid that decided it.
        var decisions: [StoredEvent] = []
        for _ in 0..<100 {
            decisions = try await store.events(after: 0, limit: 100_000).filter { $0.event.classUID == 6001 }
            if decisions.contains(where: { $0.event.userID == "amy" && Self.decision($0)["effect"] as? String == "deny" })
                && decisions.contains(where: { $0.event.userID == "bo" && ((Self.decision($0)["context"] as? [String: Any])?["risk_score"] as? Int) == 35 }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let amyDenied = try #require(decisions.last { $0.event.userID == "amy" && Self.decision($0)["effect"] as? String == "deny" })
        #expect((Self.decision(amyDenied)["context"] as? [String: Any])?["risk_score"] as? Int == 55)
        #expect(Self.decision(amyDenied)["policies"] as? [String] == ["deny-risky-users"])
        #expect(Self.payload(amyDenied)["status_id"] as? Int == 2)
        let amyAllowed = try #require(decisions.first { $0.event.userID == "amy" && Self.decision($0)["effect"] as? String == "allow" })
        #expect((Self.decision(amyAllowed)["context"] as? [String: Any])?["risk_score"] as? Int == 0, "before the attack her score was 0")
        let boLatest = try #require(decisions.last { $0.event.userID == "bo" })
        #expect((Self.decision(boLatest)["context"] as? [String: Any])?["risk_score"] as? Int == 35)
        #expect(Self.decision(boLatest)["effect"] as? String == "allow")

        // A second node: its own handle on the database and a gate with the same policies, no detection service.
        let other = try SQLiteStore(path: server.database)
        let node = try Self.secondNode(other)
        #expect(try await Self.ask(node, token: try #require(cookies["amy"])) == "deny 55")
        #expect(try await Self.ask(node, token: try #require(cookies["bo"])) == "allow 35")
        #expect(try await Self.ask(node, token: try #require(cookies["carl"])) == "allow 0")
        // A stored risk row that cannot be read fails closed: bo's request is answered, never forwarded.
        try other.unsafeExecute("UPDATE risk_scores SET contributions = 'not a risk record' WHERE user_id = 'bo'")
        let verdict = await node.0.decide(GateRequest(method: "GET", path: "/healthz", rawTarget: "/healthz", query: nil, host: "localhost",
                                                      scheme: "http", clientAddress: "127.0.0.1",
                                                      headers: [("Accept", "application/json"), ("Cookie", "__Host-menshen-session=\(try #require(cookies["bo"]))")],
                                                      requestID: "node-b-corrupt"))
        if case .forward = verdict { Issue.record("an unreadable risk row must not let the request through") }
        #expect(try await Self.ask(node, token: try #require(cookies["carl"])) == "allow 0", "other users are unaffected")
        try await other.close()
        try await store.close()
    }

    @Test("a node with response.detections_enabled: false leaves detections to another: the attack writes no finding, no cursor and no risk there while its gateway goes on logging decisions; a detection service of another node on the same database finds it, and this node's gateway denies amy")
    func detectionsLeftToAnotherNode() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await Harness.offPool {
            UncheckedBox(value: try Server(dir: dir, extra: "response:\n  detections_enabled: false\n"))
        }.value
        defer { server.stop() }
        let store = try SQLiteStore(path: server.database)
        let cookie = try await RiskScoreGatewayTests.amyOfStaff(store)
        #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: cookie, limit: 10) != nil)

        // The same attack as above: a spray over twelve names, then guessing amy's password (55 points when detected).
        let identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
        for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "svc-batch", "scanner"] {
            try await identity.authentication(.logon, user: name == "amy" ? "amy" : nil, userName: name, success: false,
                                              detail: "wrong password", source: "198.51.100.23", factors: ["pwd"])
        }
        for _ in 0..<4 {
            try await identity.authentication(.logon, user: "amy", userName: "amy", success: false, detail: "wrong password",
                                              source: "203.0.113.9", factors: ["pwd"])
        }
        let attackEnd = try await store.events(after: 0, limit: 100_000).last?.sequence ?? 0
        // The server is at work meanwhile: amy's requests after the attack are forwarded and their decisions logged. Three
        // seconds is thirty polls of a detection service that would follow the log (it finds this attack in well under one).
        let watched = Date()
        var decisionsAfter = 0
        while Date().timeIntervalSince(watched) < 3 {
            #expect(try await Self.status(server.gateway, cookie: cookie) == 200, "amy is admitted: nothing was detected on this node")
            decisionsAfter = try await store.events(after: attackEnd, limit: 100_000).filter { $0.event.classUID == 6001 }.count
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(decisionsAfter > 0, "the server logged its decisions while it was watched: \(server.err.text.suffix(1500))")
        #expect(try await store.events(after: 0, limit: 100_000).filter { $0.event.classUID == 2004 }.isEmpty, "no finding on this node")
        #expect(try await store.cursor(named: DetectionService.cursorName) == nil, "its detection service never ran")
        #expect(try await store.riskScore(of: "amy") == nil)
        #expect(server.err.text.contains("detections and playbooks are off on this node"), "the log says so: \(server.err.text.suffix(1500))")

        // Another node's detection service on the same database finds the attack; the risk it stores reaches this node's gate.
        // (Started after 0, as a node resuming from a saved cursor would; a node's very first start begins at the head of the
        // log and would not look at this attack.)
        let other = try SQLiteStore(path: server.database)
        let detections = DetectionService(store: other, playbooks: try PlaybookState(file: ""), clock: SystemClock(),
                                          logger: Logger(label: "test.other-node"), reloadInterval: .seconds(3600),
                                          pollInterval: .milliseconds(50), startAfter: 0)
        let task = Task { try? await detections.run() }
        defer { task.cancel() }
        #expect(try await TimedMultiNodeTests.until(403, server.gateway + "/healthz", cookie: cookie, limit: 60) != nil,
                "amy is denied once the other node stored her risk: \(server.err.text.suffix(1500))")
        #expect(try await store.events(after: 0, limit: 100_000).filter { $0.event.classUID == 2004 }.count == 2,
                "the spray and the guessing, each found once")
        task.cancel()
        await task.value
        try await other.close()
        try await store.close()
    }

    /// Group `staff` with user amy in it, written into the server's database, and a session of amy's (LoA 2): its token.
    static func amyOfStaff(_ store: SQLiteStore) async throws -> String {
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createUser(UserRecord(id: "amy", displayName: "amy", createdAt: Date()))
        try await store.addMember("amy", to: "staff")
        let sessions = SessionManager(store: store, clock: SystemClock(), random: SystemRandomSource())
        return try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil,
                                                     phishingResistant: false)).token
    }

    /// A `PolicyGate` as another gateway node would run it, with the route and the server's policies.
    static func secondNode(_ store: SQLiteStore) throws -> (PolicyGate, DecisionCapture) {
        let clock = SystemClock()
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
        let permit = """
            @id("health-staff")
            permit (principal in Group::"staff", action, resource == Application::"health");
            """
        let pdp = try PolicyDecisionPoint(documents: [(name: "routes.cedar", text: permit), (name: "risk.cedar", text: forbidRisky)])
        let routes = RouteTable([ApplicationRecord(id: "health", displayName: "health", host: "localhost", pathPrefix: "/healthz",
                                                   upstreams: ["http://127.0.0.1:9"], classification: "internal", scenario: nil, updatedAt: Date())])
        let capture = DecisionCapture()
        let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: GatewayState(GatewaySnapshot(routes: routes, decisionPoint: pdp)),
                              portalOrigin: "http://localhost:1", timeZone: "Asia/Taipei", recorder: capture)
        return (gate, capture)
    }

    /// The effect and the risk score the node decided a request of `token` on (`deny 55`).
    static func ask(_ node: (PolicyGate, DecisionCapture), token: String) async throws -> String? {
        let request = GateRequest(method: "GET", path: "/healthz", rawTarget: "/healthz", query: nil, host: "localhost", scheme: "http",
                                  clientAddress: "127.0.0.1", headers: [("Accept", "application/json"), ("Cookie", "__Host-menshen-session=\(token)")],
                                  requestID: "node-b")
        _ = await node.0.decide(request)
        guard let trail = node.1.last, let decision = trail.decision, let access = trail.access else { return nil }
        return "\(decision.effect.rawValue) \(access.context.riskScore)"
    }
}

/// Keeps the last decision a gate recorded.
final class DecisionCapture: DecisionRecorder, Sendable {
    private let trail = Mutex<DecisionTrail?>(nil)
    func record(_ t: DecisionTrail) -> Bool { trail.withLock { $0 = t }; return true }
    var last: DecisionTrail? { trail.withLock { $0 } }
}
