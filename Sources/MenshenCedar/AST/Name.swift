/// A possibly namespaced Cedar name such as `Photo`, `NS::Type` or `A::B::C`.
/// `path` holds the namespace components, `basename` the last component.
/// Equality and hashing use the fully qualified text, which is precomputed.
public struct Name: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let path: [String]
    public let basename: String
    /// The fully qualified form, e.g. `NS::Type`.
    public let qualified: String
    /// Precomputed hash of `qualified` (names are hashed on every entity lookup).
    private let hashCache: Int

    public init(path: [String] = [], basename: String) {
        self.path = path
        self.basename = basename
        self.qualified = path.isEmpty ? basename : (path + [basename]).joined(separator: "::")
        self.hashCache = qualified.hashValue
    }

    /// Splits `A::B::C` into path `[A, B]` and basename `C`, without validating identifiers.
    public init(qualified text: String) {
        var parts = splitQualified(text)
        let last = parts.popLast() ?? ""
        self.init(path: parts, basename: last)
    }

    /// Parses and validates a qualified name (each component must be a Cedar identifier).
    public static func parse(_ text: String) -> Name? {
        let parts = splitQualified(text)
        for p in parts where !Name.isIdentifier(p) { return nil }
        return Name(qualified: text)
    }

    /// True if `s` is a syntactically valid Cedar identifier (`[_a-zA-Z][_a-zA-Z0-9]*`).
    public static func isIdentifier(_ s: String) -> Bool {
        var first = true
        for b in s.utf8 {
            let ok = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || (!first && b >= 0x30 && b <= 0x39)
            if !ok { return false }
            first = false
        }
        return !first
    }

    /// The namespace as text (`A::B`), or "" for an unqualified name.
    public var namespace: String { path.joined(separator: "::") }

    /// Returns this name qualified with `namespace` if it is unqualified.
    public func qualified(in namespace: [String]) -> Name {
        path.isEmpty && !namespace.isEmpty ? Name(path: namespace, basename: basename) : self
    }

    public static func == (a: Name, b: Name) -> Bool { a.hashCache == b.hashCache && a.qualified == b.qualified }
    public func hash(into h: inout Hasher) { h.combine(hashCache) }
    public static func < (a: Name, b: Name) -> Bool { a.qualified < b.qualified }
    public var description: String { qualified }
}

/// An entity type is a (possibly namespaced) name, e.g. `User` or `NS::User`.
public typealias EntityType = Name

extension Name {
    /// True for action entity types: `Action` or `NS::Action`.
    public var isActionType: Bool { basename == "Action" }
}

/// A reference to one entity: its type plus its id string (any string, including "").
public struct EntityUID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let type: EntityType
    public let id: String
    /// Precomputed hash (entity UIDs are hashed on every store and ancestor lookup).
    private let hashCache: Int
    public init(type: EntityType, id: String) {
        self.type = type; self.id = id
        var h = Hasher()
        h.combine(type)
        h.combine(id)
        hashCache = h.finalize()
    }
    public init(_ type: String, _ id: String) { self.init(type: Name(qualified: type), id: id) }
    public static func == (a: EntityUID, b: EntityUID) -> Bool {
        a.hashCache == b.hashCache && a.id == b.id && a.type == b.type
    }
    public func hash(into h: inout Hasher) { h.combine(hashCache) }
    /// Cedar syntax, e.g. `NS::User::"alice"`.
    public var description: String { "\(type.qualified)::\(cedarQuoted(id))" }
    public static func < (a: EntityUID, b: EntityUID) -> Bool {
        a.type.qualified != b.type.qualified ? a.type.qualified < b.type.qualified : a.id < b.id
    }
}

/// Quotes and escapes a string the way Cedar prints string literals.
public func cedarQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\\": out += "\\\\"
        case "\0": out += "\\0"
        case "\"": out += "\\\""
        default:
            if u.value < 0x20 || u.value == 0x7F {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// Splits `A::B::C` on `::`.
func splitQualified(_ text: String) -> [String] {
    var parts: [String] = []
    var current = ""
    var it = text.unicodeScalars.makeIterator()
    var pendingColon = false
    while let c = it.next() {
        if c == ":" {
            if pendingColon { parts.append(current); current = ""; pendingColon = false } else { pendingColon = true }
        } else {
            if pendingColon { current.unicodeScalars.append(":"); pendingColon = false }
            current.unicodeScalars.append(c)
        }
    }
    if pendingColon { current.unicodeScalars.append(":") }
    parts.append(current)
    return parts
}
