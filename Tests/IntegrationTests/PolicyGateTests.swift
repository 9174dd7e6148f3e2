import Crypto
import Foundation
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

/// The enforcement point's gate, in process: session cookie → policy
/// decision → forward with identity headers, sign-in or step-up redirect, or
/// a deny page. Revocation and disabling are seen on the very next request.
@Suite("Policy gate")
struct PolicyGateTests {
    static let policies = """
        @id("wiki-read")
        permit (principal in Group::"staff", action == Action::"read", resource == Application::"wiki")
        when { context.session.loa >= 1 };

        @id("wiki-write-fresh")
        @obligation("step_up:loa=3;max_age=60")
        permit (principal in Group::"staff", action == Action::"write", resource == Application::"wiki")
        when { context.session.loa >= 3 && context.session.factor_age_seconds <= 60 };

        @id("reports-read-only")
        @obligation("read_only")
        permit (principal in Group::"staff", action, resource == Application::"reports");

        @id("db-console-privileged-only")
        permit (principal in Role::"dba", action, resource == Application::"db-console");

        @id("payments-watched")
        @alert("high")
        permit (principal in Group::"staff", action == Action::"read", resource == Application::"payments");
        """

    struct World {
        let store = InMemoryStore()
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_000_000))
        let sessions: SessionManager
        let gate: PolicyGate
        let decisions: DecisionLog

        /// The log's flush loop does not run (tests flush when they read the events), so `admit` unless a test asks: with
        /// `refuse` the gate would refuse access once decisions had waited the grace on a slow, loaded run.
        init(decisionCapacity: Int = DecisionLog.defaultCapacity, whenUnwritten: DecisionLog.WhenUnwritten = .admit,
             grace: Duration = DecisionLog.defaultGrace) async throws {
            sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
            decisions = DecisionLog(store: store, clock: clock, capacity: decisionCapacity, whenUnwritten: whenUnwritten, grace: grace)
            let pdp = try PolicyDecisionPoint(documents: [(name: "test.cedar", text: PolicyGateTests.policies)])
            let routes = RouteTable([
                Self.app("wiki", "/"), Self.app("reports", "/reports"), Self.app("db-console", "/db"), Self.app("payments", "/payments"),
            ])
            gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: GatewayState(GatewaySnapshot(routes: routes, decisionPoint: pdp)),
                              portalOrigin: "https://portal.bank.example", timeZone: "Asia/Taipei", recorder: decisions)
            try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
            try await store.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
            try await store.createRole(RoleRecord(id: "dba", displayName: "DBA", riskTier: .privileged))
            try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: clock.now()))
            try await store.addMember("amy", to: "staff")
            try await store.assignRole("teller", to: "amy")
            try await store.assignRole("dba", to: "amy")
        }

        static func app(_ id: String, _ prefix: String) -> ApplicationRecord {
            ApplicationRecord(id: ApplicationID(id), displayName: id, host: "apps.bank.example", pathPrefix: prefix,
                              upstreams: ["http://10.0.0.5:8080"], classification: "internal", scenario: nil, updatedAt: Date())
        }

        func session(loa: Int) async throws -> String {
            try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: loa, amr: loa >= 3 ? ["hwk", "mfa", "user"] : ["pwd"],
                                                  aal: nil, phishingResistant: loa >= 3)).token
        }

        func ask(_ path: String, method: String = "GET", token: String? = nil, html: Bool = true,
                 host: String = "apps.bank.example", extraHeaders: [(String, String)] = []) async -> GateVerdict {
            var headers: [(String, String)] = [("Accept", html ? "text/html,*/*" : "application/json"), ("Accept-Language", "zh-TW")]
            if let token { headers.append(("Cookie", "theme=dark; __Host-menshen-session=\(token)")) }
            let request = GateRequest(method: method, path: path, rawTarget: path, query: nil, host: host, scheme: "https",
                                      clientAddress: "203.0.113.7", headers: headers + extraHeaders, requestID: "req-1")
            // As the proxy asks: at once when the gate can, otherwise the full way.
            if let verdict = gate.decideImmediately(request) { return verdict }
            return await gate.decide(request)
        }
    }

    static func location(_ v: GateVerdict) -> String? {
        guard case .respond(_, let headers, _) = v else { return nil }
        return headers.first { $0.0 == "Location" }?.1
    }

    static func status(_ v: GateVerdict?) -> Int? {
        if case .respond(let s, _, _) = v { return s }
        return nil
    }

    @Test("no session: browsers go to sign-in with the original URL, APIs get 401 problem+json; unknown hosts 404")
    func signIn() async throws {
        let w = try await World()
        let v = await w.ask("/page?x=1")
        #expect(Self.status(v) == 302)
        #expect(Self.location(v) == "https://portal.bank.example/signin?return=https%3A%2F%2Fapps.bank.example%2Fpage%3Fx%3D1")
        let api = await w.ask("/page", html: false)
        guard case .respond(401, let headers, let body) = api else { Issue.record("expected 401"); return }
        #expect(headers.contains { $0 == ("Content-Type", "application/problem+json") })
        #expect(String(decoding: body, as: UTF8.self).contains(#""request_id":"req-1""#))
        // A 401 names its challenge (RFC 9110 §11.6.1): where to sign in, the way back included.
        #expect(headers.filter { $0.0 == "WWW-Authenticate" }.map(\.1) == [
            #"Menshen realm="menshen", sign_in="https://portal.bank.example/signin?return=https%3A%2F%2Fapps.bank.example%2Fpage""#])
        // A script's call gets problem+json even when its Accept names HTML (a redirect to the portal, another origin,
        // ends in a CORS failure); a browser's navigation is redirected whatever its Accept says.
        #expect(Self.status(await w.ask("/page", extraHeaders: [("Sec-Fetch-Mode", "cors")])) == 401)
        #expect(Self.status(await w.ask("/page", extraHeaders: [("X-Requested-With", "XMLHttpRequest")])) == 401)
        #expect(Self.status(await w.ask("/page", html: false, extraHeaders: [("Sec-Fetch-Mode", "navigate")])) == 302)
        #expect(Self.status(await w.ask("/page", host: "elsewhere.example")) == 404)
        #expect(Self.status(await w.ask("/page", token: "forged-token-value")) == 302)
    }

    @Test("allowed: forwarded to the application's upstream with the verified identity")
    func forward() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        guard case .forward(let upstream, let headers) = await w.ask("/page", token: token) else { Issue.record("expected forward"); return }
        #expect(upstream == [Upstream(host: "10.0.0.5", port: 8080)])
        let h = Dictionary(headers.map { ($0.0, $0.1) }, uniquingKeysWith: { (a: String, _: String) in a })
        #expect(h["X-Menshen-User"] == "amy" && h["X-Menshen-Groups"] == "staff" && h["X-Menshen-LoA"] == "1")
        #expect(h["X-Menshen-Roles"] == "teller", "privileged roles are not active in an ordinary session")
    }

    @Test("step-up: a write needs LoA3 within 60 s; the redirect carries the requirement and the way back")
    func stepUp() async throws {
        let w = try await World()
        let low = try await w.session(loa: 1)
        let v = await w.ask("/edit", method: "POST", token: low)
        #expect(Self.location(v) == "https://portal.bank.example/stepup?loa=3&max_age=60&return=https%3A%2F%2Fapps.bank.example%2Fedit")
        let api = await w.ask("/edit", method: "POST", token: low, html: false)
        #expect(Self.status(api) == 401)
        guard case .respond(_, let headers, _) = api else { Issue.record("expected 401"); return }
        #expect(headers.filter { $0.0 == "WWW-Authenticate" }.map(\.1) == [
            #"Menshen realm="menshen", error="insufficient_user_authentication", step_up="https://portal.bank.example/stepup?loa=3&max_age=60&return=https%3A%2F%2Fapps.bank.example%2Fedit", acr_values="loa3", max_age="60""#])
        let strong = try await w.session(loa: 3)
        guard case .forward(_, _) = await w.ask("/edit", method: "POST", token: strong) else { Issue.record("fresh LoA3 writes"); return }
        w.clock.advance(by: 61)
        #expect(Self.location(await w.ask("/edit", method: "POST", token: strong))?.contains("/stepup?loa=3&max_age=60") == true,
                "after 60 s the factor is stale again")
    }

    @Test("a step-up the session already meets is refused, not redirected (the step-up page would send it straight back): a playbook's requirement dated ahead of this node's clock")
    func stepUpAlreadyMet() async throws {
        let w = try await World()
        let now = w.clock.now()
        // require_step_up from another node whose clock runs 30 s ahead: in force, starting "in the future".
        let requirement = RiskScore.Contribution(source: "playbook:stolen-session", reason: "require_step_up", points: 0,
                                                 time: now.addingTimeInterval(30), until: now.addingTimeInterval(3600))
        try await w.store.saveRiskScore(RiskScoreRecord(userID: "amy", contributions: try RiskScore.encode([requirement]), updatedAt: now))
        let fresh = try await w.session(loa: 1)   // authenticated just now: nothing a step-up could prove
        let v = await w.ask("/page", token: fresh)
        #expect(Self.status(v) == 403, "\(Self.describe(v))")
        #expect(Self.location(v) == nil)
        let event = try await Self.decisionEvents(w).last { $0["class_uid"] as? Int == 6001 }
        #expect((event?["status_detail"] as? String)?.contains("step_up_unsatisfiable") == true, "\(event ?? [:])")
        // Once the requirement's start has passed, a session older than it is sent to step up as usual.
        w.clock.advance(by: 600)
        #expect(Self.location(await w.ask("/page", token: fresh))?.contains("/stepup?") == true)
    }

    @Test("a playbook's requirement that starts a fraction of a second after the authentication is asked for, not refused (no rounding to whole seconds)")
    func stepUpRequirementJustAfterSignIn() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)   // authenticated at t
        let now = w.clock.now()
        let requirement = RiskScore.Contribution(source: "playbook:risky-sign-in", reason: "require_step_up", points: 0,
                                                 time: now.addingTimeInterval(0.3), until: now.addingTimeInterval(3600))
        try await w.store.saveRiskScore(RiskScoreRecord(userID: "amy", contributions: try RiskScore.encode([requirement]), updatedAt: now))
        // 5.8 s later: the requirement is 5.5 s old (max_age 5), the authentication 5.8 s — both 5 in whole seconds.
        w.clock.advance(by: 5.8)
        let v = await w.ask("/page", token: token)
        #expect(Self.location(v)?.contains("/stepup?loa=1&max_age=5") == true, "\(Self.describe(v))")
    }

    @Test("read_only obligation: safe methods pass, others get 403")
    func readOnly() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        guard case .forward(_, _) = await w.ask("/reports/q3", method: "GET", token: token) else { Issue.record("read allowed"); return }
        let v = await w.ask("/reports/q3", method: "DELETE", token: token)
        guard case .respond(403, _, let body) = v else { Issue.record("expected 403"); return }
        #expect(String(decoding: body, as: UTF8.self).contains("僅限唯讀"))
        // An upgrade is a GET, but a WebSocket carries writes both ways: refused on a read-only route, and so is its
        // re-evaluation; an upgrade elsewhere passes.
        var upgrade = GateRequest(method: "GET", path: "/reports/ws", rawTarget: "/reports/ws", query: nil, host: "apps.bank.example",
                                  scheme: "https", clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")],
                                  requestID: "ws", upgrade: "websocket")
        #expect(Self.status(await w.gate.decide(upgrade)) == 403)
        upgrade.isReevaluation = true
        #expect(Self.status(await w.gate.decide(upgrade)) == 403)
        let wiki = GateRequest(method: "GET", path: "/ws", rawTarget: "/ws", query: nil, host: "apps.bank.example", scheme: "https",
                               clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "ws2",
                               upgrade: "websocket")
        guard case .forward = await w.gate.decide(wiki) else { Issue.record("an upgrade on a route without read_only was refused"); return }
    }

    @Test("revocation and disabling take effect on the very next request")
    func revocation() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        guard case .forward(_, _) = await w.ask("/page", token: token) else { Issue.record("allowed first"); return }
        try await w.sessions.revoke(idHash: SessionManager.hash(token: token), reason: "test")
        #expect(Self.status(await w.ask("/page", token: token)) == 302)
        let second = try await w.session(loa: 1)
        var amy = try #require(try await w.store.user("amy"))
        amy.disabled = true
        try await w.store.updateUser(amy)
        #expect(Self.status(await w.ask("/page", token: second)) == 302)
    }

    @Test("privileged applications open only in a privileged session (principle 4.1); the deny page says why without internals")
    func privileged() async throws {
        let w = try await World()
        let token = try await w.session(loa: 3)
        let denied = await w.ask("/db/query", token: token)
        guard case .respond(403, let headers, let body) = denied else { Issue.record("ordinary session denied"); return }
        let page = String(decoding: body, as: UTF8.self)
        #expect(page.contains("拒絕存取") && page.contains("req-1") && !page.contains("db-console-privileged-only"))
        #expect(headers.contains { $0 == ("Content-Language", "zh-TW") })
        let ordinary = try #require(try await w.sessions.resolve(token: token))
        guard case .success(let privileged) = try await w.sessions.startPrivileged(from: ordinary) else { Issue.record("start"); return }
        guard case .forward(_, let h) = await w.ask("/db/query", token: privileged.token) else { Issue.record("privileged allowed"); return }
        #expect(h.contains { $0 == ("X-Menshen-Roles", "dba") })
        #expect(Self.status(await w.ask("/db/query", token: token)) == 302, "the ordinary session ended when privileged work began")
    }

    /// A verdict as comparable text (status or upstreams, and every header).
    static func describe(_ v: GateVerdict?) -> String {
        switch v {
        case nil: "nil"
        case .forward(let upstreams, let headers)?: "forward \(upstreams) \(headers.map { "\($0.0)=\($0.1)" })"
        case .respond(let status, let headers, let body)?: "respond \(status) \(headers.map { "\($0.0)=\($0.1)" }) \(body.count)"
        }
    }

    @Test("session facts are reused only while the store vouches for them: a change by another process, expiry or the touch interval forces a read")
    func sessionFactsReuse() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)   // another process on the same database (the CLI, an admin's SQL)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_000_000))
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
        let pdp = try PolicyDecisionPoint(documents: [(name: "test.cedar", text: Self.policies)])
        let routes = RouteTable([World.app("wiki", "/"), World.app("reports", "/reports"), World.app("db-console", "/db")])
        let state = GatewayState(GatewaySnapshot(routes: routes, decisionPoint: pdp))
        let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei")
        let uncached = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                                  timeZone: "Asia/Taipei", reuseSessionFacts: false)
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: clock.now()))
        try await store.addMember("amy", to: "staff")
        try await store.assignRole("teller", to: "amy")

        func request(_ path: String, _ method: String = "GET", token: String?) -> GateRequest {
            GateRequest(method: method, path: path, rawTarget: path, query: nil, host: "apps.bank.example", scheme: "https",
                        clientAddress: "203.0.113.7", headers: token.map { [("Cookie", "__Host-menshen-session=\($0)")] } ?? [],
                        requestID: "req-1")
        }
        func forwarded(_ v: GateVerdict?) -> Bool { if case .forward? = v { true } else { false } }

        let token = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 1, amr: ["pwd"], aal: nil, phishingResistant: false)).token
        #expect(uncached.decideImmediately(request("/page", token: token)) == nil, "a gate told not to reuse never answers at once for a session")
        #expect(gate.decideImmediately(request("/page", token: token)) == nil, "nothing is remembered before the first full decision")
        #expect(forwarded(await gate.decide(request("/page", token: token))))
        // Remembered now: the same answers as the full way, for every kind of verdict.
        for (path, method) in [("/page", "GET"), ("/edit", "POST"), ("/reports/q3", "GET"), ("/reports/q3", "DELETE"), ("/db/query", "GET")] {
            let now = gate.decideImmediately(request(path, method, token: token))
            #expect(now != nil, "\(method) \(path) is decided at once")
            #expect(Self.describe(now) == Self.describe(await uncached.decide(request(path, method, token: token))), "\(method) \(path)")
        }
        // No cookie or a malformed one needs no store: answered at once (401: sign in, as these requests are not from a browser), even with nothing remembered.
        #expect(Self.status(gate.decideImmediately(request("/page", token: nil))) == 401)
        #expect(Self.status(gate.decideImmediately(request("/page", token: "short"))) == 401)

        // Another process revokes the session: the very next request is not forwarded.
        _ = try await other.revokeSession(idHash: SessionManager.hash(token: token), at: clock.now(), reason: "revoked elsewhere")
        #expect(gate.decideImmediately(request("/page", token: token)) == nil, "the remembered facts are void")
        #expect(Self.status(await gate.decide(request("/page", token: token))) == 401)

        // A membership removed by another process: the next request is decided on the new groups.
        let second = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 1, amr: ["pwd"], aal: nil, phishingResistant: false)).token
        #expect(forwarded(await gate.decide(request("/page", token: second))))
        #expect(forwarded(gate.decideImmediately(request("/page", token: second))))
        try await other.removeMember("amy", from: "staff")
        #expect(gate.decideImmediately(request("/page", token: second)) == nil)
        #expect(Self.status(await gate.decide(request("/page", token: second))) == 403)

        // Disabled by another process.
        try await other.addMember("amy", to: "staff")
        #expect(forwarded(await gate.decide(request("/page", token: second))))
        var amy = try #require(try await other.user("amy"))
        amy.disabled = true
        try await other.updateUser(amy)
        #expect(gate.decideImmediately(request("/page", token: second)) == nil)
        #expect(Self.status(await gate.decide(request("/page", token: second))) == 401)
        amy.disabled = false
        try await other.updateUser(amy)

        // Time: facts are reused at most one touch interval (activity is still written back), never past the idle expiry.
        #expect(forwarded(await gate.decide(request("/page", token: second))))
        clock.advance(by: sessions.settings.touchInterval - 1)
        #expect(forwarded(gate.decideImmediately(request("/page", token: second))))
        clock.advance(by: 1)
        #expect(gate.decideImmediately(request("/page", token: second)) == nil, "the touch interval has passed")
        let before = try #require(try await store.session(idHash: SessionManager.hash(token: second))).lastSeenAt
        #expect(forwarded(await gate.decide(request("/page", token: second))))
        #expect(try #require(try await store.session(idHash: SessionManager.hash(token: second))).lastSeenAt > before, "the full path touched the session")
        clock.advance(by: sessions.settings.idleTimeout + 1)
        #expect(gate.decideImmediately(request("/page", token: second)) == nil)
        #expect(Self.status(await gate.decide(request("/page", token: second))) == 401, "idle expiry")

        // Nothing here is remembered against the wrong generation: a fresh session is read once, then reused.
        let third = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 1, amr: ["pwd"], aal: nil, phishingResistant: false)).token
        #expect(gate.decideImmediately(request("/page", token: third)) == nil)
        #expect(forwarded(await gate.decide(request("/page", token: third))))
        #expect(forwarded(gate.decideImmediately(request("/page", token: third))))

        // Devices have a counter of their own: a fleet's posture reports (one per device every few minutes), written by
        // another process, leave every session's remembered facts as they are. A session change still voids them.
        let enrolled = clock.now()
        try await other.createDevice(DeviceRecord(id: "laptop-9", ownerID: "amy", displayName: "laptop-9", deviceClass: .managed, platform: "linux",
                                                  hardwareBound: true, compliant: true, complianceReasons: [], lastPostureAt: enrolled, enrolledAt: enrolled))
        for minute in 1...3 {
            var laptop = try #require(try await other.device("laptop-9"))
            laptop.lastPostureAt = enrolled.addingTimeInterval(Double(60 * minute)); laptop.compliant = minute != 2
            #expect(try await other.updateDevice(laptop, expectedVersion: laptop.version))
            #expect(forwarded(gate.decideImmediately(request("/page", token: third))), "posture report \(minute) voided the session's facts")
        }
        _ = try await other.revokeSession(idHash: SessionManager.hash(token: third), at: clock.now(), reason: "revoked elsewhere")
        #expect(gate.decideImmediately(request("/page", token: third)) == nil, "a revocation after the posture reports is seen at once")
        try await other.close()
        try await store.close()
    }

    @Test("session facts stand through changes to other users' access; their own user's, a role's edit or changes no longer kept void them")
    func sessionFactsScopedToUser() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)   // another process on the same database (a second node, a directory sync)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_000_000))
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
        let pdp = try PolicyDecisionPoint(documents: [(name: "test.cedar", text: Self.policies)])
        let state = GatewayState(GatewaySnapshot(routes: RouteTable([World.app("wiki", "/")]), decisionPoint: pdp))
        let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei")
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
        for id in ["amy", "bob"] {
            try await store.createUser(UserRecord(id: UserID(id), displayName: id, createdAt: clock.now()))
            try await store.addMember(UserID(id), to: "staff")
        }
        func request(_ token: String) -> GateRequest {
            GateRequest(method: "GET", path: "/page", rawTarget: "/page", query: nil, host: "apps.bank.example", scheme: "https",
                        clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "req-1")
        }
        func forwarded(_ v: GateVerdict?) -> Bool { if case .forward? = v { true } else { false } }
        let amy = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 1, amr: ["pwd"], aal: nil, phishingResistant: false)).token
        let bob = try await sessions.issue(SessionGrant(userID: "bob", levelOfAssurance: 1, amr: ["pwd"], aal: nil, phishingResistant: false)).token
        #expect(forwarded(await gate.decide(request(amy))))
        #expect(forwarded(await gate.decide(request(bob))))

        // Bob's access changes, committed by another process: amy's facts stand (decided at once), bob's are void.
        try await other.assignRole("teller", to: "bob")
        var bobRecord = try #require(try await other.user("bob")); bobRecord.displayName = "Bob"
        try await other.updateUser(bobRecord)
        try await other.saveRiskScore(RiskScoreRecord(userID: "bob", contributions: "[]", updatedAt: clock.now()))
        #expect(forwarded(gate.decideImmediately(request(amy))), "a change to bob's access voided amy's facts")
        #expect(gate.decideImmediately(request(bob)) == nil, "bob's own change is seen")
        #expect(forwarded(await gate.decide(request(bob))))
        #expect(forwarded(gate.decideImmediately(request(bob))))

        // One of amy's own: void at once, and decided on the new facts.
        try await other.removeMember("amy", from: "staff")
        #expect(gate.decideImmediately(request(amy)) == nil)
        #expect(forwarded(gate.decideImmediately(request(bob))), "amy's change voided bob's facts")
        #expect(Self.status(await gate.decide(request(amy))) == 403)
        try await other.addMember("amy", to: "staff")
        #expect(forwarded(await gate.decide(request(amy))))
        #expect(forwarded(gate.decideImmediately(request(amy))))

        // A change that may concern anyone (a role's tier edited): every session reads again.
        try other.unsafeExecute("UPDATE roles SET risk_tier = 'sensitive' WHERE id = 'teller'")
        #expect(gate.decideImmediately(request(amy)) == nil)
        #expect(gate.decideImmediately(request(bob)) == nil)
        #expect(forwarded(await gate.decide(request(amy))))
        #expect(forwarded(await gate.decide(request(bob))))

        // More changes to bob than the store keeps, in one transaction: nobody can vouch they left amy alone.
        try other.unsafeExecute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(AccessChanges.kept + 10))
            INSERT INTO risk_scores(user_id, contributions, updated_at) SELECT 'bob', '[]', i FROM n WHERE true
            ON CONFLICT(user_id) DO UPDATE SET updated_at = excluded.updated_at
            """)
        #expect(gate.decideImmediately(request(amy)) == nil, "changes no longer kept voided nothing")
        #expect(forwarded(await gate.decide(request(amy))))
        #expect(forwarded(gate.decideImmediately(request(amy))), "remembered again from the new generation on")
        try await other.close()
        try await store.close()
    }

    @Test("a change committed by another process (the menshen command line) is seen by the gateway's next look")
    func otherProcessChangeSeen() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: data.appendingPathComponent("menshen.sqlite").path)   // the gateway's handle (creates the store)
        #expect(try await Harness.runAsync(["user", "add", "pat", "--name", "Pat", "--data", data.path]).status == 0)
        let before = try #require(store.committedAccessGeneration())
        #expect(store.committedAccessGeneration() == before)
        #expect(try await Harness.runAsync(["user", "disable", "pat", "--data", data.path]).status == 0)
        let after = try #require(store.committedAccessGeneration())
        #expect(after > before, "the disable was seen")
        #expect(after == (try await store.changeGenerations()).access)
        #expect(try await Harness.runAsync(["user", "enable", "pat", "--data", data.path]).status == 0)
        #expect(try #require(store.committedAccessGeneration()) > after)
        try await store.close()
    }

    /// The decision events in the store, parsed.
    static func decisionEvents(_ w: World) async throws -> [[String: Any]] {
        await w.decisions.flush()
        return try await w.store.events(after: 0, limit: 1000).compactMap {
            try JSONSerialization.jsonObject(with: Data($0.event.payloadJSON.utf8)) as? [String: Any]
        }
    }

    @Test("every decision is an OCSF 6001 event carrying the attributes decided on; an @alert policy also raises a 2004 finding")
    func decisionEventsAndAlert() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        guard case .forward(_, _) = await w.ask("/payments/batch/7", token: token) else { Issue.record("allowed, with an alert"); return }
        guard case .forward(_, _) = await w.ask("/page", token: token) else { Issue.record("allowed, quietly"); return }
        #expect(Self.status(await w.ask("/reports/q3", method: "DELETE", token: token)) == 403)
        #expect(Self.status(await w.ask("/page")) == 302)

        let events = try await Self.decisionEvents(w)
        let activity = events.filter { $0["class_uid"] as? Int == 6001 }
        #expect(activity.count == 4, "one event per decision")
        let findings = events.filter { $0["class_uid"] as? Int == 2004 }
        #expect(findings.count == 1, "only the @alert policy raises a finding")

        let alerted = try #require(activity.first { (($0["http_request"] as? [String: Any])?["url"] as? [String: Any])?["path"] as? String == "/payments/batch/7" })
        #expect(alerted["action_id"] as? Int == 1 && alerted["is_alert"] as? Bool == true && alerted["severity_id"] as? Int == 4)
        let decision = try #require((alerted["unmapped"] as? [String: Any])?["decision"] as? [String: Any])
        #expect(decision["policies"] as? [String] == ["payments-watched"])
        #expect(decision["obligations"] as? [String] == ["alert:high"])
        #expect((decision["session"] as? [String: Any])?["loa"] as? Int == 1)
        #expect((decision["device"] as? [String: Any])?["known"] as? Bool == false)
        #expect((decision["resource"] as? [String: Any])?["classification"] as? String == "internal")
        #expect((decision["context"] as? [String: Any])?["source_ip"] as? String == "203.0.113.7")
        #expect(((alerted["actor"] as? [String: Any])?["user"] as? [String: Any])?["uid"] as? String == "amy")

        let finding = try #require(findings.first)
        #expect(finding["severity_id"] as? Int == 4 && finding["is_alert"] as? Bool == true)
        let info = try #require(finding["finding_info"] as? [String: Any])
        let related = try #require((info["related_events"] as? [[String: Any]])?.first?["uid"] as? String)
        #expect(related == (alerted["metadata"] as? [String: Any])?["uid"] as? String, "the finding points at the decision event")

        let readOnly = try #require(activity.first { $0["activity_id"] as? Int == 4 })
        #expect(readOnly["action_id"] as? Int == 2 && (readOnly["status_detail"] as? String)?.contains("read_only") == true)
        let signIn = try #require(activity.first { ($0["unmapped"] as? [String: Any]).flatMap { $0["decision"] as? [String: Any] }?["outcome"] as? String == "sign_in" })
        #expect(signIn["disposition_id"] as? Int == 23 && signIn["actor"] == nil)

        // The events are in the tamper-evident chain like every other event.
        let stored = try await w.store.events(after: 0, limit: 1000)
        #expect(EventChain.firstBrokenLink(stored) == nil)
    }

    @Test("the decision log is bounded: when full it sheds and counts; a batch the store refuses is written again, then dropped and counted (admit)")
    func decisionLogBounds() async throws {
        let store = InMemoryStore()
        let log = DecisionLog(store: store, clock: FixedClock(Date(timeIntervalSince1970: 1_795_000_000)), capacity: 10, whenUnwritten: .admit)
        for n in 0..<15 {
            log.record(DecisionTrail(requestID: "r\(n)", time: Date(), mode: .proxy, method: "GET", host: "h",
                                     path: "/" + String(repeating: "a", count: 10_000), sourceIP: "10.0.0.1", outcome: .signIn))
        }
        await log.flush()
        #expect(log.writtenCount == 10 && log.droppedCount == 5)
        let stored = try await store.events(after: 0, limit: 100)
        #expect(stored.map { ($0.event.payloadJSON.contains("\"uid\":\"r0\"")) }.first == true, "the oldest were kept, in order")
        #expect(stored.allSatisfy { $0.event.payloadJSON.utf8.count < 8_000 }, "paths are cut before they are stored")
        try await store.close()
        log.record(DecisionTrail(requestID: "late", time: Date(), mode: .proxy, method: "GET", host: "h", path: "/", sourceIP: "", outcome: .allow))
        await log.flush()
        #expect(log.droppedCount == 5 && log.unwrittenCount == 1, "a failed batch is kept to be written again")
        await log.flush()
        await log.flush()
        #expect(log.droppedCount == 6 && log.unwrittenCount == 0, "dropped after \(DecisionLog.maxAttempts) writes, not retried forever")
        #expect(log.admitsAccess, "admit: access goes on whatever the log")
    }

    static func forwarded(_ v: GateVerdict?) -> Bool {
        if case .forward = v { return true }
        return false
    }

    @Test("fail-closed audit: while the decision log is full, an access is refused with 503; a denial is still itself; once written, access again")
    func auditFullRefuses() async throws {
        let w = try await World(decisionCapacity: 2, whenUnwritten: .refuse)
        let token = try await w.session(loa: 1)
        #expect(Self.forwarded(await w.ask("/page", token: token)))
        #expect(Self.status(await w.ask("/page")) == 302, "a sign-in redirect grants nothing: answered as such")
        #expect(w.decisions.unwrittenCount == 2 && !w.decisions.admitsAccess)
        let refused = await w.ask("/page", token: token)
        guard case .respond(503, let headers, let body) = refused else { Issue.record("expected 503, got \(refused)"); return }
        #expect(headers.contains { $0 == ("Content-Language", "zh-TW") })
        #expect(String(decoding: body, as: UTF8.self).contains("稽核紀錄"))
        let api = await w.ask("/page", token: token, html: false)
        #expect(Self.status(api) == 503)
        if case .respond(_, _, let b) = api { #expect(String(decoding: b, as: UTF8.self).contains("audit log")) }
        await w.decisions.flush()
        #expect(w.decisions.admitsAccess && w.decisions.writtenCount == 2)
        #expect(w.decisions.droppedCount == 2, "the two refusals found the log full: shed and counted")
        #expect(Self.forwarded(await w.ask("/page", token: token)))

        // admit: the same full log sheds the decision and access goes on.
        let a = try await World(decisionCapacity: 1, whenUnwritten: .admit)
        let t2 = try await a.session(loa: 1)
        #expect(Self.forwarded(await a.ask("/page", token: t2)))
        #expect(Self.forwarded(await a.ask("/page", token: t2)), "admit: forwarded though its decision is shed")
        await a.decisions.flush()
        #expect(a.decisions.writtenCount == 1 && a.decisions.droppedCount == 1)
    }

    /// A recorder that admits access but then does not take the record (another thread filled its last place meanwhile).
    final class FullAfterCheck: DecisionRecorder, Sendable {
        let failsClosed: Bool
        let refusals = Mutex(0)
        init(failsClosed: Bool) { self.failsClosed = failsClosed }
        var admitsAccess: Bool { true }
        func record(_ t: DecisionTrail) -> Bool {
            if t.detail == "audit_unavailable" { refusals.withLock { $0 += 1 } }
            return false
        }
    }

    @Test("fail-closed audit: an access whose record is not taken is refused even when the log says it admits access (a place taken meanwhile)")
    func recordNotTaken() async throws {
        for closed in [true, false] {
            let w = try await World()
            let recorder = FullAfterCheck(failsClosed: closed)
            let gate = PolicyGate(store: w.store, sessions: w.sessions, clock: w.clock, state: w.gate.state, portalOrigin: "https://portal.bank.example",
                                  timeZone: "Asia/Taipei", recorder: recorder)
            let token = try await w.session(loa: 1)
            let request = GateRequest(method: "GET", path: "/page", rawTarget: "/page", query: nil, host: "apps.bank.example", scheme: "https",
                                      clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "r")
            let verdict = await gate.decide(request)
            if closed {
                #expect(Self.status(verdict) == 503, "refuse: not forwarded without its record")
                #expect(recorder.refusals.withLock { $0 } == 1)
            } else {
                #expect(Self.forwarded(verdict), "admit: shed and forwarded")
            }
        }
    }

    @Test("fail-closed audit: decisions waiting past the grace refuse access, and the refusal is itself recorded (audit_unavailable)")
    func auditGraceRefuses() async throws {
        let w = try await World(whenUnwritten: .refuse, grace: .zero)
        let token = try await w.session(loa: 1)
        #expect(Self.forwarded(await w.ask("/page", token: token)), "nothing was waiting")
        // One decision now waits; with no grace, the store has taken no write since it came.
        #expect(!w.decisions.admitsAccess)
        #expect(Self.status(await w.ask("/page", token: token)) == 503)
        await w.decisions.flush()
        #expect(w.decisions.admitsAccess && w.decisions.writtenCount == 2 && w.decisions.droppedCount == 0)
        let stored = try await w.store.events(after: 0, limit: 100).filter { $0.event.classUID == 6001 }
        #expect(stored.count == 2)
        let refusal = stored.last?.event.payloadJSON ?? ""
        #expect(refusal.contains(#""status_detail":"deny: audit_unavailable""#) && refusal.contains(#""action_id":2"#), "\(refusal)")
        #expect(stored.first?.event.payloadJSON.contains(#""action_id":1"#) == true)
    }

    @Test("under load each flush leaves its last batch to be written while the next is built: every decision is stored once, in order")
    func overlappingFlushes() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let log = DecisionLog(store: store, clock: FixedClock(Date(timeIntervalSince1970: 1_795_000_000)), capacity: 50_000)
        var n = 0
        // Chunks of several batches and of less than one, each flushed without waiting for its last write.
        for chunk in [DecisionLog.batchSize * 2 + 7, 3, DecisionLog.batchSize, DecisionLog.batchSize + 1, 1] {
            for _ in 0..<chunk {
                log.record(DecisionTrail(requestID: "r\(n)", time: Date(timeIntervalSince1970: 1_795_000_000), mode: .proxy, method: "GET",
                                         host: "h", path: "/", sourceIP: "10.0.0.1", outcome: .allow))
                n += 1
            }
            await log.flush(waitForLastWrite: false)
        }
        await log.flush()
        #expect(log.writtenCount == n && log.droppedCount == 0)
        var ids: [String] = []
        var after: Int64 = 0
        while true {
            let page = try await store.events(after: after, limit: 1000)
            guard let last = page.last else { break }
            after = last.sequence
            for e in page {
                guard let r = e.event.payloadJSON.range(of: #""request_id":""#) else { continue }
                ids.append(String(e.event.payloadJSON[r.upperBound...].prefix { $0 != "\"" }))
            }
        }
        #expect(ids == (0..<n).map { "r\($0)" })
        #expect(EventChain.firstBrokenLink(try await store.events(after: 0, limit: n)) == nil)
        try await store.close()
    }

    @Test("re-evaluating an open connection never extends the session's idle expiry; a request does")
    func reevaluationDoesNotTouch() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        func reevaluate() async -> GateVerdict {
            var request = GateRequest(method: "GET", path: "/page", rawTarget: "/page", query: nil, host: "apps.bank.example", scheme: "https",
                                      clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "ws-1")
            request.isReevaluation = true
            return await w.gate.decide(request)
        }
        // Idle timeout 1,800 s: checks every 600 s by the gateway alone leave the session to end at 1,800 s.
        for _ in 0..<2 {
            w.clock.advance(by: 600)
            guard case .forward = await reevaluate() else { Issue.record("re-evaluation within the idle time refused"); return }
        }
        w.clock.advance(by: 700)   // 1,900 s after the last activity of the user
        if case .forward = await reevaluate() { Issue.record("the idle session was kept alive by the gateway's own checks") }
        #expect(Self.status(await w.ask("/page", token: token)) == 302)

        // A request of the user's own is activity: it moves the idle expiry.
        let active = try await w.session(loa: 1)
        w.clock.advance(by: 1_000)
        guard case .forward = await w.ask("/page", token: active) else { Issue.record("request refused"); return }
        w.clock.advance(by: 1_000)   // 2,000 s after sign-in, 1,000 s after the last request
        guard case .forward = await w.ask("/page", token: active) else { Issue.record("a request's touch did not count"); return }
    }

    @Test("a user who keeps working while a WebSocket is re-evaluated stays signed in: re-evaluations do not refresh remembered facts")
    func activeUserWithWebSocket() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        var reevaluation = GateRequest(method: "GET", path: "/page", rawTarget: "/page", query: nil, host: "apps.bank.example", scheme: "https",
                                       clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "ws-1")
        reevaluation.isReevaluation = true
        // Every 20 s for 2,000 s (beyond the 1,800 s idle timeout): the gateway re-checks the WebSocket, and the user
        // sends a request (decided at once from remembered facts when the gate can).
        for step in 1...100 {
            w.clock.advance(by: 20)
            guard case .forward = await w.gate.decide(reevaluation) else { Issue.record("re-evaluation refused at \(step * 20) s"); return }
            guard case .forward = await w.ask("/page", token: token) else { Issue.record("request refused at \(step * 20) s"); return }
        }
        let session = try #require(try await w.store.session(idHash: SessionManager.hash(token: token)))
        #expect(session.idleExpiresAt > w.clock.now().addingTimeInterval(1_700), "the user's requests moved the idle expiry")
    }

    @Test("the identity assertion: an ES256 JWT per user and application, verified independently (Authlib) with the published JWKS")
    func identityAssertion() async throws {
        let w = try await World()
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keyFile = dir.appendingPathComponent("assertion.key").path
        let pem = try IdentityAssertionSigner.loadOrCreateKey(path: keyFile)
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int == 0o600)
        #expect(try IdentityAssertionSigner.loadOrCreateKey(path: keyFile) == pem, "the key is created once and then reused")
        let missing = dir.appendingPathComponent("none.key").path
        #expect(throws: IdentityAssertionError.self) { try IdentityAssertionSigner.loadOrCreateKey(path: missing, mayCreate: false) }
        #expect(!FileManager.default.fileExists(atPath: missing), "PostgreSQL deployments never create a node-local key")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        #expect(throws: IdentityAssertionError.self) { try IdentityAssertionSigner.loadOrCreateKey(path: keyFile) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
        let signer = try await IdentityAssertionSigner(privateKeyPEM: pem, issuer: "https://gw.bank.example", clock: w.clock)
        let gate = PolicyGate(store: w.store, sessions: w.sessions, clock: w.clock, state: w.gate.state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei", assertions: signer)
        let token = try await w.session(loa: 1)
        func ask(_ path: String) async -> GateVerdict {
            await gate.decide(GateRequest(method: "GET", path: path, rawTarget: path, query: nil, host: "apps.bank.example", scheme: "https",
                                          clientAddress: "203.0.113.7", headers: [("Cookie", "__Host-menshen-session=\(token)")], requestID: "r"))
        }
        func assertion(_ v: GateVerdict) -> String? {
            if case .forward(_, let h) = v { return h.first { $0.0 == IdentityAssertionSigner.header }?.1 }
            return nil
        }
        let wiki = try #require(assertion(await ask("/page")))
        #expect(assertion(await ask("/other")) == wiki, "reused for the same session and application while fresh")
        let reports = try #require(assertion(await ask("/reports/q3")))
        #expect(reports != wiki)
        w.clock.advance(by: 31)
        #expect(assertion(await ask("/page")) != wiki, "a new one once half its life is gone")

        guard case .respond(200, let headers, let jwks) = await gate.decide(GateRequest(method: "GET", path: "/.menshen/jwks.json",
            rawTarget: "/.menshen/jwks.json", query: nil, host: "gw", scheme: "https", clientAddress: "203.0.113.7", headers: [], requestID: "j"))
        else { Issue.record("JWKS"); return }
        #expect(headers.contains { $0 == ("Content-Type", "application/jwk-set+json") })

        // Independent check with Authlib's JOSE implementation (the test OpenID provider's library).
        let python = Harness.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record(".venv-test is missing under CI") }
            return
        }
        let script = """
            import json, sys
            from authlib.jose import JsonWebKey, jwt
            keys = JsonWebKey.import_key_set(json.loads(sys.argv[2]))
            claims = jwt.decode(sys.argv[1], keys, claims_options={"iss": {"essential": True, "value": "https://gw.bank.example"},
                                                                   "aud": {"essential": True, "value": "reports"}})
            claims.validate(now=int(sys.argv[3]))
            print(json.dumps({"sub": claims["sub"], "aud": claims["aud"], "loa": claims["loa"], "groups": claims["groups"],
                              "alg": claims.header["alg"], "kid": claims.header["kid"], "life": claims["exp"] - claims["iat"]}))
            """
        let args = ["-c", script, reports, String(decoding: jwks, as: UTF8.self), String(Int(w.clock.now().timeIntervalSince1970 - 31))]
        let (status, o, e) = try await Harness.offPool { try Self.run(python, args) }
        #expect(status == 0, "\(String(decoding: e, as: UTF8.self))")
        let verified = try #require(try JSONSerialization.jsonObject(with: o) as? [String: Any])
        #expect(verified["sub"] as? String == "amy" && verified["loa"] as? Int == 1 && verified["groups"] as? [String] == ["staff"])
        #expect(verified["alg"] as? String == "ES256" && verified["life"] as? Int == 60)
        #expect((verified["aud"] as? [String]) == ["reports"] || (verified["aud"] as? String) == "reports")

        // A tampered assertion does not verify.
        var parts = reports.split(separator: ".").map(String.init)
        parts[1] = Data(#"{"sub":"admin","aud":["reports"],"iss":"https://gw.bank.example","exp":9999999999,"iat":1,"loa":4}"#.utf8)
            .base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let tampered = ["-c", script, parts.joined(separator: "."), String(decoding: jwks, as: UTF8.self), "1"]
        #expect(try await Harness.offPool { try Self.run(python, tampered) }.0 != 0)
    }

    @Test("a key rotation: the JWKS lists the signing key and the published ones, and assertions of either key verify with it (Authlib)")
    func assertionKeyRotation() async throws {
        let w = try await World()
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let previous = P256.Signing.PrivateKey(), current = P256.Signing.PrivateKey()
        let file = dir.appendingPathComponent("published.pem")
        // The previous key, and the signing key itself (listed once).
        try (previous.publicKey.pemRepresentation + "\n" + current.publicKey.pemRepresentation).write(to: file, atomically: true, encoding: .utf8)
        let published = try IdentityAssertionSigner.loadPublishedKeys(path: file.path)
        #expect(published.count == 2)
        let signer = try await IdentityAssertionSigner(privateKeyPEM: current.pemRepresentation, issuer: "https://gw.bank.example", clock: w.clock,
                                                       publishedPublicKeysPEM: published)
        let before = try await IdentityAssertionSigner(privateKeyPEM: previous.pemRepresentation, issuer: "https://gw.bank.example", clock: w.clock)
        func kids(_ jwks: [UInt8]) throws -> [String] {
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(jwks)) as? [String: Any])
            return (doc["keys"] as? [[String: Any]] ?? []).compactMap { $0["kid"] as? String }
        }
        let onlyCurrent = try await IdentityAssertionSigner(privateKeyPEM: current.pemRepresentation, issuer: "https://gw.bank.example", clock: w.clock)
        #expect(try kids(signer.jwks) == [try kids(onlyCurrent.jwks)[0], try kids(before.jwks)[0]], "the signing key first, then the previous one")
        let jwksText = String(decoding: signer.jwks, as: UTF8.self)
        #expect(!jwksText.contains("\"d\""), "no private part")

        let newToken = try await signer.assertion(user: "amy", application: "wiki", sessionHash: "h1", groups: ["staff"], roles: [], loa: 2,
                                                  amr: ["pwd"], device: nil)
        let oldToken = try await before.assertion(user: "amy", application: "wiki", sessionHash: "h1", groups: ["staff"], roles: [], loa: 2,
                                                  amr: ["pwd"], device: nil)
        let python = Harness.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        if FileManager.default.isExecutableFile(atPath: python) {
            let script = """
                import json, sys
                from authlib.jose import JsonWebKey, jwt
                keys = JsonWebKey.import_key_set(json.loads(sys.argv[2]))
                claims = jwt.decode(sys.argv[1], keys)
                claims.validate(now=int(sys.argv[3]))
                print(claims["sub"])
                """
            let now = String(Int(w.clock.now().timeIntervalSince1970))
            for token in [newToken, oldToken] {
                let (status, out, err) = try await Harness.offPool { try Self.run(python, ["-c", script, token, jwksText, now]) }
                #expect(status == 0 && String(decoding: out, as: UTF8.self) == "amy\n", "\(String(decoding: err, as: UTF8.self))")
            }
        } else if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record(".venv-test is missing under CI")
        }

        // Files that are not a list of P-256 public keys are refused, naming the file.
        func refused(_ text: String) throws -> String {
            let bad = dir.appendingPathComponent("bad-\(UUID().uuidString).pem")
            try text.write(to: bad, atomically: true, encoding: .utf8)
            do { _ = try IdentityAssertionSigner.loadPublishedKeys(path: bad.path); return "accepted" } catch { return "\(error)" }
        }
        #expect(try refused("").contains("no public key"))
        #expect(try refused(current.pemRepresentation).contains("no public key"), "a private key is not published")
        #expect(try refused("-----BEGIN PUBLIC KEY-----\nAAAA\n").contains("not closed"))
        #expect(try refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").contains("key 1 is not a P-256 public key"))
        #expect(try refused(String(repeating: current.publicKey.pemRepresentation + "\n", count: 9)).contains("more than 8"))
        #expect(throws: IdentityAssertionError.self) { try IdentityAssertionSigner.loadPublishedKeys(path: dir.appendingPathComponent("none.pem").path) }
    }

    static func run(_ tool: String, _ args: [String]) throws -> (Int32, Data, Data) {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(tool, args)
        return (r.status, Data(r.stdout), Data(r.stderr))
    }
}
