import Foundation
import MenshenServer
import MenshenTestSupport
import Testing

/// Two `menshen serve` processes on one PostgreSQL database: sessions,
/// policies and revocations are shared; a change made through one node
/// reaches the other through LISTEN/NOTIFY within 1 s (each node's reload
/// interval is set to an hour here, so nothing else could explain it).
@Suite("Two gateway nodes on one PostgreSQL (timed: run alone)", .serialized)
struct TimedMultiNodeTests {
    /// A fresh database on the test server, or nil when there is none (a failure under CI).
    static func createDatabase() throws -> String? {
        guard let admin = ProcessInfo.processInfo.environment["MENSHEN_TEST_POSTGRES_URL"], !admin.isEmpty,
              let url = URLComponents(string: admin), let host = url.host
        else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("MENSHEN_TEST_POSTGRES_URL must be set under CI") }
            return nil
        }
        let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last
            .map { "/usr/lib/postgresql/\($0)/bin/createdb" } ?? "/usr/bin/createdb"
        let name = "menshen_nodes_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(bin, ["-h", host, "-p", String(url.port ?? 5432), "-U", url.user ?? "postgres", String(name)])
        guard r.status == 0 else { throw Harness.HarnessError("createdb \(name) failed (\(r.status)): \(r.stderrText)") }
        var out = url
        out.path = "/" + name
        return out.string
    }

    final class Node: @unchecked Sendable {
        // Invariant: created and stopped by one test, off the cooperative pool.
        let process = ChildProcess()
        let portal: String, gateway: String, admin: Int, config: String

        init(name: String, dir: URL, database: String, upstreamAdmin: Int?) throws {
            let p = try Harness.freePort(), g = try Harness.freePort()
            admin = try Harness.freePort()
            portal = "http://localhost:\(p)"
            gateway = "http://localhost:\(g)"
            let routes = dir.appendingPathComponent("routes.yaml")
            if !FileManager.default.fileExists(atPath: routes.path) {
                // The protected application: node A's operations listener (its /healthz answers 200).
                try """
                    routes:
                      - id: health
                        host: localhost
                        path_prefix: /healthz
                        upstreams: ["http://127.0.0.1:\(upstreamAdmin ?? admin)"]
                        classification: internal
                        require:
                          groups: [staff]
                    """.write(to: routes, atomically: true, encoding: .utf8)
            }
            let file = dir.appendingPathComponent("\(name).yaml")
            try """
                organisation:
                  name: Test Bank
                server:
                  listen: 127.0.0.1:\(p)
                  public_url: \(portal)
                gateway:
                  listen: 127.0.0.1:\(g)
                  public_url: \(gateway)
                  routes_file: \(routes.path)
                  reload_interval_seconds: 3600
                  reevaluate_interval_seconds: 3600
                  assertion_key_file: \(dir.appendingPathComponent("assertion.key").path)
                admin:
                  listen: 127.0.0.1:\(admin)
                store:
                  driver: postgres
                  postgres:
                    url: \(database)
                identity:
                  secrets_key_file: \(dir.appendingPathComponent("secrets.key").path)
                """.write(to: file, atomically: true, encoding: .utf8)
            config = file.path
            try Harness.startServe(process, config: file.path, adminPort: admin, name: "menshen serve (\(name))")
        }

        func stop() {
            process.signal(SIGTERM)
            process.waitUntilExit()
        }
    }

    /// Polls `url` until its status is `status`; returns the seconds it took, or nil after `limit`.
    static func until(_ status: Int, _ url: String, cookie: String, limit: TimeInterval = 5) async throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            let r = try await PortalIdentityTests.http("GET", url, headers: ["Accept": "application/json", "Cookie": "__Host-menshen-session=\(cookie)"])
            if r.status == status { return Date().timeIntervalSince(start) }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test("a policy saved and a session revoked through node A are enforced by node B within 1 s")
    func sharedState() async throws {
        guard let database = try Self.createDatabase() else { return }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // With PostgreSQL the nodes share one assertion key and do not create it themselves.
        _ = try IdentityAssertionSigner.loadOrCreateKey(path: dir.appendingPathComponent("assertion.key").path)
        let a = try await Harness.offPool { UncheckedBox(value: try Node(name: "a", dir: dir, database: database, upstreamAdmin: nil)) }.value
        defer { a.stop() }
        let b = try await Harness.offPool { UncheckedBox(value: try Node(name: "b", dir: dir, database: database, upstreamAdmin: a.admin)) }.value
        defer { b.stop() }
        func cli(_ args: [String]) async throws {
            let r = try await Harness.runAsync(args + ["--config", a.config])
            #expect(r.status == 0, "menshen \(args.joined(separator: " ")): \(r.err)")
        }

        // A user enrolled and signed in through node A's portal.
        try await cli(["group", "add", "staff"])
        try await cli(["user", "add", "amy", "--group", "staff"])
        let link = try await Harness.runAsync(["user", "enrol-link", "amy", "--config", a.config]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let v = PortalIdentityTests.Visitor(a.portal)
        #expect(try await v.post(try #require(URL(string: link)?.path), []).status == 303)
        #expect(try await v.post("/account/password", [("password", PortalIdentityTests.password)]).status == 200)
        #expect(try await v.post("/account/finish", []).status == 303)
        #expect(try await v.post("/signin", [("user", "amy"), ("password", PortalIdentityTests.password), ("ret", "/account")]).status == 303)
        let cookie = try #require(v.cookies["__Host-menshen-session"])

        // Node B knows the session node A issued.
        #expect(try await Self.until(200, b.gateway + "/healthz", cookie: cookie) != nil, "node B admits A's session")

        // A policy saved through node A's store reaches node B's snapshot through NOTIFY.
        let freeze = dir.appendingPathComponent("freeze.cedar")
        try "@id(\"freeze\")\nforbid (principal, action, resource == Application::\"health\");\n".write(to: freeze, atomically: true, encoding: .utf8)
        try await cli(["policy", "save", "freeze", freeze.path, "--comment", "incident 42: freeze"])
        let frozen = try #require(try await Self.until(403, b.gateway + "/healthz", cookie: cookie), "node B never saw the policy")
        #expect(frozen < 1.0, "node B enforced the new policy after \(frozen) s")
        try "@id(\"freeze\")\nforbid (principal, action, resource == Application::\"health\") when { false };\n"
            .write(to: freeze, atomically: true, encoding: .utf8)
        try await cli(["policy", "save", "freeze", freeze.path, "--comment", "incident 42: lifted"])
        let lifted = try #require(try await Self.until(200, b.gateway + "/healthz", cookie: cookie), "node B never saw the lifted policy")
        #expect(lifted < 1.0, "node B lifted the freeze after \(lifted) s")

        // A policy that does not validate is refused by the command and changes nothing.
        try "forbid (principal, action, resource) when { context.sesion.loa < 9 };\n".write(to: freeze, atomically: true, encoding: .utf8)
        let bad = try await Harness.runAsync(["policy", "save", "freeze", freeze.path, "--config", a.config])
        #expect(bad.status != 0 && bad.err.contains("freeze.cedar:1:"), "\(bad.err)")

        // Signing out at node A: node B refuses the session on its next request.
        #expect(try await v.post("/signout", []).status == 303)
        let revoked = try #require(try await Self.until(401, b.gateway + "/healthz", cookie: cookie, limit: 2))
        #expect(revoked < 1.0, "node B still admitted the session \(revoked) s after sign-out at node A")
        print("two nodes: policy change reached node B in \(String(format: "%.3f", frozen)) s, lift in \(String(format: "%.3f", lifted)) s, sign-out in \(String(format: "%.3f", revoked)) s")
    }
}
