import Foundation
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// Retention prunes of the event log (migration 11) on every backend: only through a record that still
/// has the expected hash and lies past the previous prune, all at once; the chain continues from the cut.
@Suite("Event prunes")
struct EventPruneTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let digest = String(repeating: "ab", count: 32)

    static func events(_ n: Int, from: Int = 0) -> [NewEvent] {
        (0..<n).map { NewEvent(id: UUID(), time: t0.addingTimeInterval(Double(from + $0)), classUID: 3002, payloadJSON: "{\"n\":\(from + $0)}") }
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
