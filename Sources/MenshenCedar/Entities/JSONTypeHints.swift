/// The expected type of a JSON value, as known from a schema. Drives schema-directed
/// parsing of entity attributes, tags and contexts (`"1.2.3.4"` → `ip("1.2.3.4")`,
/// `{"type": "User", "id": "a"}` → an entity reference, …).
public indirect enum JSONTypeHint: Sendable, Hashable {
    case bool, long, string
    case entity(EntityType)
    case set(JSONTypeHint)
    /// Record attributes with their types. `open == true` allows unlisted attributes
    /// (parsed without hints); nil/false means closed.
    case record([String: JSONTypeHint], open: Bool?)
    case ipaddr, decimal, datetime, duration
    /// Unknown type: parse without hints.
    case unknown
}

/// Implemented by the schema so that entity and context JSON can be parsed schema-directed.
public protocol EntityJSONTypeHints: Sendable {
    /// Type of attribute `attribute` of entities of type `entityType`, or nil if unknown.
    func attributeType(of entityType: EntityType, attribute: String) -> JSONTypeHint?
    /// Type of the tag values of `entityType`, or nil if the type has no declared tags.
    func tagType(of entityType: EntityType) -> JSONTypeHint?
    /// Context type of `action`, or nil if unknown.
    func contextType(for action: EntityUID) -> JSONTypeHint?
    /// Action entities (with their `in` parents) declared by the schema; they are added to
    /// entity stores parsed with these hints.
    var actionEntities: [Entity] { get }
}
