/// Errors raised by the visibility module: an event that cannot be read, or a
/// Sigma rule or playbook file that cannot be loaded. Equality is on the code; the message
/// says where and what (file, rule title or id, the key at fault) and the
/// location is context for developers.
public struct VisibilityError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// Event JSON that is malformed or outside ``EventLimits``.
        case invalidEvent
        /// A field path that is empty, too long or has an empty segment.
        case invalidFieldPath
        /// Rule YAML that does not parse, or a rule that breaks the Sigma specification or our limits.
        case invalidRule
        /// A rule set larger than ``RuleLimits`` allows.
        case limitExceeded
        /// An audit checkpoint key (signing or verify key) that is not a valid Ed25519 key.
        case invalidAuditKey
        /// An audit anchor line that is malformed or over its size limit.
        case invalidAuditAnchor
        /// Playbook YAML that does not parse, breaks the format or exceeds ``PlaybookLimits``.
        case invalidPlaybook
        /// An audit search filter (time, class, user, …) that is malformed or out of bounds.
        case invalidAuditSearch
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code; self.message = message; self.file = file; self.line = line
    }

    public var description: String { message }

    public static func == (l: VisibilityError, r: VisibilityError) -> Bool { l.code == r.code }
}
