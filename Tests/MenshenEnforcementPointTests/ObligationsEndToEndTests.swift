import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import Testing

/// The policy obligations through the real proxy and sockets (curl → the
/// enforcement point → PolicyGate → the upstream): step-up, read-only and
/// alert, and the network zone a client address falls in.
@Suite("Obligations end to end")
struct ObligationsEndToEndTests {
    /// An in-memory store with Amy in group staff, its sessions, and the gateway state loaded from `routesFile`.
    static func staffGateway(routesFile: String) async throws
        -> (store: InMemoryStore, clock: SystemClock, sessions: SessionManager, loader: GatewayLoader, state: GatewayState) {
        let store = InMemoryStore()
        let clock = SystemClock()
        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Date()))
        try await store.addMember("amy", to: "staff")
        let loader = GatewayLoader(store: store, routesFile: routesFile, clock: clock)
        return (store, clock, sessions, loader, GatewayState(try await loader.load()))
    }

    static let routes = """
        network_zones:
          - zone: loopback
            cidrs: [127.0.0.0/8, "::1"]
        routes:
          - id: ledger
            host: ledger.bank.example
            upstreams: ["http://127.0.0.1:UPSTREAM"]
            classification: confidential
            require: { groups: [staff], read_only: true }
          - id: payments
            host: payments.bank.example
            upstreams: ["http://127.0.0.1:UPSTREAM"]
            classification: restricted
            require: { groups: [staff], alert: high }
          - id: wires
            host: wires.bank.example
            upstreams: ["http://127.0.0.1:UPSTREAM"]
            classification: restricted
        """

    static let wires = """
        @id("wires-fresh-mfa")
        @obligation("step_up:loa=3;max_age=300")
        permit (principal in Group::"staff", action, resource == Application::"wires")
        when { context.session.loa >= 3 && context.session.factor_age_seconds <= 300 };

        @id("only-from-known-networks")
        forbid (principal, action, resource) when { context.network.zone == "internet" };
        """

    @Test("read_only refuses writes, step-up redirects with the requirement, @alert forwards and raises a finding; zones reach Cedar")
    func obligations() async throws {
        try await withUpstream { try await Self.scenario($0) }
    }

    static func scenario(_ upstream: TestUpstream) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("obl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let routesFile = dir.appendingPathComponent("routes.yaml")
        try ("policies: [wires.cedar]\n" + routes.replacingOccurrences(of: "UPSTREAM", with: String(upstream.port)))
            .write(to: routesFile, atomically: true, encoding: .utf8)
        try wires.write(to: dir.appendingPathComponent("wires.cedar"), atomically: true, encoding: .utf8)

        let (store, clock, sessions, loader, state) = try await Self.staffGateway(routesFile: routesFile.path)
        // The log's flush loop does not run here (the test flushes when it reads the events): with `refuse` the gate
        // would refuse access once decisions had waited the grace (5 s) on a slow, loaded run.
        let log = DecisionLog(store: store, clock: clock, whenUnwritten: .admit)
        let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei", recorder: log)
        let server = EnforcementPointServer(configuration: ProxyConfiguration(), gate: gate, group: upstream.group)
        try await server.start()
        let port = try #require(server.localPort)
        let token = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil, phishingResistant: false)).token

        func call(_ method: String, _ host: String, _ path: String, html: Bool = true) async -> (status: String, location: String) {
            let r = await curl(["-X", method, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: \(host)",
                                "-H", "Accept: \(html ? "text/html" : "application/json")", "-H", "Cookie: __Host-menshen-session=\(token)",
                                "http://127.0.0.1:\(port)\(path)"])
            let parts = r.stdout.split(separator: " ", maxSplits: 1).map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
        }

        // read_only: reads pass, writes are refused by the gateway and never reach the application.
        #expect(await call("GET", "ledger.bank.example", "/entries").status == "200")
        let seenBefore = upstream.seen.count
        #expect(await call("DELETE", "ledger.bank.example", "/entries/7").status == "403")
        #expect(await call("POST", "ledger.bank.example", "/entries").status == "403")
        #expect(upstream.seen.count == seenBefore)

        // step-up: LoA 2 is not enough for wires; the browser is sent to step up with the requirement and the way back.
        let wire = await call("POST", "wires.bank.example", "/transfer?amount=1000000")
        #expect(wire.status == "302")
        #expect(wire.location.hasPrefix("https://portal.bank.example/stepup?loa=3&max_age=300&return=http%3A%2F%2Fwires.bank.example%2Ftransfer"),
                "\(wire.location)")
        #expect(await call("POST", "wires.bank.example", "/transfer", html: false).status == "401")

        // alert: forwarded, and a Detection Finding is written next to the decision event.
        #expect(await call("GET", "payments.bank.example", "/batches").status == "200")
        await log.flush()
        let events = try await store.events(after: 0, limit: 100).map(\.event)
        let finding = try #require(events.first { $0.classUID == 2004 })
        #expect(finding.severityID == 4 && finding.payloadJSON.contains("route:payments"))
        #expect(events.filter { $0.classUID == 6001 }.count == 6, "one event per decision")
        #expect(events.contains { $0.payloadJSON.contains(#""network_zone":"loopback""#) })

        // Without the zone, 127.0.0.1 is "internet" and the forbid applies to everything.
        try ("policies: [wires.cedar]\n" + routes.replacingOccurrences(of: "UPSTREAM", with: String(upstream.port))
            .replacingOccurrences(of: "network_zones:\n  - zone: loopback\n    cidrs: [127.0.0.0/8, \"::1\"]\n", with: ""))
            .write(to: routesFile, atomically: true, encoding: .utf8)
        #expect(await loader.reloadIfChanged(state) == .reloaded(generation: 2))
        #expect(await call("GET", "ledger.bank.example", "/entries").status == "403")
        try await server.shutdown()
    }

    @Test("the proxy's own errors are pages too: upstream down → 502 in the browser's language with the request id, problem+json for APIs")
    func errorPages() async throws {
        let held = DeadPort()   // bound, never listening: refused, and no parallel test can take it meanwhile
        defer { held.release() }
        let dead = held.upstream
        try await withProxy(configure: { $0.refusalPage = PolicyGate.refusalPage(portalOrigin: "https://portal.bank.example") },
                            gate: { _ in RecordingGate { _ in .forward(upstream: dead, addHeaders: []) } }) { server, _, _ in
            let url = "http://127.0.0.1:\(server.localPort ?? 0)/x"
            let page = await curl(["-i", "-H", "Accept: text/html", "-H", "Accept-Language: en", url])
            #expect(page.stdout.hasPrefix("HTTP/1.1 502"))
            #expect(page.stdout.contains("Application unavailable") && page.stdout.contains("Request id"), "\(page.stdout.prefix(600))")
            let zh = await curl(["-i", "-H", "Accept: text/html", "-H", "Accept-Language: zh-TW", url])
            #expect(zh.stdout.contains("應用系統無法連線"))
            let api = await curl(["-i", "-H", "Accept: application/json", url])
            #expect(api.stdout.hasPrefix("HTTP/1.1 502") && api.stdout.lowercased().contains("content-type: application/problem+json"))
            #expect(api.stdout.contains(#""status":502"#))
        }
    }
}
