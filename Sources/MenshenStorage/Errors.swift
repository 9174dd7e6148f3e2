/// Errors raised by store backends. Equality is on the code; the message and
/// location are context for operators.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// A record with the same key exists.
        case conflict
        /// The record referred to does not exist.
        case notFound
        /// The input is outside the store's limits or malformed.
        case invalidInput
        /// The database cannot be reached (network, permissions, lock).
        case unavailable
        /// The database file is not a database or is damaged.
        case corrupt
        /// The database was migrated by a newer Menshen than this binary.
        case schemaTooNew
        /// A migration failed; the database is left at the previous version.
        case migrationFailed
        /// An unexpected backend failure.
        case backend
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code; self.message = message; self.file = file; self.line = line
    }

    public var description: String { message }

    public static func == (l: StoreError, r: StoreError) -> Bool { l.code == r.code }
}
