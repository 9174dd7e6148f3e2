/// Cedar schemas: the resolved, validated description of entity types, actions and
/// their `appliesTo` / context types against which policies are validated, requests
/// are checked and entity/context JSON is parsed.
///
/// A `Schema` is produced by one of two front ends, both of which build the same raw
/// fragment model (`SchemaFragment`) and then run the shared resolver:
///  - `Schema.parse(cedar:)` reads the human `.cedarschema` syntax,
///  - `Schema.parse(json:)` reads Cedar's JSON schema format.
/// Resolution follows Cedar 4: an unqualified type name written inside namespace
/// `NS` is looked up first as `NS::N` (common type, then entity type), then as `N`
/// in the empty namespace (common, then entity), where the primitive and extension
/// types (`Bool`, `Long`, `String`, `ipaddr`, `decimal`, `datetime`, `duration`) are
/// implicitly aliases of their `__cedar::` versions unless the user declared the
/// same name there. All failures are values (`CedarError`, code `.schema`) with
/// source locations where the input has them. The code performs no I/O.

/// The type of a value as described by a schema.
public indirect enum SchemaType: Sendable, Hashable, CustomStringConvertible {
    case bool
    case long
    case string
    case entity(EntityType)
    case set(SchemaType)
    case record(RecordType)
    /// An extension type by its (unqualified) name: `ipaddr`, `decimal`, `datetime`, `duration`.
    case ext(String)

    public var description: String {
        switch self {
        case .bool: return "Bool"
        case .long: return "Long"
        case .string: return "String"
        case .entity(let n): return n.qualified
        case .set(let t): return "Set<\(t)>"
        case .record(let r): return r.description
        case .ext(let n): return n
        }
    }
}

/// One attribute of a record type.
public struct AttributeType: Sendable, Hashable {
    public var type: SchemaType
    public var required: Bool
    public init(type: SchemaType, required: Bool = true) { self.type = type; self.required = required }
}

/// A record type: named attributes, and whether undeclared attributes may appear.
public struct RecordType: Sendable, Hashable, CustomStringConvertible {
    public var attributes: [String: AttributeType]
    /// `additionalAttributes` in the JSON format; never set by the human format.
    public var openAttributes: Bool
    public init(attributes: [String: AttributeType] = [:], openAttributes: Bool = false) {
        self.attributes = attributes; self.openAttributes = openAttributes
    }
    public var description: String {
        let body = attributes.keys.sorted().map { k -> String in
            let a = attributes[k]
            return "\(cedarQuoted(k))\(a?.required == false ? "?" : ""): \(a.map { "\($0.type)" } ?? "")"
        }.joined(separator: ", ")
        return "{" + body + "}"
    }
}

/// A declared entity type.
public struct EntityTypeDefinition: Sendable, Hashable {
    public var name: EntityType
    /// Declared parent types (`in [...]` / `memberOfTypes`).
    public var memberOfTypes: [EntityType]
    /// Attribute record of the type.
    public var attributes: RecordType
    /// Tag type, if the type has tags.
    public var tags: SchemaType?
    /// For enumerated entity types, the allowed ids.
    public var enumChoices: [String]?
    /// Entity types whose entities may be (transitively) members of this type,
    /// i.e. types `D` with `D in ... in name`.
    public var descendants: Set<EntityType>
    public var location: SourceLocation?
}

/// A declared action.
public struct ActionDefinition: Sendable, Hashable {
    public var uid: EntityUID
    /// Direct parents (action groups) of this action.
    public var memberOf: [EntityUID]
    /// Transitive closure of `memberOf`.
    public var ancestors: Set<EntityUID>
    /// Actions that are (transitively) members of this action.
    public var descendants: Set<EntityUID>
    /// Principal types from `appliesTo` (empty if the action applies to nothing).
    public var principalTypes: [EntityType]
    /// Resource types from `appliesTo`.
    public var resourceTypes: [EntityType]
    /// The context record type (empty closed record when not declared).
    public var context: RecordType
    public var location: SourceLocation?
}

/// A fully resolved Cedar schema.
public struct Schema: Sendable {
    public var entityTypes: [EntityType: EntityTypeDefinition]
    public var actions: [EntityUID: ActionDefinition]
    /// Resolved common types by fully qualified name (for inspection).
    public var commonTypes: [String: SchemaType]

    public init(entityTypes: [EntityType: EntityTypeDefinition] = [:], actions: [EntityUID: ActionDefinition] = [:], commonTypes: [String: SchemaType] = [:]) {
        self.entityTypes = entityTypes; self.actions = actions; self.commonTypes = commonTypes
    }

    /// Action entity types (`Action`, `NS::Action`) that have declared actions.
    public var actionEntityTypes: Set<EntityType> { Set(actions.keys.map { $0.type }) }

    /// True for declared entity types and for action entity types.
    public func isKnownEntityType(_ t: EntityType) -> Bool {
        entityTypes[t] != nil || actionEntityTypes.contains(t)
    }

    /// Entity types `D` such that an entity of type `D` may be `in` an entity of type `t`
    /// (including `t` itself if declared).
    public func entityTypes(in t: EntityType) -> Set<EntityType> {
        guard let def = entityTypes[t] else { return [] }
        var s = def.descendants
        s.insert(t)
        return s
    }

    /// All actions that are `in` any of `groups` (reflexively). Nil if one of them is not declared.
    public func actions(in groups: [EntityUID]) -> Set<EntityUID>? {
        var out = Set<EntityUID>()
        for g in groups {
            guard let a = actions[g] else { return nil }
            out.insert(g)
            out.formUnion(a.descendants)
        }
        return out
    }

    /// Sorted entity type names, for deterministic iteration.
    public var sortedEntityTypeNames: [EntityType] { entityTypes.keys.sorted() }
    /// Sorted action uids, for deterministic iteration.
    public var sortedActionUIDs: [EntityUID] { actions.keys.sorted() }
}

extension Schema {
    /// Parses a schema in the human `.cedarschema` syntax.
    public static func parse(cedar text: String) -> Result<Schema, CedarError> {
        switch SchemaHumanParser.parse(text) {
        case .failure(let e): return .failure(e)
        case .success(let frag): return SchemaResolver.resolve(frag)
        }
    }

    /// Parses a schema in Cedar's JSON schema format.
    public static func parse(json text: String) -> Result<Schema, CedarError> {
        switch SchemaJSONParser.parse(text) {
        case .failure(let e): return .failure(e)
        case .success(let frag): return SchemaResolver.resolve(frag)
        }
    }
}

func schemaError(_ message: String, _ loc: SourceLocation? = nil) -> CedarError {
    CedarError(.schema, message, at: loc)
}
