import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import NIOSSL
import Testing
import X509

/// Device-aware decisions through the real proxy: curl presents real device
/// certificates (issued by MenshenDevice's CA from CSRs) over TLS, the gate
/// verifies them against the CA and the SQLite inventory, and Cedar policies
/// decide on the device's attributes. Refused certificates (another CA,
/// expired, revoked, unknown) count as no device and are each reported by an
/// OCSF Authentication event.
@Suite("Device certificates at the gateway")
struct DeviceGatewayTests {
    static let policy = """
        permit (principal in Group::"staff", action, resource == Application::"ledger");

        @id("console-needs-a-strong-device")
        permit (principal in Group::"staff", action, resource == Application::"console")
        when { context.device.known && context.device.managed && context.device.compliant && context.device.hardware_bound
               && context.device.owned_by_principal };
        """

    /// One device with its key and certificate as files curl can present.
    struct Credential {
        let certFile: String
        let keyFile: String
        let issued: IssuedDeviceCertificate
    }

    /// A P-256 key and CSR made with swift-crypto and swift-certificates, the certificate from `ca`.
    static func credential(_ ca: DeviceCA, device: String, now: Date, validity: TimeInterval = DeviceCA.defaultCertificateValidity,
                           in dir: URL) throws -> Credential {
        let key = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(device) },
                                                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                                                signatureAlgorithm: .ecdsaWithSHA256)
        let issued = try ca.issue(csr: Array(try csr.serializeAsPEM().pemString.utf8), for: DeviceID(device), now: now, validity: validity)
        let name = "\(device)-\(UUID().uuidString.prefix(8))"
        let certFile = dir.appendingPathComponent("\(name).pem").path, keyFile = dir.appendingPathComponent("\(name).key").path
        try issued.pem.write(toFile: certFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: keyFile, atomically: true, encoding: .utf8)
        return Credential(certFile: certFile, keyFile: keyFile, issued: issued)
    }

    static func record(_ c: Credential) -> DeviceCertificateRecord {
        DeviceCertificateRecord(serial: c.issued.serialNumber, deviceID: c.issued.deviceID,
                                fingerprint: SHA256.hash(data: c.issued.der).map { String(format: "%02x", $0) }.joined(),
                                publicKeyFingerprint: "test", notBefore: c.issued.notValidBefore, notAfter: c.issued.notValidAfter)
    }

    @Test("a privileged route needs a managed, compliant, hardware-bound device; stale, revoked, expired and foreign certificates lose it, with events")
    func deviceDecisions() async throws {
        try await withUpstream { try await Self.scenario($0) }
    }

    static func scenario(_ upstream: TestUpstream) async throws {
        let tls = try await TLSAndHTTP2Tests.Certificates.make()
        defer { try? FileManager.default.removeItem(at: tls.dir) }
        let store = try SQLiteStore(path: tls.dir.appendingPathComponent("m.sqlite").path)
        let clock = SystemClock()
        let now = Date()
        let kek = Array(SystemRandomSource().bytes(32))
        let ca = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA", organization: "Bank"), now: now.addingTimeInterval(-3 * 86_400),
                                     keyEncryptionKey: kek).ca
        // Another CA with the very same name: only its key differs.
        let stranger = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA", organization: "Bank"), now: now.addingTimeInterval(-3 * 86_400),
                                           keyEncryptionKey: kek).ca

        let sessions = SessionManager(store: store, clock: clock, random: SystemRandomSource())
        try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: now))
        try await store.addMember("amy", to: "staff")
        try await store.createUser(UserRecord(id: "bob", displayName: "Bob", createdAt: now))
        try await store.addMember("bob", to: "staff")
        func device(_ id: String, _ cls: String, hardware: Bool, postureAge: TimeInterval = 60, compliant: Bool = true) async throws {
            try await store.createDevice(DeviceRecord(id: DeviceID(id), ownerID: "amy", displayName: id, deviceClass: try #require(.init(rawValue: cls)), platform: "linux",
                                                      hardwareBound: hardware, compliant: compliant, complianceReasons: compliant ? [] : ["firewall_off"],
                                                      lastPostureAt: now.addingTimeInterval(-postureAge), enrolledAt: now))
        }
        try await device("laptop-1", "managed", hardware: true)
        try await device("laptop-2", "byod", hardware: true)
        try await device("laptop-3", "managed", hardware: false)
        try await device("laptop-4", "managed", hardware: true)
        let strong = try credential(ca, device: "laptop-1", now: now, in: tls.dir)
        let byod = try credential(ca, device: "laptop-2", now: now, in: tls.dir)
        let soft = try credential(ca, device: "laptop-3", now: now, in: tls.dir)
        let expired = try credential(ca, device: "laptop-4", now: now.addingTimeInterval(-2 * 86_400), validity: 3600, in: tls.dir)
        let unknown = try credential(ca, device: "laptop-4", now: now, in: tls.dir)   // issued, but never recorded
        let foreign = try credential(stranger, device: "laptop-1", now: now, in: tls.dir)
        for c in [strong, byod, soft, expired] { try await store.addDeviceCertificate(record(c)) }

        func app(_ id: String) -> ApplicationRecord {
            ApplicationRecord(id: ApplicationID(id), displayName: id, host: "\(id).bank.example", pathPrefix: "/",
                              upstreams: ["http://127.0.0.1:\(upstream.port)"], classification: "restricted", scenario: nil, updatedAt: now)
        }
        let state = GatewayState(GatewaySnapshot(routes: RouteTable([app("ledger"), app("console")]),
                                                 decisionPoint: try PolicyDecisionPoint(documents: [(name: "device.cedar", text: policy)])))
        let devices = DeviceBinding(store: store, caCertificate: ca.certificate, compliance: try DeviceComplianceDefaults.policy(),
                                    events: DeviceEvents(store: store, clock: clock, random: SystemRandomSource()))
        // The log's flush loop does not run here (the test flushes when it reads the events): with `refuse` the gate
        // would refuse access once decisions had waited the grace (5 s) on a slow, loaded run.
        let log = DecisionLog(store: store, clock: clock, whenUnwritten: .admit)
        let signer = try await IdentityAssertionSigner(
            privateKeyPEM: IdentityAssertionSigner.loadOrCreateKey(path: tls.dir.appendingPathComponent("assertion.key").path),
            issuer: "https://gw.bank.example", clock: clock)
        let gate = PolicyGate(store: store, sessions: sessions, clock: clock, state: state, portalOrigin: "https://portal.bank.example",
                              timeZone: "Asia/Taipei", recorder: log, assertions: signer, devices: devices)
        var config = ProxyConfiguration()
        // The first request of a session reads the store off the event loop; under a loaded parallel test run that
        // can take longer than the 5 s default, which would turn a slow machine into a 503.
        config.gateTimeout = .seconds(60)
        let tlsConfiguration = try GatewayTLS.serverConfiguration(certificateFile: tls.serverCert, privateKeyFile: tls.serverKey,
                                                                  clientCAFile: tls.clientCA, http2: true)
        GatewayTLS.useDeviceCertificates(&config, configuration: tlsConfiguration)
        let server = EnforcementPointServer(configuration: config, gate: gate, group: upstream.group)
        try await server.start()
        do {
            try await decisions(server: server, store: store, sessions: sessions, log: log, creds: [strong, byod, soft, expired, unknown, foreign], now: now,
                                upstream: upstream)
        } catch {
            try? await server.shutdown()
            try? await store.close()
            throw error
        }
        try await server.shutdown()
        try await store.close()
    }

    static func decisions(server: EnforcementPointServer, store: SQLiteStore, sessions: SessionManager, log: DecisionLog,
                          creds: [Credential], now: Date, upstream: TestUpstream) async throws {
        let (strong, byod, soft, expired, unknown, foreign) = (creds[0], creds[1], creds[2], creds[3], creds[4], creds[5])
        let port = try #require(server.localPort)
        let token = try await sessions.issue(SessionGrant(userID: "amy", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil, phishingResistant: false)).token

        let bobToken = try await sessions.issue(SessionGrant(userID: "bob", levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil, phishingResistant: false)).token
        func call(_ app: String, _ credential: Credential?, session: String? = nil) async -> String {
            var args = ["-k", "--http1.1", "--max-time", "90", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: \(app).bank.example",
                        "-H", "Accept: application/json", "-H", "Cookie: __Host-menshen-session=\(session ?? token)"]
            if let credential { args += ["--cert", credential.certFile, "--key", credential.keyFile] }
            let r = await curl(args + ["https://127.0.0.1:\(port)/"])
            return r.exitCode == 0 ? r.stdout : "curl \(r.exitCode): \(r.stderr)"
        }
        func refusals() async throws -> [String: String] {
            await log.flush()
            var out: [String: String] = [:]
            for e in try await store.events(after: 0, limit: 10_000) where e.event.classUID == 3002 && e.event.payloadJSON.contains("device_certificate") {
                for code in ["other_ca", "expired", "revoked", "unknown_certificate"] where e.event.payloadJSON.contains("\"refusal\":\"\(code)\"") {
                    out[code] = e.event.payloadJSON
                }
            }
            return out
        }

        // Without a device: the ordinary application is open, the privileged one is not.
        #expect(await call("ledger", nil) == "200")
        #expect(await call("console", nil) == "403")
        // Managed, compliant and hardware-bound: allowed; the same certificate again is decided from memory.
        #expect(await call("console", strong) == "200")
        let immediateBefore = server.metrics.gateImmediate
        #expect(await call("console", strong) == "200")
        #expect(server.metrics.gateImmediate > immediateBefore, "the second request was decided on the event loop from remembered facts")
        // The identity assertion the upstream gets names the device (decided from memory or after reading the store), and
        // a request of the same session without the certificate gets one without a device, not the one signed before.
        func assertedDevice() throws -> String? {
            let token = try #require(upstream.seen.all.last?.header("X-Menshen-Assertion").first)
            var payload = String(token.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while payload.count % 4 != 0 { payload += "=" }
            let data = try #require(Data(base64Encoded: payload))
            let claims = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return claims["device"] as? String
        }
        #expect(try assertedDevice() == "laptop-1")
        #expect(await call("ledger", strong) == "200")
        #expect(try assertedDevice() == "laptop-1")
        #expect(await call("ledger", nil) == "200")
        #expect(try assertedDevice() == nil)
        #expect(await call("ledger", strong) == "200")
        #expect(try assertedDevice() == "laptop-1")
        // Amy's device with Bob's session cookie (a stolen cookie replayed from another enrolled device): not Bob's own device.
        #expect(await call("console", strong, session: bobToken) == "403")
        #expect(await call("console", strong, session: bobToken) == "403", "also when decided from memory")
        #expect(await call("ledger", strong, session: bobToken) == "200")
        #expect(await call("console", strong) == "200")
        // BYOD, or a software key: refused by the policy, not by the certificate.
        #expect(await call("console", byod) == "403")
        #expect(await call("console", soft) == "403")
        #expect(await call("ledger", byod) == "200")

        // Certificates that are not (or no longer) good: no device, and an event saying why.
        #expect(await call("console", foreign) == "403")
        #expect(await call("console", expired) == "403")
        #expect(await call("console", unknown) == "403")
        #expect(await call("ledger", foreign) == "200", "a refused certificate is no device, not a denial by itself")

        // The device stops reporting: its posture grows older than the class allows, so it is no longer compliant.
        var laptop = try #require(try await store.device("laptop-1"))
        laptop.lastPostureAt = now.addingTimeInterval(-Double(DeviceComplianceDefaults.maxPostureAgeSeconds) - 60)
        #expect(try await store.updateDevice(laptop, expectedVersion: laptop.version))
        #expect(await call("console", strong) == "403")
        laptop = try #require(try await store.device("laptop-1"))
        laptop.lastPostureAt = now
        #expect(try await store.updateDevice(laptop, expectedVersion: laptop.version))
        #expect(await call("console", strong) == "200")

        // Revoked: the very next request has no device.
        #expect(try await store.revokeDeviceCertificate(serial: strong.issued.serialNumber, at: Date(), reason: "key_compromise"))
        #expect(await call("console", strong) == "403")

        let events = try await refusals()
        #expect(Set(events.keys) == ["other_ca", "expired", "revoked", "unknown_certificate"], "\(events.keys.sorted())")
        #expect(events["revoked"]?.contains("\"uid\":\"device:laptop-1\"") == true)
        #expect(events["other_ca"]?.contains("\"status_id\":2") == true)
        // The decision audit carries the device attributes the decision was made on.
        let decisions = try await store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 6001 }.map(\.event)
        #expect(decisions.contains { $0.payloadJSON.contains("\"hardware_bound\":true") && $0.payloadJSON.contains("\"compliant\":true") })
        #expect(decisions.contains { $0.payloadJSON.contains("\"owned_by_principal\":true") && $0.payloadJSON.contains("\"uid\":\"amy\"") })
        #expect(decisions.contains { $0.payloadJSON.contains("\"owned_by_principal\":false") && $0.payloadJSON.contains("\"uid\":\"bob\"") })
        // Decisions on a known device name it (OCSF device.uid), whether decided from memory or after reading the store;
        // those made without a device name none.
        let named = decisions.filter { $0.payloadJSON.contains(#""device":{"type":"Unknown","type_id":0,"uid":"laptop-1"}"#) }
        #expect(named.count >= 4 && named.contains { $0.payloadJSON.contains("\"compliant\":true") }, "\(named.count)")
        #expect(decisions.contains { $0.payloadJSON.contains("\"known\":false") && !$0.payloadJSON.contains(#""device":{"type""#) })
    }
}
