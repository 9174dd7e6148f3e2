/// Cedar's JSON encodings of entities, entity UIDs, values and contexts.
///
/// Without hints, JSON objects are records except for the explicit escapes
/// `{"__entity": {"type": …, "id": …}}` and `{"__extn": {"fn": …, "arg": …}}` (or `"args": […]`).
/// With `EntityJSONTypeHints` (from a schema), values are parsed according to their
/// declared type: strings become extension values, `{"type","id"}` objects become entity
/// references, and the schema's action entities are added to the store.
public enum EntityJSON {
    /// Parses an entity UID: `{"type": "T", "id": "i"}` or `{"__entity": {…}}`.
    public static func entityUID(_ j: JSONValue) throws(CedarError) -> EntityUID {
        var j = j
        if let inner = j["__entity"] { j = inner }
        guard case .object(let members) = j else { throw CedarError(.entities, "expected an entity uid object") }
        guard let t = j["type"]?.stringValue, let id = j["id"]?.stringValue else {
            throw CedarError(.entities, "entity uid must have string fields `type` and `id`")
        }
        for m in members where m.key != "type" && m.key != "id" {
            throw CedarError(.entities, "unexpected field `\(m.key)` in entity uid")
        }
        guard let name = Name.parse(t) else { throw CedarError(.entities, "invalid entity type `\(t)`") }
        return EntityUID(type: name, id: id)
    }

    /// Parses a JSON value, directed by `hint` when given.
    public static func value(_ j: JSONValue, hint: JSONTypeHint? = nil, depth: Int = 0) throws(CedarError) -> Value {
        guard depth <= MenshenCedar.Limits.maxNestingDepth else { throw CedarError(.entities, "value nesting too deep") }
        if case .object = j {
            if let e = j["__entity"], j.objectValue?.count == 1 { return .entity(try entityUID(e)) }
            if let x = j["__extn"], j.objectValue?.count == 1 { return try extn(x, depth: depth) }
        }
        switch hint {
        case .entity?:
            if case .object = j, j["type"] != nil, j["id"] != nil { return .entity(try entityUID(j)) }
        case .ipaddr?: if case .string(let s) = j { return try ExtensionFunctions.call("ip", [.string(s)]) }
        case .decimal?: if case .string(let s) = j { return try ExtensionFunctions.call("decimal", [.string(s)]) }
        case .datetime?: if case .string(let s) = j { return try ExtensionFunctions.call("datetime", [.string(s)]) }
        case .duration?: if case .string(let s) = j { return try ExtensionFunctions.call("duration", [.string(s)]) }
        case .set(let elem)?:
            if case .array(let items) = j {
                var s = Set<Value>()
                for it in items { s.insert(try value(it, hint: elem, depth: depth + 1)) }
                return .set(s)
            }
        case .record(let attrs, _)?:
            if case .object = j { return .record(try record(j, attrs: attrs, depth: depth)) }
        default: break
        }
        switch j {
        case .null: throw CedarError(.entities, "null is not a valid Cedar value")
        case .bool(let b): return .bool(b)
        case .int(let n): return .long(n)
        case .number(let t): throw CedarError(.entities, "`\(t)` is not a valid Cedar integer")
        case .string(let s): return .string(s)
        case .array(let items):
            var s = Set<Value>()
            for it in items { s.insert(try value(it, depth: depth + 1)) }
            return .set(s)
        case .object:
            return .record(try record(j, attrs: nil, depth: depth))
        }
    }

    /// Parses a JSON object as a record; `attrs` gives per-attribute hints.
    public static func record(_ j: JSONValue, attrs: [String: JSONTypeHint]?, depth: Int = 0) throws(CedarError) -> [String: Value] {
        guard case .object(let members) = j else { throw CedarError(.entities, "expected a JSON object") }
        var r: [String: Value] = [:]
        r.reserveCapacity(members.count)
        for m in members {
            guard r[m.key] == nil else { throw CedarError(.entities, "duplicate key `\(m.key)` in record") }
            r[m.key] = try value(m.value, hint: attrs?[m.key], depth: depth + 1)
        }
        return r
    }

    private static func extn(_ x: JSONValue, depth: Int) throws(CedarError) -> Value {
        guard let fn = x["fn"]?.stringValue else { throw CedarError(.entities, "`__extn` requires a string `fn`") }
        var args: [Value] = []
        if let a = x["arg"] {
            args = [try value(a, depth: depth + 1)]
        } else if case .array(let items)? = x["args"] {
            for it in items { args.append(try value(it, depth: depth + 1)) }
        } else {
            throw CedarError(.entities, "`__extn` requires `arg` or `args`")
        }
        do {
            return try ExtensionFunctions.call(fn, args)
        } catch {
            throw CedarError(.entities, "in `__extn` escape: \(error.message)")
        }
    }

    /// Parses one entity object `{"uid", "attrs", "parents", "tags"?}`.
    public static func entity(_ j: JSONValue, hints: (any EntityJSONTypeHints)?) throws(CedarError) -> Entity {
        guard case .object(let members) = j else { throw CedarError(.entities, "expected an entity object") }
        for m in members where !["uid", "attrs", "parents", "tags"].contains(m.key) {
            throw CedarError(.entities, "unexpected field `\(m.key)` in entity")
        }
        guard let uidJ = j["uid"] else { throw CedarError(.entities, "entity is missing `uid`") }
        let uid = try entityUID(uidJ)
        var attrs: [String: Value] = [:]
        if let a = j["attrs"] {
            guard case .object(let am) = a else { throw CedarError(.entities, "`attrs` of \(uid) must be an object") }
            for m in am {
                guard attrs[m.key] == nil else { throw CedarError(.entities, "duplicate attribute `\(m.key)` in \(uid)") }
                let hint = hints?.attributeType(of: uid.type, attribute: m.key)
                attrs[m.key] = try value(m.value, hint: hint, depth: 1)
            }
        }
        var parents = Set<EntityUID>()
        if let p = j["parents"] {
            guard case .array(let items) = p else { throw CedarError(.entities, "`parents` of \(uid) must be an array") }
            for it in items { parents.insert(try entityUID(it)) }
        }
        var tags: [String: Value] = [:]
        if let t = j["tags"] {
            guard case .object(let tm) = t else { throw CedarError(.entities, "`tags` of \(uid) must be an object") }
            let hint = hints?.tagType(of: uid.type)
            for m in tm {
                guard tags[m.key] == nil else { throw CedarError(.entities, "duplicate tag `\(m.key)` in \(uid)") }
                tags[m.key] = try value(m.value, hint: hint, depth: 1)
            }
        }
        return Entity(uid: uid, attributes: attrs, parents: parents, tags: tags)
    }

    /// Parses an entities document (a JSON array of entities). With hints, the schema's
    /// action entities are added (entries in the data for the same actions are replaced).
    public static func entities(_ text: String, hints: (any EntityJSONTypeHints)? = nil) throws(CedarError) -> Entities {
        try entities(JSONValue.parse(text), hints: hints)
    }

    public static func entities(_ j: JSONValue, hints: (any EntityJSONTypeHints)? = nil) throws(CedarError) -> Entities {
        guard case .array(let items) = j else { throw CedarError(.entities, "entities must be a JSON array") }
        var list: [Entity] = []
        list.reserveCapacity(items.count)
        var actionUIDs = Set<EntityUID>()
        if let hints { for a in hints.actionEntities { actionUIDs.insert(a.uid) } }
        for it in items {
            let e = try entity(it, hints: hints)
            if actionUIDs.contains(e.uid) { continue }
            list.append(e)
        }
        if let hints { list.append(contentsOf: hints.actionEntities) }
        return try Entities(list)
    }

    /// Parses a request context (a JSON object), directed by the action's context type when
    /// hints are given.
    public static func context(_ j: JSONValue, action: EntityUID, hints: (any EntityJSONTypeHints)? = nil) throws(CedarError) -> [String: Value] {
        var attrs: [String: JSONTypeHint]? = nil
        if case .record(let a, _)? = hints?.contextType(for: action) { attrs = a }
        return try record(j, attrs: attrs)
    }
}
