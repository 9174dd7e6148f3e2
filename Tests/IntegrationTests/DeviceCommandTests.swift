import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// `menshen device …` run as the real binary against a SQLite store that the
/// test (standing in for the running server) also holds open.
@Suite("menshen device")
struct DeviceCommandTests {
    @Test("list, show, quarantine, release and retire; mistakes are refused and change nothing; every change is an access change")
    func lifecycle() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: data.appendingPathComponent("menshen.sqlite").path)
        let t0 = Date(timeIntervalSince1970: 1_795_000_000)
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        var laptop = DeviceRecord(id: "laptop-7", ownerID: "amy", displayName: "Amy 的筆電", deviceClass: .managed, platform: "linux",
                                  hardwareBound: true, enrolledAt: t0)
        laptop.compliant = true; laptop.complianceReasons = []; laptop.lastPostureAt = t0
        try await store.createDevice(laptop)
        try await store.createDevice(DeviceRecord(id: "vendor-1", ownerID: nil, displayName: "Vendor", deviceClass: .vendor, platform: "windows",
                                                  hardwareBound: false, enrolledAt: t0))
        for (serial, fingerprint) in [("01", "a"), ("02", "b")] {
            try await store.addDeviceCertificate(DeviceCertificateRecord(
                serial: serial, deviceID: "laptop-7", fingerprint: String(repeating: fingerprint, count: 64),
                publicKeyFingerprint: String(repeating: "k", count: 64), notBefore: t0, notAfter: Date().addingTimeInterval(86_400)))
        }
        func run(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(["device"] + args + ["--data", data.path])
        }

        let list = try await run(["list"])
        #expect(list.status == 0)
        #expect(list.out.contains("laptop-7\tamy\tmanaged\tactive\tcompliant\thardware-bound") && list.out.contains("2 devices"))
        let show = try await run(["show", "laptop-7"])
        #expect(show.status == 0 && show.out.contains("Amy 的筆電") && show.out.contains("certificates:    2") && show.out.contains("serial 01: valid until"))

        // Mistakes: refused with a clear message, nothing changes.
        let before = try #require(try await store.device("laptop-7"))
        let unknown = try await run(["quarantine", "nope", "--reason", "x"])
        #expect(unknown.status != 0 && unknown.err.contains("no device nope"))
        let badID = try await run(["quarantine", "../etc", "--reason", "x"])
        #expect(badID.status != 0 && badID.err.contains("device id must be"))
        let noReason = try await run(["quarantine", "laptop-7", "--reason", " "])
        #expect(noReason.status != 0 && noReason.err.contains("--reason"))
        let notQuarantined = try await run(["release", "laptop-7"])
        #expect(notQuarantined.status != 0 && notQuarantined.err.contains("not quarantined"))
        #expect(try await store.device("laptop-7") == before, "refusals changed nothing")

        // Quarantine: not compliant from now on, and every node sees it (the access counter moved).
        let g0 = try #require(store.committedAccessGeneration())
        #expect(try await run(["quarantine", "laptop-7", "--reason", "EDR alert 4711"]).status == 0)
        let quarantined = try #require(try await store.device("laptop-7"))
        #expect(quarantined.state == .quarantined && !quarantined.compliant && quarantined.complianceReasons == ["quarantined: EDR alert 4711"])
        #expect(quarantined.version == before.version + 1)
        #expect(try #require(store.committedAccessGeneration()) > g0)
        #expect(try await run(["quarantine", "laptop-7", "--reason", "again"]).out.contains("already quarantined"))

        // Release: active again, but not compliant until a fresh posture report.
        #expect(try await run(["release", "laptop-7"]).status == 0)
        let released = try #require(try await store.device("laptop-7"))
        #expect(released.state == .active && !released.compliant && released.complianceReasons == ["awaiting_posture"])

        // Retire: certificates revoked, and no way back.
        let retire = try await run(["retire", "laptop-7", "--reason", "stolen"])
        #expect(retire.status == 0 && retire.out.contains("2 certificates revoked"))
        #expect(try await store.deviceCertificates(of: "laptop-7").allSatisfy { $0.revokedAt != nil && $0.revokedReason == "retired: stolen" })
        #expect(try await store.device("laptop-7")?.state == .retired)
        let back = try await run(["quarantine", "laptop-7", "--reason", "x"])
        #expect(back.status != 0 && back.err.contains("retired"))
        #expect(try await run(["release", "laptop-7"]).status != 0)
        #expect(try await run(["retire", "laptop-7", "--reason", "again"]).out.contains("0 certificates revoked"), "retiring again only finishes the job")
        try await store.close()
    }
}
