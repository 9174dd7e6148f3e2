/// The unresolved schema model shared by the human and JSON schema front ends.
/// Names are still as written (`RawPath`); `SchemaResolver` turns a fragment into a `Schema`.

/// How a written type name may be resolved.
enum RawReferenceKind: Sendable, Hashable {
    case common
    case entity
    case commonOrEntity
}

/// A name as written in the source: its components and location.
struct RawPath: Sendable, Hashable, CustomStringConvertible {
    var components: [String]
    var location: SourceLocation?
    var isQualified: Bool { components.count > 1 }
    var basename: String { components.last ?? "" }
    var text: String { components.joined(separator: "::") }
    var description: String { text }
    static func == (a: RawPath, b: RawPath) -> Bool { a.components == b.components }
    func hash(into h: inout Hasher) { h.combine(components) }
}

indirect enum RawType: Sendable {
    case bool, long, string
    case named(RawPath, RawReferenceKind)
    case ext(String, SourceLocation?)
    case set(RawType)
    case record(RawRecord)
}

struct RawAttribute: Sendable {
    var name: String
    var type: RawType
    var required: Bool
    var location: SourceLocation?
}

struct RawRecord: Sendable {
    var attributes: [RawAttribute]
    var open: Bool
    var location: SourceLocation?
}

struct RawEntityDecl: Sendable {
    var name: String
    var memberOf: [RawPath]
    /// Attribute shape: usually a record; the JSON format may use a common-type reference.
    var shape: RawType
    var tags: RawType?
    var enumChoices: [String]?
    var location: SourceLocation?
}

/// A reference to an action: an optional type path (`NS::Action`) and an id.
struct RawActionRef: Sendable {
    var typePath: RawPath?
    var id: String
    var location: SourceLocation?
}

struct RawActionDecl: Sendable {
    var name: String
    var memberOf: [RawActionRef]
    /// nil: no appliesTo (the action applies to nothing).
    var principalTypes: [RawPath]?
    var resourceTypes: [RawPath]?
    var context: RawType?
    var location: SourceLocation?
}

struct RawCommonTypeDecl: Sendable {
    var name: String
    var type: RawType
    var location: SourceLocation?
}

struct RawNamespace: Sendable {
    /// Empty for the empty namespace.
    var path: [String]
    var location: SourceLocation?
    var entities: [RawEntityDecl] = []
    var actions: [RawActionDecl] = []
    var commonTypes: [RawCommonTypeDecl] = []
}

struct SchemaFragment: Sendable {
    var namespaces: [RawNamespace]
}

/// Reserved words that are not valid Cedar identifiers in names.
let cedarReservedIdentifiers: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has"]
/// Names that may not be used as common type basenames.
let reservedCommonTypeNames: Set<String> = ["Bool", "Boolean", "Entity", "Extension", "Long", "Record", "Set", "String"]
/// Extension types known to the schema.
let schemaExtensionTypes: [String] = ["ipaddr", "decimal", "datetime", "duration"]
