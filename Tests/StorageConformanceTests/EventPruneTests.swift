import Foundation
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// Retention prunes of the event log (migration 11) on every backend: only through a record that still
/// has the expected hash and lies past the previous prune, deleted a chunk per transaction so appends go on
/// meanwhile; the chain continues from the cut.
@Suite("Event prunes")
struct EventPruneTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let digest = String(repeating: "ab", count: 32)

    static func events(_ n: Int, from: Int = 0, padding: String = "") -> [NewEvent] {
        (0..<n).map {
            NewEvent(id: UUID(), time: t0.addingTimeInterval(Double(from + $0)), classUID: 3002,
                     payloadJSON: padding.isEmpty ? "{\"n\":\(from + $0)}" : "{\"n\":\(from + $0),\"pad\":\"\(padding)\"}")
        }
    }

    /// `total` events appended 2,000 at a time.
    static func fill(_ s: any EventStore, _ total: Int, padding: String = "") async throws -> [StoredEvent] {
        var stored: [StoredEvent] = []
        while stored.count < total {
            stored += try await s.appendEvents(events(min(2_000, total - stored.count), from: stored.count, padding: padding), hasher: EventChain.hasher)
        }
        return stored
    }

    /// A prune through `through` started in a task (its count and when it ended), returned once its first chunk is
    /// gone as `watcher` sees it (the log held `total` events before).
    static func pruneStarted(_ pruner: any EventStore & EventPruneStore, through: StoredEvent, total: Int, watcher: any EventStore) async throws
        -> (record: EventPruneRecord, task: Task<(Int, ContinuousClock.Instant), any Error>) {
        let record = EventPruneRecord(throughSequence: through.sequence, throughHash: through.hash, eventCount: through.sequence,
                                      exportSHA256: digest, prunedAt: t0)
        let task = Task { (try await pruner.pruneEvents(record), ContinuousClock.now) }
        let deadline = ContinuousClock.now + .seconds(60)
        while try await watcher.eventCount() == total, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        return (record, task)
    }

    @Test("a prune deletes exactly the records through its boundary and is remembered; wrong hashes, repeats and bad records change nothing", arguments: Backend.available)
    func prune(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            let stored = try await s.appendEvents(Self.events(10), hasher: EventChain.hasher)
            #expect(try await s.lastPrune() == nil)
            let wrong = EventPruneRecord(throughSequence: 4, throughHash: stored[2].hash, eventCount: 4, exportSHA256: Self.digest, prunedAt: Self.t0)
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.pruneEvents(wrong) }
            let beyond = EventPruneRecord(throughSequence: 11, throughHash: stored[9].hash, eventCount: 11, exportSHA256: Self.digest, prunedAt: Self.t0)
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.pruneEvents(beyond) }
            for bad in [EventPruneRecord(throughSequence: 0, throughHash: stored[0].hash, eventCount: 1, exportSHA256: Self.digest, prunedAt: Self.t0),
                        EventPruneRecord(throughSequence: 4, throughHash: stored[3].hash, eventCount: 4, exportSHA256: "x'; --", prunedAt: Self.t0)] {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.pruneEvents(bad) }
            }
            #expect(try await s.eventCount() == 10, "refused prunes change nothing")
            #expect(try await s.lastPrune() == nil)

            let good = EventPruneRecord(throughSequence: 4, throughHash: stored[3].hash, eventCount: 4, exportSHA256: Self.digest, prunedAt: Self.t0)
            #expect(try await s.pruneEvents(good) == 4)
            #expect(try await s.lastPrune() == good)
            let left = try await s.events(after: 0, limit: 100)
            #expect(left.map(\.sequence) == Array(5...10) && left.first?.previousHash == stored[3].hash)
            // Not again, and not behind the previous prune.
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.pruneEvents(good) }
            // Appends continue the chain; a later prune moves the boundary on.
            let more = try await s.appendEvents(Self.events(2, from: 10), hasher: EventChain.hasher)
            #expect(more.first?.sequence == 11 && more.first?.previousHash == stored[9].hash)
            let next = EventPruneRecord(throughSequence: 11, throughHash: more[0].hash, eventCount: 7, exportSHA256: Self.digest, prunedAt: Self.t0)
            #expect(try await s.pruneEvents(next) == 7)
            #expect(try await s.lastPrune()?.throughSequence == 11)
            #expect(try await s.events(after: 0, limit: 100).map(\.sequence) == [12])
            #expect(try await s.searchEvents(EventQuery(), order: .oldestFirst, after: nil, limit: 10).map(\.sequence) == [12])
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("a prune of many chunks deletes everything through its boundary, a chunk per transaction: an append made meanwhile is not held up until it ends", arguments: MigrationTests.sqlBackends)
    func chunked(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            let chunk = SQLiteStore.pruneChunk
            #expect(chunk == PostgresStore.pruneChunk)
            let total = 8 * chunk + 17
            let stored = try await Self.fill(s, total, padding: String(repeating: "p", count: 400))
            let through = stored[total - 11]
            // Once the first chunk is gone (its transaction committed), an append.
            let (record, pruning) = try await Self.pruneStarted(s, through: through, total: total, watcher: s)
            let appended = try await s.appendEvents(Self.events(1, from: total), hasher: EventChain.hasher)
            let appendDone = ContinuousClock.now
            let (deleted, pruneDone) = try await pruning.value
            #expect(deleted == Int(through.sequence))
            #expect(appendDone < pruneDone, "the append waited for the whole prune")
            let left = try await s.events(after: 0, limit: 100)
            #expect(left.map(\.sequence) == Array((through.sequence + 1)...Int64(total + 1)))
            #expect(left.first?.previousHash == through.hash && appended.first?.previousHash == stored[total - 1].hash)
            #expect(try await s.lastPrune() == record)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("SQLite: a writer of another connection (as of another process) gets the lock between a prune's chunks, within a 2 s busy timeout")
    func chunkedAcrossConnections() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prune-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.sqlite").path
        let pruner = try SQLiteStore(path: path)
        let writer = try SQLiteStore(path: path, busyTimeout: 2)
        let total = 6 * SQLiteStore.pruneChunk
        let stored = try await Self.fill(pruner, total)
        let (_, pruning) = try await Self.pruneStarted(pruner, through: stored[total - 2], total: total, watcher: writer)
        let through = stored[total - 2]
        // Several appends through the other connection while the prune goes on: none waits out its busy timeout.
        for n in 0..<3 { _ = try await writer.appendEvents(Self.events(1, from: total + n), hasher: EventChain.hasher) }
        let appendsDone = ContinuousClock.now
        let (deleted, pruneDone) = try await pruning.value
        #expect(deleted == Int(through.sequence))
        #expect(appendsDone < pruneDone)
        #expect(try await pruner.events(after: 0, limit: 10).map(\.sequence) == Array((through.sequence + 1)...Int64(total + 3)))
        try await writer.close()
        try await pruner.close()
    }

    @Test("a prune interrupted after its record (a crash between chunks) leaves events below it; the next prune deletes them with its own (what chunked deletes rely on)", arguments: MigrationTests.sqlBackends)
    func interrupted(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let stored = try await f.store.appendEvents(Self.events(10), hasher: EventChain.hasher)
            // What a crash after the record and before any delete leaves: the prune recorded, its events still there.
            let sql = "INSERT INTO event_prunes(through_seq, through_hash, event_count, export_sha256, pruned_at) VALUES (4, '\(stored[3].hash)', 4, '\(Self.digest)', 0)"
            switch backend {
            case .sqlite: try #require(f.store as? SQLiteStore).unsafeExecute(sql)
            default: try await TestPostgres.execute(on: try #require((f.store as? PostgresStore)?.url), sql)
            }
            #expect(try await f.store.eventCount() == 10)
            #expect(try await f.store.lastPrune()?.throughSequence == 4)
            let next = EventPruneRecord(throughSequence: 7, throughHash: stored[6].hash, eventCount: 3, exportSHA256: Self.digest, prunedAt: Self.t0)
            #expect(try await f.store.pruneEvents(next) == 7)
            #expect(try await f.store.events(after: 0, limit: 100).map(\.sequence) == [8, 9, 10])
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("the database still refuses deleting events past the newest prune, and changing a prune", arguments: MigrationTests.sqlBackends)
    func triggers(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let stored = try await f.store.appendEvents(Self.events(6), hasher: EventChain.hasher)
            _ = try await f.store.pruneEvents(EventPruneRecord(throughSequence: 3, throughHash: stored[2].hash, eventCount: 3,
                                                               exportSHA256: Self.digest, prunedAt: Self.t0))
            switch backend {
            case .sqlite:
                let store = try #require(f.store as? SQLiteStore)
                #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM events WHERE seq = 4") }
                #expect(throws: (any Error).self) { try store.unsafeExecute("UPDATE events SET payload = '{}' WHERE seq = 5") }
                #expect(throws: (any Error).self) { try store.unsafeExecute("UPDATE event_prunes SET through_seq = 5") }
                #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM event_prunes") }
            default:
                let url = try #require((f.store as? PostgresStore)?.url)
                for sql in ["DELETE FROM events WHERE seq = 4", "UPDATE events SET payload = '{}' WHERE seq = 5",
                            "UPDATE event_prunes SET through_seq = 5", "DELETE FROM event_prunes"] {
                    await #expect(throws: (any Error).self) { try await TestPostgres.execute(on: url, sql) }
                }
            }
            #expect(try await f.store.eventCount() == 3)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
