#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MenshenAssessment
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// `menshen attest …`, the real binary over a real SQLite file: evidence files
/// go in and come back out byte for byte with the SHA-256 shown; expired and
/// revoked attestations are listed as such and reach the assessment with that
/// state; every add and revoke is an OCSF 3004 event that validates against
/// OCSF 1.8.0; every refusal (a file that is missing, a directory, unreadable,
/// too large; a bad principle, bad dates, a long statement, too many files)
/// exits non-zero with a message naming the problem and leaves the store
/// exactly as it was. And the assessment history through the store.
@Suite("menshen attest (real binary, real SQLite) and the assessment history")
struct TimedAttestCommandTests {
    /// A data directory with a migrated, empty SQLite store and an evidence folder.
    struct World {
        let dir: URL
        var database: String { dir.appendingPathComponent("menshen.sqlite").path }
        init() throws {
            dir = try Harness.tempDir()
            _ = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        }
        func file(_ name: String, _ bytes: Data) throws -> String {
            let url = dir.appendingPathComponent("evidence").appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try bytes.write(to: url)
            return url.path
        }
        func cli(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(["attest"] + args + ["--data", dir.path], environment: ["USER": "auditor", "SUDO_USER": "auditor"])
        }
        /// Attestations, evidence files and events in the database now.
        func counts() async throws -> [Int] {
            let store = try SQLiteStore(path: database)
            let all = try await store.attestations(principleID: nil, limit: 10_000)
            let counts = [all.count, all.map(\.files.count).reduce(0, +), all.filter { $0.revokedAt != nil }.count, try await store.eventCount()]
            try await store.close()
            return counts
        }
        func events() async throws -> [StoredEvent] {
            let store = try SQLiteStore(path: database)
            let events = try await store.events(after: 0, limit: 1000)
            try await store.close()
            return events
        }
        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    static func object(_ line: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    static let pdf = Data((0..<300_000).map { UInt8(truncatingIfNeeded: ($0 * 31) ^ ($0 >> 8)) })
    static let sheet = Data("弱點,嚴重度\nCVE-2026-0001,高\n".utf8)

    @Test("add with two files; list, show and file give them back with matching SHA-256; expired and revoked are listed as such; events validate")
    func roundTrip() async throws {
        let w = try World()
        defer { w.cleanup() }
        let pdf = try w.file("pentest 2026.pdf", Self.pdf), sheet = try w.file("弱點清單.csv", Self.sheet)
        let add = try await w.cli(["add", "--principle", "4.4", "--statement", "年度滲透測試完成。Annual penetration test of the gateway, no open high findings.",
                                   "--by", "CISO 王小明", "--at", "2026-11-01", "--expires", "2099-11-01", "--file", pdf, "--file", sheet, "--json"])
        #expect(add.status == 0, "\(add.err)")
        let added = try Self.object(add.out.split(separator: "\n").first ?? "")
        let id = try #require(added["id"] as? String)
        #expect(added["state"] as? String == "valid" && added["attested_by"] as? String == "CISO 王小明")
        #expect(added["attested_at"] as? String == "2026-10-31T16:00:00Z", "a date alone is 00:00 in Asia/Taipei")

        let list = try await w.cli(["list", "--json"])
        #expect(list.status == 0, "\(list.err)")
        let listed = try Self.object(list.out.split(separator: "\n").first ?? "")
        #expect(listed["id"] as? String == id && listed["principle"] as? String == "4.4" && listed["created_by"] as? String == "cli:auditor")
        let files = try #require(listed["files"] as? [[String: Any]])
        #expect(files.map { $0["name"] as? String } == ["pentest 2026.pdf", "弱點清單.csv"])
        #expect(files.map { $0["sha256"] as? String } == [SecretHash.sha256Hex(bytes: Array(Self.pdf)), SecretHash.sha256Hex(bytes: Array(Self.sheet))])
        #expect(files.map { $0["size"] as? Int } == [Self.pdf.count, Self.sheet.count])

        let show = try await w.cli(["show", id])
        #expect(show.status == 0 && show.out.contains("state:         valid") && show.out.contains(SecretHash.sha256Hex(bytes: Array(Self.sheet))), "\(show.out)\(show.err)")
        #expect(show.out.contains("年度滲透測試完成"))

        for (name, bytes) in [("pentest 2026.pdf", Self.pdf), ("弱點清單.csv", Self.sheet)] {
            let out = w.dir.appendingPathComponent("out-\(name)").path
            let got = try await w.cli(["file", id, name, "--out", out])
            #expect(got.status == 0, "\(got.err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == bytes)
            #expect(got.out.contains(SecretHash.sha256Hex(bytes: Array(bytes))))
            let again = try await w.cli(["file", id, name, "--out", out])
            #expect(again.status != 0 && again.err.contains("exists"), "an existing file is not overwritten")
        }
        let unknownFile = try await w.cli(["file", id, "other.pdf", "--out", w.dir.appendingPathComponent("o").path])
        #expect(unknownFile.status != 0 && unknownFile.err.contains("no evidence file named other.pdf"))

        // An attestation that expired is recorded and listed as expired.
        let old = try await w.cli(["add", "--principle", "5.4", "--statement", "Off-site backups of the core banking system tested.", "--by", "IT 主管",
                                   "--at", "2024-01-15", "--expires", "2025-01-15T00:00:00+08:00"])
        #expect(old.status == 0, "\(old.err)")
        let oldID = try #require(old.out.split(separator: " ").dropFirst(2).first.map(String.init))
        let list2 = try await w.cli(["list"])
        #expect(list2.out.contains("\(oldID)\t5.4\texpired\t"), "\(list2.out)")
        #expect(list2.out.contains("\(id)\t4.4\tvalid\t"))
        #expect(list2.out.contains("2 attestations, 1 valid"))
        let only = try await w.cli(["list", "--principle", "5.4", "--json"])
        #expect(only.out.split(separator: "\n").count == 1 && only.out.contains(oldID))

        // Revoke: kept, marked revoked, a second revoke is refused.
        let revoke = try await w.cli(["revoke", id, "--reason", "報告撤回 report withdrawn"])
        #expect(revoke.status == 0, "\(revoke.err)")
        let shown = try Self.object(try await w.cli(["show", id, "--json"]).out.split(separator: "\n").first ?? "")
        #expect(shown["state"] as? String == "revoked" && shown["revoked_by"] as? String == "cli:auditor"
                && shown["revocation_reason"] as? String == "報告撤回 report withdrawn")
        #expect((shown["files"] as? [Any])?.count == 2, "the evidence stays")
        let before = try await w.counts()
        let twice = try await w.cli(["revoke", id, "--reason", "again"])
        #expect(twice.status != 0 && twice.err.contains("revoked already"), "\(twice.err)")
        let unknown = try await w.cli(["revoke", "0badc0de", "--reason", "x"])
        #expect(unknown.status != 0 && unknown.err.contains("no attestation 0badc0de"))
        #expect(try await w.counts() == before)

        // The assessment sees each with its state.
        let store = try SQLiteStore(path: w.database)
        let attestations = try await AssessmentRecords.storedAttestations(store)
        try await store.close()
        let a = AssessmentBuilder().build(.init(id: "a-1", generatedAt: Date(), windowStart: Date().addingTimeInterval(-86400), organisation: "Bank",
                                                producer: "test", evaluations: [:], routes: [], attestations: attestations, previous: nil))
        #expect(a.result("4.4")?.attestations.map(\.state) == [.revoked])
        #expect(a.result("5.4")?.attestations.map(\.state) == [.expired])
        #expect(a.result("5.4")?.attestations.first?.attestation.files == [])
        #expect(a.result("4.5")?.attestations.isEmpty == true)

        // Three operator actions, three Entity Management events; they validate against OCSF 1.8.0.
        let events = try await w.events().filter { $0.event.classUID == 3004 }
        let payloads = events.map(DetectionServiceTests.payload)
        #expect(payloads.map { $0["activity_id"] as? Int } == [1, 1, 11])
        #expect(payloads.allSatisfy { ($0["entity"] as? [String: Any])?["type"] as? String == "Attestation" })
        #expect(payloads.map { (($0["entity"] as? [String: Any])?["uid"] as? String) ?? "" } == [id, oldID, id])
        #expect(payloads.allSatisfy { (($0["actor"] as? [String: Any])?["user"] as? [String: Any])?["name"] as? String == "cli:auditor" })
        #expect(payloads.last?["comment"] as? String == "報告撤回 report withdrawn")
        let detail = (payloads.first?["unmapped"] as? [String: Any])?["attestation"] as? [String: Any]
        #expect((detail?["files"] as? [[String: Any]])?.map { $0["sha256"] as? String } == files.map { $0["sha256"] as? String })
        guard let (status, report) = try await OCSFConformanceTests.validate(events.map(\.event.payloadJSON)) else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0 && report.checked == 3)
    }

    @Test("unreadable or oversized evidence, a bad principle, bad dates and other bad input: a clear message, exit non-zero, nothing stored")
    func refusals() async throws {
        let w = try World()
        defer { w.cleanup() }
        let good = try w.file("ok.pdf", Data("evidence".utf8))
        let seeded = try await w.cli(["add", "--principle", "4.5", "--statement", "CI/CD: two-person review on every deployment.", "--by", "CTO",
                                      "--expires", "2099-01-01", "--file", good])
        #expect(seeded.status == 0, "\(seeded.err)")
        let before = try await w.counts()
        #expect(before[0] == 1 && before[1] == 1)

        let missing = w.dir.appendingPathComponent("evidence/missing.pdf").path
        let directory = w.dir.appendingPathComponent("evidence/folder.pdf").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let big = w.dir.appendingPathComponent("evidence/huge.iso").path
        _ = FileManager.default.createFile(atPath: big, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
        try handle.truncate(atOffset: UInt64(AttestationLimits.maxFileBytes + 1))   // sparse: nothing is written
        try handle.close()
        let secret = try w.file("secret.pdf", Data("no access".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: secret)
        let many = try (0...AttestationLimits.maxFiles).map { try w.file("f\($0).txt", Data([UInt8($0)])) }
        let dotted = try w.file("a..b.pdf", Data([1]))
        let escape = try w.file("bad\u{1B}name.pdf", Data([1]))

        func add(_ extra: [String], principle: String = "4.4", statement: String = "Annual penetration test.", at: String? = nil,
                 expires: String = "2099-01-01") -> [String] {
            ["add", "--principle", principle, "--statement", statement, "--by", "CISO 王小明", "--expires", expires] + (at.map { ["--at", $0] } ?? []) + extra
        }
        var cases: [(args: [String], message: String)] = [
            (add(["--file", good, "--file", missing]), "evidence file \(missing): no such file"),
            (add(["--file", directory]), "evidence file \(directory): is a directory, not a file"),
            (add(["--file", good, "--file", big]), "evidence file \(big): \(AttestationLimits.maxFileBytes + 1) bytes; at most \(AttestationLimits.maxFileBytes) (25 MiB) per file"),
            (add(["--file", "/dev/null"]), "evidence file /dev/null: is not a regular file"),
            (add(many.flatMap { ["--file", $0] }), "17 evidence files; at most 16 per attestation"),
            (add(["--file", good, "--file", good]), "another file named ok.pdf is already attached"),
            (add(["--file", dotted]), "must not contain .."),
            (add(["--file", escape]), "contains a control character"),
            (add([], principle: "9.9"), "unknown principle \"9.9\": the guideline's principles are 1.1–1.7, 2.1–2.7, 3.1–3.7, 4.1–4.7, 5.1–5.8"),
            (add([], principle: "x.6"), "unknown principle \"x.6\""),
            (add([], at: "2026-02-30"), "--at 2026-02-30: no such date"),
            (add([], expires: "next year"), "--expires next year: not a date"),
            (add([], at: "2026-11-01", expires: "2026-10-01"), "the expiry must be after the attestation date"),
            (add([], at: "2099-01-01", expires: "2100-01-01"), "the attestation date is in the future"),
            (add([], statement: String(repeating: "測", count: 4001)), "the statement is 4001 characters long; at most 4000"),
            (add([], statement: "  "), "the statement is empty"),
        ]
        if getuid() != 0 {
            cases.append((add(["--file", secret]), "evidence file \(secret): permission denied"))
        }
        for c in cases {
            let r = try await w.cli(c.args)
            #expect(r.status != 0, "\(c.message)")
            #expect(r.err.contains(c.message), "expected «\(c.message)», got «\(r.err)»")
            #expect(!r.err.contains("Fatal error") && !r.err.contains("Backtrace"))
        }
        #expect(try await w.counts() == before, "nothing stored, no event written")
        if getuid() == 0 {
            // Root reads any file, so the chmod 000 case runs as the unprivileged user `nobody` (who owns the data directory).
            if let r = try await Self.asNobody(w, add(["--file", secret])) {
                #expect(r.status != 0 && r.err.contains("evidence file \(secret): permission denied"), "as nobody: \(r.err)")
                #expect(try await w.counts() == before)
            } else {
                print("attest refusals: running as root without runuser or user nobody: the unreadable-file (chmod 000) case is skipped")
            }
        }
        let badRevoke = try await w.cli(["revoke", "0badc0de", "--reason", ""])
        #expect(badRevoke.status != 0)
        #expect(try await w.counts() == before)
    }

    @Test("every attest verb has --help; the group explains itself in English and zh-TW",
          arguments: [["attest"], ["attest", "add"], ["attest", "list"], ["attest", "show"], ["attest", "file"], ["attest", "revoke"]])
    func help(_ verb: [String]) async throws {
        let r = try await Harness.runAsync(verb + ["--help"])
        #expect(r.status == 0 && r.out.contains("USAGE:"), "\(r.err)")
        if verb == ["attest"] { #expect(r.out.contains("滲透測試") && r.out.contains("penetration tests")) }
        if verb == ["attest", "add"] { #expect(r.out.contains("--principle") && r.out.contains("--expires") && r.out.contains("--file")) }
    }

    /// Runs `menshen attest ARGS --data DIR` as `nobody` (root only; nil when runuser or the user is missing).
    static func asNobody(_ w: World, _ args: [String]) async throws -> (status: Int32, out: String, err: String)? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser"), let nobody = getpwnam("nobody") else { return nil }
        let (uid, gid) = (nobody.pointee.pw_uid, nobody.pointee.pw_gid)
        // The directory and the database are nobody's; the evidence file stays root's with mode 000.
        for case let path as String in FileManager.default.enumerator(atPath: w.dir.path)?.allObjects ?? [] where !path.hasPrefix("evidence/secret") {
            chown(w.dir.appendingPathComponent(path).path, uid, gid)
        }
        chown(w.dir.path, uid, gid)
        return try await Harness.offPool {
            // posix_spawn, not Foundation's Process (see `spawnAndWait`).
            let r = try spawnAndWait("/usr/sbin/runuser", ["-u", "nobody", "--", Harness.binary, "attest"] + args + ["--data", w.dir.path],
                                     environment: ["PATH": "/usr/bin:/bin", "USER": "nobody"])
            return (r.status, r.stdoutText, r.stderrText)
        }
    }

    static func assessment(_ id: String, at: Date, verdict: Verdict, previous: Assessment?) -> Assessment {
        AssessmentBuilder().build(.init(
            id: id, generatedAt: at, windowStart: at.addingTimeInterval(-30 * 86400), organisation: "台灣示範銀行", producer: "menshen (sqlite)",
            evaluations: ["1.1": PrincipleEvaluation(verdict: verdict, rationale: LocalizedText(en: "MFA for 97 of 100 users", zhTW: "100 位使用者中 97 位啟用 MFA"),
                                                     measurements: [.ratio("users_with_mfa", LocalizedText(en: "Users with MFA", zhTW: "啟用 MFA 之使用者"), 97, of: 100,
                                                                           query: "SELECT count(*) FROM credentials WHERE kind IN ('totp','webauthn')")])],
            routes: [], attestations: [Attestation(id: "att-1", principleID: "4.4", statement: "pentest", attestedBy: "CISO", attestedAt: at.addingTimeInterval(-86400),
                                                   expiresAt: at.addingTimeInterval(86400 * 365), files: [.init(name: "r.pdf", sha256: String(repeating: "a", count: 64), size: 3)])],
            previous: previous))
    }

    @Test("assessment history: save two, the latest is the second and equal to what was saved; a row that no longer reads back is skipped")
    func history() async throws {
        let w = try World()
        defer { w.cleanup() }
        let store = try SQLiteStore(path: w.database)
        let t = Date(timeIntervalSince1970: 1_795_000_000.123)
        let first = Self.assessment("a-first", at: t, verdict: .partiallyMet, previous: nil)
        #expect(try await AssessmentRecords.latestAssessment(store) == nil)
        try await AssessmentRecords.saveAssessment(store, first)
        #expect(try await AssessmentRecords.latestAssessment(store) == first)
        let second = Self.assessment("a-second", at: t.addingTimeInterval(3600), verdict: .met, previous: first)
        let record = try await AssessmentRecords.saveAssessment(store, second)
        let latest = try #require(try await AssessmentRecords.latestAssessment(store))
        #expect(latest == second)
        #expect(latest.comparison?.previousID == "a-first" && latest.comparison?.changes.first?.after == .met)
        #expect(record.overallLevel == second.overallLevel && record.sha256 == SecretHash.sha256Hex(record.json))
        #expect(record.json.contains(#""generatedAt":"2026-11-18T"#) && record.json.contains(".123Z"), "times as RFC 3339 with milliseconds")

        // A newer row that no longer decodes (intact, but not an assessment) is skipped: the second is still the latest.
        try await store.saveAssessment(AssessmentHistoryRecord(id: "garbage", generatedAt: t.addingTimeInterval(7200), windowStart: t,
                                                               windowEnd: t.addingTimeInterval(7200), overallLevel: 0, json: #"{"not":"an assessment"}"#))
        #expect(try await AssessmentRecords.latestAssessment(store) == second)
        // A row edited behind the store's back (the trigger dropped first, as an attacker with the database would) is skipped too.
        try store.unsafeExecute("DROP TRIGGER assessments_no_update")
        try store.unsafeExecute("UPDATE assessments SET document = replace(document, '\"overallLevel\":0', '\"overallLevel\":4') WHERE id = 'a-second'")
        #expect(try await store.assessment(id: "a-second")?.isIntact == false)
        #expect(try await AssessmentRecords.latestAssessment(store) == first)
        try await store.close()
    }
}

/// `menshen attest` on PostgreSQL: a 20 MiB evidence file and a small one go in
/// and come back byte for byte; a refused add stores nothing; revoke.
@Suite("menshen attest on PostgreSQL (real binary)")
struct TimedAttestPostgresTests {
    @Test("add with a 20 MiB file, list, file round trip, a refusal that stores nothing, revoke")
    func postgres() async throws {
        guard let database = try await Harness.offPool({ try TimedMultiNodeTests.createDatabase() }) else { return }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("menshen.yaml").path
        try "store:\n  driver: postgres\n  postgres:\n    url: \(database)\n".write(toFile: config, atomically: true, encoding: .utf8)
        func cli(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(["attest"] + args + ["--config", config])
        }
        let block = Data((0..<(1024 * 1024)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) })
        var bigBytes = Data()
        for i in 0..<20 { bigBytes.append(block); bigBytes.append(UInt8(i)) }   // 20 MiB + 20 bytes
        let big = dir.appendingPathComponent("backup-restore-test.tar").path, small = dir.appendingPathComponent("異地備份.txt").path
        try bigBytes.write(to: URL(fileURLWithPath: big))
        try Data("restored 2026-10-30".utf8).write(to: URL(fileURLWithPath: small))
        let add = try await cli(["add", "--principle", "5.4", "--statement", "Off-site backups restored in a drill.", "--by", "IT 主管",
                                 "--expires", "2099-01-01", "--file", big, "--file", small, "--json"])
        #expect(add.status == 0, "\(add.err)")
        let id = try #require(try TimedAttestCommandTests.object(add.out.split(separator: "\n").first ?? "")["id"] as? String)
        let missing = try await cli(["add", "--principle", "5.4", "--statement", "x", "--by", "y", "--expires", "2099-01-01", "--file", small,
                                     "--file", dir.appendingPathComponent("nope.pdf").path])
        #expect(missing.status != 0 && missing.err.contains("nope.pdf: no such file"), "\(missing.err)")
        let list = try await cli(["list", "--json"])
        let rows = list.out.split(separator: "\n")
        #expect(list.status == 0 && rows.count == 1, "the refused add stored nothing: \(list.out) \(list.err)")
        let files = try TimedAttestCommandTests.object(rows.first ?? "")["files"] as? [[String: Any]]
        #expect(files?.map { $0["sha256"] as? String } == [SecretHash.sha256Hex(bytes: Array(bigBytes)), SecretHash.sha256Hex(bytes: Array("restored 2026-10-30".utf8))])
        let out = dir.appendingPathComponent("out.tar").path
        let file = try await cli(["file", id, "backup-restore-test.tar", "--out", out])
        #expect(file.status == 0, "\(file.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == bigBytes)
        let revoke = try await cli(["revoke", id, "--reason", "drill repeated"])
        #expect(revoke.status == 0, "\(revoke.err)")
        #expect(try await cli(["list"]).out.contains("\(id)\t5.4\trevoked "))
    }
}
