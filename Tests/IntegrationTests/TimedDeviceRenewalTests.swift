import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing
import X509

/// Certificate renewal with the real binary: `menshen serve` with a TLS
/// gateway whose client CA is the device CA, `menshen agent renew` (same key
/// and `--new-key`), curl presenting the old and the new certificates, and
/// renewal requests sent by hand that must be refused.
@Suite("Device certificate renewal (menshen serve, menshen agent renew, curl --cert)")
struct TimedDeviceRenewalTests {
    @Test("renewal issues a new certificate and revokes the old one; the new one is admitted, the old one is not; a new key works; replayed, foreign-signed and malformed requests are refused and store nothing")
    func renewal() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, g, admin) = (try Harness.freePort(), try Harness.freePort(), try Harness.freePort())
        let portal = "http://127.0.0.1:\(p)"
        let path: @Sendable (String) -> String = { name in dir.appendingPathComponent(name).path }
        let ssl = try await Harness.offPool {
            try TimedDeviceEndToEndTests.process("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
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
            @id("console-needs-a-compliant-device")
            permit (principal in Group::"staff", action, resource == Application::"console")
            when { context.device.known && context.device.compliant };
            """.write(toFile: path("device.cedar"), atomically: true, encoding: .utf8)
        try "managed:\n  max_posture_age_seconds: 3600\n  max_vulnerability_severity: critical\n  require_vulnerability_scan: false\n"
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
        let ca = try await Harness.runAsync(["device", "ca", "--config", config])
        #expect(ca.status == 0, "\(ca.err)")
        try ca.out.write(toFile: path("device-ca.pem"), atomically: true, encoding: .utf8)

        let serve = ChildProcess()
        try await Harness.offPool { try TimedDeviceVulnerabilityTests.startServe(serve, config: config, adminPort: admin, log: path("serve.log")) }
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
        let cookie = try #require(v.cookies["__Host-menshen-session"])

        let token = try await cli(["device", "enrol-token", "--user", "amy", "--class", "managed"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let keys = path("agent")
        #expect(try await Harness.runAsync(["agent", "enrol", "--server", portal, "--token", token, "--key-dir", keys]).status == 0)
        try TimedDeviceEndToEndTests.posture.replacingOccurrences(of: "FIREWALL", with: "true").write(toFile: path("posture.json"), atomically: true, encoding: .utf8)
        let report = try await Harness.runAsync(["agent", "report", "--key-dir", keys, "--posture", path("posture.json")])
        #expect(report.status == 0, "\(report.out) \(report.err)")

        func request(cert: String, key: String) async throws -> String {
            let r = try await Harness.offPool {
                try TimedDeviceEndToEndTests.process("/usr/bin/curl", [
                    "-sS", "-k", "--max-time", "10", "--cert", cert, "--key", key,
                    "--resolve", "console.bank.example:\(g):127.0.0.1", "-H", "Accept: application/json",
                    "-H", "Cookie: __Host-menshen-session=\(cookie)", "-o", "/dev/null", "-w", "%{http_code}",
                    "https://console.bank.example:\(g)/healthz"])
            }
            return r.status == 0 ? r.out : "curl \(r.status): \(r.err)"
        }
        func copy(_ from: String, _ to: String) throws {
            try? FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
        func serial(_ pemPath: String) throws -> String {
            let certificate = try Certificate(pemEncoded: try String(contentsOfFile: pemPath, encoding: .utf8))
            return certificate.serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
        }
        #expect(try await request(cert: keys + "/device.pem", key: keys + "/device.key") == "200")
        try copy(keys + "/device.pem", path("first.pem"))
        try copy(keys + "/device.key", path("first.key"))

        // Renewal for the same key: a new serial; the old certificate is revoked (superseded) and refused at the gateway.
        let renewed = try await Harness.runAsync(["agent", "renew", "--key-dir", keys])
        #expect(renewed.status == 0 && renewed.out.contains("renewed device d-"), "\(renewed.out) \(renewed.err)")
        #expect(try serial(keys + "/device.pem") != serial(path("first.pem")))
        #expect(try String(contentsOfFile: keys + "/device.key", encoding: .utf8) == String(contentsOfFile: path("first.key"), encoding: .utf8))
        #expect(try await request(cert: keys + "/device.pem", key: keys + "/device.key") == "200", "the renewed certificate carries the device")
        #expect(try await request(cert: path("first.pem"), key: path("first.key")) == "403", "the superseded certificate is no device any more")

        // A renewal request replayed with the revoked certificate, one signed by another key, malformed ones: refused, nothing stored.
        let store = try SQLiteStore(path: path("menshen.sqlite"))
        let device = try #require(try await store.listDevices().first?.id)
        let certificatesBefore = try await store.deviceCertificates(of: device).count
        let firstKey = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: path("first.key"), encoding: .utf8))
        func base64(_ pemPath: String) throws -> String {
            try String(contentsOfFile: pemPath, encoding: .utf8).split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        }
        func renewByHand(certificate: String, csrKey: P256.Signing.PrivateKey, signer: P256.Signing.PrivateKey, csrText: String? = nil) async throws -> (Int, String) {
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("x") },
                                                    privateKey: Certificate.PrivateKey(csrKey), attributes: CertificateSigningRequest.Attributes(),
                                                    signatureAlgorithm: .ecdsaWithSHA256)
            let text = try csrText ?? csr.serializeAsPEM().pemString
            let signature = Base64URL.encode(try DeviceRenewal.sign(csr: Array(text.utf8), with: signer))
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["csr": text, "signature": signature]), as: UTF8.self)
            let r = try await PortalIdentityTests.http("POST", portal + "/device/renew",
                                                       headers: ["Content-Type": "application/json", "X-Menshen-Device-Certificate": certificate], rawBody: body)
            return (r.status, r.body)
        }
        let currentKey = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keys + "/device.key", encoding: .utf8))
        let replay = try await renewByHand(certificate: try base64(path("first.pem")), csrKey: firstKey, signer: firstKey)
        #expect(replay.0 == 422 && replay.1.contains("certificate_revoked_or_unknown"), "\(replay)")
        let stranger = P256.Signing.PrivateKey()
        let foreign = try await renewByHand(certificate: try base64(keys + "/device.pem"), csrKey: stranger, signer: stranger)
        #expect(foreign.0 == 422 && foreign.1.contains("bad_signature"), "only the current key may ask for a new key: \(foreign)")
        let badCSR = try await renewByHand(certificate: try base64(keys + "/device.pem"), csrKey: currentKey, signer: currentKey,
                                           csrText: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
        #expect(badCSR.0 == 400 && badCSR.1.contains("bad_csr"), "\(badCSR)")
        let noHeader = try await PortalIdentityTests.http("POST", portal + "/device/renew", headers: ["Content-Type": "application/json"],
                                                          rawBody: "{\"csr\":\"x\",\"signature\":\"x\"}")
        #expect(noHeader.status == 400, "\(noHeader)")
        let junk = try await PortalIdentityTests.http("POST", portal + "/device/renew",
                                                      headers: ["Content-Type": "application/json", "X-Menshen-Device-Certificate": try base64(keys + "/device.pem")],
                                                      rawBody: "{\"csr\": [[[[")
        #expect(junk.status == 400, "\(junk)")
        #expect(try await store.deviceCertificates(of: device).count == certificatesBefore, "refused renewals stored nothing")
        let refusals = try await store.events(after: 0, limit: 10_000).map(\.event).filter { $0.classUID == 5001 }.map(\.payloadJSON)
        #expect(refusals.contains { $0.contains("certificate renewal refused: renewal_bad_signature") }, "a refused renewal is recorded as one")
        #expect(try await store.deviceCertificate(serial: try serial(keys + "/device.pem"))?.revokedAt == nil, "refusals revoked nothing")

        // A new key: the old key's certificate is revoked, the new key and certificate reach the console.
        let rekeyed = try await Harness.runAsync(["agent", "renew", "--key-dir", keys, "--new-key"])
        #expect(rekeyed.status == 0 && rekeyed.out.contains("(new key)"), "\(rekeyed.out) \(rekeyed.err)")
        #expect(try String(contentsOfFile: keys + "/device.key", encoding: .utf8) != String(contentsOfFile: path("first.key"), encoding: .utf8))
        #expect(try await request(cert: keys + "/device.pem", key: keys + "/device.key") == "200")
        let certificates = try await store.deviceCertificates(of: device)
        #expect(certificates.count == 3 && certificates.filter { $0.revokedAt == nil }.count == 1, "exactly one valid certificate")
        #expect(certificates.filter { $0.revokedAt != nil }.allSatisfy { ($0.revokedReason ?? "").hasPrefix("superseded by") })
        let renewals = try await store.events(after: 0, limit: 10_000).map(\.event).filter { $0.classUID == 3004 }.map(\.payloadJSON)
            .filter { $0.contains("\"activity_id\":3") }
        #expect(renewals.count == 2 && renewals.contains { $0.contains("new key") } && renewals.contains { $0.contains("same key") })
        try await store.close()
        let show = try await cli(["device", "show", device.rawValue])
        #expect(show.out.contains("certificates:    3") && show.out.contains("superseded by"), "\(show.out)")

        // Revocation status for relying parties: the superseded certificate is revoked, the current one good, a serial
        // never issued unknown (404), a malformed one refused; each statement signed by the device CA, and a statement
        // edited after signing fails verification.
        let caKey = try #require(P256.Signing.PublicKey(try Certificate(pemEncoded: String(contentsOfFile: keys + "/ca.pem", encoding: .utf8)).publicKey))
        func status(_ serial: String) async throws -> (code: Int, status: String, statement: [String: Any], signed: Bool) {
            let r = try await PortalIdentityTests.http("GET", portal + "/device/status/" + serial)
            guard let o = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any],
                  let text = o["statement"] as? String, let sig = (o["signature"] as? String).flatMap({ Data(base64Encoded: $0) }),
                  let statement = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                return (r.status, "", [:], false)
            }
            let signature = try P256.Signing.ECDSASignature(derRepresentation: sig)
            let tampered = text.replacingOccurrences(of: "\"revoked\"", with: "\"good\"")
            #expect(tampered == text || !caKey.isValidSignature(signature, for: Data(tampered.utf8)), "an edited statement must not verify")
            return (r.status, o["status"] as? String ?? "", statement, caKey.isValidSignature(signature, for: Data(text.utf8)))
        }
        let old = try await status(try serial(path("first.pem")))
        #expect(old.code == 200 && old.status == "revoked" && old.statement["status"] as? String == "revoked" && old.signed
                && (old.statement["revocation_reason"] as? String ?? "").hasPrefix("superseded by") && old.statement["device_id"] as? String == device.rawValue,
                "\(old)")
        let current = try await status(try serial(keys + "/device.pem"))
        #expect(current.code == 200 && current.status == "good" && current.signed && current.statement["revoked_at"] == nil, "\(current)")
        let never = try await status(String(repeating: "ab", count: 16))
        #expect(never.code == 404 && never.status == "unknown" && never.signed, "\(never)")
        let malformed = try await PortalIdentityTests.http("GET", portal + "/device/status/not-hex!")
        #expect(malformed.status == 400 && malformed.body.contains("bad_request"), "\(malformed.status) \(malformed.body)")

        // Without --posture the agent measures this machine (LinuxPostureCollector); the server evaluates the report.
        let measured = try await Harness.runAsync(["agent", "report", "--key-dir", keys])
        #expect([0, 3].contains(measured.status) && (measured.out.hasPrefix("compliant") || measured.out.hasPrefix("non-compliant")),
                "a collected report is verified and evaluated: \(measured.status) \(measured.out) \(measured.err)")

        // The unauthenticated nonce endpoint is bounded: at most 5 unused nonces per device, 60 requests a minute per address.
        func nonce(_ id: String) async throws -> PortalIdentityTests.Exchange {
            try await PortalIdentityTests.http("POST", portal + "/device/posture/nonce", headers: ["Content-Type": "application/json"],
                                               rawBody: "{\"device_id\":\"\(id)\"}")
        }
        for _ in 0..<5 { #expect(try await nonce(device.rawValue).status == 200) }
        let sixth = try await nonce(device.rawValue)
        #expect(sixth.status == 429 && sixth.body.contains("unused nonces") && Int(sixth.header("retry-after").first ?? "") ?? 0 > 0, "\(sixth.status) \(sixth.body)")
        var spray = 0, limited: PortalIdentityTests.Exchange?
        while spray < 70 {
            spray += 1
            let r = try await nonce("d-\(String(format: "%016x", spray))")
            if r.status == 429 { limited = r; break }
            #expect(r.status == 404, "an unknown device: \(r.status)")
        }
        #expect(limited?.body.contains("from this address") == true && spray <= 61, "a source is limited within 60 requests a minute (\(spray))")
        #expect(Int(limited?.header("retry-after").first ?? "") ?? 0 > 0)
    }
}
