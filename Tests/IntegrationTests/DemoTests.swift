import Foundation
import Testing

/// The README's run command, end to end, on the real binary.
@Suite("menshen demo", .serialized)
struct DemoTests {
    @Test("the README's two commands are the ones these tests and CI run")
    func readmeCommands() throws {
        let readme = try String(contentsOf: Harness.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("```sh\nswift run menshen demo\n```"))
        #expect(readme.contains("```sh\nscripts/test\n```"))
        let ci = try String(contentsOf: Harness.packageRoot.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(ci.contains("exec scripts/test"))
    }

    /// One series' value in a Prometheus text exposition.
    static func sample(_ body: String, _ series: String) -> Double? {
        body.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test("the demo comes up on a fresh directory and answers health, readiness, portal and sample app")
    func demoComesUp() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let demo = try Harness.Demo(dataDir: dir.appendingPathComponent("menshen-data"), cwd: dir)
        try demo.waitUntilReady()
        defer { demo.kill(signal: SIGTERM) }

        let health = try await Harness.get(demo.adminURL + "/healthz")
        #expect(health.status == 200)
        let ready = try await Harness.get(demo.adminURL + "/readyz")
        #expect(ready.status == 200)
        #expect(ready.body.contains(#""store":"sqlite""#))
        // One request through the gateway without a session (answered at once with a sign-in), then the counters.
        let gate = try await Harness.get(demo.gatewayURL + "/", headers: ["Accept": "application/json"])
        #expect(gate.status == 401)
        let metrics = try await Harness.get(demo.adminURL + "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("hb_requests"))
        func value(_ series: String) -> Double? { Self.sample(metrics.body, series) }
        #expect((value("menshen_gateway_requests_total") ?? 0) >= 1, "\(metrics.body)")
        #expect((value(#"menshen_gateway_verdicts_total{verdict="responded"}"#) ?? 0) >= 1)
        #expect((value("menshen_gateway_decided_immediately_total") ?? 0) >= 1)
        #expect(value("menshen_gateway_open_connections") != nil && value("menshen_decision_events_dropped_total") == 0)
        // The demo's one node holds the detections' lease (asked for at start) and keeps up with the log.
        var detections: (running: Double?, lag: Double?) = (nil, nil)
        for _ in 0..<100 {
            let m = try await Harness.get(demo.adminURL + "/metrics").body
            detections = (Self.sample(m, "menshen_detections_running"), Self.sample(m, "menshen_detections_lag_seconds"))
            if detections.running == 1, let lag = detections.lag, lag < 60 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(detections.running == 1, "\(detections)")
        #expect(detections.lag.map { $0 >= 0 && $0 < 60 } == true, "\(detections)")

        let portal = try await Harness.get(demo.portalURL + "/", headers: ["Accept-Language": "en-GB,en;q=0.9"])
        #expect(portal.status == 200)
        #expect(portal.body.contains("Protected applications") && portal.body.contains("Core system maintenance"))
        #expect(portal.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        let zh = try await Harness.get(demo.portalURL + "/?lang=zh-TW")
        #expect(zh.body.contains("受保護的應用系統"))

        let sample = try await Harness.get(demo.sampleURL + "/maintenance?lang=en")
        #expect(sample.status == 200 && sample.body.contains("Core system maintenance"))

        #expect(demo.enrolmentLink.hasPrefix("http://localhost:"))
        let enrol = try await Harness.get(demo.enrolmentLink + "?lang=en")
        #expect(enrol.status == 200 && enrol.body.contains("admin"))
        let forged = try await Harness.get(demo.portalURL + "/enrol/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?lang=en")
        #expect(forged.status == 404)
    }

    @Test("SIGKILL and a restart keep all data, and the demo reuses it")
    func survivesSigkill() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("menshen-data")
        let first = try Harness.Demo(dataDir: data, cwd: dir)
        try first.waitUntilReady()
        let before = try Harness.run(["store", "status", "--data", data.path])
        #expect(before.status == 0)
        #expect(before.out.contains("users:           5") && before.out.contains("events:          1"))
        first.kill(signal: SIGKILL)

        let second = try Harness.Demo(dataDir: data, cwd: dir)
        try second.waitUntilReady()
        #expect(second.err.text.contains("demo organisation reused"))
        let ready = try await Harness.get(second.adminURL + "/readyz")
        #expect(ready.status == 200)
        second.kill(signal: SIGKILL)

        let after = try Harness.Run.status(data)
        #expect(after.contains("users:           5"))
        #expect(after.contains("policies:        3"))
        #expect(after.contains("events:          2"))  // one enrolment link per run, both kept
        #expect(after.contains("event chain:     intact (2 records)"))
    }

    @Test("SIGTERM shuts the demo down gracefully with exit status 0")
    func gracefulShutdown() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let demo = try Harness.Demo(dataDir: dir.appendingPathComponent("d"), cwd: dir)
        try demo.waitUntilReady()
        demo.kill(signal: SIGTERM)
        #expect(demo.process.terminationStatus == 0)
        // Nothing logged at error level: a stop is not a failure (the reload loops once reported their
        // cancelled store calls as "configuration change refused").
        let errors = demo.err.text.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
        #expect(errors.isEmpty, "\(errors)")
    }
}

extension Harness {
    enum Run {
        static func status(_ data: URL) throws -> String {
            let r = try Harness.run(["store", "status", "--data", data.path])
            #expect(r.status == 0, "\(r.err)")
            return r.out
        }
    }
}
