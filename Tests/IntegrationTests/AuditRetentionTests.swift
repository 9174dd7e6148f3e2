import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// Audit retention on a schedule (`audit.retention_days`, ``AuditRetention``) on a real SQLite file laid out as
/// `menshen serve` lays it out (database, `audit.key`, `audit-anchor.jsonl` in one directory), driven with a
/// fixed clock rather than by waiting a day: 15 events 100 days old with checkpoints at 5 and 10, then 10
/// events a day old with a checkpoint at 25. A 30-day retention prunes exactly 1…10 (11…15 are older too but
/// no checkpoint covers them), the export holds exactly those records and `menshen audit verify` (the real
/// binary) still passes; no checkpoint, a lagging consumer cursor and retention 0 hold it back.
@Suite("Audit retention schedule")
struct AuditRetentionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Deployment {
        let dir: URL
        var data: String { dir.appendingPathComponent("menshen-data").path }
        var database: String { data + "/menshen.sqlite" }
        var exports: String { dir.appendingPathComponent("exports").path }

        func config(days: Int = 30) -> MenshenConfiguration {
            var c = MenshenConfiguration.defaults
            c.store.sqlitePath = database
            c.audit.retentionDays = days
            c.audit.retentionExportDir = exports
            return c
        }
    }

    /// Appends `n` events at `time`.
    static func append(_ store: any MenshenStore, _ n: Int, at time: Date) async throws {
        _ = try await store.appendEvents((0..<n).map { i in
            NewEvent(id: UUID(), time: time, classUID: 3002, payloadJSON: #"{"class_uid":3002,"n":\#(i)}"#)
        }, hasher: EventChain.hasher)
    }

    /// The seeded log (see the suite's comment); `checkpoints: false` leaves out every checkpoint.
    static func seed(checkpoints: Bool = true) async throws -> (Deployment, SQLiteStore, AuditCheckpointer) {
        let d = Deployment(dir: try Harness.tempDir())
        try FileManager.default.createDirectory(atPath: d.data, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: d.database)
        let config = d.config()
        let clock = FixedClock(now.addingTimeInterval(-100 * 86_400))
        let key = try AuditFiles.loadOrCreateKey(path: try #require(AuditFiles.keyPath(config)), mayCreate: true)
        let checkpointer = AuditCheckpointer(store: store, key: key, anchorPath: AuditFiles.anchorPath(config), everyEvents: 1_000_000,
                                             interval: 86_400, clock: clock)
        try await append(store, 5, at: clock.now())
        if checkpoints { #expect(try await checkpointer.checkpoint(force: true)?.sequence == 5) }
        try await append(store, 5, at: clock.now())
        if checkpoints { #expect(try await checkpointer.checkpoint(force: true)?.sequence == 10) }
        try await append(store, 5, at: clock.now().addingTimeInterval(86_400))
        clock.set(now.addingTimeInterval(-86_400))
        try await append(store, 10, at: clock.now())
        if checkpoints { #expect(try await checkpointer.checkpoint(force: true)?.sequence == 25) }
        return (d, store, checkpointer)
    }

    static func retention(_ d: Deployment, _ store: SQLiteStore, _ checkpointer: AuditCheckpointer,
                          config: MenshenConfiguration? = nil) -> AuditRetention {
        AuditRetention.configured(config ?? d.config(), store: store, checkpointer: checkpointer, clock: FixedClock(now),
                                  logger: Logger(label: "test.retention"))!
    }

    static func verify(_ d: Deployment) async throws -> (status: Int32, json: [String: Any]) {
        let r = try await Harness.runAsync(["audit", "verify", "--data", d.data, "--json"])
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:])
    }

    @Test("prunes exactly the records before the newest checkpoint older than the retention; the export holds exactly them; the log verifies")
    func prunesExpectedRange() async throws {
        let (d, store, checkpointer) = try await Self.seed()
        defer { try? FileManager.default.removeItem(at: d.dir) }
        let outcome = await Self.retention(d, store, checkpointer).runOnce()
        guard case .pruned(let from, let through, let file, let held) = outcome else {
            Issue.record("expected a prune, got \(outcome)"); return
        }
        #expect(from == 1 && through == 10 && held == nil)
        #expect(file == d.exports + "/audit-export-20270115T080000Z-1-10.jsonl", "\(file)")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600, "export mode \(String(mode ?? 0, radix: 8))")

        // The export: header, records 1…10 exactly, trailer; it verifies on its own.
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 12)
        let sequences = lines.dropFirst().dropLast().compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["sequence"] as? Int
        }
        #expect(sequences == Array(1...10))
        let exported = try AuditPruner.read(path: file, keys: [checkpointer.verifyKey]).verification
        #expect(exported.intact && exported.records == 10)

        // The log: 11…25 remain, then the prune's own event (OCSF 1008 by menshen:retention), signed over.
        let left = try await store.events(after: 0, limit: 1000)
        #expect(left.first?.sequence == 11 && left.count == 16)
        let pruneEvent = try #require(left.last)
        #expect(pruneEvent.event.classUID == 1008 && pruneEvent.event.payloadJSON.contains("menshen:retention"), "\(pruneEvent.event.payloadJSON)")
        #expect(try await store.lastCheckpoint()?.sequence == pruneEvent.sequence)
        try await store.close()
        let v = try await Self.verify(d)
        #expect(v.status == 0 && v.json["status"] as? String == "intact" && v.json["pruned_through"] as? Int == 10, "\(v.json)")

        // A second run the same day: 11…15 are older but still no checkpoint covers them.
        let again = try SQLiteStore(path: d.database)
        let second = await Self.retention(d, again, checkpointer).runOnce()
        guard case .nothing(let reason) = second else { Issue.record("expected nothing, got \(second)"); return }
        #expect(reason.contains("no signed checkpoint"), "\(reason)")
        try await again.close()
    }

    @Test("no checkpoint: nothing pruned, the reason says so, the log is unchanged")
    func noCheckpoint() async throws {
        let (d, store, checkpointer) = try await Self.seed(checkpoints: false)
        defer { try? FileManager.default.removeItem(at: d.dir) }
        let outcome = await Self.retention(d, store, checkpointer).runOnce()
        guard case .nothing(let reason) = outcome else { Issue.record("expected nothing, got \(outcome)"); return }
        #expect(reason.contains("no signed checkpoint covers"), "\(reason)")
        #expect(try await store.eventCount() == 25)
        #expect(try await store.lastPrune() == nil)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: d.exports)) ?? []).isEmpty, "no export written")
        try await store.close()
    }

    @Test("a lagging consumer cursor holds the cut back to the checkpoint before it, or stops the prune")
    func consumerCursorHoldsBack() async throws {
        let (d, store, checkpointer) = try await Self.seed()
        defer { try? FileManager.default.removeItem(at: d.dir) }
        var config = d.config()
        config.syslogExport.enabled = true
        // The SIEM export is enabled but has never saved a cursor: it would start at the first record.
        let never = await Self.retention(d, store, checkpointer, config: config).runOnce()
        guard case .nothing(let reason0) = never else { Issue.record("expected nothing, got \(never)"); return }
        #expect(reason0.contains("held back by the consumer export.syslog at sequence 0"), "\(reason0)")

        try await store.saveCursor(named: "export.syslog", sequence: 7, at: Self.now)
        let outcome = await Self.retention(d, store, checkpointer, config: config).runOnce()
        guard case .pruned(let from, let through, _, let held) = outcome else { Issue.record("expected a prune, got \(outcome)"); return }
        #expect(from == 1 && through == 5, "cut at the checkpoint at 5, not 10: the export has read through 7")
        #expect(held == AuditPruneConsumers.HoldBack(consumer: "export.syslog", sequence: 7))

        // The detections' cursor counts too (they always run in menshen serve).
        try await store.saveCursor(named: "export.syslog", sequence: 30, at: Self.now)
        try await store.saveCursor(named: DetectionService.cursorName, sequence: 8, at: Self.now)
        let detections = await Self.retention(d, store, checkpointer, config: config).runOnce()
        guard case .nothing(let reason) = detections else { Issue.record("expected nothing, got \(detections)"); return }
        #expect(reason.contains("held back by the consumer detections at sequence 8"), "\(reason)")
        #expect(try await store.lastPrune()?.throughSequence == 5)
        try await store.close()
        let v = try await Self.verify(d)
        #expect(v.status == 0 && v.json["pruned_through"] as? Int == 5, "\(v.json)")
    }

    @Test("retention 0 (the default) is off: no service, and a run prunes nothing")
    func retentionZero() async throws {
        let (d, store, checkpointer) = try await Self.seed()
        defer { try? FileManager.default.removeItem(at: d.dir) }
        #expect(MenshenConfiguration.defaults.audit.retentionDays == 0)
        #expect(AuditRetention.configured(d.config(days: 0), store: store, checkpointer: checkpointer, clock: FixedClock(Self.now),
                                          logger: Logger(label: "test")) == nil)
        let direct = AuditRetention(store: store, config: d.config(days: 0), keys: [checkpointer.verifyKey], checkpointer: checkpointer,
                                    clock: FixedClock(Self.now), logger: Logger(label: "test"))
        #expect(await direct.runOnce() == .off)
        // 200 days: every record is younger, nothing to prune.
        let long = await Self.retention(d, store, checkpointer, config: d.config(days: 200)).runOnce()
        guard case .nothing = long else { Issue.record("expected nothing, got \(long)"); return }
        #expect(try await store.eventCount() == 25)
        #expect(try await store.lastPrune() == nil)
        try await store.close()
    }

    @Test("the service prunes once at start, without waiting for the day")
    func runsAtStart() async throws {
        let (d, store, checkpointer) = try await Self.seed()
        defer { try? FileManager.default.removeItem(at: d.dir) }
        let service = Self.retention(d, store, checkpointer)
        let task = Task { try await service.run() }
        var pruned: Int64?
        for _ in 0..<600 where pruned == nil {
            pruned = try await store.lastPrune()?.throughSequence
            if pruned == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        task.cancel()
        _ = try? await task.value
        #expect(pruned == 10)
        try await store.close()
    }

    @Test("PostgreSQL: two nodes pruning at once delete the records once; the log still verifies")
    func postgresTwoNodes() async throws {
        guard let url = try TimedMultiNodeTests.createDatabase() else { return }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = MenshenConfiguration.defaults
        config.store.driver = .postgres
        config.store.postgresURL = url
        config.audit.retentionDays = 30
        let keyPath = dir.appendingPathComponent("audit.key").path
        config.audit.signingKeyFile = keyPath
        let key = try AuditFiles.loadOrCreateKey(path: keyPath, mayCreate: true)
        let storeA = try await StoreFactory.open(config, logger: Logger(label: "a"))
        let storeB = try await StoreFactory.open(config, logger: Logger(label: "b"))
        let old = FixedClock(Self.now.addingTimeInterval(-100 * 86_400))
        let seeder = AuditCheckpointer(store: storeA, key: key, anchorPath: dir.appendingPathComponent("anchor-seed.jsonl").path,
                                       everyEvents: 1_000_000, interval: 86_400, clock: old)
        try await Self.append(storeA, 10, at: old.now())
        #expect(try await seeder.checkpoint(force: true)?.sequence == 10)
        try await Self.append(storeA, 5, at: Self.now.addingTimeInterval(-86_400))

        func node(_ name: String, _ store: any MenshenStore) -> AuditRetention {
            var c = config
            c.audit.retentionExportDir = dir.appendingPathComponent("exports-\(name)").path
            let cp = AuditCheckpointer(store: store, key: key, anchorPath: dir.appendingPathComponent("anchor-\(name).jsonl").path,
                                       everyEvents: 1_000_000, interval: 86_400, clock: FixedClock(Self.now))
            return AuditRetention.configured(c, store: store, checkpointer: cp, clock: FixedClock(Self.now), logger: Logger(label: name))!
        }
        let a = node("a", storeA), b = node("b", storeB)
        async let ra = a.runOnce()
        async let rb = b.runOnce()
        let outcomes = await [ra, rb]
        let pruned = outcomes.filter { if case .pruned = $0 { return true } else { return false } }
        #expect(pruned.count == 1, "exactly one node prunes: \(outcomes)")
        #expect(try await storeA.lastPrune()?.throughSequence == 10)
        // 11…15, one prune event (the loser may have recorded one too if it passed the re-check first).
        let left = try await storeA.events(after: 0, limit: 100)
        #expect(left.first?.sequence == 11 && left.filter { $0.event.classUID == 1008 }.count >= 1)
        let exports = ["a", "b"].flatMap { (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("exports-\($0)").path)) ?? [] }
        #expect(exports.count == 1, "the losing node removed its export: \(exports)")
        try await storeA.close()
        try await storeB.close()
    }
}
