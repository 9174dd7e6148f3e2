import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// Issue #7, acceptance item 6, end to end: the real `menshen serve` on
/// SQLite with a playbooks file; a password-spraying run through the real
/// sign-in endpoint (one source, many user names, a wrong password each,
/// honouring the portal's throttle, so it takes about half a minute); the
/// finding written, the targeted user's session revoked (the gateway refuses
/// the cookie), a ticket received by a real HTTP server, and the measured
/// event-to-action latency at most 1 s. A receiver that hangs and one that
/// answers garbage hold nothing up. Normal sign-ins before it fire nothing,
/// and a malformed playbook file written while it runs is refused with a
/// precise message while the server keeps its playbooks.
@Suite("Playbooks end to end with menshen serve (timed: run alone)", .serialized)
struct TimedPlaybookTests {
    /// `scripts/webhook-receiver.py` on a free port, recording what it receives.
    final class Receiver: @unchecked Sendable {
        // Invariant: created and stopped by one test, off the cooperative pool.
        let process = ChildProcess()
        let out: Harness.Collector
        let log: URL
        private(set) var port = 0

        init(mode: String, dir: URL) throws {
            log = dir.appendingPathComponent("webhook-\(mode).jsonl")
            out = try Harness.Collector()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [Harness.packageRoot.appendingPathComponent("scripts/webhook-receiver.py").path, "0", log.path, "--mode", mode]
            process.outputPath = out.url.path
            process.errorPath = "/dev/null"
            try process.run()
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let line = out.text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }), let p = Int(line.dropFirst(10)) {
                    port = p
                    return
                }
                if !process.isRunning { throw Harness.HarnessError("webhook receiver (\(mode)) exited") }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw Harness.HarnessError("webhook receiver (\(mode)) did not start")
        }

        /// Each request received: arrival time (seconds since the epoch) and body.
        var received: [(time: Double, body: [String: Any])] {
            guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { line in
                guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                      let t = o["time"] as? Double else { return nil }
                return (t, o["body"] as? [String: Any] ?? [:])
            }
        }

        func stop() {
            // SIGKILL: it holds nothing to clean up, and a child of the test runner may inherit a blocked SIGTERM.
            process.signal(SIGKILL)
            process.waitUntilExit()
            _ = out.finish()
        }
    }

    /// `menshen serve` with its log kept (to read the playbooks' refusal message).
    final class Server: @unchecked Sendable {
        // Invariant: created and stopped by one test, off the cooperative pool.
        let process = ChildProcess()
        let err: Harness.Collector
        let portal: String, gateway: String, config: String, database: String, playbooks: URL

        init(dir: URL, playbooksYAML: String) throws {
            let p = try Harness.freePort(), g = try Harness.freePort(), admin = try Harness.freePort()
            portal = "http://localhost:\(p)"
            gateway = "http://localhost:\(g)"
            database = dir.appendingPathComponent("menshen.sqlite").path
            playbooks = dir.appendingPathComponent("playbooks.yaml")
            try playbooksYAML.write(to: playbooks, atomically: true, encoding: .utf8)
            let routes = dir.appendingPathComponent("routes.yaml")
            try """
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
                  public_url: \(portal)
                gateway:
                  listen: 127.0.0.1:\(g)
                  public_url: \(gateway)
                  routes_file: \(routes.path)
                  reload_interval_seconds: 1
                admin:
                  listen: 127.0.0.1:\(admin)
                store:
                  driver: sqlite
                  sqlite:
                    path: \(database)
                response:
                  playbooks_file: \(playbooks.path)
                """.write(to: file, atomically: true, encoding: .utf8)
            config = file.path
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
            throw Harness.HarnessError("menshen serve did not become healthy")
        }

        func stop() {
            process.signal(SIGTERM)
            process.waitUntilExit()
        }
    }

    static func playbooks(ticket: Int, hang: Int, garbage: Int) -> String {
        """
        playbooks:
          - name: contain-password-spraying
            description: End the sessions of every account a spraying source tried, and open a ticket.
            match:
              rules: [menshen_password_spraying]
              techniques: [T1110.003]
              min_severity: high
            actions:
              - type: revoke_sessions
                users: evidence
              - type: webhook
                url: http://127.0.0.1:\(hang)/tickets
                timeout_seconds: 1
                retries: 1
              - type: webhook
                url: http://127.0.0.1:\(garbage)/tickets
                timeout_seconds: 1
                retries: 0
              - type: webhook
                url: http://127.0.0.1:\(ticket)/tickets
                timeout_seconds: 5
                retries: 2
              - log
        """
    }

    static func payload(_ e: StoredEvent) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(e.event.payloadJSON.utf8))) as? [String: Any] ?? [:]
    }

    @Test("a password spray through the sign-in endpoint: finding, the target's session revoked at the gateway, a ticket received, event-to-action ≤ 1 s")
    func sprayToRevocationAndTicket() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ticket = try await Harness.offPool { UncheckedBox(value: try Receiver(mode: "ok", dir: dir)) }.value
        defer { ticket.stop() }
        let hang = try await Harness.offPool { UncheckedBox(value: try Receiver(mode: "hang", dir: dir)) }.value
        defer { hang.stop() }
        let garbage = try await Harness.offPool { UncheckedBox(value: try Receiver(mode: "garbage", dir: dir)) }.value
        defer { garbage.stop() }
        let yaml = Self.playbooks(ticket: ticket.port, hang: hang.port, garbage: garbage.port)
        let server = try await Harness.offPool { UncheckedBox(value: try Server(dir: dir, playbooksYAML: yaml)) }.value
        defer { server.stop() }
        func cli(_ args: [String]) async throws {
            let r = try await Harness.runAsync(args + ["--config", server.config])
            #expect(r.status == 0, "menshen \(args.joined(separator: " ")): \(r.err)")
        }

        // amy (the target) and bob have passwords; amy signs in and reaches the protected application.
        try await cli(["group", "add", "staff"])
        var cookies: [String: String] = [:]
        for user in ["amy", "bob"] {
            try await cli(["user", "add", user, "--group", "staff"])
            let link = try await Harness.runAsync(["user", "enrol-link", user, "--config", server.config]).out
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let v = PortalIdentityTests.Visitor(server.portal)
            #expect(try await v.post(try #require(URL(string: link)?.path), []).status == 303)
            #expect(try await v.post("/account/password", [("password", PortalIdentityTests.password)]).status == 200)
            #expect(try await v.post("/account/finish", []).status == 303)
            #expect(try await v.post("/signin", [("user", user), ("password", PortalIdentityTests.password), ("ret", "/account")]).status == 303)
            cookies[user] = try #require(v.cookies["__Host-menshen-session"])
        }
        let amy = try #require(cookies["amy"])
        #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: amy) != nil, "amy reaches the application")

        // Normal traffic fires nothing: more sign-ins (they share the spray's source; only failures count towards its throttle).
        for user in ["bob", "amy", "bob"] {
            #expect(try await PortalIdentityTests.Visitor(server.portal)
                .post("/signin", [("user", user), ("password", PortalIdentityTests.password), ("ret", "/account")]).status == 303)
        }
        let store = try SQLiteStore(path: server.database)
        try await Task.sleep(for: .milliseconds(1500))
        let quiet = try await store.events(after: 0, limit: 100_000)
        #expect(!quiet.contains { [2004, 7001].contains($0.event.classUID) }, "normal sign-ins made a finding or an action")

        // The spray: one source, ten user names (amy among them, most not even accounts), one wrong password each.
        // The portal throttles the source after five failures; the spray waits as told (Retry-After), as a patient attacker would.
        let attacker = PortalIdentityTests.Visitor(server.portal)
        let names = ["amy", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "svc-batch"]
        for name in names {
            while true {
                let r = try await attacker.post("/signin", [("user", name), ("password", "Spring2026!"), ("ret", "/account")])
                if r.status == 429 {
                    let wait = Double(r.header("retry-after").first ?? "1") ?? 1
                    try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 100))
                    continue
                }
                #expect(r.status == 401, "\(name): \(r.status)")
                break
            }
        }

        // The gateway refuses amy's cookie (polled from the moment the last attempt was answered).
        let refused = try await TimedMultiNodeTests.until(401, server.gateway + "/healthz", cookie: amy, limit: 5)
        #expect(refused != nil, "the gateway still admits amy's session")

        // The finding, with its technique and evidence.
        var events: [StoredEvent] = []
        for _ in 0..<100 {
            events = try await store.events(after: 0, limit: 100_000)
            if events.contains(where: { $0.event.classUID == 2004 }) && ticket.received.count == 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let findings = events.filter { $0.event.classUID == 2004 }
        try #require(findings.count == 1, "one finding: \(findings.map(\.event.payloadJSON))")
        let finding = Self.payload(findings[0])
        let info = try #require(finding["finding_info"] as? [String: Any])
        let attack = try #require((info["attacks"] as? [[String: Any]])?.first)
        #expect((attack["sub_technique"] as? [String: Any])?["uid"] as? String == "T1110.003")
        let failures = events.filter { e in
            e.event.classUID == 3002 && e.event.payloadJSON.contains(#""status_id":2"#) && e.event.payloadJSON.contains("\"pwd\"")
        }
        let related = Set((info["related_events"] as? [[String: Any]] ?? []).compactMap { $0["uid"] as? String })
        #expect(related == Set(failures.suffix(10).map { $0.event.id.uuidString.lowercased() }), "the evidence is the ten failed passwords")
        let trigger = try #require(failures.last?.event.time, "the tenth failure is the triggering event")
        let lastSeen = try #require((info["last_seen_time"] as? NSNumber)?.int64Value)
        #expect(lastSeen == Int64((trigger.timeIntervalSince1970 * 1000).rounded()))

        // The revocation and the ticket, with their measured latency from the triggering event.
        let session = try #require(try await store.sessions(of: "amy").first { $0.revokedAt != nil }, "amy's session was revoked")
        let revokedAt = try #require(session.revokedAt)
        #expect(session.revokedReason?.contains("contain-password-spraying") == true)
        #expect(try await store.sessions(of: "bob").allSatisfy { $0.revokedReason?.contains("playbook") != true }, "bob was not sprayed")
        let tickets = ticket.received
        try #require(tickets.count == 1, "one ticket, delivered at the first attempt")
        let body = tickets[0].body
        #expect(body["finding_uid"] as? String == info["uid"] as? String)
        #expect(body["playbook"] as? String == "contain-password-spraying")
        #expect(body["source_ip"] as? String == "127.0.0.1")
        #expect((body["techniques"] as? [[String: Any]])?.first?["uid"] as? String == "T1110.003")
        #expect(Set(body["evidence"] as? [String] ?? []) == related)
        #expect(((body["ocsf"] as? [String: Any])?["class_uid"] as? Int) == 2004)
        let toRevocation = revokedAt.timeIntervalSince(trigger)
        let toTicket = tickets[0].time - trigger.timeIntervalSince1970
        print(String(format: "playbook latency from the triggering event: session revoked after %.3f s, ticket received after %.3f s", toRevocation, toTicket))
        #expect(toRevocation >= 0 && toRevocation <= 1.0, "revocation \(toRevocation) s after the event")
        #expect(toTicket >= 0 && toTicket <= 1.0, "ticket \(toTicket) s after the event")

        // The hanging and the garbage receivers got their tickets too, failed, and held nothing up: their failures are recorded.
        var actions: [[String: Any]] = []
        for _ in 0..<100 {
            actions = try await store.events(after: 0, limit: 100_000).filter { $0.event.classUID == 7001 }.map(Self.payload)
            if actions.count >= 5 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let webhooks = actions.filter { ($0["unmapped"] as? [String: Any])?["action"] as? String == "webhook" }
        #expect(webhooks.count == 3)
        #expect(webhooks.filter { $0["status_id"] as? Int == 2 }.count == 2, "the hanging and the garbage receivers count as failures")
        #expect(hang.received.count == 2, "the hanging receiver was tried twice (one retry)")
        #expect(garbage.received.count == 1)
        #expect(actions.contains { ($0["unmapped"] as? [String: Any])?["action"] as? String == "revoke_sessions" && $0["status_id"] as? Int == 1 })

        // A malformed playbook file written now is refused with a precise message; the server keeps running.
        try "playbooks:\n  - name: contain-password-spraying\n    match: {min_severity: extreme}\n    actions: [log]\n"
            .write(to: server.playbooks, atomically: true, encoding: .utf8)
        let expected = "\(server.playbooks.path): playbook \"contain-password-spraying\": match.min_severity: must be one of informational, low, medium, high, critical"
        var logged = false
        for _ in 0..<50 where !logged {
            try await Task.sleep(for: .milliseconds(100))
            logged = server.err.text.contains("playbooks change refused") && server.err.text.contains(expected)
        }
        #expect(logged, "the refusal and its message are logged: \(server.err.text.suffix(2000))")
        #expect(server.process.isRunning)
        #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: try #require(cookies["bob"])) != nil)
    }
}
