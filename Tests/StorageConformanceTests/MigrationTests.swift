import Foundation
import MenshenCore
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// Schema evolution on the real backends: a database created by migration N
/// opens under N+1 with its data, and a database newer than the binary is refused untouched.
@Suite("Migrations")
struct MigrationTests {
    static var sqlBackends: [Backend] { Backend.available.filter { $0 != .memory } }

    static func migrations(_ b: Backend) -> [Migration] {
        b == .sqlite ? SQLiteMigrations.all : PostgresMigrations.all
    }

    /// Reopens the same database with another migration list.
    static func reopen(_ b: Backend, _ location: String, _ migrations: [Migration]) async throws -> any MenshenStore {
        switch b {
        case .sqlite: return try SQLiteStore(path: location, migrations: migrations)
        case .postgres: return try await PostgresStore(url: try PostgresURL(location), migrations: migrations)
        case .memory: throw StoreError(.backend, "not a SQL backend")
        }
    }

    @Test("both backends define the same migration versions")
    func sameVersions() {
        #expect(SQLiteMigrations.all.map(\.version) == PostgresMigrations.all.map(\.version))
        #expect(SQLiteMigrations.all.map(\.version) == Array(1...SQLiteMigrations.all.count))
    }

    @Test("a database created by migration N opens under N+1 and keeps its data", arguments: sqlBackends)
    func upgrade(_ backend: Backend) async throws {
        let all = Self.migrations(backend)
        for n in 1..<all.count {
            let f = try await Fixture.make(backend, migrations: Array(all.prefix(n)))
            let location = backend == .postgres ? try #require((f.store as? PostgresStore)?.url).passwordless : f.location
            #expect(try await f.store.schemaVersion() == all[n - 1].version)
            try await f.store.createUser(UserRecord(id: "alice", displayName: "Alice", createdAt: Date(timeIntervalSince1970: 1)))
            try await f.store.close()

            let upgraded = try await Self.reopen(backend, location, Array(all.prefix(n + 1)))
            #expect(try await upgraded.schemaVersion() == all[n].version)
            #expect(try await upgraded.user("alice")?.displayName == "Alice")
            if n + 1 >= 2 {
                let stored = try await upgraded.appendEvents([NewEvent(id: UUID(), time: Date(timeIntervalSince1970: 2), classUID: 3002,
                                                                       payloadJSON: "{}")], hasher: EventChain.hasher)
                #expect(stored.count == 1)
            }
            try await upgraded.close()
            await f.cleanup()
        }
    }

    @Test("migration 18 carries the change counters over (no change seen by the upgrade itself) and counts devices apart from then on", arguments: sqlBackends)
    func countersCarriedOver(_ backend: Backend) async throws {
        let all = Self.migrations(backend)
        let before18 = Array(all.prefix(17))
        let f = try await Fixture.make(backend, migrations: before18)
        let location = backend == .postgres ? try #require((f.store as? PostgresStore)?.url).passwordless : f.location
        let t0 = Date(timeIntervalSince1970: 1)
        try await f.store.createUser(UserRecord(id: "alice", displayName: "Alice", createdAt: t0))
        for n in 1...3 {   // access changes, and a configuration change
            var alice = try #require(try await f.store.user("alice"))
            alice.displayName = "Alice \(n)"
            try await f.store.updateUser(alice)
        }
        _ = try await f.store.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: t0)
        try await f.store.createDevice(DeviceRecord(id: "laptop-1", ownerID: "alice", displayName: "laptop-1", deviceClass: .managed,
                                                    platform: "linux", hardwareBound: true, enrolledAt: t0))
        var laptop = try #require(try await f.store.device("laptop-1"))
        laptop.compliant = true
        #expect(try await f.store.updateDevice(laptop, expectedVersion: laptop.version))   // an access change before 18
        let old = try await f.store.changeGenerations()
        #expect(old.access >= 4 && old.configuration >= 1 && old.device == 0, "\(old)")
        try await f.store.close()

        let upgraded = try await Self.reopen(backend, location, all)
        #expect(try await upgraded.changeGenerations() == ChangeGenerations(access: old.access, configuration: old.configuration, device: 0),
                "the upgrade itself is no change")
        laptop = try #require(try await upgraded.device("laptop-1"))
        laptop.compliant = false
        #expect(try await upgraded.updateDevice(laptop, expectedVersion: laptop.version))
        var alice = try #require(try await upgraded.user("alice"))
        alice.disabled = true
        try await upgraded.updateUser(alice)
        #expect(try await upgraded.changeGenerations() == ChangeGenerations(access: old.access + 1, configuration: old.configuration, device: 1))
        try await upgraded.close()
        await f.cleanup()
    }

    @Test("a database newer than the binary is refused and left untouched", arguments: sqlBackends)
    func tooNew(_ backend: Backend) async throws {
        let all = Self.migrations(backend)
        let f = try await Fixture.make(backend)
        let location = backend == .postgres ? try #require((f.store as? PostgresStore)?.url).passwordless : f.location
        try await f.store.createUser(UserRecord(id: "alice", displayName: "Alice", createdAt: Date(timeIntervalSince1970: 1)))
        try await f.store.close()
        let before = backend == .sqlite ? FileManager.default.contents(atPath: location) : nil

        await #expect(throws: StoreError(.schemaTooNew, "")) { _ = try await Self.reopen(backend, location, Array(all.prefix(1))) }
        if backend == .sqlite { #expect(FileManager.default.contents(atPath: location) == before) }

        let again = try await Self.reopen(backend, location, all)
        #expect(try await again.schemaVersion() == all.last?.version)
        #expect(try await again.user("alice") != nil)
        try await again.close()
        await f.cleanup()
    }

    @Test("events cannot be edited or deleted in the database itself", arguments: sqlBackends)
    func appendOnly(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        _ = try await f.store.appendEvents([NewEvent(id: UUID(), time: Date(timeIntervalSince1970: 1), classUID: 3002, payloadJSON: "{}")],
                                           hasher: EventChain.hasher)
        switch backend {
        case .sqlite:
            let store = try SQLiteStore(path: f.location)
            #expect(throws: (any Error).self) { try store.unsafeExecute("UPDATE events SET payload = 'x'") }
            #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM events") }
            try await store.close()
        case .postgres:
            let url = try #require((f.store as? PostgresStore)?.url)
            await #expect(throws: (any Error).self) { try await TestPostgres.execute(on: url, "UPDATE events SET payload = 'x'") }
            await #expect(throws: (any Error).self) { try await TestPostgres.execute(on: url, "DELETE FROM events") }
        case .memory: break
        }
        #expect(try await f.store.eventCount() == 1)
        await f.cleanup()
    }
}

extension PostgresURL {
    /// The URL text without a password (test servers use trust authentication).
    var passwordless: String { "postgres://\(username)@\(host):\(port)/\(database ?? "")?sslmode=disable" }
}
