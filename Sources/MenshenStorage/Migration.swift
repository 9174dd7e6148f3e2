/// A versioned schema migration. Backends keep an ordered list of them and
/// apply, at start-up, those above the version recorded in the database, each
/// in its own transaction.
public struct Migration: Sendable {
    /// Strictly increasing, starting at 1.
    public var version: Int
    public var name: String
    /// SQL statements applied in order.
    public var statements: [String]
    public init(version: Int, name: String, statements: [String]) {
        self.version = version; self.name = name; self.statements = statements
    }
}

/// The decision a backend takes after reading the database's version.
public enum MigrationPlan: Equatable, Sendable {
    /// Apply these versions, in order.
    case apply([Int])
    /// Nothing to do.
    case upToDate
    /// The database is newer than this binary; refuse to touch it.
    case tooNew(database: Int, known: Int)

    /// Plans migrations for a database at `current` with `known` migrations.
    public static func plan(current: Int, known: [Migration]) -> MigrationPlan {
        let latest = known.map(\.version).max() ?? 0
        if current > latest { return .tooNew(database: current, known: latest) }
        let pending = known.map(\.version).filter { $0 > current }.sorted()
        return pending.isEmpty ? .upToDate : .apply(pending)
    }

    /// The error for a database newer than this binary.
    public static func tooNewError(database: Int, known: Int, location: String) -> StoreError {
        StoreError(.schemaTooNew,
                   "\(location): database schema version \(database) is newer than this Menshen knows (\(known)); upgrade Menshen, the data was not touched")
    }
}
