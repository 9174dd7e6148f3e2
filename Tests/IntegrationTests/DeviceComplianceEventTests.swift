import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Testing
import X509

/// Compliance changes and the inventory's life cycle as events, and the
/// sessions a device turning non-compliant ends (principles 2.2, 2.4): the
/// posture service (`DeviceAuthority`) on a real SQLite file, then the real
/// `menshen device quarantine|release|retire` on the same file.
@Suite("Device compliance findings, life-cycle events and session revocation")
struct DeviceComplianceEventTests {
    static func posture(device: String, nonce: String, firewall: Bool) -> String {
        """
        {"format": 1, "device_id": "\(device)", "nonce": "\(nonce)", "collected_at": "\(ISO8601DateFormatter().string(from: Date()))",
         "os": {"name": "Debian", "version": "12.7"}, "kernel": "6.1.0-25-amd64",
         "pending_security_updates": 0, "disk_encryption": true, "firewall": \(firewall), "screen_lock": true,
         "edr": {"product": "ClamAV", "running": true, "signature_age_seconds": 3600}, "packages": []}
        """
    }

    static func session(_ user: UserID, _ tag: String) -> SessionRecord {
        let now = Date()
        return SessionRecord(idHash: SecretHash.sha256Hex("session-\(tag)"), userID: user, createdAt: now, idleExpiresAt: now.addingTimeInterval(3600),
                             absoluteExpiresAt: now.addingTimeInterval(36_000), levelOfAssurance: 2, amr: ["pwd"])
    }

    static func payloads(_ store: SQLiteStore, class uid: Int) async throws -> [[String: Any]] {
        try await store.events(after: 0, limit: 10_000).map(\.event).filter { $0.classUID == uid }
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.payloadJSON.utf8)) as? [String: Any] }
    }

    @Test("enrolment is a 3004 Enroll; turning non-compliant is a 2003 finding with the failed controls and ends the owner's sessions at once; compliant again closes it; quarantine, release and retire are 3004 events with the operator as actor, and quarantine ends sessions")
    func complianceEventsAndSessions() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: data.appendingPathComponent("menshen.sqlite").path)
        let clock = SystemClock(), random = SystemRandomSource()
        let (ca, _) = try DeviceCA.create(name: DeviceCAName(commonName: "Test Device CA"), now: clock.now(),
                                          keyEncryptionKey: Array(repeating: 9, count: 32), random: random)
        let policy = try CompliancePolicy(classes: [.managed: DeviceClassPolicy(maxPostureAgeSeconds: 3600, maxVulnerabilitySeverity: .critical,
                                                                                requireVulnerabilityScan: false)])
        let authority = DeviceAuthority(store: store, ca: ca, compliance: policy, clock: clock, random: random)
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: clock.now()))
        try await store.createUser(UserRecord(id: "bob", displayName: "Bob", createdAt: clock.now()))
        let (token, _) = try await authority.issueEnrolmentToken(user: "amy", deviceClass: .managed, name: "Amy 的筆電", hardwareBound: false)
        let key = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("test") },
                                                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                                                signatureAlgorithm: .ecdsaWithSHA256)
        let enrolled = try await authority.enrol(token: token, csr: Array(try csr.serializeAsPEM().pemString.utf8), platform: "linux",
                                                 source: "203.0.113.9")
        let device = enrolled.device.id
        func report(firewall: Bool) async throws -> DeviceAuthority.ReportOutcome {
            let nonce = try await authority.nonce(for: device)
            let envelope = try PostureEnvelope.sign(reportBytes: Array(Self.posture(device: device.rawValue, nonce: nonce, firewall: firewall).utf8), with: key)
            return try await authority.report(envelope: envelope, certificateDER: enrolled.certificate.der, source: "203.0.113.9")
        }

        let enrolments = try await Self.payloads(store, class: 3004)
        #expect(enrolments.count == 1 && enrolments.first?["activity_id"] as? Int == 6)
        #expect(((enrolments.first?["entity"] as? [String: Any])?["uid"] as? String) == device.rawValue)
        #expect((((enrolments.first?["actor"] as? [String: Any])?["user"] as? [String: Any])?["name"] as? String) == "amy")

        // Compliant first: no finding (nothing failed). Amy signs in twice; Bob once.
        #expect(try await report(firewall: true) == .evaluated(compliant: true, reasons: []))
        #expect(try await Self.payloads(store, class: 2003).isEmpty)
        for (user, tag) in [("amy", "a1"), ("amy", "a2"), ("bob", "b1")] { try await store.createSession(Self.session(UserID(user), tag)) }

        // The firewall goes off: a finding with the failed control, and Amy's sessions end at once (Bob's stay).
        #expect(try await report(firewall: false) == .evaluated(compliant: false, reasons: ["firewall_off"]))
        let amySessions = try await store.sessions(of: "amy")
        #expect(amySessions.count == 2 && amySessions.allSatisfy { $0.revokedAt != nil && ($0.revokedReason ?? "").contains("firewall_off") },
                "a device turning non-compliant ends its owner's sessions")
        #expect(try await store.sessions(of: "bob").allSatisfy { $0.revokedAt == nil })
        var findings = try await Self.payloads(store, class: 2003)
        #expect(findings.count == 1)
        let created = try #require(findings.first)
        #expect(created["activity_id"] as? Int == 1 && created["status_id"] as? Int == 1)
        let compliance = try #require(created["compliance"] as? [String: Any])
        #expect(compliance["status_id"] as? Int == 3 && compliance["requirements"] as? [String] == ["firewall_off"])
        #expect(((compliance["checks"] as? [[String: Any]])?.first?["name"] as? String) == "firewall_off")
        #expect(((created["finding_info"] as? [String: Any])?["uid"] as? String) == "device-compliance:\(device.rawValue)")
        #expect(((created["unmapped"] as? [String: Any])?["device_compliance"] as? [String: Any])?["sessions_revoked"] as? Int == 2)

        // Still non-compliant: no new finding, nothing more to revoke. Compliant again: the finding closes.
        try await store.createSession(Self.session("amy", "a3"))
        #expect(try await report(firewall: false) == .evaluated(compliant: false, reasons: ["firewall_off"]))
        #expect(try await Self.payloads(store, class: 2003).count == 1)
        #expect(try await store.session(idHash: SecretHash.sha256Hex("session-a3"))?.revokedAt == nil, "only a change ends sessions")
        #expect(try await report(firewall: true) == .evaluated(compliant: true, reasons: []))
        findings = try await Self.payloads(store, class: 2003)
        #expect(findings.count == 2 && findings.last?["activity_id"] as? Int == 3 && findings.last?["status_id"] as? Int == 4)

        // The operator's commands (the real binary on the same file).
        func run(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(["device"] + args + ["--data", data.path])
        }
        let quarantine = try await run(["quarantine", device.rawValue, "--reason", "EDR alert 4711"])
        #expect(quarantine.status == 0 && quarantine.out.contains("ended 1 session of amy"), "\(quarantine.out) \(quarantine.err)")
        #expect(try await store.session(idHash: SecretHash.sha256Hex("session-a3"))?.revokedAt != nil, "quarantine ends the owner's sessions")
        #expect(try await run(["release", device.rawValue]).status == 0)
        #expect(try await run(["retire", device.rawValue, "--reason", "stolen"]).status == 0)
        let lifecycle = try await Self.payloads(store, class: 3004)
        #expect(lifecycle.compactMap { $0["activity_id"] as? Int } == [6, 12, 13, 7])
        let suspend = try #require(lifecycle.first { $0["activity_id"] as? Int == 12 })
        #expect(suspend["comment"] as? String == "EDR alert 4711")
        let actor = try #require((suspend["actor"] as? [String: Any])?["user"] as? [String: Any])
        #expect(actor["name"] as? String == ProcessInfo.processInfo.userName && actor["type_id"] as? Int == 2, "the operator is the actor")
        findings = try await Self.payloads(store, class: 2003)
        #expect(findings.count == 3 && findings.last?["activity_id"] as? Int == 1, "a compliant device quarantined is a new finding")
        #expect(((findings.last?["compliance"] as? [String: Any])?["requirements"] as? [String]) == ["quarantined: EDR alert 4711"])
        try await store.close()
    }
}
