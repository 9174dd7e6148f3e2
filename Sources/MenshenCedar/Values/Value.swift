/// A Cedar runtime value.
///
/// Sets are unordered and duplicate-free (`Set<Value>`); records map attribute names to values.
/// Equality is structural; values of different kinds are never equal.
public enum Value: Sendable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case long(Int64)
    case string(String)
    case entity(EntityUID)
    case set(Set<Value>)
    case record([String: Value])
    case ext(ExtensionValue)

    /// The Cedar type name of this value, used in error messages.
    public var typeName: String {
        switch self {
        case .bool: return "bool"
        case .long: return "long"
        case .string: return "string"
        case .entity(let e): return "(entity of type `\(e.type)`)"
        case .set: return "set"
        case .record: return "record"
        case .ext(let x): return x.typeName
        }
    }

    /// Cedar-syntax rendering (records with sorted keys, sets sorted by rendering).
    public var description: String {
        switch self {
        case .bool(let b): return b ? "true" : "false"
        case .long(let n): return String(n)
        case .string(let s): return cedarQuoted(s)
        case .entity(let e): return e.description
        case .set(let s): return "[" + s.map(\.description).sorted().joined(separator: ", ") + "]"
        case .record(let r):
            return "{" + r.keys.sorted().map { "\(cedarQuoted($0)): \(r[$0]?.description ?? "")" }.joined(separator: ", ") + "}"
        case .ext(let x): return x.description
        }
    }
}

/// A value of one of Cedar's extension types.
public enum ExtensionValue: Sendable, Hashable, CustomStringConvertible {
    case ipaddr(IPAddr)
    case decimal(CedarDecimal)
    case datetime(CedarDatetime)
    case duration(CedarDuration)

    public var typeName: String {
        switch self {
        case .ipaddr: return "ipaddr"
        case .decimal: return "decimal"
        case .datetime: return "datetime"
        case .duration: return "duration"
        }
    }
    /// Cedar constructor-call rendering, e.g. `ip("10.0.0.1/24")`.
    public var description: String {
        switch self {
        case .ipaddr(let v): return "ip(\(cedarQuoted(v.description)))"
        case .decimal(let v): return "decimal(\(cedarQuoted(v.description)))"
        case .datetime(let v): return "datetime(\(cedarQuoted(v.description)))"
        case .duration(let v): return "duration(\(cedarQuoted(v.description)))"
        }
    }
}
