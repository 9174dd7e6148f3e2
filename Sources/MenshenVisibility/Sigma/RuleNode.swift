import Yams

/// Limits on Sigma rule files. A file or set beyond them is refused whole.
public enum RuleLimits {
    /// Largest rule file accepted, in bytes.
    public static let maxFileBytes = 64 * 1024
    /// Most rules (detection and correlation) in one set.
    public static let maxRules = 500
    /// Most YAML nodes in one file (bounds alias expansion and deep documents).
    public static let maxNodesPerFile = 20_000
    /// Deepest YAML nesting accepted.
    public static let maxYAMLDepth = 16
    /// Deepest nesting of parentheses and `not` in a condition.
    public static let maxConditionDepth = 16
    /// Longest condition expression, in bytes.
    public static let maxConditionBytes = 1024
    /// Longest regular expression (`|re`), in characters.
    public static let maxRegexLength = 256
    /// How much of a field value a regular expression sees, in UTF-16 units.
    public static let maxRegexInput = 2048
    /// How much of a field value a wildcard pattern sees, in characters.
    public static let maxMatchInput = 8192
    /// Most values under one field, and most search identifiers in one rule.
    public static let maxValues = 256
    /// Most rules one correlation refers to, and most `group-by` fields.
    public static let maxCorrelationRefs = 16
    /// Longest correlation timespan, in seconds (31 days).
    public static let maxTimespan: Double = 31 * 86_400
}

/// A YAML node reduced to what rule files use: plain data with scalars typed
/// the way YAML 1.2's core schema types unquoted text. Built by ``RuleNode/documents(in:file:)``
/// with a node budget and a depth limit, so neither a deep document nor an
/// alias bomb gets through.
indirect enum RuleNode: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case list([RuleNode])
    case map([(key: String, value: RuleNode)])

    static func == (a: RuleNode, b: RuleNode) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.map(let x), .map(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    subscript(key: String) -> RuleNode? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }

    /// How the node reads in an error message.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .list: "a list"
        case .map: "a map"
        }
    }

    /// Parses every YAML document in `text`.
    static func documents(in text: String, file: String) throws(VisibilityError) -> [RuleNode] {
        guard text.utf8.count <= RuleLimits.maxFileBytes else {
            throw VisibilityError(.invalidRule, "\(file): \(text.utf8.count) bytes; the limit for a rule file is \(RuleLimits.maxFileBytes)")
        }
        var out: [RuleNode] = []
        var budget = RuleLimits.maxNodesPerFile
        do {
            var sequence = try Yams.compose_all(yaml: text)
            while let node = sequence.next() {
                out.append(try convert(node, depth: 0, budget: &budget, file: file))
            }
            if let error = sequence.error { throw error }
        } catch let e as VisibilityError {
            throw e
        } catch let e as YamlError {
            throw VisibilityError(.invalidRule, "\(file): not valid YAML: \(describe(e))")
        } catch {
            throw VisibilityError(.invalidRule, "\(file): not valid YAML: \(error)")
        }
        return out
    }

    private static func describe(_ e: YamlError) -> String {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        case .reader(let problem, let offset, _, _):
            return "byte \(offset ?? 0): \(problem)"
        default:
            // Other cases (duplicated keys, …) describe themselves with the whole document as context: keep the first line.
            let text = "\(e)"
            let firstLine = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
            return String(firstLine.prefix(300))
        }
    }

    private static func convert(_ node: Node, depth: Int, budget: inout Int, file: String) throws(VisibilityError) -> RuleNode {
        budget -= 1
        guard budget >= 0 else {
            throw VisibilityError(.invalidRule, "\(file): more than \(RuleLimits.maxNodesPerFile) YAML nodes (aliases count each time they are used)")
        }
        guard depth <= RuleLimits.maxYAMLDepth else {
            throw VisibilityError(.invalidRule, "\(file): YAML nested deeper than \(RuleLimits.maxYAMLDepth) levels")
        }
        let line = node.mark.map { " (line \($0.line))" } ?? ""
        switch node {
        case .scalar(let scalar):
            return typed(scalar)
        case .sequence(let seq):
            var items: [RuleNode] = []
            for child in seq { items.append(try convert(child, depth: depth + 1, budget: &budget, file: file)) }
            return .list(items)
        case .mapping(let mapping):
            var pairs: [(key: String, value: RuleNode)] = []
            for (k, v) in mapping {
                guard case .scalar(let ks) = k else { throw VisibilityError(.invalidRule, "\(file)\(line): a map key that is not text") }
                let key = ks.string
                guard !pairs.contains(where: { $0.key == key }) else {
                    throw VisibilityError(.invalidRule, "\(file)\(line): the key \"\(key)\" appears twice in one map")
                }
                pairs.append((key, try convert(v, depth: depth + 1, budget: &budget, file: file)))
            }
            return .map(pairs)
        case .alias:
            throw VisibilityError(.invalidRule, "\(file)\(line): unresolved YAML alias")
        }
    }

    /// YAML 1.2 core schema for unquoted scalars; quoted and block scalars stay text.
    private static func typed(_ scalar: Node.Scalar) -> RuleNode {
        let text = scalar.string
        guard scalar.style == .plain || scalar.style == .any else { return .string(text) }
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let i = Int64(text) { return .int(i) }
        if text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true, let d = Double(text), d.isFinite,
           !text.lowercased().contains("nan"), !text.lowercased().contains("inf") {
            return .double(d)
        }
        return .string(text)
    }
}
