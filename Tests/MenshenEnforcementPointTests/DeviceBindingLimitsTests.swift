import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import MenshenEnforcementPoint
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Synchronization
import Testing
import X509

/// ``DeviceBinding`` under a client that presents a fresh certificate on every connection, and across a rules reload.
@Suite("Device binding: memory and refusal events under a flood")
struct DeviceBindingLimitsTests {
    struct Fixture {
        let dir: URL
        let store: SQLiteStore
        let ca: DeviceCA
        let stranger: DeviceCA
        let strong: IssuedDeviceCertificate
        let now: Date

        init() async throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("binding-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            store = try SQLiteStore(path: dir.appendingPathComponent("m.sqlite").path)
            now = Date()
            let kek = Array(SystemRandomSource().bytes(32))
            ca = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA", organization: "Bank"), now: now.addingTimeInterval(-86_400),
                                     keyEncryptionKey: kek).ca
            stranger = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA", organization: "Bank"), now: now.addingTimeInterval(-86_400),
                                           keyEncryptionKey: kek).ca
            try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: now))
            try await store.createDevice(DeviceRecord(id: "laptop-1", ownerID: "amy", displayName: "laptop-1", deviceClass: .managed, platform: "linux",
                                                      hardwareBound: true, compliant: true, complianceReasons: [],
                                                      lastPostureAt: now.addingTimeInterval(-60), enrolledAt: now))
            strong = try Self.issue(ca, device: "laptop-1", now: now)
            try await store.addDeviceCertificate(DeviceCertificateRecord(
                serial: strong.serialNumber, deviceID: strong.deviceID, fingerprint: Self.fingerprint(strong.der),
                publicKeyFingerprint: "test", notBefore: strong.notValidBefore, notAfter: strong.notValidAfter))
        }

        static func issue(_ ca: DeviceCA, device: String, now: Date) throws -> IssuedDeviceCertificate {
            let key = P256.Signing.PrivateKey()
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(device) },
                                                    privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                                                    signatureAlgorithm: .ecdsaWithSHA256)
            return try ca.issue(csr: Array(try csr.serializeAsPEM().pemString.utf8), for: DeviceID(device), now: now, validity: 3600)
        }

        static func fingerprint(_ der: some Sequence<UInt8>) -> String { SHA256.hash(data: Array(der)).map { String(format: "%02x", $0) }.joined() }

        static func request(_ cert: IssuedDeviceCertificate, id: String = "r") -> GateRequest {
            GateRequest(method: "GET", path: "/", rawTarget: "/", query: nil, host: "app", scheme: "https", clientAddress: "198.51.100.7",
                        headers: [], requestID: id, connectionAttributes: [DeviceBinding.fingerprintAttribute: fingerprint(cert.der),
                                               DeviceBinding.certificateAttribute: Data(cert.der).base64EncodedString()])
        }

        func binding(capacities: (Int, Int) = (10, 10), budget: DeviceBinding.ReportBudget = .init(),
                     afterCheck: (@Sendable () async -> Void)? = nil) throws -> DeviceBinding {
            DeviceBinding(store: store, caCertificate: ca.certificate,
                          rules: DeviceRulesState(DeviceRules(compliance: try DeviceComplianceDefaults.policy(), advisories: nil)),
                          events: DeviceEvents(store: store, clock: SystemClock(), random: SystemRandomSource()),
                          capacities: capacities, budget: budget, afterCheck: afterCheck)
        }

        func refusalEvents() async throws -> [[String: Any]] {
            try await store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 3002 }.compactMap {
                (try JSONSerialization.jsonObject(with: Data($0.event.payloadJSON.utf8)) as? [String: Any])?["unmapped"] as? [String: Any]
            }.compactMap { $0["device_certificate"] as? [String: Any] }
        }

        func close() async { try? await store.close(); try? FileManager.default.removeItem(at: dir) }
    }

    @Test("fresh certificates on every connection fill only the memory of refusals, and their events are rate-limited with a count of the unreported")
    func flood() async throws {
        let f = try await Fixture()
        defer { Task { await f.close() } }
        let binding = try f.binding(capacities: (10, 10), budget: .init(burst: 5, perSecond: 1))
        guard case .device = try await binding.resolve(Fixture.request(f.strong), now: f.now) else { Issue.record("the device was refused"); return }
        #expect(binding.remembered(Fixture.request(f.strong), now: f.now) != nil)

        // 25 certificates of another CA, each new: 2.5 times the memory's size.
        var foreign: [IssuedDeviceCertificate] = []
        for i in 0..<25 { foreign.append(try Fixture.issue(f.stranger, device: "laptop-\(100 + i)", now: f.now)) }
        for (i, cert) in foreign.enumerated() {
            guard case .refused(let code) = try await binding.resolve(Fixture.request(cert, id: "flood-\(i)"), now: f.now) else {
                Issue.record("a foreign certificate was accepted"); return
            }
            #expect(code == "other_ca")
        }
        // The real device's result is still remembered (a shared memory was emptied when full).
        #expect(binding.remembered(Fixture.request(f.strong), now: f.now) != nil, "the flood evicted the real device")

        // Five events at once (the burst), none for the other 20; the same certificate again reports nothing more.
        var events = try await f.refusalEvents()
        #expect(events.count == 5, "\(events.count) refusal events")
        _ = try await binding.resolve(Fixture.request(foreign[0], id: "again"), now: f.now.addingTimeInterval(400))
        events = try await f.refusalEvents()
        // 400 s later the budget is full again and foreign[0]'s five minutes are over: it is reported, with the count.
        #expect(events.count == 6)
        #expect(events.last?["unreported_before"] as? Int == 20, "\(events.last ?? [:])")
        #expect((events.first?["unreported_before"]) == nil)
    }

    @Test("refusals whose event could not be written are counted in the next event's unreported_before")
    func failedEventCounted() async throws {
        let f = try await Fixture()
        defer { Task { await f.close() } }
        let binding = try f.binding(capacities: (10, 10), budget: .init(burst: 5, perSecond: 1))
        var foreign: [IssuedDeviceCertificate] = []
        for i in 0..<4 { foreign.append(try Fixture.issue(f.stranger, device: "laptop-\(200 + i)", now: f.now)) }
        // The event log refuses appends for a while (a real SQLite trigger, as a full disk or a lock would).
        try f.store.unsafeExecute("CREATE TABLE fail_appends(x)")
        try f.store.unsafeExecute("CREATE TRIGGER fail_event_appends BEFORE INSERT ON events WHEN (SELECT count(*) FROM fail_appends) > 0 BEGIN SELECT RAISE(ABORT, 'injected'); END")
        try f.store.unsafeExecute("INSERT INTO fail_appends VALUES (1)")
        for i in 0..<2 {
            await #expect(throws: (any Error).self) { try await binding.resolve(Fixture.request(foreign[i], id: "lost-\(i)"), now: f.now) }
        }
        #expect(try await f.refusalEvents().isEmpty)
        try f.store.unsafeExecute("DELETE FROM fail_appends")
        guard case .refused = try await binding.resolve(Fixture.request(foreign[2], id: "written"), now: f.now) else { Issue.record("accepted"); return }
        let events = try await f.refusalEvents()
        #expect(events.count == 1)
        #expect(events.last?["unreported_before"] as? Int == 2, "the two refusals whose events were lost: \(events.last ?? [:])")
    }

    @Test("a remembered device stands through access changes by another process (its owner's groups, another user, a session revoked); a device change or a certificate revocation voids it")
    func rememberedThroughAccessChanges() async throws {
        let f = try await Fixture()
        defer { Task { await f.close() } }
        let other = try SQLiteStore(path: f.dir.appendingPathComponent("m.sqlite").path)   // the command line, another node
        let binding = try f.binding()
        let request = Fixture.request(f.strong)
        guard case .device = try await binding.resolve(request, now: f.now) else { Issue.record("refused"); return }
        #expect(binding.remembered(request, now: f.now) != nil)

        try await other.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await other.addMember("amy", to: "staff")
        try await other.createUser(UserRecord(id: "bob", displayName: "Bob", createdAt: f.now))
        try await other.saveRiskScore(RiskScoreRecord(userID: "bob", contributions: "[]", updatedAt: f.now))
        let session = SecretHash.sha256Hex("amy-session")
        try await other.createSession(SessionRecord(idHash: session, userID: "amy", createdAt: f.now, idleExpiresAt: f.now.addingTimeInterval(60),
                                                    absoluteExpiresAt: f.now.addingTimeInterval(600), levelOfAssurance: 1, amr: ["pwd"]))
        _ = try await other.revokeSession(idHash: session, at: f.now, reason: "test")
        #expect(binding.remembered(request, now: f.now) != nil, "an access change voided the remembered device")

        var laptop = try #require(try await other.device("laptop-1"))
        laptop.lastPostureAt = f.now
        #expect(try await other.updateDevice(laptop, expectedVersion: laptop.version))
        #expect(binding.remembered(request, now: f.now) == nil, "a posture report left the remembered device")
        guard case .device = try await binding.resolve(request, now: f.now) else { Issue.record("refused"); return }
        #expect(try await other.revokeDeviceCertificate(serial: f.strong.serialNumber, at: f.now, reason: "superseded"))
        #expect(binding.remembered(request, now: f.now) == nil, "a certificate revocation left the remembered device")
        guard case .refused = try await binding.resolve(request, now: f.now) else { Issue.record("a revoked certificate was accepted"); return }
        try await other.close()
    }

    @Test("a result checked while the device rules were replaced is not remembered")
    func reloadDuringCheck() async throws {
        let f = try await Fixture()
        defer { Task { await f.close() } }
        let reload = Mutex<(@Sendable () -> Void)?>(nil)
        let binding = try f.binding(afterCheck: { reload.withLock { $0 }?() })
        reload.withLock { $0 = { [weak binding] in binding?.removeAll() } }
        guard case .device = try await binding.resolve(Fixture.request(f.strong), now: f.now) else { Issue.record("refused"); return }
        #expect(binding.remembered(Fixture.request(f.strong), now: f.now) == nil, "a result of the replaced rules was kept")
        // Without a reload in between it is remembered.
        reload.withLock { $0 = nil }
        _ = try await binding.resolve(Fixture.request(f.strong), now: f.now)
        #expect(binding.remembered(Fixture.request(f.strong), now: f.now) != nil)
    }
}
