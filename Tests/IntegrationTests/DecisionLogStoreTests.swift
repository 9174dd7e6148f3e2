import Foundation
import GRDB
import MenshenCore
import MenshenPolicyAdministrator
import MenshenTestSupport
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Synchronization
import Testing

/// The decision log against a real SQLite file whose write lock another connection holds (as a long transaction of
/// another process would): the log's writes fail with SQLITE_BUSY, its batches wait to be written again, and with
/// `refuse` access is refused once decisions have waited past the grace; when the lock goes, everything is written, in
/// order, nothing lost.
@Suite("Decision log on a store that takes no write (real SQLite)")
struct DecisionLogStoreTests {
    static func trail(_ id: String, _ outcome: DecisionTrail.Outcome = .allow) -> DecisionTrail {
        DecisionTrail(requestID: id, time: Date(timeIntervalSince1970: 1_795_000_000), mode: .proxy, method: "GET", host: "h",
                      path: "/", sourceIP: "10.0.0.1", outcome: outcome)
    }

    @Test("refuse: access refused after the grace while the database is locked; written again in order once it is free; nothing dropped")
    func lockedStore() async throws {
        let (store, path, dir) = try Self.tempStore(busyTimeout: 0.2)
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = DecisionLog(store: store, clock: SystemClock(), whenUnwritten: .refuse, grace: .milliseconds(800))
        #expect(log.admitsAccess, "nothing waiting")

        // Another connection takes the write lock and keeps it.
        let blocker = try Self.writeLockHolder(path)

        for n in 0..<5 { log.record(Self.trail("r\(n)")) }
        #expect(log.admitsAccess, "within the grace")
        await log.flush()   // waits out the busy timeout, then fails: the batch is kept
        #expect(log.writtenCount == 0 && log.unwrittenCount == 5 && log.droppedCount == 0)
        try await Task.sleep(for: .milliseconds(900))
        #expect(!log.admitsAccess, "decisions waited past the grace on a store that took no write")
        // A refusal is still taken (the log is not full), behind the waiting batch.
        #expect(log.record(Self.trail("refused", .deny)))
        await log.flush()
        await log.flush()
        #expect(log.droppedCount == 0 && log.unwrittenCount == 6,
                "refuse: a batch that failed \(DecisionLog.maxAttempts) writes is kept until the store takes it")
        #expect(!log.admitsAccess)

        try blocker.inDatabase { db in try db.execute(sql: "COMMIT") }
        log.record(Self.trail("after"))
        await log.flush()
        #expect(log.admitsAccess && log.writtenCount == 7 && log.unwrittenCount == 0 && log.droppedCount == 0)
        let stored = try await store.events(after: 0, limit: 100).filter { $0.event.classUID == 6001 }
        let ids = stored.map { e in ["r0", "r1", "r2", "r3", "r4", "refused", "after"].first { e.event.payloadJSON.contains("\"uid\":\"\($0)\"") } }
        #expect(ids == ["r0", "r1", "r2", "r3", "r4", "refused", "after"], "every decision, once, in the order recorded")
        #expect(EventChain.firstBrokenLink(try await store.events(after: 0, limit: 100)) == nil)
        try await store.close()
    }

    /// Another connection on the database at `path`, holding its write lock (an open `BEGIN IMMEDIATE`) until `COMMIT`.
    static func writeLockHolder(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.allowsUnsafeTransactions = true   // the transaction is meant to stay open between accesses
        let blocker = try DatabaseQueue(path: path, configuration: config)
        try blocker.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        return blocker
    }

    static func tempStore(busyTimeout: TimeInterval = 5) throws -> (SQLiteStore, String, URL) {
        let dir = try Harness.tempDir()
        let path = dir.appendingPathComponent("m.sqlite").path
        return (try SQLiteStore(path: path, busyTimeout: busyTimeout), path, dir)
    }

    @Test("the write left under way by a flush that did not wait fails: the next flush writes it again, ahead of newer decisions")
    func inFlightFailure() async throws {
        let (store, path, dir) = try Self.tempStore(busyTimeout: 0.2)
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = DecisionLog(store: store, clock: SystemClock(), whenUnwritten: .refuse)
        let blocker = try Self.writeLockHolder(path)
        for n in 0..<3 { log.record(Self.trail("a\(n)")) }
        await log.flush(waitForLastWrite: false)   // returns with the write under way; it fails on the lock
        log.record(Self.trail("b0"))
        await log.flush(waitForLastWrite: false)   // starts while that write is still waiting on the lock
        log.record(Self.trail("b1"))
        try await Task.sleep(for: .milliseconds(500))
        try blocker.inDatabase { db in try db.execute(sql: "COMMIT") }
        await log.flush()
        #expect(log.writtenCount == 5 && log.unwrittenCount == 0 && log.droppedCount == 0)
        let stored = try await store.events(after: 0, limit: 100).filter { $0.event.classUID == 6001 }
        let order = ["a0", "a1", "a2", "b0", "b1"]
        #expect(stored.map { e in order.first { e.event.payloadJSON.contains("\"uid\":\"\($0)\"") } } == order)
        try await store.close()
    }

    /// The real SQLite store behind a write that commits and then reports a failure, as a PostgreSQL connection lost at
    /// commit does (the one fault a local SQLite file cannot show).
    final class CommitThenFail: EventStore, Sendable {
        let inner: SQLiteStore
        let failures = Mutex(1)
        init(_ inner: SQLiteStore) { self.inner = inner }
        func appendEvents(_ events: [NewEvent], hasher: @escaping EventChainHasher) async throws -> [StoredEvent] {
            let stored = try await inner.appendEvents(events, hasher: hasher)
            if failures.withLock({ f in defer { f -= 1 }; return f > 0 }) { throw StoreError(.unavailable, "connection lost at commit") }
            return stored
        }
        func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent] { try await inner.events(after: sequence, limit: limit) }
        func lastEvent() async throws -> StoredEvent? { try await inner.lastEvent() }
        func eventCount() async throws -> Int { try await inner.eventCount() }
    }

    @Test("a write reported as failed that had committed: written again, found stored (conflict), counted as written — once in the log, access not held back")
    func committedDespiteFailure() async throws {
        let (inner, _, dir) = try Self.tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = DecisionLog(store: CommitThenFail(inner), clock: SystemClock(), whenUnwritten: .refuse, grace: .seconds(30))
        for n in 0..<3 { log.record(Self.trail("c\(n)")) }
        await log.flush()
        #expect(log.writtenCount == 0 && log.unwrittenCount == 3, "reported as failed: kept")
        log.record(Self.trail("d0"))
        await log.flush()
        #expect(log.writtenCount == 4 && log.unwrittenCount == 0 && log.droppedCount == 0)
        let stored = try await inner.events(after: 0, limit: 100).filter { $0.event.classUID == 6001 }
        #expect(stored.map { e in ["c0", "c1", "c2", "d0"].first { e.event.payloadJSON.contains("\"uid\":\"\($0)\"") } } == ["c0", "c1", "c2", "d0"],
                "each decision once")
        try await inner.close()
    }

    @Test("flushes called at once are served one at a time: every decision once, in the order recorded")
    func concurrentFlushes() async throws {
        let (store, _, dir) = try Self.tempStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = DecisionLog(store: store, clock: SystemClock(), whenUnwritten: .refuse)
        var expected: [String] = []
        await withTaskGroup(of: Void.self) { group in
            for round in 0..<20 {
                for n in 0..<150 { let id = "x\(round)-\(n)"; log.record(Self.trail(id)); expected.append(id) }
                group.addTask { await log.flush(waitForLastWrite: round % 2 == 0) }
            }
        }
        await log.flush()
        #expect(log.writtenCount == expected.count && log.unwrittenCount == 0)
        let stored = try await store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 6001 }
        let ids = stored.compactMap { e -> String? in
            guard let r = e.event.payloadJSON.range(of: #""uid":"x"#) else { return nil }
            return "x" + e.event.payloadJSON[r.upperBound...].prefix { $0 != "\"" }
        }
        #expect(ids == expected)
        try await store.close()
    }

    @Test("shutdown: what the store still refuses is dropped and counted, not waited on for ever")
    func shutdownDrops() async throws {
        let store = InMemoryStore()
        let log = DecisionLog(store: store, clock: SystemClock(), flushInterval: .milliseconds(20), whenUnwritten: .refuse)
        try await store.close()
        log.record(Self.trail("a"))
        let run = Task { try await log.run() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(log.unwrittenCount == 1 && log.droppedCount == 0, "kept to be written again while running")
        run.cancel()
        try await run.value
        #expect(log.unwrittenCount == 0 && log.droppedCount == 1)
    }
}

/// The same through the real `menshen serve` (SQLite, `audit.unwritten_grace_seconds: 1`, a busy timeout of 1 s): while
/// another connection holds the database's write lock, the gateway goes on forwarding for the grace, then refuses
/// with 503; once the lock goes it forwards again, and every decision it forwarded on is in the log, the refusals
/// too.
@Suite("Fail-closed decision audit (real menshen serve)", .serialized)
struct AuditFailClosedServeTests {
    @Test("a locked database: 200 within the grace, then 503 (audit_unavailable), then 200 again; no forwarded decision lost")
    func lockedDatabase() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await Harness.offPool {
            UncheckedBox(value: try RiskScoreGatewayTests.Server(dir: dir, sqliteExtra: "busy_timeout_seconds: 1",
                                                                 extra: "audit:\n  unwritten_grace_seconds: 1\n"))
        }.value
        defer { server.stop() }
        let store = try SQLiteStore(path: server.database)
        let cookie = try await RiskScoreGatewayTests.amyOfStaff(store)
        #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: cookie, limit: 10) != nil)
        // Everything so far written: then the lock.
        try await Task.sleep(for: .milliseconds(600))
        let blocker = try DecisionLogStoreTests.writeLockHolder(server.database)
        let locked = Date()
        var forwarded = 1, refusedAt: Double?
        while Date().timeIntervalSince(locked) < 15 {
            let status = try await RiskScoreGatewayTests.status(server.gateway, cookie: cookie)
            if status == 200 { forwarded += 1 } else if status == 503 { refusedAt = Date().timeIntervalSince(locked); break } else {
                Issue.record("unexpected status \(status)"); break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try blocker.inDatabase { db in try db.execute(sql: "COMMIT") }
        let refusedAfter = try #require(refusedAt, "never refused while the database was locked: \(server.err.text.suffix(1500))")
        #expect(refusedAfter >= 0.9, "refused only once decisions had waited out the grace (\(refusedAfter) s)")
        #expect(forwarded > 1, "forwarded within the grace")
        #expect(try await TimedMultiNodeTests.until(200, server.gateway + "/healthz", cookie: cookie, limit: 10) != nil,
                "forwards again once the store takes writes")
        forwarded += 1
        // Every forwarded request's decision reaches the log, and the refusal with it.
        var allowed = 0, refusals = 0
        for _ in 0..<100 {
            let decisions = try await store.events(after: 0, limit: 100_000).filter { $0.event.classUID == 6001 && $0.event.userID == "amy" }
            allowed = decisions.filter { RiskScoreGatewayTests.payload($0)["action_id"] as? Int == 1 }.count
            refusals = decisions.filter { $0.event.payloadJSON.contains(#""status_detail":"deny: audit_unavailable""#) }.count
            if allowed >= forwarded && refusals >= 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(allowed >= forwarded, "\(allowed) allowed decisions logged for \(forwarded) forwarded requests")
        #expect(refusals >= 1)
        try await store.close()
    }
}
