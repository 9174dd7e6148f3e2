import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// The same cases on every backend (in-memory, SQLite, PostgreSQL). A backend
/// is done when it passes all of them.
@Suite("Store conformance")
struct StoreConformanceTests {
    static let t0 = Date(timeIntervalSince1970: Double(1_795_000_000_123) / 1000)
    static func at(_ seconds: Double) -> Date { StoreCoding.date(millis: StoreCoding.millis(t0.addingTimeInterval(seconds))) }

    func user(_ id: UserID, kind: UserKind = .internal) -> UserRecord {
        UserRecord(id: id, displayName: "User \(id) 使用者", email: "\(id)@bank.example", kind: kind, createdAt: Self.t0)
    }

    func withStore(_ backend: Backend, _ body: (any MenshenStore) async throws -> Void) async throws {
        let f = try await Fixture.make(backend)
        do { try await body(f.store) } catch {
            await f.cleanup()
            throw error
        }
        await f.cleanup()
    }

    @Test("the backend under test is reachable and at the newest schema", arguments: Backend.available)
    func reachable(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.ping()
            #expect(try await store.schemaVersion() == SQLiteMigrations.all.last?.version)
            print("storage conformance: \(backend.rawValue) backend is running")
        }
    }

    @Test("users are created, read, listed in id order, updated, and duplicates conflict", arguments: Backend.available)
    func users(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("zoe"))
            try await store.createUser(user("vendor.lee", kind: .vendor))
            #expect(try await store.user("zoe") == user("zoe"))
            #expect(try await store.user("nobody") == nil)
            #expect(try await store.listUsers().map(\.id) == ["vendor.lee", "zoe"])
            await #expect(throws: StoreError(.conflict, "")) { try await store.createUser(user("zoe")) }
            var z = user("zoe")
            z.disabled = true; z.displayName = "Zoë"; z.email = nil; z.updatedAt = Self.at(60)
            try await store.updateUser(z)
            #expect(try await store.user("zoe") == z)
            await #expect(throws: StoreError(.notFound, "")) { try await store.updateUser(user("ghost")) }
        }
    }

    @Test("groups, roles, memberships and assignments", arguments: Backend.available)
    func directory(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("alice"))
            try await store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
            try await store.createGroup(GroupRecord(id: "audit", displayName: "Audit"))
            try await store.createRole(RoleRecord(id: "db-admin", displayName: "DBA", riskTier: .privileged))
            try await store.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
            await #expect(throws: StoreError(.conflict, "")) { try await store.createGroup(GroupRecord(id: "staff", displayName: "x")) }
            await #expect(throws: StoreError(.conflict, "")) {
                try await store.createRole(RoleRecord(id: "teller", displayName: "x", riskTier: .standard))
            }
            #expect(try await store.listGroups().map(\.id) == ["audit", "staff"])
            #expect(try await store.listRoles() == [RoleRecord(id: "db-admin", displayName: "DBA", riskTier: .privileged),
                                                    RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard)])
            try await store.addMember("alice", to: "staff")
            try await store.addMember("alice", to: "staff")  // idempotent
            try await store.addMember("alice", to: "audit")
            #expect(try await store.groups(of: "alice") == ["audit", "staff"])
            try await store.removeMember("alice", from: "audit")
            #expect(try await store.groups(of: "alice") == ["staff"])
            await #expect(throws: StoreError(.notFound, "")) { try await store.addMember("ghost", to: "staff") }
            await #expect(throws: StoreError(.notFound, "")) { try await store.addMember("alice", to: "ghosts") }
            try await store.assignRole("teller", to: "alice")
            try await store.assignRole("db-admin", to: "alice")
            try await store.assignRole("teller", to: "alice")
            #expect(try await store.roles(of: "alice") == ["db-admin", "teller"])
            try await store.unassignRole("db-admin", from: "alice")
            #expect(try await store.roles(of: "alice") == ["teller"])
            await #expect(throws: StoreError(.notFound, "")) { try await store.assignRole("root", to: "alice") }
            await #expect(throws: StoreError(.notFound, "")) { try await store.assignRole("teller", to: "ghost") }
        }
    }

    func session(_ hash: String, _ user: UserID, created: Double = 0) -> SessionRecord {
        SessionRecord(idHash: hash, userID: user, createdAt: Self.at(created), idleExpiresAt: Self.at(created + 900),
                      absoluteExpiresAt: Self.at(created + 28_800), levelOfAssurance: 3, amr: ["pwd", "hwk"],
                      attributesJSON: #"{"network_zone":"branch"}"#)
    }

    @Test("sessions are stored by hash, touched, revoked singly and per user, and purged", arguments: Backend.available)
    func sessions(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("alice"))
            try await store.createUser(user("bob"))
            try await store.createSession(session("h1", "alice"))
            try await store.createSession(session("h2", "alice", created: 10))
            try await store.createSession(session("h3", "bob"))
            await #expect(throws: StoreError(.conflict, "")) { try await store.createSession(session("h1", "alice")) }
            await #expect(throws: StoreError(.notFound, "")) { try await store.createSession(session("h9", "ghost")) }
            #expect(try await store.session(idHash: "h1") == session("h1", "alice"))
            #expect(try await store.session(idHash: "nope") == nil)
            #expect(try await store.sessions(of: "alice").map(\.idHash) == ["h2", "h1"])

            #expect(try await store.touchSession(idHash: "h1", lastSeenAt: Self.at(100), idleExpiresAt: Self.at(1000)))
            #expect(try await !store.touchSession(idHash: "nope", lastSeenAt: Self.at(100), idleExpiresAt: Self.at(1000)))
            let touched = try #require(try await store.session(idHash: "h1"))
            #expect(touched.lastSeenAt == Self.at(100) && touched.idleExpiresAt == Self.at(1000))
            #expect(touched.isActive(at: Self.at(500)) && !touched.isActive(at: Self.at(1000)))

            #expect(try await store.revokeSession(idHash: "h1", at: Self.at(200), reason: "user signed out"))
            #expect(try await !store.revokeSession(idHash: "h1", at: Self.at(300), reason: "again"))
            let revoked = try #require(try await store.session(idHash: "h1"))
            #expect(revoked.revokedAt == Self.at(200) && revoked.revokedReason == "user signed out")
            #expect(!revoked.isActive(at: Self.at(201)))

            #expect(try await store.revokeSessions(of: "alice", at: Self.at(300), reason: "account locked") == 1)
            #expect(try await store.session(idHash: "h2")?.revokedReason == "account locked")
            #expect(try await store.session(idHash: "h3")?.revokedAt == nil)

            #expect(try await store.deleteSessions(expiredBefore: Self.at(28_805), limit: 1) == 1, "at most the limit")
            #expect(try await store.deleteSessions(expiredBefore: Self.at(28_805), limit: 10) == 1)
            #expect(try await store.deleteSessions(expiredBefore: Self.at(28_805), limit: 10) == 0)
            #expect(try await store.session(idHash: "h2") != nil)
            #expect(try await store.session(idHash: "h1") == nil)
        }
    }

    @Test("policy documents keep every version", arguments: Backend.available)
    func policies(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let v1 = try await store.savePolicy("remote-work", text: "permit(principal, action, resource);", author: "alice",
                                                comment: "first", at: Self.at(0))
            #expect(v1.version == 1)
            let v2 = try await store.savePolicy("remote-work", text: "forbid(principal, action, resource);", author: "bob",
                                                comment: "tighten", at: Self.at(10))
            #expect(v2.version == 2)
            _ = try await store.savePolicy("baseline", text: "// 基線", author: "carol", comment: "", at: Self.at(20))
            #expect(try await store.currentPolicies() == [
                PolicyVersionRecord(policyID: "baseline", version: 1, text: "// 基線", author: "carol", comment: "", createdAt: Self.at(20)),
                v2,
            ])
            #expect(try await store.policyHistory("remote-work") == [v1, v2])
            #expect(try await store.policyHistory("none").isEmpty)
            let huge = String(repeating: "x", count: InputLimits.maxPolicyTextBytes + 1)
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await store.savePolicy("huge", text: huge, author: "a", comment: "", at: Self.at(0))
            }
            #expect(try await store.policyHistory("huge").isEmpty)
        }
    }

    @Test("applications are upserted, listed and deleted", arguments: Backend.available)
    func applications(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            var app = ApplicationRecord(id: "portal", displayName: "Portal", host: "portal.bank.example", pathPrefix: "/",
                                        upstreams: ["http://10.0.0.1:8080", "http://10.0.0.2:8080"], classification: "confidential",
                                        scenario: "remote-work", updatedAt: Self.at(0))
            try await store.putApplication(app)
            #expect(try await store.application("portal") == app)
            app.upstreams = ["http://10.0.0.3:8080"]; app.scenario = nil; app.updatedAt = Self.at(5)
            try await store.putApplication(app)
            #expect(try await store.application("portal") == app)
            #expect(try await store.listApplications() == [app])
            #expect(try await store.deleteApplication("portal"))
            #expect(try await !store.deleteApplication("portal"))
            #expect(try await store.listApplications().isEmpty)
        }
    }

    func event(_ n: Int, user: UserID? = "alice") -> NewEvent {
        NewEvent(id: UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", n)) ?? UUID(), time: Self.at(Double(n)),
                 classUID: 3002, severityID: 1, userID: user, payloadJSON: #"{"class_uid":3002,"n":\#(n),"msg":"登入"}"#)
    }

    @Test("events are appended in order with an intact hash chain", arguments: Backend.available)
    func events(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.lastEvent() == nil)
            let first = try await store.appendEvents([event(1), event(2, user: nil)], hasher: EventChain.hasher)
            #expect(first.map(\.sequence) == [1, 2])
            #expect(first[0].previousHash == genesisEventHash && first[1].previousHash == first[0].hash)
            let second = try await store.appendEvents([event(3)], hasher: EventChain.hasher)
            #expect(second[0].previousHash == first[1].hash)
            let all = try await store.events(after: 0, limit: 100)
            #expect(all == first + second)
            #expect(EventChain.firstBrokenLink(all) == nil)
            #expect(try await store.events(after: 1, limit: 1).map(\.sequence) == [2])
            #expect(try await store.lastEvent() == second[0])
            #expect(try await store.eventCount() == 3)
        }
    }

    @Test("a batch with a duplicate event id stores nothing", arguments: Backend.available)
    func duplicateEvents(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.appendEvents([event(1)], hasher: EventChain.hasher)
            await #expect(throws: StoreError(.conflict, "")) {
                _ = try await store.appendEvents([event(2), event(1)], hasher: EventChain.hasher)
            }
            #expect(try await store.eventCount() == 1)
            let big = NewEvent(id: UUID(), time: Self.t0, classUID: 1, payloadJSON: String(repeating: "a", count: InputLimits.maxEventPayloadBytes + 1))
            await #expect(throws: StoreError(.invalidInput, "")) { _ = try await store.appendEvents([big], hasher: EventChain.hasher) }
            #expect(try await store.eventCount() == 1)
        }
    }

    @Test("concurrent appenders never fork the chain", arguments: Backend.available)
    func concurrentAppends(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for i in 0..<10 {
                            let e = NewEvent(id: UUID(), time: Self.at(Double(i)), classUID: 6001, payloadJSON: #"{"w":\#(worker),"i":\#(i)}"#)
                            _ = try await store.appendEvents([e], hasher: EventChain.hasher)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = try await store.events(after: 0, limit: 1000)
            #expect(all.count == 40)
            #expect(EventChain.firstBrokenLink(all) == nil)
        }
    }

    @Test("appends made together are committed together, yet a conflicting batch fails alone", arguments: Backend.available)
    func groupedAppends(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.appendEvents([event(1)], hasher: EventChain.hasher)
            // 60 appenders at once (SQLite commits those that wait behind a commit in one transaction); every
            // tenth repeats event 1 in its batch, which must fail that batch only.
            let outcomes = try await withThrowingTaskGroup(of: (Int, [StoredEvent]?).self) { group in
                for n in 0..<60 {
                    group.addTask {
                        let batch = n % 10 == 0 ? [self.event(1_000 + n), self.event(1)] : [self.event(1_000 + n), self.event(2_000 + n)]
                        do { return (n, try await store.appendEvents(batch, hasher: EventChain.hasher)) } catch let e as StoreError {
                            #expect(e.code == .conflict)
                            return (n, nil)
                        }
                    }
                }
                return try await group.reduce(into: [Int: [StoredEvent]?]()) { $0[$1.0] = $1.1 }
            }
            for n in 0..<60 {
                let records = outcomes[n] ?? nil
                if n % 10 == 0 { #expect(records == nil, "batch \(n) repeats event 1") } else {
                    #expect(records?.count == 2 && records?[1].previousHash == records?[0].hash, "batch \(n)")
                }
            }
            let all = try await store.events(after: 0, limit: 1000)
            #expect(all.count == 1 + 54 * 2)
            #expect(EventChain.firstBrokenLink(all) == nil)
            // Each acknowledged batch is stored contiguously, exactly as returned.
            for case let records? in outcomes.values { #expect(Array(all[Int(records[0].sequence - 1)...].prefix(2)) == records) }
        }
    }

    @Test("enrolment tokens are single use and expire", arguments: Backend.available)
    func enrolmentTokens(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("admin"))
            let token = EnrolmentTokenRecord(tokenHash: "abc", userID: "admin", purpose: "enrol", createdAt: Self.at(0), expiresAt: Self.at(3600))
            try await store.createEnrolmentToken(token)
            await #expect(throws: StoreError(.conflict, "")) { try await store.createEnrolmentToken(token) }
            await #expect(throws: StoreError(.notFound, "")) {
                try await store.createEnrolmentToken(EnrolmentTokenRecord(tokenHash: "x", userID: "ghost", purpose: "enrol",
                                                                          createdAt: Self.at(0), expiresAt: Self.at(1)))
            }
            #expect(try await store.enrolmentToken(hash: "abc") == token)
            #expect(try await store.consumeEnrolmentToken(hash: "abc", at: Self.at(10)))
            #expect(try await !store.consumeEnrolmentToken(hash: "abc", at: Self.at(11)))
            #expect(try await store.enrolmentToken(hash: "abc")?.usedAt == Self.at(10))
            try await store.createEnrolmentToken(EnrolmentTokenRecord(tokenHash: "old", userID: "admin", purpose: "enrol",
                                                                      createdAt: Self.at(0), expiresAt: Self.at(60)))
            #expect(try await !store.consumeEnrolmentToken(hash: "old", at: Self.at(60)))
            #expect(try await !store.consumeEnrolmentToken(hash: "missing", at: Self.at(0)))
        }
    }

    @Test("credentials: per-user listing, compare-and-set updates, deletion by kind, cascade", arguments: Backend.available)
    func credentials(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("alice"))
            try await store.createUser(user("bob"))
            let totp = CredentialRecord(id: "c-totp", userID: "alice", kind: .totp, label: "手機 authenticator",
                                        data: #"{"counter":0}"#, createdAt: Self.at(0))
            let key = CredentialRecord(id: "AAEC-key", userID: "alice", kind: .webauthn, label: "YubiKey",
                                       data: #"{"signCount":1}"#, createdAt: Self.at(5), lastUsedAt: Self.at(6))
            let pwd = CredentialRecord(id: "c-pwd", userID: "bob", kind: .password, label: "", data: "$2b$", createdAt: Self.at(1))
            for c in [key, totp, pwd] { try await store.createCredential(c) }
            await #expect(throws: StoreError(.conflict, "")) { try await store.createCredential(totp) }
            await #expect(throws: StoreError(.notFound, "")) {
                try await store.createCredential(CredentialRecord(id: "x", userID: "ghost", kind: .totp, label: "", data: "{}",
                                                                  createdAt: Self.at(0)))
            }
            #expect(try await store.credential(id: "AAEC-key") == key)
            #expect(try await store.credentials(of: "alice").map(\.id) == ["c-totp", "AAEC-key"])
            #expect(try await store.credential(id: "missing") == nil)

            // Two racers holding version 1: exactly one update wins.
            #expect(try await store.updateCredential(id: "c-totp", expectedVersion: 1, data: #"{"counter":7}"#, label: "phone",
                                                     lastUsedAt: Self.at(30)))
            #expect(try await !store.updateCredential(id: "c-totp", expectedVersion: 1, data: #"{"counter":7}"#, label: "phone",
                                                      lastUsedAt: Self.at(30)))
            let updated = try #require(try await store.credential(id: "c-totp"))
            #expect(updated.version == 2 && updated.data == #"{"counter":7}"# && updated.label == "phone" && updated.lastUsedAt == Self.at(30))
            #expect(try await !store.updateCredential(id: "missing", expectedVersion: 1, data: "", label: "", lastUsedAt: nil))

            #expect(try await store.deleteCredentials(of: "alice", kinds: [.totp, .recoveryCodes]) == 1)
            #expect(try await store.credentials(of: "alice").map(\.id) == ["AAEC-key"])
            #expect(try await store.deleteCredentials(of: "alice", kinds: []) == 0)
            #expect(try await store.deleteCredential(id: "AAEC-key"))
            #expect(try await !store.deleteCredential(id: "AAEC-key"))
            #expect(try await store.credentials(of: "bob").count == 1)
        }
    }

    @Test("devices: created, listed by id, compare-and-set updates; certificates by serial and device, revoked once, cascade", arguments: Backend.available)
    func devices(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createUser(user("amy"))
            let laptop = DeviceRecord(id: "dev-laptop-7", ownerID: "amy", displayName: "Amy 的筆電", deviceClass: .managed, platform: "linux",
                                      hardwareBound: true, enrolledAt: Self.t0)
            let vendor = DeviceRecord(id: "dev-a-vendor", ownerID: nil, displayName: "Vendor workstation", deviceClass: .vendor,
                                      platform: "windows", hardwareBound: false, enrolledAt: Self.t0)
            try await store.createDevice(laptop)
            try await store.createDevice(vendor)
            #expect(try await store.device("dev-laptop-7") == laptop)
            #expect(try await store.device("dev-none") == nil)
            #expect(try await store.listDevices().map(\.id) == ["dev-a-vendor", "dev-laptop-7"])
            #expect(laptop.compliant == false && laptop.complianceReasons == ["no_posture"], "never compliant by default")
            await #expect(throws: StoreError(.conflict, "")) { try await store.createDevice(laptop) }
            var orphan = vendor
            orphan.id = "dev-orphan"; orphan.ownerID = "ghost"
            await #expect(throws: StoreError(.notFound, "")) { try await store.createDevice(orphan) }

            // Compare-and-set: a second writer with the old version loses and changes nothing.
            let before = try await store.changeGenerations()
            var compliant = laptop
            compliant.compliant = true; compliant.complianceReasons = []; compliant.postureJSON = #"{"os":"debian 12","firewall":true}"#
            compliant.lastPostureAt = Self.at(30); compliant.maxVulnerabilitySeverity = 2; compliant.updatedAt = Self.at(30)
            compliant.vulnerabilityFindings = [
                DeviceFindingRecord(advisoryID: "DSA-9001-1", package: "libssl3", installedVersion: "3.0.11-1~deb12u1", fixedVersion: "3.0.11-1~deb12u2", severity: 2),
                DeviceFindingRecord(advisoryID: "CVE-2099-0001", package: "zlib1g", installedVersion: "1:1.2.13.dfsg-1", fixedVersion: nil, severity: 1),
            ]
            #expect(try await store.updateDevice(compliant, expectedVersion: 1))
            var stale = laptop
            stale.state = .quarantined
            #expect(try await store.updateDevice(stale, expectedVersion: 1) == false)
            var expected = compliant
            expected.version = 2
            #expect(try await store.device("dev-laptop-7") == expected)
            let afterUpdate = try await store.changeGenerations()
            #expect(afterUpdate.device > before.device && afterUpdate.access == before.access, "a device change is a device change, not an access change")
            #expect(try await store.updateDevice(DeviceRecord(id: "dev-none", ownerID: nil, displayName: "x", deviceClass: .byod, platform: "x",
                                                              hardwareBound: false, enrolledAt: Self.t0), expectedVersion: 1) == false)

            // Certificates.
            let first = DeviceCertificateRecord(serial: "0a1b2c", deviceID: "dev-laptop-7", fingerprint: String(repeating: "a", count: 64),
                                                publicKeyFingerprint: String(repeating: "k", count: 64), notBefore: Self.at(0), notAfter: Self.at(86_400))
            var renewal = first
            renewal.serial = "0a1b2d"; renewal.fingerprint = String(repeating: "b", count: 64)
            renewal.notBefore = Self.at(43_200); renewal.notAfter = Self.at(129_600)
            try await store.addDeviceCertificate(renewal)
            try await store.addDeviceCertificate(first)
            await #expect(throws: StoreError(.conflict, "")) { try await store.addDeviceCertificate(first) }
            var unknownDevice = first
            unknownDevice.serial = "ff"; unknownDevice.fingerprint = String(repeating: "c", count: 64); unknownDevice.deviceID = "dev-none"
            await #expect(throws: StoreError(.notFound, "")) { try await store.addDeviceCertificate(unknownDevice) }
            #expect(try await store.deviceCertificate(serial: "0a1b2c") == first)
            #expect(try await store.deviceCertificates(of: "dev-laptop-7").map(\.serial) == ["0a1b2c", "0a1b2d"], "oldest first")
            let g0 = try await store.changeGenerations()
            #expect(try await store.revokeDeviceCertificate(serial: "0a1b2c", at: Self.at(100), reason: "key compromise"))
            #expect(try await store.revokeDeviceCertificate(serial: "0a1b2c", at: Self.at(200), reason: "again") == false)
            #expect(try await store.deviceCertificate(serial: "0a1b2c")?.revokedAt == Self.at(100), "the first revocation stays")
            #expect(try await store.deviceCertificate(serial: "0a1b2c")?.revokedReason == "key compromise")
            let afterRevocation = try await store.changeGenerations()
            #expect(afterRevocation.device > g0.device && afterRevocation.access == g0.access, "a certificate's revocation is a device change")
            #expect(try await store.revokeDeviceCertificates(of: "dev-laptop-7", at: Self.at(300), reason: "retired") == 1)
            #expect(try await store.deviceCertificates(of: "dev-laptop-7").allSatisfy { $0.revokedAt != nil })
            #expect(try await store.revokeDeviceCertificate(serial: "nope", at: Self.at(300), reason: "x") == false)

            // Enrolment: the device and its first certificate together, or neither.
            let desk = DeviceRecord(id: "dev-desk-1", ownerID: "amy", displayName: "Desk", deviceClass: .managed, platform: "linux",
                                    hardwareBound: false, enrolledAt: Self.t0)
            var deskCertificate = first
            deskCertificate.serial = "0d0d"; deskCertificate.fingerprint = String(repeating: "d", count: 64); deskCertificate.deviceID = "dev-desk-1"
            deskCertificate.revokedAt = nil; deskCertificate.revokedReason = nil
            var clash = deskCertificate
            clash.serial = "0a1b2c"   // already issued to the laptop
            await #expect(throws: StoreError(.conflict, "")) { try await store.createDevice(desk, certificate: clash) }
            #expect(try await store.device("dev-desk-1") == nil, "a failed certificate insert leaves no device behind")
            await #expect(throws: StoreError(.invalidInput, "")) { try await store.createDevice(desk, certificate: first) }
            #expect(try await store.device("dev-desk-1") == nil)
            var ghost = desk
            ghost.ownerID = "ghost"
            await #expect(throws: StoreError(.notFound, "")) { try await store.createDevice(ghost, certificate: deskCertificate) }
            #expect(try await store.deviceCertificate(serial: "0d0d") == nil, "a failed device insert leaves no certificate behind")
            try await store.createDevice(desk, certificate: deskCertificate)
            #expect(try await store.device("dev-desk-1") == desk)
            #expect(try await store.deviceCertificate(serial: "0d0d") == deskCertificate)
        }
    }

    @Test("flow state is taken once, only with its kind, and not after expiry", arguments: Backend.available)
    func flowState(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let state = FlowStateRecord(idHash: "h1", kind: "webauthn-authentication", userID: nil, data: #"{"challenge":"q"}"#,
                                        createdAt: Self.at(0), expiresAt: Self.at(300))
            try await store.createFlowState(state)
            await #expect(throws: StoreError(.conflict, "")) { try await store.createFlowState(state) }
            #expect(try await store.takeFlowState(idHash: "h1", kind: "mfa", at: Self.at(1)) == nil)
            #expect(try await store.takeFlowState(idHash: "h1", kind: "webauthn-authentication", at: Self.at(1)) == state)
            #expect(try await store.takeFlowState(idHash: "h1", kind: "webauthn-authentication", at: Self.at(2)) == nil)

            try await store.createUser(user("alice"))
            let late = FlowStateRecord(idHash: "h2", kind: "mfa", userID: "alice", data: "{}", createdAt: Self.at(0), expiresAt: Self.at(60))
            try await store.createFlowState(late)
            #expect(try await store.takeFlowState(idHash: "h2", kind: "mfa", at: Self.at(60)) == nil)
            #expect(try await store.takeFlowState(idHash: "h2", kind: "mfa", at: Self.at(1)) == nil, "an expired take still consumes it")

            for i in 0..<3 {
                try await store.createFlowState(FlowStateRecord(idHash: "e\(i)", kind: "oidc", userID: nil, data: "{}",
                                                                createdAt: Self.at(0), expiresAt: Self.at(Double(10 * i))))
            }
            #expect(try await store.deleteFlowStates(expiredBefore: Self.at(15)) == 2)
            #expect(try await store.takeFlowState(idHash: "e2", kind: "oidc", at: Self.at(1)) != nil)
        }
    }
}
