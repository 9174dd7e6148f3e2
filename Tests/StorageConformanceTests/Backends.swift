import Foundation
import Logging
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import PostgresNIO
import Testing

/// The backends every conformance case runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres
    var testDescription: String { rawValue }

    /// `MENSHEN_TEST_POSTGRES_URL` (e.g. postgres://postgres@127.0.0.1:15432/postgres) points at a
    /// server where the tests may create and drop databases. Under CI it must be set.
    static var postgresURL: String? {
        let v = ProcessInfo.processInfo.environment["MENSHEN_TEST_POSTGRES_URL"]
        return (v?.isEmpty ?? true) ? nil : v
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The backends available here. Without PostgreSQL outside CI the
    /// PostgreSQL half is skipped with a loud message; under CI it fails.
    static var available: [Backend] {
        if postgresURL == nil {
            if !isCI {
                FileHandle.standardError.write(Data("""
                    ************************************************************************
                    WARNING: MENSHEN_TEST_POSTGRES_URL is not set: the PostgreSQL half of the
                    store conformance suite is SKIPPED. Run scripts/test to run everything.
                    ************************************************************************

                    """.utf8))
                return [.memory, .sqlite]
            }
        }
        return Backend.allCases
    }
}

/// A fresh, empty store of one backend, with its cleanup.
struct Fixture: Sendable {
    var store: any MenshenStore
    var location: String
    var cleanup: @Sendable () async -> Void

    static func make(_ backend: Backend, migrations: [Migration]? = nil) async throws -> Fixture {
        switch backend {
        case .memory:
            return Fixture(store: InMemoryStore(), location: "memory", cleanup: {})
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let path = dir.appendingPathComponent("menshen.sqlite").path
            let store = try SQLiteStore(path: path, migrations: migrations ?? SQLiteMigrations.all)
            return Fixture(store: store, location: path, cleanup: { try? FileManager.default.removeItem(at: dir) })
        case .postgres:
            let url = try await TestPostgres.createDatabase()
            let store = try await PostgresStore(url: url, migrations: migrations ?? PostgresMigrations.all)
            return Fixture(store: store, location: url.description, cleanup: {
                try? await store.close()
                try? await TestPostgres.dropDatabase(url)
            })
        }
    }
}

/// Creates and drops throwaway databases on the test server.
enum TestPostgres {
    static func adminURL() throws -> PostgresURL {
        guard let text = Backend.postgresURL else {
            Issue.record("MENSHEN_TEST_POSTGRES_URL is not set but CI=true: the PostgreSQL store tests must run in CI")
            throw StoreError(.unavailable, "no PostgreSQL for tests")
        }
        return try PostgresURL(text)
    }

    static func withAdmin<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let admin = try adminURL()
        let config = PostgresConnection.Configuration(host: admin.host, port: admin.port, username: admin.username,
                                                      password: admin.password, database: admin.database ?? "postgres", tls: .disable)
        let c = try await PostgresConnection.connect(configuration: config, id: 9, logger: Logger(label: "test"))
        do {
            let r = try await body(c)
            try await c.close()
            return r
        } catch {
            try? await c.close()
            throw error
        }
    }

    static func createDatabase() async throws -> PostgresURL {
        var url = try adminURL()
        let name = "menshen_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await withAdmin { c in try await c.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test")) }
        url.database = String(name)
        url.tls = .disable
        return url
    }

    /// Runs raw SQL on a test database (bypassing the store).
    static func execute(on url: PostgresURL, _ sql: String) async throws {
        let config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.username,
                                                      password: url.password, database: url.database, tls: .disable)
        let c = try await PostgresConnection.connect(configuration: config, id: 10, logger: Logger(label: "test"))
        do {
            try await c.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
            try await c.close()
        } catch {
            try? await c.close()
            throw error
        }
    }

    static func dropDatabase(_ url: PostgresURL) async throws {
        guard let name = url.database, name.hasPrefix("menshen_test_") else { return }
        try await withAdmin { c in
            try await c.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: Logger(label: "test"))
        }
    }
}
