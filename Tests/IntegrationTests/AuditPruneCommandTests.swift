import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// Retention with export-then-prune (`menshen audit prune`, the real binary) on a real SQLite file of
/// real identity events with checkpoints signed by `menshen audit checkpoint` at 10 and 20 (see
/// ``AuditCommandTests/Log``): the cut is made at a signed checkpoint, the log verifies afterwards and
/// tampering with what remains is still caught; the export verifies on its own and tampering with it is
/// caught; without a checkpoint covering the old records the prune is refused and nothing changes.
@Suite("menshen audit prune")
struct AuditPruneCommandTests {
    typealias Log = AuditCommandTests.Log
    static let future = "2099-01-01T00:00:00Z"

    static func count(_ log: Log) async throws -> (count: Int, first: Int64?) {
        let store = try SQLiteStore(path: log.database)
        let all = try await store.events(after: 0, limit: 100_000)
        try await store.close()
        return (all.count, all.first?.sequence)
    }

    static func verifyExport(_ log: Log, _ file: String) async throws -> (status: Int32, json: [String: Any], err: String) {
        let r = try await Harness.runAsync(["audit", "verify", "--data", log.data, "--export", file, "--json"])
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:], r.err)
    }

    @Test("prune exports 1…20, deletes them, records the prune; the log and the export verify; a second prune continues the chain")
    func pruneAndVerify() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let export1 = log.dir.appendingPathComponent("export-1.jsonl").path
        let r = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--export", export1])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("pruned:            20 record(s)") && r.out.contains("21…30 are older too"), "\(r.out)")
        let left = try await Self.count(log)
        #expect(left.first == 21 && left.count == 11, "records 21…30 and the prune's own event remain: \(left)")

        let v = try await log.verify()
        #expect(v.status == 0 && v.json["status"] as? String == "intact", "\(v.json) \(v.err)")
        #expect(v.json["pruned_through"] as? Int == 20 && v.json["events_checked"] as? Int == 11, "\(v.json)")
        #expect(v.json["unsigned_tail"] as? Int == 0, "prune signed a checkpoint over its own event: \(v.json)")
        let status = try await Harness.runAsync(["store", "status", "--data", log.data])
        #expect(status.status == 0 && status.out.contains("event chain:     intact"), "\(status)")

        let e = try await Self.verifyExport(log, export1)
        #expect(e.status == 0 && e.json["status"] as? String == "intact" && e.json["records"] as? Int == 20, "\(e)")
        let lines = try String(contentsOfFile: export1, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 22, "header, 20 records, trailer")
        // The export is also readable without Menshen: each record's payload is the stored OCSF event.
        let record = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(record["sequence"] as? Int == 1 && (record["payload"] as? String)?.contains("\"class_uid\":3002") == true, "\(record)")

        // The prune's own event: OCSF Event Log Activity, searchable, valid against OCSF 1.8.0.
        let found = try await Harness.runAsync(["audit", "search", "--data", log.data, "--class", "event_log_activity", "--json"])
        let line = try #require(found.out.split(separator: "\n").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let event = try #require(object["event"] as? [String: Any])
        #expect(((event["unmapped"] as? [String: Any])?["prune"] as? [String: Any])?["through_sequence"] as? Int == 20)
        let eventText = String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self)
        if let checked = try await OCSFConformanceTests.validate([eventText]) {
            #expect(checked.status == 0 && checked.report.failures.isEmpty, "\(checked.report.failures.map(\.errors))")
        }

        // More events, a checkpoint, a second prune: the second export starts at 21 anchored by the checkpoint at 20.
        let store = try SQLiteStore(path: log.database)
        let identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
        for i in 0..<5 { try await identity.authentication(.logon, user: nil, userName: "late-\(i)", success: false, detail: "x", source: nil) }
        try await store.close()
        #expect(try await Harness.runAsync(["audit", "checkpoint", "--data", log.data]).status == 0)
        let export2 = log.dir.appendingPathComponent("export-2.jsonl").path
        let second = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--export", export2])
        #expect(second.status == 0 && second.out.contains("records:           21…36"), "\(second)")
        let again = try await log.verify()
        #expect(again.status == 0 && again.json["pruned_through"] as? Int == 36, "\(again.json)")
        let e2 = try await Self.verifyExport(log, export2)
        #expect(e2.status == 0 && e2.json["from_sequence"] as? Int == 21 && e2.json["records"] as? Int == 16, "\(e2)")
        // The first export still verifies on its own, with only the public key (as a regulator would).
        let key = try await Harness.runAsync(["audit", "key", "--data", log.data])
        let offline = try await Harness.runAsync(["audit", "verify", "--export", export1, "--public-key",
                                                  String(key.out.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines),
                                                  "--data", log.dir.appendingPathComponent("elsewhere").path])
        #expect(offline.status == 0 && offline.out.contains("INTACT"), "\(offline)")
    }

    @Test("after a prune, tampering with the remaining log, the prune record or the boundary is still caught")
    func tamperAfterPrune() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let export = log.dir.appendingPathComponent("export.jsonl").path
        #expect(try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--export", export]).status == 0)

        // The database still refuses to delete records above the prune (the trigger stays).
        let store = try SQLiteStore(path: log.database)
        #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM events WHERE seq = 25") }
        #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM event_prunes") }
        try await store.close()

        let database = log.database
        func copy() throws -> Log {
            let other = Log(dir: try Harness.tempDir())
            try FileManager.default.createDirectory(atPath: other.data, withIntermediateDirectories: true)
            for name in ["menshen.sqlite", "menshen.sqlite-wal", "audit.key", "audit-anchor.jsonl"]
            where FileManager.default.fileExists(atPath: log.data + "/" + name) {
                try FileManager.default.copyItem(atPath: log.data + "/" + name, toPath: other.data + "/" + name)
            }
            _ = database
            return other
        }
        let edited = try copy()
        defer { edited.cleanup() }
        try edited.tamper(["UPDATE events SET payload = replace(payload, 'user-25', 'user-X') WHERE seq = 25"])
        try await AuditCommandTests.expectBreak(edited, "edited", at: 25)

        // The prune record removed: the log seems to start at 21 with nothing explaining 1…20.
        let unrecorded = try copy()
        defer { unrecorded.cleanup() }
        try unrecorded.tamper(["DROP TRIGGER IF EXISTS event_prunes_no_delete", "DELETE FROM event_prunes"])
        try await AuditCommandTests.expectBreak(unrecorded, "missing", at: 1)

        // An attacker deletes more old records and records a fake prune at 25: no checkpoint signed 25.
        let fake = try copy()
        defer { fake.cleanup() }
        let h25 = try await fake.events().first { $0.sequence == 25 }?.hash ?? ""
        try fake.tamper(["DELETE FROM events WHERE seq <= 25",
                         "INSERT INTO event_prunes(through_seq, through_hash, event_count, export_sha256, pruned_at) VALUES (25, '\(h25)', 25, '\(String(repeating: "0", count: 64))', 0)"])
        try await AuditCommandTests.expectBreak(fake, "missing", at: 1)
    }

    @Test("a tampered export is caught: an edited, removed or swapped record, a re-computed chain, a cut file")
    func tamperedExport() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let export = log.dir.appendingPathComponent("export.jsonl").path
        #expect(try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--export", export]).status == 0)
        let original = try String(contentsOfFile: export, encoding: .utf8)
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.last == "")
        lines.removeLast()

        func check(_ text: String, _ problem: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let path = log.dir.appendingPathComponent("bad-\(UUID().uuidString).jsonl").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try await Self.verifyExport(log, path)
            #expect(r.status == 1 && r.json["status"] as? String == "tampered", "\(r)", sourceLocation: sourceLocation)
            #expect((r.json["problem"] as? String ?? "").contains(problem), "\(r.json)", sourceLocation: sourceLocation)
        }
        var edited = lines
        edited[5] = edited[5].replacingOccurrences(of: "user-5", with: "user-X")
        try await check(edited.joined(separator: "\n") + "\n", "line 6: record 5 was changed")
        var removed = lines
        removed.remove(at: 5)
        try await check(removed.joined(separator: "\n") + "\n", "line 6: records 5…5 are missing")
        var swapped = lines
        swapped.swapAt(3, 4)
        try await check(swapped.joined(separator: "\n") + "\n", "line 4: records 3…3 are missing here (removed, or moved")
        try await check(lines.dropLast().joined(separator: "\n") + "\n", "ends before its end checkpoint")
        try await check(lines.dropLast(4).joined(separator: "\n"), "ends before its end checkpoint")
        // A rewrite of record 20 with its hash re-computed (production EventChain.hash) keeps every link: the signed end checkpoint catches it.
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lines[20].utf8)) as? [String: Any])
        var forged = last
        let payload = (last["payload"] as? String ?? "").replacingOccurrences(of: "user-20", with: "user-Z")
        forged["payload"] = payload
        let e = NewEvent(id: try #require(UUID(uuidString: last["id"] as? String ?? "")), time: StoreCoding.date(millis: Int64(last["time_ms"] as? Int ?? 0)),
                         classUID: last["class_uid"] as? Int ?? 0, severityID: last["severity_id"] as? Int ?? 0, userID: nil, payloadJSON: payload)
        forged["hash"] = EventChain.hash(previous: last["prev_hash"] as? String ?? "", event: e)
        var rechained = lines
        rechained[20] = String(decoding: try JSONSerialization.data(withJSONObject: forged, options: [.sortedKeys]), as: UTF8.self)
        try await check(rechained.joined(separator: "\n") + "\n", "line 22: the end checkpoint does not sign record 20")
        try await check(original + "{}\n", "line 23: text after the end checkpoint")
        try await check("", "the file is empty")
        // And the intact file still passes (the checks above did not pass vacuously).
        #expect(try await Self.verifyExport(log, export).status == 0)
        // Another key: the checkpoints are not trusted.
        let other = AuditSigningKey().verifyKey.base64
        let foreign = try await Harness.runAsync(["audit", "verify", "--data", log.data, "--export", export, "--public-key", other, "--json"])
        #expect(foreign.status == 1 && foreign.out.contains("not signed by a trusted key"), "\(foreign)")
    }

    @Test("without a checkpoint covering the old records the prune is refused and nothing changes; bad options exit 2")
    func refusals() async throws {
        // Ten events at t0, ten an hour later, one checkpoint at 20: the cut-off at t0 + 30 min has
        // events 1…10 before it and no checkpoint among them.
        let early = Log(dir: try Harness.tempDir())
        defer { early.cleanup() }
        try FileManager.default.createDirectory(atPath: early.data, withIntermediateDirectories: true)
        let t0 = try #require(ISO8601DateFormatter().date(from: "2026-11-01T00:00:00Z"))
        let store = try SQLiteStore(path: early.database)
        let clock = FixedClock(t0)
        let identity = IdentityEvents(store: store, clock: clock, random: SystemRandomSource())
        for i in 0..<20 {
            if i == 10 { clock.advance(by: 3600) }
            try await identity.authentication(.logon, user: nil, userName: "early-\(i)", success: false, detail: "x", source: nil)
        }
        try await store.close()
        #expect(try await Harness.runAsync(["audit", "checkpoint", "--data", early.data]).status == 0)
        let earlyEvents = try await early.events()
        let export = early.dir.appendingPathComponent("export.jsonl").path
        let anchorBefore = try String(contentsOfFile: early.data + "/audit-anchor.jsonl", encoding: .utf8)
        let refused = try await Harness.runAsync(["audit", "prune", "--data", early.data, "--before", "2026-11-01T08:30:00+08:00", "--export", export])
        #expect(refused.status == 1 && refused.err.contains("no signed checkpoint covers the events before 2026-11-01T00:30:00.000Z")
                && refused.err.contains("the newest of them is sequence 10") && refused.err.contains("menshen audit checkpoint"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: export))
        #expect(try await early.events() == earlyEvents, "nothing deleted or added")
        #expect(try String(contentsOfFile: early.data + "/audit-anchor.jsonl", encoding: .utf8) == anchorBefore)
        // With everything older than the cut-off, the checkpoint at 20 covers it all.
        let allOld = try await Harness.runAsync(["audit", "prune", "--data", early.data, "--before", "2026-11-02T00:00:00Z", "--dry-run"])
        #expect(allOld.status == 0 && allOld.out.contains("1…20 (20)"), "\(allOld)")

        let log = try await Log.make()
        defer { log.cleanup() }
        let all = try await log.events()
        let none = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", "2000-01-01T00:00:00Z", "--export", export])
        #expect(none.status == 1 && none.err.contains("no event before 2000-01-01T00:00:00.000Z"), "\(none)")
        // A dry run says what would go and changes nothing.
        let dry = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--dry-run"])
        #expect(dry.status == 0 && dry.out.contains("records:           1…20 (20)"), "\(dry)")
        // An export that cannot be written: nothing deleted.
        let unwritable = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future,
                                                     "--export", log.dir.appendingPathComponent("no/such/dir/e.jsonl").path])
        #expect(unwritable.status == 1 && unwritable.err.contains("cannot create the export file"), "\(unwritable)")
        #expect(try await log.events() == all)

        try "keep me".write(toFile: export, atomically: true, encoding: .utf8)
        for (args, message) in [
            ([String](), "--before is required"),
            (["--before", "last year"], "--before: expected an RFC 3339 time"),
            (["--before", "365d"], "--export FILE is required"),
            (["--before", "365d", "--export", export], "exists; give a new file name"),
        ] {
            let r = try await Harness.runAsync(["audit", "prune", "--data", log.data] + args)
            #expect(r.status == 2 && r.err.contains(message), "\(args): \(r)")
        }
        #expect(try String(contentsOfFile: export, encoding: .utf8) == "keep me")
        #expect(try await log.events() == all)
        let missing = try await Harness.runAsync(["audit", "verify", "--data", log.data, "--export", log.dir.appendingPathComponent("nope").path])
        #expect(missing.status == 2 && missing.err.contains("no such export file"), "\(missing)")
    }

    @Test("the detections' cursor at 15 holds the cut at the checkpoint at 10; --ignore-consumer-cursors cuts at 20")
    func consumerCursor() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let store = try SQLiteStore(path: log.database)
        try await store.saveCursor(named: DetectionService.cursorName, sequence: 15, at: Date())
        try await store.close()
        let dry = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--dry-run"])
        #expect(dry.status == 0 && dry.out.contains("held back:         the consumer detections has read only through sequence 15")
                && dry.out.contains("records:           1…10 (10)"), "\(dry)")
        let past = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--dry-run", "--ignore-consumer-cursors"])
        #expect(past.status == 0 && !past.out.contains("held back") && past.out.contains("records:           1…20 (20)"), "\(past)")
        let export = log.dir.appendingPathComponent("export.jsonl").path
        let real = try await Harness.runAsync(["audit", "prune", "--data", log.data, "--before", Self.future, "--export", export])
        #expect(real.status == 0 && real.out.contains("pruned:            10 record(s)"), "\(real)")
    }
}

/// The same prune on PostgreSQL through the real binary (events from `menshen user add`).
@Suite("menshen audit prune on PostgreSQL")
struct AuditPrunePostgresTests {
    @Test("prune at the checkpoint, verify the log and the export, tampering afterwards caught")
    func postgres() async throws {
        guard let database = try TimedMultiNodeTests.createDatabase() else { return }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try AuditFiles.loadOrCreateKey(path: dir.appendingPathComponent("audit.key").path, mayCreate: true)
        let config = dir.appendingPathComponent("menshen.yaml").path
        try """
            store:
              driver: postgres
              postgres:
                url: \(database)
            identity:
              secrets_key_file: \(dir.appendingPathComponent("secrets.key").path)
            audit:
              signing_key_file: \(dir.appendingPathComponent("audit.key").path)
              checkpoint:
                anchor_file: \(dir.appendingPathComponent("anchor.jsonl").path)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // Nothing signed yet: refused, nothing deleted.
        for i in 1...5 { #expect(try await Harness.runAsync(["user", "add", "pg-prune-\(i)", "--config", config]).status == 0) }
        let export = dir.appendingPathComponent("export.jsonl").path
        let refused = try await Harness.runAsync(["audit", "prune", "--config", config, "--before", "2099-01-01T00:00:00Z", "--export", export])
        #expect(refused.status == 1 && refused.err.contains("menshen audit checkpoint"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: export))

        let signed = try await Harness.runAsync(["audit", "checkpoint", "--config", config])
        #expect(signed.status == 0, "\(signed)")
        let cut = try #require(Int(try AuditCommandPostgresTests.psql(database, "SELECT max(seq) FROM audit_checkpoints")))
        #expect(try await Harness.runAsync(["user", "add", "pg-prune-6", "--config", config]).status == 0)
        let r = try await Harness.runAsync(["audit", "prune", "--config", config, "--before", "2099-01-01T00:00:00Z", "--export", export])
        #expect(r.status == 0 && r.out.contains("records:           1…\(cut)"), "\(r)")
        #expect(try AuditCommandPostgresTests.psql(database, "SELECT min(seq) FROM events") == String(cut + 1))

        func verify(_ extra: [String] = []) async throws -> (Int32, [String: Any]) {
            let v = try await Harness.runAsync(["audit", "verify", "--config", config, "--json"] + extra)
            return (v.status, (try? JSONSerialization.jsonObject(with: Data(v.out.utf8))) as? [String: Any] ?? ["err": v.err])
        }
        let intact = try await verify()
        #expect(intact.0 == 0 && intact.1["pruned_through"] as? Int == cut, "\(intact)")
        let exported = try await verify(["--export", export])
        #expect(exported.0 == 0 && exported.1["records"] as? Int == cut, "\(exported)")
        // Above the prune the database still refuses deletions.
        #expect(throws: (any Error).self) { try AuditCommandPostgresTests.psql(database, "DELETE FROM events WHERE seq = \(cut + 1)") }
        _ = try AuditCommandPostgresTests.psql(database, """
            DROP TRIGGER events_no_update ON events;
            UPDATE events SET payload = replace(payload, 'pg-prune-6', 'pg-prune-X') WHERE payload LIKE '%pg-prune-6%';
            """)
        let tampered = try await verify()
        #expect(tampered.0 == 1 && (tampered.1["break"] as? [String: Any])?["kind"] as? String == "edited", "\(tampered)")
    }
}
