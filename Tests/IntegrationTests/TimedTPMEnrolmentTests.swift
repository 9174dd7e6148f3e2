import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing
import X509

/// Acceptance item 2 of the device pillar end to end: the real `menshen serve`
/// trusting swtpm-localca as TPM manufacturer (`device.tpm_ca_file`), and
/// `menshen agent enrol --tpm` against a real software TPM. The key is made
/// in the TPM and cannot leave it; the device is recorded hardware-bound only
/// after the TPM activated the server's credential; posture reports are
/// signed in the TPM and accepted; forged evidence is refused with events.
/// (Not shown here: a TLS handshake at the gateway with the key in the TPM —
/// OpenSSL's tpm2 provider needs more object slots than swtpm's three.)
@Suite("TPM-bound enrolment end to end (swtpm, menshen serve, menshen agent enrol --tpm)")
struct TimedTPMEnrolmentTests {
    static let posture = """
        {"os": {"name": "Debian", "version": "12.5"}, "kernel": "6.1.0-18-amd64", "pending_security_updates": 0,
         "disk_encryption": true, "firewall": true, "screen_lock": true,
         "edr": {"product": "ClamAV", "running": true, "signature_age_seconds": 3600}, "packages": []}
        """

    @Test("enrol --tpm → hardware-bound; report signed in the TPM accepted; key not exportable; forged evidence refused")
    func tpmEnrolment() async throws {
        guard let tpm = try await Harness.offPool({ try SoftwareTPM.start() }) else { return }
        defer { tpm.stop() }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, g, admin) = (try Harness.freePort(), try Harness.freePort(), try Harness.freePort())
        let portal = "http://127.0.0.1:\(p)"
        let path: @Sendable (String) -> String = { name in dir.appendingPathComponent(name).path }
        let ssl = try await Harness.offPool {
            try SoftwareTPM.shell("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                                       "-keyout", path("gw.key"), "-out", path("gw.pem"), "-subj", "/CN=localhost"])
        }
        #expect(ssl.status == 0, "\(ssl.err)")
        // The TPM manufacturer's CAs: swtpm-localca's root and the intermediate that signs EK certificates.
        try (try String(contentsOfFile: tpm.rootCA, encoding: .utf8) + (try String(contentsOfFile: tpm.issuerCA, encoding: .utf8)))
            .write(toFile: path("tpm-ca.pem"), atomically: true, encoding: .utf8)
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
            @id("console-needs-a-hardware-bound-compliant-device")
            permit (principal in Group::"staff", action, resource == Application::"console")
            when { context.device.known && context.device.hardware_bound && context.device.compliant };
            """.write(toFile: path("device.cedar"), atomically: true, encoding: .utf8)
        try "managed:\n  max_posture_age_seconds: 3600\n  max_vulnerability_severity: high\n  require_vulnerability_scan: false\n"
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
              tpm_ca_file: \(path("tpm-ca.pem"))
            """.write(toFile: path("menshen.yaml"), atomically: true, encoding: .utf8)
        let config = path("menshen.yaml")
        let ca = try await Harness.runAsync(["device", "ca", "--config", config])
        #expect(ca.status == 0, "\(ca.err)")
        try ca.out.write(toFile: path("device-ca.pem"), atomically: true, encoding: .utf8)
        let serve = ChildProcess()
        try await Harness.offPool { try Harness.startServe(serve, config: config, adminPort: admin, name: "menshen serve (tpm)") }
        defer { serve.signal(SIGTERM); serve.waitUntilExit() }
        try await Self.scenario(tpm: tpm, dir: dir, config: config, portal: portal, gateway: g)
    }

    /// A `TPMT_PUBLIC` an attacker would write for a software key: the right attributes, the key's point.
    static func forgedPublic(_ key: P256.Signing.PublicKey, attributes: UInt32 = 0x0004_0072) -> [UInt8] {
        let x963 = Array(key.x963Representation)
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
        let a = [UInt8(attributes >> 24), UInt8((attributes >> 16) & 0xFF), UInt8((attributes >> 8) & 0xFF), UInt8(attributes & 0xFF)]
        return u16(0x0023) + u16(0x000B) + a + u16(0) + u16(0x0010) + u16(0x0018) + u16(0x000B) + u16(0x0003) + u16(0x0010)
            + u16(32) + Array(x963[1...32]) + u16(32) + Array(x963[33...64])
    }

    static func csrPEM(_ key: P256.Signing.PrivateKey) throws -> String {
        try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("menshen-agent") },
                                      privateKey: Certificate.PrivateKey(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
            .serializeAsPEM().pemString
    }

    static func scenario(tpm: SoftwareTPM, dir: URL, config: String, portal: String, gateway g: Int) async throws {
        let path: @Sendable (String) -> String = { name in dir.appendingPathComponent(name).path }
        func cli(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(args + ["--config", config])
        }
        func post(_ route: String, _ object: [String: Any]) async throws -> (Int, String) {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            let r = try await PortalIdentityTests.http("POST", portal + route, headers: ["Content-Type": "application/json"], rawBody: body)
            return (r.status, r.body)
        }
        #expect(try await cli(["group", "add", "staff"]).status == 0)
        #expect(try await cli(["user", "add", "amy", "--group", "staff"]).status == 0)

        // A token for a hardware-bound device: a software key is refused, and the token stays usable.
        let tokenRun = try await cli(["device", "enrol-token", "--user", "amy", "--class", "managed", "--hardware-bound"])
        let token = tokenRun.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(tokenRun.status == 0 && token.count >= 32, "\(tokenRun.err)")
        let software = try await Harness.runAsync(["agent", "enrol", "--server", portal, "--token", token, "--key-dir", path("soft")])
        #expect(software.status == 1 && software.err.contains("hardware_required"), "\(software.out) \(software.err)")

        // Forged evidence, each with the same token: refused before anything is stored.
        let ekDER: [UInt8] = try await Harness.offPool {
            try tpm.must("tpm2_nvread", ["-Q", "0x01c00016", "-o", path("ek.der")])
            return Array(try Data(contentsOf: URL(fileURLWithPath: path("ek.der"))))
        }
        let ek = Data(try Certificate(derEncoded: ekDER).serializedDER()).base64EncodedString()
        let a = P256.Signing.PrivateKey(), b = P256.Signing.PrivateKey()
        func enrol(csr: P256.Signing.PrivateKey, keyPublic: [UInt8], ek: String = ek) async throws -> (Int, String) {
            try await post("/device/enrol", ["token": token, "csr": try Self.csrPEM(csr), "platform": "linux",
                                             "tpm": ["ek_certificate": ek, "key_public": Data(keyPublic).base64EncodedString()]])
        }
        let movable = try await enrol(csr: a, keyPublic: Self.forgedPublic(a.publicKey, attributes: 0x0004_0070))
        #expect(movable.0 == 403 && movable.1.contains("key_attributes") && movable.1.contains("fixedTPM"), "\(movable)")
        let mismatch = try await enrol(csr: b, keyPublic: Self.forgedPublic(a.publicKey))
        #expect(mismatch.0 == 403 && mismatch.1.contains("key_mismatch"), "\(mismatch)")
        let otherCA = try await Harness.offPool {
            try SoftwareTPM.shell("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-days", "1",
                                                       "-keyout", path("fake-ek.key"), "-out", path("fake-ek.pem"), "-subj", "/CN=fake EK", "-outform", "PEM"])
        }
        #expect(otherCA.status == 0)
        let fakeEK = Data(try Certificate(pemEncoded: try String(contentsOfFile: path("fake-ek.pem"), encoding: .utf8)).serializedDER()).base64EncodedString()
        let untrusted = try await enrol(csr: a, keyPublic: Self.forgedPublic(a.publicKey), ek: fakeEK)
        #expect(untrusted.0 == 403 && untrusted.1.contains("untrusted_ek_certificate"), "\(untrusted)")
        // A software key passed off as TPM-held with a real EK certificate: the challenge comes, but without the key
        // in that TPM the secret cannot be recovered; a guess is refused and ends the challenge.
        let forged = try await enrol(csr: a, keyPublic: Self.forgedPublic(a.publicKey))
        #expect(forged.0 == 202, "\(forged)")
        let challenge = try #require((try JSONSerialization.jsonObject(with: Data(forged.1.utf8)) as? [String: Any])?["challenge"] as? String)
        let guess = try await post("/device/enrol/activate", ["challenge": challenge, "secret": Data(SystemRandomSource().bytes(32)).base64EncodedString()])
        #expect(guess.0 == 403 && guess.1.contains("activation_failed"), "\(guess)")
        let again = try await post("/device/enrol/activate", ["challenge": challenge, "secret": Data(SystemRandomSource().bytes(32)).base64EncodedString()])
        #expect(again.0 == 403 && again.1.contains("invalid_challenge"), "a challenge is answered once: \(again)")
        let malformed = try await post("/device/enrol", ["token": token, "csr": try Self.csrPEM(a), "tpm": ["ek_certificate": "%%", "key_public": "AA=="]])
        #expect(malformed.0 == 400, "\(malformed)")
        do {
            let store = try SQLiteStore(path: path("menshen.sqlite"))
            let count = try await store.listDevices().count
            try await store.close()
            #expect(count == 0, "no refused enrolment stored a device")
        }

        // The real thing, with the same token (every refusal above left it usable).
        let keys = path("agent")
        // With the stand-alone agent, as the issue writes it: menshen-agent enrol URL TOKEN.
        let agent = Harness.packageRoot.appendingPathComponent(".build/debug/menshen-agent").path
        let enrol = try await Harness.offPool {
            try SoftwareTPM.shell(agent, ["enrol", portal, token, "--tpm", "--tcti", tpm.tcti, "--key-dir", keys])
        }
        #expect(enrol.status == 0 && enrol.out.contains("hardware-bound"), "\(enrol.out) \(enrol.err)")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keys + "/device.json"))) as? [String: Any]
        let device = try #require(state?["device_id"] as? String)
        let show = try await cli(["device", "show", device])
        #expect(show.status == 0 && show.out.contains("hardware-bound (TPM)"), "\(show.out) \(show.err)")

        // No private key usable outside the TPM in the key directory.
        let files = try FileManager.default.contentsOfDirectory(atPath: keys).sorted()
        #expect(files == ["ca.pem", "device.json", "device.pem", "device.tpm.priv", "device.tpm.pub"], "\(files)")
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: keys + "/" + file))
            #expect(!String(decoding: bytes, as: UTF8.self).contains("PRIVATE KEY"), "\(file) holds no PEM private key")
        }
        #expect((try? P256.Signing.PrivateKey(derRepresentation: try Data(contentsOf: URL(fileURLWithPath: keys + "/device.tpm.priv")))) == nil)

        // The TPM says the key cannot leave it, and refuses to duplicate it.
        let (readPublic, duplicate) = try await Harness.offPool {
            try tpm.must("tpm2_flushcontext", ["-t"])
            try tpm.must("tpm2_createprimary", ["-Q", "-C", "o", "-g", "sha256", "-G", "ecc256", "-c", path("primary.ctx")])
            try tpm.must("tpm2_load", ["-Q", "-C", path("primary.ctx"), "-u", keys + "/device.tpm.pub", "-r", keys + "/device.tpm.priv", "-c", path("key.ctx")])
            try tpm.must("tpm2_flushcontext", ["-t"])
            let readPublic = try tpm.tool("tpm2_readpublic", ["-c", path("key.ctx")])
            try tpm.must("tpm2_flushcontext", ["-t"])
            let duplicate = try tpm.tool("tpm2_duplicate", ["-C", path("primary.ctx"), "-c", path("key.ctx"), "-G", "null", "-r", path("dup.priv"), "-s", path("dup.seed")])
            try tpm.must("tpm2_flushcontext", ["-t"])
            return (readPublic, duplicate)
        }
        #expect(readPublic.out.contains("fixedtpm") && readPublic.out.contains("fixedparent") && !readPublic.out.contains("decrypt"), "\(readPublic.out)")
        #expect(duplicate.status != 0 && !FileManager.default.fileExists(atPath: path("dup.priv")), "tpm2_duplicate must fail: \(duplicate.err)")
        print("tpm2_duplicate refused: \(duplicate.err.split(whereSeparator: \.isNewline).prefix(3).joined(separator: " | "))")

        // A posture report signed in the TPM.
        try Self.posture.write(toFile: path("posture.json"), atomically: true, encoding: .utf8)
        let report = try await Harness.runAsync(["agent", "report", "--key-dir", keys, "--posture", path("posture.json")])
        #expect(report.status == 0 && report.out.contains("compliant"), "\(report.out) \(report.err)")
        // And with menshen-agent: a second report, also signed in the TPM.
        let secondReport = try await Harness.offPool { try SoftwareTPM.shell(agent, ["report", "--key-dir", keys, "--posture", path("posture.json")]) }
        #expect(secondReport.status == 0 && secondReport.out.contains("compliant"), "\(secondReport.out) \(secondReport.err)")

        // Events: each refusal with its code; the enrolment with the EK certificate's fingerprint.
        let store = try SQLiteStore(path: path("menshen.sqlite"))
        let events = try await store.events(after: 0, limit: 10_000).map(\.event).filter { $0.classUID == 5001 }.map(\.payloadJSON)
        let record = try await store.device(DeviceID(device))
        try await store.close()
        for code in ["hardware_required", "key_attributes", "key_mismatch", "untrusted_ek_certificate", "activation_failed"] {
            #expect(events.contains { $0.contains("\"refusal\":\"\(code)\"") }, "an event for \(code)")
        }
        let fingerprint = SHA256.hash(data: try Certificate(derEncoded: ekDER).serializedDER()).map { String(format: "%02x", $0) }.joined()
        #expect(events.contains { $0.contains("\"tpm_ek_certificate_sha256\":\"\(fingerprint)\"") }, "the enrolment names the EK certificate")
        #expect(record?.hardwareBound == true && record?.compliant == true)
    }
}

extension Certificate {
    func serializedDER() throws -> [UInt8] { try serializeAsPEM().derBytes }
}
