import Foundation
import Logging
import MenshenConfig
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite

/// Opens the store a configuration names, applying migrations.
public enum StoreFactory {
    public static func open(_ config: MenshenConfiguration, logger: Logger) async throws -> any MenshenStore {
        switch config.store.driver {
        case .sqlite:
            let path = config.store.sqlitePath
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
                do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                    throw StoreError(.unavailable, "\(dir): cannot create the data directory (\(error.localizedDescription))")
                }
            }
            return try SQLiteStore(path: path, busyTimeout: TimeInterval(config.store.sqliteBusyTimeoutSeconds))
        case .postgres:
            let url = try PostgresURL(config.store.postgresURL)
            return try await PostgresStore(url: url, poolSize: config.store.postgresPoolSize,
                                           connectTimeout: .seconds(config.store.postgresConnectTimeoutSeconds), logger: logger)
        }
    }

    /// The newest schema version this binary knows for a driver.
    public static func latestSchemaVersion(_ driver: MenshenConfiguration.StoreDriver) -> Int {
        switch driver {
        case .sqlite: SQLiteMigrations.all.map(\.version).max() ?? 0
        case .postgres: PostgresMigrations.all.map(\.version).max() ?? 0
        }
    }
}
