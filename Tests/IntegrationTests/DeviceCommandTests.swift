import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// `menshen device …` run as the real binary against a SQLite store that the
/// test (standing in for the running server) also holds open.
@Suite("menshen device")
struct DeviceCommandTests {
    @Test("list, show, quarantine, release and retire; mistakes are refused and change nothing; every change is a device change")
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

        // Quarantine: not compliant from now on, and every node sees it (the device counter moved).
        let g0 = try #require(store.committedGenerations()).device
        #expect(try await run(["quarantine", "laptop-7", "--reason", "EDR alert 4711"]).status == 0)
        let quarantined = try #require(try await store.device("laptop-7"))
        #expect(quarantined.state == .quarantined && !quarantined.compliant && quarantined.complianceReasons == ["quarantined: EDR alert 4711"])
        #expect(quarantined.version == before.version + 1)
        #expect(try #require(store.committedGenerations()).device > g0)
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

    @Test("enrol-token, ca and agent: mistakes are refused with a clear message and store nothing; a bad compliance file stops the command")
    func enrolmentMistakes() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: data.appendingPathComponent("menshen.sqlite").path)
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Date()))
        func run(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(args + ["--data", data.path])
        }
        let badClass = try await run(["device", "enrol-token", "--user", "amy", "--class", "laptop"])
        #expect(badClass.status != 0 && badClass.err.contains("--class must be managed, byod or vendor"), "\(badClass.err)")
        let noUser = try await run(["device", "enrol-token", "--user", "nobody", "--class", "managed"])
        #expect(noUser.status != 0 && noUser.err.contains("no user nobody"), "\(noUser.err)")
        let ttl = try await run(["device", "enrol-token", "--user", "amy", "--class", "byod", "--ttl-minutes", "0"])
        #expect(ttl.status != 0 && ttl.err.contains("--ttl-minutes"), "\(ttl.err)")
        let ok = try await run(["device", "enrol-token", "--user", "amy", "--class", "byod"])
        #expect(ok.status == 0 && ok.out.trimmingCharacters(in: .whitespacesAndNewlines).count == 47 && ok.out.hasPrefix("mde_"), "\(ok.err)")
        #expect(try await store.listDevices().isEmpty, "a token is not a device")

        // The agent refuses to send a token in clear over a network, and to report without an enrolment.
        let clear = try await Harness.runAsync(["agent", "enrol", "--server", "http://access.bank.example", "--token", "t", "--key-dir", dir.appendingPathComponent("k").path])
        #expect(clear.status != 0 && clear.err.contains("https"), "\(clear.err)")
        let none = try await Harness.runAsync(["agent", "report", "--server", "https://access.bank.example", "--key-dir", dir.appendingPathComponent("k").path,
                                               "--posture", "/dev/null"])
        #expect(none.status != 0 && none.err.contains("holds no enrolled device"), "\(none.err)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("k/device.key").path))

        // A compliance file with a typo is refused with the file and the key named.
        let config = dir.appendingPathComponent("menshen.yaml")
        let compliance = dir.appendingPathComponent("compliance.yaml")
        try "managed:\n  max_posture_age_seconds: 3600\n  max_vulnerability_severity: high\n  require_firewal: true\n"
            .write(to: compliance, atomically: true, encoding: .utf8)
        try "store:\n  driver: sqlite\n  sqlite:\n    path: \(data.appendingPathComponent("menshen.sqlite").path)\ndevice:\n  compliance_file: \(compliance.path)\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let typo = try await Harness.runAsync(["device", "enrol-token", "--user", "amy", "--class", "managed", "--config", config.path])
        #expect(typo.status != 0 && typo.err.contains("compliance.yaml") && typo.err.contains("require_firewal"), "\(typo.err)")
        try await store.close()
    }
}
