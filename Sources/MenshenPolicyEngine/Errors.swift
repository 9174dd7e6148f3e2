import MenshenCedar

/// A policy set that cannot be loaded: every problem, each with its document and line:column.
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var document: String
        public var line: Int?
        public var column: Int?
        public var message: String
        public var description: String {
            if let line, let column { return "\(document):\(line):\(column): \(message)" }
            return "\(document): \(message)"
        }
    }

    public var problems: [Problem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
