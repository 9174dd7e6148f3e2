import Foundation
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// The named consumer cursors (migration 8) on every backend: what the SIEM
/// export, and later detections and playbooks, resume from after a restart.
@Suite("Consumer cursors")
struct ConsumerCursorTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    @Test("a cursor is absent until saved, then read back, replaced (also backwards) and kept apart from other names", arguments: Backend.available)
    func roundTrip(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.cursor(named: "export.syslog") == nil)
            try await s.saveCursor(named: "export.syslog", sequence: 42, at: Self.t0)
            #expect(try await s.cursor(named: "export.syslog") == 42)
            try await s.saveCursor(named: "export.syslog", sequence: 9_000_000_000, at: Self.t0.addingTimeInterval(1))
            #expect(try await s.cursor(named: "export.syslog") == 9_000_000_000)
            try await s.saveCursor(named: "export.syslog", sequence: 7, at: Self.t0.addingTimeInterval(2))
            #expect(try await s.cursor(named: "export.syslog") == 7, "a consumer may move its cursor back to replay")
            try await s.saveCursor(named: "detections:main", sequence: 0, at: Self.t0)
            #expect(try await s.cursor(named: "detections:main") == 0)
            #expect(try await s.cursor(named: "export.syslog") == 7)
            #expect(try await s.cursor(named: "Export.Syslog") == nil, "names are case-sensitive")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("bad names and negative sequences are refused and store nothing", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.saveCursor(named: "export.syslog", sequence: 5, at: Self.t0)
            for bad in ["", String(repeating: "a", count: 65), "has space", "quote'; DROP TABLE events; --", "名稱", "a\u{0}b", "new\nline"] {
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveCursor(named: bad, sequence: 1, at: Self.t0) }
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.cursor(named: bad) }
            }
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveCursor(named: "export.syslog", sequence: -1, at: Self.t0) }
            #expect(try await s.cursor(named: "export.syslog") == 5)
            try await s.saveCursor(named: String(repeating: "a", count: 64), sequence: 1, at: Self.t0)
            #expect(try await s.cursor(named: String(repeating: "a", count: 64)) == 1)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("a saved cursor survives closing and reopening the database", arguments: MigrationTests.sqlBackends)
    func persistent(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        let location = backend == .postgres ? try #require((f.store as? PostgresStore)?.url).passwordless : f.location
        try await f.store.saveCursor(named: "export.syslog", sequence: 1234, at: Self.t0)
        try await f.store.close()
        let again = try await MigrationTests.reopen(backend, location, MigrationTests.migrations(backend))
        #expect(try await again.cursor(named: "export.syslog") == 1234)
        try await again.close()
        await f.cleanup()
    }
}
