import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// `menshen audit verify` (the real binary) on a real SQLite file, tampered with
/// the way an attacker with database access would: the append-only triggers are
/// dropped, rows edited, deleted, swapped, inserted (also with the whole chain
/// re-computed), and the tails of `events` and `audit_checkpoints` cut. Each
/// kind is caught with its kind and sequence; an intact log passes.
@Suite("menshen audit verify")
struct AuditCommandTests {
    /// A deployment directory with 30 real identity events; checkpoints signed by
    /// `menshen audit checkpoint` at 10 and 20 (21–30 are the unsigned tail).
    struct Log {
        let dir: URL
        var data: String { dir.appendingPathComponent("menshen-data").path }
        var database: String { data + "/menshen.sqlite" }

        static func make() async throws -> Log {
            let log = Log(dir: try Harness.tempDir())
            try FileManager.default.createDirectory(atPath: log.data, withIntermediateDirectories: true)
            for round in 0..<3 {
                let store = try SQLiteStore(path: log.database)
                let events = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
                for i in 0..<10 {
                    try await events.authentication(.logon, user: nil, userName: "user-\(round * 10 + i + 1)", success: false,
                                                    detail: "wrong password", source: "192.0.2.\(i + 1)")
                }
                try await store.close()
                if round < 2 {
                    let r = try await Harness.runAsync(["audit", "checkpoint", "--data", log.data])
                    #expect(r.status == 0 && r.out.contains("signed checkpoint at sequence \((round + 1) * 10)"), "\(r)")
                }
            }
            return log
        }

        /// Runs raw SQL on the database, after dropping the append-only triggers.
        func tamper(_ statements: [String]) throws {
            let store = try SQLiteStore(path: database)
            for t in ["events_no_update", "events_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"] {
                try store.unsafeExecute("DROP TRIGGER IF EXISTS \(t)")
            }
            for s in statements { try store.unsafeExecute(s) }
        }

        func events() async throws -> [StoredEvent] {
            let store = try SQLiteStore(path: database)
            let all = try await store.events(after: 0, limit: 10_000)
            try await store.close()
            return all
        }

        /// `menshen audit verify --json`: exit status and the parsed object.
        func verify(_ extra: [String] = []) async throws -> (status: Int32, json: [String: Any], err: String) {
            let r = try await Harness.runAsync(["audit", "verify", "--data", data, "--json"] + extra)
            let object = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:]
            return (r.status, object, r.err)
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    static func sql(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    static func insertSQL(_ e: StoredEvent) -> String {
        """
        INSERT INTO events(seq, id, time, class_uid, severity_id, user_id, payload, prev_hash, hash) VALUES (\(e.sequence), \
        \(sql(e.event.id.uuidString)), \(StoreCoding.millis(e.event.time)), \(e.event.classUID), \(e.event.severityID), NULL, \
        \(sql(e.event.payloadJSON)), \(sql(e.previousHash)), \(sql(e.hash)))
        """
    }

    /// Rewrites the log from `from` on as `records`, re-computing every link as an attacker would.
    static func rechained(_ records: [NewEvent], from: Int64, previous: String) -> [StoredEvent] {
        var previous = previous
        return records.enumerated().map { i, e in
            let h = EventChain.hash(previous: previous, event: e)
            defer { previous = h }
            return StoredEvent(sequence: from + Int64(i), event: e, previousHash: previous, hash: h)
        }
    }

    static func forged() -> NewEvent {
        NewEvent(id: UUID(), time: Date(), classUID: 3002, severityID: 1, payloadJSON: #"{"class_uid":3002,"message":"all fine"}"#)
    }

    /// Asserts one verdict: exit 1, status tampered, this kind at this sequence.
    static func expectBreak(_ log: Log, _ kind: String, at sequence: Int, earliest: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await log.verify()
        let b = r.json["break"] as? [String: Any]
        #expect(r.status == 1, "exit \(r.status) \(r.err)", sourceLocation: sourceLocation)
        #expect(r.json["status"] as? String == "tampered", sourceLocation: sourceLocation)
        #expect(b?["kind"] as? String == kind, "\(r.json)", sourceLocation: sourceLocation)
        #expect(b?["sequence"] as? Int == sequence, "\(r.json)", sourceLocation: sourceLocation)
        if let earliest { #expect(b?["earliest_affected"] as? Int == earliest, "\(r.json)", sourceLocation: sourceLocation) }
    }

    @Test("an intact log passes: every record, both checkpoints, the unsigned tail counted; text and JSON")
    func intact() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let r = try await log.verify()
        #expect(r.status == 0, "\(r.err)")
        #expect(r.json["status"] as? String == "intact")
        #expect(r.json["events_checked"] as? Int == 30 && r.json["checkpoints"] as? Int == 2 && r.json["anchor_checkpoints"] as? Int == 2)
        #expect(r.json["newest_checkpoint"] as? Int == 20 && r.json["unsigned_tail"] as? Int == 10)
        let text = try await Harness.runAsync(["audit", "verify", "--data", log.data])
        #expect(text.status == 0 && text.out.contains("INTACT") && text.out.contains("events checked:    30"), "\(text)")
        // The anchor lives outside the database, one line per checkpoint.
        let anchor = try String(contentsOfFile: log.data + "/audit-anchor.jsonl", encoding: .utf8)
        #expect(anchor.split(separator: "\n").count == 2)
        let mode = try FileManager.default.attributesOfItem(atPath: log.data + "/audit.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("an edited payload is caught as edited at its sequence")
    func edited() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        try log.tamper(["UPDATE events SET payload = replace(payload, 'user-5', 'user-X') WHERE seq = 5"])
        try await Self.expectBreak(log, "edited", at: 5)
    }

    @Test("a deleted row is caught as missing at its sequence")
    func deleted() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        try log.tamper(["DELETE FROM events WHERE seq = 15"])
        try await Self.expectBreak(log, "missing", at: 15)
    }

    @Test("two rows swapped are caught as reordered at the first")
    func reordered() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        try log.tamper(["UPDATE events SET seq = -1 WHERE seq = 5", "UPDATE events SET seq = 5 WHERE seq = 6", "UPDATE events SET seq = 6 WHERE seq = -1"])
        try await Self.expectBreak(log, "reordered", at: 5)
    }

    @Test("a forged row linked to its predecessor (the rest left as it was) is caught as inserted at its sequence")
    func insertedPlain() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let before = try await log.events()
        let forged = Self.rechained([Self.forged()], from: 5, previous: before[3].hash)[0]
        // Make room: shift 5… up by one (through negatives, so the primary key never collides).
        try log.tamper(["UPDATE events SET seq = -(seq + 1) WHERE seq >= 5", "UPDATE events SET seq = -seq WHERE seq < 0", Self.insertSQL(forged)])
        try await Self.expectBreak(log, "inserted", at: 5)
    }

    @Test("a forged row with the whole chain re-computed is caught at the next checkpoint, as inserted")
    func insertedRechained() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let before = try await log.events()
        let rewritten = Self.rechained([Self.forged()] + before[4...].map(\.event), from: 5, previous: before[3].hash)
        try log.tamper(["DELETE FROM events WHERE seq >= 5"] + rewritten.map(Self.insertSQL))
        // Every link holds now; only the signed checkpoint at 10 shows it (its event moved to 11).
        try await Self.expectBreak(log, "inserted", at: 10, earliest: 1)
    }

    @Test("a forged row with the chain re-computed after the last checkpoint is not caught (nothing signed covers it yet)")
    func insertedAfterLastCheckpoint() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let before = try await log.events()
        let rewritten = Self.rechained([Self.forged()] + before[24...].map(\.event), from: 25, previous: before[23].hash)
        try log.tamper(["DELETE FROM events WHERE seq >= 25"] + rewritten.map(Self.insertSQL))
        let r = try await log.verify()
        #expect(r.status == 0 && r.json["unsigned_tail"] as? Int == 11, "\(r.json)")
    }

    @Test("content rewritten with the chain re-computed is caught at the next checkpoint, as edited")
    func editedRechained() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let before = try await log.events()
        var records = before[14...].map(\.event)
        records[2].payloadJSON = records[2].payloadJSON.replacingOccurrences(of: "user-17", with: "user-X")
        let rewritten = Self.rechained(records, from: 15, previous: before[13].hash)
        try log.tamper(["DELETE FROM events WHERE seq >= 15"] + rewritten.map(Self.insertSQL))
        try await Self.expectBreak(log, "edited", at: 20, earliest: 11)
    }

    @Test("a row deleted with the chain re-computed is caught as missing where the signed event now sits")
    func deletedRechained() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let before = try await log.events()
        let rewritten = Self.rechained(before[15...].map(\.event), from: 15, previous: before[13].hash)   // drops 15
        try log.tamper(["DELETE FROM events WHERE seq >= 15"] + rewritten.map(Self.insertSQL))
        try await Self.expectBreak(log, "missing", at: 19, earliest: 11)
    }

    @Test("the tails of events and of checkpoints cut off are caught by the anchor as truncated")
    func truncated() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        try log.tamper(["DELETE FROM events WHERE seq > 15", "DELETE FROM audit_checkpoints WHERE seq > 15"])
        try await Self.expectBreak(log, "truncated", at: 16)
        // The database alone now looks consistent: without the anchor's line nothing points past 15.
        let r = try await log.verify(["--anchor", log.dir.appendingPathComponent("empty.jsonl").path])
        #expect(r.status == 2, "a missing anchor file while the database holds checkpoints cannot be verified: \(r.json)")
    }

    @Test("a checkpoint changed in the database, or checked with a key not trusted, is a bad signature")
    func badSignature() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let stranger = try await Harness.runAsync(["audit", "key", "--data", log.dir.appendingPathComponent("other").path])
        #expect(stranger.status == 0)
        let r = try await log.verify(["--public-key", String(stranger.out.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(r.status == 1 && (r.json["break"] as? [String: Any])?["kind"] as? String == "bad_signature", "\(r.json)")
        try log.tamper(["UPDATE audit_checkpoints SET time = time + 1 WHERE seq = 20"])
        try await Self.expectBreak(log, "bad_signature", at: 20)
    }

    @Test("a regulator verifies a copy offline with only the exported public key")
    func offline() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let key = try await Harness.runAsync(["audit", "key", "--data", log.data])
        #expect(key.status == 0 && key.out.hasPrefix("ed25519:"), "\(key)")
        let copy = log.dir.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        for f in ["menshen.sqlite", "menshen.sqlite-wal", "menshen.sqlite-shm", "audit-anchor.jsonl"]
        where FileManager.default.fileExists(atPath: log.data + "/" + f) {
            try FileManager.default.copyItem(atPath: log.data + "/" + f, toPath: copy.path + "/" + f)
        }
        let keyFile = log.dir.appendingPathComponent("regulator.pub")
        try key.out.write(to: keyFile, atomically: true, encoding: .utf8)
        let r = try await Harness.runAsync(["audit", "verify", "--data", copy.path, "--public-key", keyFile.path, "--json"])
        #expect(r.status == 0 && r.out.contains(#""status":"intact""#), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: copy.path + "/audit.key"), "verify never creates a signing key")
    }

    @Test("what cannot be verified exits 2 with a reason: no database, a malformed anchor, no key")
    func couldNotVerify() async throws {
        let log = try await Log.make()
        defer { log.cleanup() }
        let none = try await Harness.runAsync(["audit", "verify", "--data", log.dir.appendingPathComponent("nothing").path])
        #expect(none.status == 2 && none.err.contains("no Menshen database"), "\(none)")
        let anchor = log.data + "/audit-anchor.jsonl"
        let good = try String(contentsOfFile: anchor, encoding: .utf8)
        try (good + "{\"sequence\": \"x\"}\n").write(toFile: anchor, atomically: true, encoding: .utf8)
        let bad = try await log.verify()
        #expect(bad.status == 2 && (bad.json["error"] as? String ?? "").contains("audit-anchor.jsonl:3"), "\(bad.json)")
        try good.write(toFile: anchor, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: log.data + "/audit.key")
        let noKey = try await log.verify()
        #expect(noKey.status == 2 && (noKey.json["error"] as? String ?? "").contains("audit.key"), "\(noKey.json)")
        #expect(!FileManager.default.fileExists(atPath: log.data + "/audit.key"))
    }
}

/// The same verifier on PostgreSQL, through the real binary (events written by
/// `menshen user add`, tampering through psql). Skipped without a test server
/// (a failure under CI).
@Suite("menshen audit verify on PostgreSQL")
struct AuditCommandPostgresTests {
    static func psql(_ url: String, _ sql: String) throws -> String {
        guard let u = URLComponents(string: url), let host = u.host else { throw Harness.HarnessError("bad URL \(url)") }
        let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last
            .map { "/usr/lib/postgresql/\($0)/bin/psql" } ?? "/usr/bin/psql"
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(bin, ["-h", host, "-p", String(u.port ?? 5432), "-U", u.user ?? "postgres", "-d", String(u.path.dropFirst()),
                                       "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        guard r.status == 0 else { throw Harness.HarnessError("psql failed: \(sql): \(r.stderrText)") }
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("an intact log passes; a cut tail and an edited payload are caught with their kind and sequence")
    func postgres() async throws {
        guard let database = try TimedMultiNodeTests.createDatabase() else { return }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // With PostgreSQL the key is never created by Menshen: made once here, as an operator would.
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
        for i in 1...6 {
            let r = try await Harness.runAsync(["user", "add", "pg-user-\(i)", "--config", config])
            #expect(r.status == 0, "\(r.err)")
        }
        let signed = try await Harness.runAsync(["audit", "checkpoint", "--config", config])
        #expect(signed.status == 0 && signed.out.contains("signed checkpoint"), "\(signed)")
        #expect(try await Harness.runAsync(["user", "add", "pg-user-7", "--config", config]).status == 0)

        func verify() async throws -> [String: Any] {
            let r = try await Harness.runAsync(["audit", "verify", "--config", config, "--json"])
            return (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? ["exit": r.status, "err": r.err]
        }
        let intact = try await verify()
        #expect(intact["status"] as? String == "intact", "\(intact)")
        let total = try #require(intact["events_checked"] as? Int)
        let newest = try #require(intact["newest_checkpoint"] as? Int)
        #expect(newest == total - 1)

        let edited = try #require(Int(try Self.psql(database, #"SELECT seq FROM events WHERE payload LIKE '%"pg-user-2"%' ORDER BY seq LIMIT 1"#)))
        _ = try Self.psql(database, """
            DROP TRIGGER events_no_update ON events; DROP TRIGGER audit_checkpoints_no_change ON audit_checkpoints;
            DELETE FROM events WHERE seq > \(edited + 1); DELETE FROM audit_checkpoints;
            """)
        let cut = try await verify()
        #expect((cut["break"] as? [String: Any])?["kind"] as? String == "truncated", "\(cut)")
        #expect((cut["break"] as? [String: Any])?["sequence"] as? Int == edited + 2, "\(cut)")
        _ = try Self.psql(database, "UPDATE events SET payload = replace(payload, 'pg-user-2', 'pg-user-X') WHERE seq = \(edited)")
        let changed = try await verify()
        #expect((changed["break"] as? [String: Any])?["kind"] as? String == "edited", "\(changed)")
        #expect((changed["break"] as? [String: Any])?["sequence"] as? Int == edited, "\(changed)")
    }
}
