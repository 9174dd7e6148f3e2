/// A problem found in a configuration: which key, where in which file, and what is wrong.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// Dotted key path, e.g. `store.driver` (empty for a file-level problem).
    public var keyPath: String
    /// `FILE:LINE:COLUMN`, `FILE`, or `environment MENSHEN_…`.
    public var location: String
    public var message: String

    public init(keyPath: String, location: String, message: String) {
        self.keyPath = keyPath; self.location = location; self.message = message
    }

    /// One line: `location: key.path: message`.
    public var description: String {
        keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Thrown by ``ConfigLoader`` when a configuration is invalid; carries every problem.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public init(problems: [ConfigProblem]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
