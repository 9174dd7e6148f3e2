import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// The device pillar end to end with the real binary: `menshen serve` with a
/// TLS gateway whose client CA is the persisted device CA, `menshen device
/// enrol-token`, `menshen agent enrol` and `menshen agent report`, and curl
/// presenting the issued certificate through the gateway to a route whose
/// Cedar policy requires a compliant managed device.
@Suite("Device pillar end to end (menshen serve, menshen agent, curl --cert)")
struct TimedDeviceEndToEndTests {
    static let posture = """
        {"os": {"name": "Debian", "version": "12.5"}, "kernel": "6.1.0-18-amd64", "pending_security_updates": 0,
         "disk_encryption": true, "firewall": FIREWALL, "screen_lock": true,
         "edr": {"product": "ClamAV", "running": true, "signature_age_seconds": 3600}, "packages": []}
        """

    static func process(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(tool, args)
        return (r.status, r.stdoutText, r.stderrText)
    }

    @Test("enrol, report compliant → allowed; a report that drops a control → denied at once; silence → stale → denied; replayed, tampered and malformed reports and CSRs refused")
    func endToEnd() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, g, admin) = (try Harness.freePort(), try Harness.freePort(), try Harness.freePort())
        let portal = "http://127.0.0.1:\(p)"
        let path: @Sendable (String) -> String = { name in dir.appendingPathComponent(name).path }
        let ssl = try await Harness.offPool {
            try Self.process("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                                  "-keyout", path("gw.key"), "-out", path("gw.pem"), "-subj", "/CN=localhost"])
        }
        #expect(ssl.status == 0, "\(ssl.err)")
        try """
            routes:
              - id: console
                host: console.bank.example
                path_prefix: /healthz
                upstreams: ["http://127.0.0.1:\(admin)"]
                classification: restricted
            policies: [device.cedar]
            """.write(toFile: path("routes.yaml"), atomically: true, encoding: .utf8)
        try """
            @id("console-needs-a-compliant-managed-device")
            permit (principal in Group::"staff", action, resource == Application::"console")
            when { context.device.known && context.device.managed && context.device.compliant };
            """.write(toFile: path("device.cedar"), atomically: true, encoding: .utf8)
        // A short posture interval, so that silence is seen within the test.
        try "managed:\n  max_posture_age_seconds: 10\n  max_vulnerability_severity: high\n  require_vulnerability_scan: false\n"
            .write(toFile: path("compliance.yaml"), atomically: true, encoding: .utf8)
        try """
            organisation:
              name: Test Bank
            server:
              listen: 127.0.0.1:\(p)
              public_url: \(portal)
            gateway:
              listen: 127.0.0.1:\(g)
              public_url: https://console.bank.example:\(g)
              routes_file: \(path("routes.yaml"))
              tls:
                certificate_file: \(path("gw.pem"))
                private_key_file: \(path("gw.key"))
                client_ca_file: \(path("device-ca.pem"))
            admin:
              listen: 127.0.0.1:\(admin)
            store:
              driver: sqlite
              sqlite:
                path: \(path("menshen.sqlite"))
            device:
              compliance_file: \(path("compliance.yaml"))
            """.write(toFile: path("menshen.yaml"), atomically: true, encoding: .utf8)
        let config = path("menshen.yaml")

        // The device CA is created on first use; its certificate is the gateway's client CA.
        let ca = try await Harness.runAsync(["device", "ca", "--config", config])
        #expect(ca.status == 0 && ca.out.hasPrefix("-----BEGIN CERTIFICATE-----"), "\(ca.err)")
        try ca.out.write(toFile: path("device-ca.pem"), atomically: true, encoding: .utf8)
        let again = try await Harness.runAsync(["device", "ca", "--config", config])
        #expect(again.out == ca.out, "the CA is persisted, not made again")

        let serve = ChildProcess()
        try await Harness.offPool { try Harness.startServe(serve, config: config, adminPort: admin, name: "menshen serve (devices)") }
        defer { serve.signal(SIGTERM); serve.waitUntilExit() }
        try await Self.scenario(dir: dir, config: config, portal: portal, gateway: g)
    }

    static func scenario(dir: URL, config: String, portal: String, gateway g: Int) async throws {
        let path: @Sendable (String) -> String = { name in dir.appendingPathComponent(name).path }
        func cli(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(args + ["--config", config])
        }
        #expect(try await cli(["group", "add", "staff"]).status == 0)
        #expect(try await cli(["user", "add", "amy", "--group", "staff"]).status == 0)
        let link = try await cli(["user", "enrol-link", "amy"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let v = PortalIdentityTests.Visitor(portal)
        #expect(try await v.post(try #require(URL(string: link)?.path), []).status == 303)
        #expect(try await v.post("/account/password", [("password", PortalIdentityTests.password)]).status == 200)
        #expect(try await v.post("/account/finish", []).status == 303)
        #expect(try await v.post("/signin", [("user", "amy"), ("password", PortalIdentityTests.password), ("ret", "/account")]).status == 303)
        var cookie = try #require(v.cookies["__Host-menshen-session"])
        /// Signs in again (a device turning non-compliant ends its owner's sessions).
        func signInAgain() async throws {
            #expect(try await v.post("/signin", [("user", "amy"), ("password", PortalIdentityTests.password), ("ret", "/account")]).status == 303)
            cookie = try #require(v.cookies["__Host-menshen-session"])
        }

        // Enrolment with a one-time token.
        let tokenRun = try await cli(["device", "enrol-token", "--user", "amy", "--class", "managed"])
        let token = tokenRun.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(tokenRun.status == 0 && token.count >= 32, "\(tokenRun.err)")
        let keys = path("agent")
        let enrol = try await Harness.runAsync(["agent", "enrol", "--server", portal, "--token", token, "--key-dir", keys])
        #expect(enrol.status == 0 && enrol.out.hasPrefix("enrolled device d-"), "\(enrol.out) \(enrol.err)")
        let mode = try FileManager.default.attributesOfItem(atPath: keys + "/device.key")[.posixPermissions] as? Int
        #expect(mode == 0o600, "the device key is private")
        let reuse = try await Harness.runAsync(["agent", "enrol", "--server", portal, "--token", token, "--key-dir", path("agent2")])
        #expect(reuse.status == 1, "a token enrols one device only")

        func request() async throws -> String {
            let cookie = cookie
            let r = try await Harness.offPool {
                try Self.process("/usr/bin/curl", ["-sS", "-k", "--max-time", "10", "--cert", keys + "/device.pem", "--key", keys + "/device.key",
                                                   "--resolve", "console.bank.example:\(g):127.0.0.1", "-H", "Accept: application/json",
                                                   "-H", "Cookie: __Host-menshen-session=\(cookie)", "-o", "/dev/null", "-w", "%{http_code}",
                                                   "https://console.bank.example:\(g)/healthz"])
            }
            return r.status == 0 ? r.out : "curl \(r.status): \(r.err)"
        }
        func report(firewall: Bool) async throws -> (status: Int32, out: String, err: String) {
            try Self.posture.replacingOccurrences(of: "FIREWALL", with: String(firewall)).write(toFile: path("posture.json"), atomically: true, encoding: .utf8)
            return try await Harness.runAsync(["agent", "report", "--key-dir", keys, "--posture", path("posture.json")])
        }

        #expect(try await request() == "403", "enrolled but no posture yet: not compliant")
        let good = try await report(firewall: true)
        #expect(good.status == 0 && good.out.contains("compliant"), "\(good.out) \(good.err)")
        #expect(try await request() == "200", "a compliant managed device reaches the console")
        let bad = try await report(firewall: false)
        #expect(bad.status == 3 && bad.out.contains("firewall_off"), "\(bad.out) \(bad.err)")
        #expect(try await request() == "401", "the device turned non-compliant: its owner's session ended at once (sign in again)")
        try await signInAgain()
        #expect(try await request() == "403", "the next request after a report without the firewall is denied")
        #expect(try await report(firewall: true).status == 0)
        #expect(try await request() == "200")
        // Silence: once the posture is older than max_posture_age_seconds (10 s) the device is no longer compliant.
        let silentSince = Date()
        var stale = false
        while Date().timeIntervalSince(silentSince) < 20 {
            if try await request() == "403" { stale = true; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(stale && Date().timeIntervalSince(silentSince) <= 12, "a device that stops reporting loses access within one posture interval")

        try await Self.refusals(dir: dir, keys: keys, portal: portal)
    }

    /// Replayed, tampered and malformed reports and a malformed CSR, sent by hand.
    static func refusals(dir: URL, keys: String, portal: String) async throws {
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keys + "/device.json"))) as? [String: Any]
        let device = try #require(state?["device_id"] as? String)
        let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keys + "/device.key", encoding: .utf8))
        let certBase64 = try String(contentsOfFile: keys + "/device.pem", encoding: .utf8)
            .split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        func post(_ path: String, _ body: Data, headers: [String: String] = [:]) async throws -> (Int, String) {
            let r = try await PortalIdentityTests.http("POST", portal + path, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a },
                                                       rawBody: String(decoding: body, as: UTF8.self))
            return (r.status, r.body)
        }
        let (_, nonceBody) = try await post("/device/posture/nonce", Data("{\"device_id\":\"\(device)\"}".utf8))
        let nonce = try #require((try JSONSerialization.jsonObject(with: Data(nonceBody.utf8)) as? [String: Any])?["nonce"] as? String)
        let report = Self.posture.replacingOccurrences(of: "FIREWALL", with: "true")
            .replacingOccurrences(of: "{\"os\"", with: "{\"format\": 1, \"device_id\": \"\(device)\", \"nonce\": \"\(nonce)\", \"collected_at\": \"\(ISO8601DateFormatter().string(from: Date()))\", \"os\"")
        let envelope = Data(try PostureEnvelope.sign(reportBytes: Array(report.utf8), with: key))
        let headers = ["X-Menshen-Device-Certificate": certBase64]
        #expect(try await post("/device/posture", envelope, headers: headers).0 == 200)
        let replay = try await post("/device/posture", envelope, headers: headers)
        #expect(replay.0 == 422 && replay.1.contains("nonce_unknown"), "a replayed report is refused: \(replay)")
        // Tampered: the report says something else than what was signed.
        var object = try #require(try JSONSerialization.jsonObject(with: envelope) as? [String: String])
        let forged = report.replacingOccurrences(of: "\"pending_security_updates\": 0", with: "\"pending_security_updates\": 1")
        object["report"] = Base64URL.encode(Array(forged.utf8))
        let tampered = try await post("/device/posture", try JSONSerialization.data(withJSONObject: object), headers: headers)
        #expect(tampered.0 == 422 && tampered.1.contains("bad_signature"), "a tampered report is refused: \(tampered)")
        // Malformed: not an envelope; a CSR that is not one. Nothing stored.
        let junk = try await post("/device/posture", Data("{\"alg\":\"ES256\",\"report\":[[[[".utf8), headers: headers)
        #expect(junk.0 == 400, "\(junk)")
        let badCSR = try await post("/device/enrol", Data("{\"token\":\"\(String(repeating: "a", count: 43))\",\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\",\"platform\":\"linux\"}".utf8))
        #expect(badCSR.0 == 400 && badCSR.1.contains("bad_csr"), "\(badCSR)")

        // Events: enrolment and reports (5001), and each refusal with its code.
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let events = try await store.events(after: 0, limit: 10_000).map(\.event).filter { $0.classUID == 5001 }.map(\.payloadJSON)
        let devices = try await store.listDevices().count
        let severity = try await store.device(DeviceID(device))?.maxVulnerabilitySeverity
        try await store.close()
        #expect(events.contains { $0.contains("enrolled") })
        #expect(events.contains { $0.contains("\"refusal\":\"nonce_unknown\"") })
        #expect(events.contains { $0.contains("\"refusal\":\"bad_signature\"") })
        #expect(events.contains { $0.contains("firewall_off") })
        #expect(severity == 4, "unscanned packages count as critical")
        #expect(devices == 1, "the bad CSR stored no device")
    }
}
