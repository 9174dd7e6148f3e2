/// Schema-directed JSON parsing support: `Schema` provides the core's
/// `EntityJSONTypeHints` (attribute, tag and context types, and the action entities
/// with their action-group parents).

extension SchemaType {
    /// The JSON parsing hint for values of this type.
    public var jsonHint: JSONTypeHint {
        switch self {
        case .bool: return .bool
        case .long: return .long
        case .string: return .string
        case .entity(let n): return .entity(n)
        case .set(let t): return .set(t.jsonHint)
        case .record(let r): return r.jsonHint
        case .ext(let n):
            switch n {
            case "ipaddr": return .ipaddr
            case "decimal": return .decimal
            case "datetime": return .datetime
            case "duration": return .duration
            default: return .unknown
            }
        }
    }
}

extension RecordType {
    /// The JSON parsing hint for a record of this type.
    public var jsonHint: JSONTypeHint {
        var m: [String: JSONTypeHint] = [:]
        for (k, a) in attributes { m[k] = a.type.jsonHint }
        return .record(m, open: openAttributes)
    }
}

extension Schema: EntityJSONTypeHints {
    public func attributeType(of entityType: EntityType, attribute: String) -> JSONTypeHint? {
        entityTypes[entityType]?.attributes.attributes[attribute]?.type.jsonHint
    }

    public func tagType(of entityType: EntityType) -> JSONTypeHint? {
        entityTypes[entityType]?.tags?.jsonHint
    }

    public func contextType(for action: EntityUID) -> JSONTypeHint? {
        actions[action]?.context.jsonHint
    }

    /// Every declared action as an entity whose parents are its declared action groups.
    public var actionEntities: [Entity] {
        sortedActionUIDs.compactMap { uid in
            guard let a = actions[uid] else { return nil }
            return Entity(uid: uid, attributes: [:], parents: Set(a.memberOf), tags: [:])
        }
    }
}
