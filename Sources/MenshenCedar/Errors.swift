/// A position in a source text. Lines and columns are 1-based; `offset` is the UTF-8
/// byte offset from the start of the text and `length` the UTF-8 length of the span.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var length: Int
    public var line: Int
    public var column: Int
    public init(offset: Int, length: Int, line: Int, column: Int) {
        self.offset = offset; self.length = length; self.line = line; self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// The one error type of MenshenCedar: a machine-readable code, a human message and,
/// where known, the source location it refers to.
public struct CedarError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Error categories.
    public enum Code: String, Sendable, Hashable {
        /// Policy text could not be parsed.
        case parse
        /// A JSON document was malformed or exceeded limits.
        case json
        /// Entity data was malformed (e.g. duplicate uids, bad escapes).
        case entities
        /// Template linking failed (missing/extra slots, duplicate ids, unknown template).
        case link
        /// Duplicate policy ids or other policy-set errors.
        case policySet
        /// Evaluation: an operand had the wrong type.
        case typeError
        /// Evaluation: an attribute or tag does not exist.
        case missingAttribute
        /// Evaluation: an entity is not present in the entity store.
        case entityNotFound
        /// Evaluation: integer overflow.
        case overflow
        /// Evaluation: an extension function failed (bad literal, wrong arity, ...).
        case extensionError
        /// Evaluation: unlinked template slot or recursion limit.
        case evaluation
        /// A request was invalid.
        case request
        /// Schema related error (used by the schema and validator code).
        case schema
        /// Validation error.
        case validation
        /// Runner / I/O level error (conformance runner).
        case io
    }
    public var code: Code
    public var message: String
    public var location: SourceLocation?
    public init(_ code: Code, _ message: String, at location: SourceLocation? = nil) {
        self.code = code; self.message = message; self.location = location
    }
    public var description: String {
        if let location { return "\(message) at \(location)" }
        return message
    }

    /// Renders the error with a caret excerpt of `source`:
    /// ```
    /// message
    ///   --> line:col
    ///    | source line
    ///    |     ^
    /// ```
    public func rendered(source: String) -> String {
        guard let loc = location else { return message }
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        var out = message + "\n  --> \(loc.line):\(loc.column)"
        if loc.line >= 1 && loc.line <= lines.count {
            let text = String(lines[loc.line - 1]).replacingTabs()
            out += "\n   | " + text
            let caretCount = max(1, min(loc.length, max(1, text.count - (loc.column - 1))))
            out += "\n   | " + String(repeating: " ", count: max(0, loc.column - 1)) + String(repeating: "^", count: caretCount)
        }
        return out
    }
}

extension String {
    fileprivate func replacingTabs() -> String {
        String(map { $0 == "\t" ? " " : $0 })
    }
}
