/// Parser for Cedar's JSON schema format:
/// `{"NS": {"entityTypes": {...}, "actions": {...}, "commonTypes": {...}, "annotations": {...}}}`
/// with types `{"type": "Long" | "String" | "Boolean" | "Set" | "Record" | "Entity" |
/// "Extension" | "EntityOrCommon" | <common type name>, ...}`. Produces the same
/// unresolved `SchemaFragment` as the human-syntax parser. JSON syntax errors carry
/// line:column; structural errors name the offending JSON path.

enum SchemaJSONParser {
    static let maxDepth = 128

    static func parse(_ text: String) -> Result<SchemaFragment, CedarError> {
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { return .failure(CedarError(.schema, "invalid JSON schema: \(error.message)", at: error.location)) }
        do { return .success(try fragment(json)) } catch let e as CedarError { return .failure(e) } catch {
            return .failure(schemaError("\(error)"))
        }
    }

    static func fail(_ path: String, _ message: String) -> CedarError {
        schemaError("invalid JSON schema at `\(path)`: \(message)")
    }

    static func object(_ v: JSONValue, _ path: String, allowed: Set<String>) throws -> [(key: String, value: JSONValue)] {
        guard let o = v.objectValue else { throw fail(path, "expected an object") }
        var seen = Set<String>()
        for m in o {
            if !seen.insert(m.key).inserted { throw fail(path, "duplicate key `\(m.key)`") }
            if !allowed.isEmpty && !allowed.contains(m.key) { throw fail(path, "unknown field `\(m.key)`") }
        }
        return o
    }

    static func members(_ v: JSONValue, _ path: String) throws -> [(key: String, value: JSONValue)] {
        try object(v, path, allowed: [])
    }

    static func string(_ v: JSONValue, _ path: String) throws -> String {
        guard let s = v.stringValue else { throw fail(path, "expected a string") }
        return s
    }

    static func rawPath(_ s: String, _ path: String) throws -> RawPath {
        let n = Name(qualified: s)
        let comps = n.path + [n.basename]
        if comps.joined(separator: "::") != s { throw fail(path, "invalid name `\(s)`") }
        for c in comps where !Name.isIdentifier(c) || cedarReservedIdentifiers.contains(c) {
            throw fail(path, "invalid name `\(s)`")
        }
        return RawPath(components: comps, location: nil)
    }

    static func annotationsOK(_ v: JSONValue, _ path: String) throws {
        for m in try members(v, path) where m.value.stringValue == nil && m.value != .null {
            throw fail(path + "." + m.key, "annotation values must be strings")
        }
    }

    static func fragment(_ json: JSONValue) throws -> SchemaFragment {
        var out: [RawNamespace] = []
        for (nsName, nsVal) in try members(json, "$") {
            let path = nsName.isEmpty ? [] : try rawPath(nsName, nsName).components
            var ns = RawNamespace(path: path)
            let nsMembers = try object(nsVal, nsName, allowed: ["entityTypes", "actions", "commonTypes", "annotations"])
            for required in ["entityTypes", "actions"] where !nsMembers.contains(where: { $0.key == required }) {
                throw fail(nsName, "missing field `\(required)`")
            }
            if nsName.isEmpty && nsMembers.contains(where: { $0.key == "annotations" }) {
                throw fail(nsName, "annotations are not allowed on the empty namespace")
            }
            for (k, v) in nsMembers {
                let p = nsName + "." + k
                switch k {
                case "entityTypes":
                    for (n, ev) in try members(v, p) { ns.entities.append(try entity(n, ev, p + "." + n)) }
                case "actions":
                    for (n, av) in try members(v, p) { ns.actions.append(try action(n, av, p + "." + n)) }
                case "commonTypes":
                    for (n, tv) in try members(v, p) {
                        guard Name.isIdentifier(n), !cedarReservedIdentifiers.contains(n) else { throw fail(p, "invalid common type name `\(n)`") }
                        ns.commonTypes.append(RawCommonTypeDecl(name: n, type: try type(tv, p + "." + n, depth: 0, allowAnnotations: true), location: nil))
                    }
                default:
                    try annotationsOK(v, p)
                }
            }
            out.append(ns)
        }
        return SchemaFragment(namespaces: out)
    }

    static func entity(_ name: String, _ v: JSONValue, _ path: String) throws -> RawEntityDecl {
        guard Name.isIdentifier(name), !cedarReservedIdentifiers.contains(name) else { throw fail(path, "invalid entity type name `\(name)`") }
        var decl = RawEntityDecl(name: name, memberOf: [], shape: .record(RawRecord(attributes: [], open: false)), tags: nil, enumChoices: nil)
        let fields = try object(v, path, allowed: ["memberOfTypes", "shape", "tags", "enum", "annotations"])
        if fields.contains(where: { $0.key == "enum" }),
           let extra = fields.first(where: { $0.key != "enum" && $0.key != "annotations" }) {
            throw fail(path, "unexpected field `\(extra.key)` in an enumerated entity type")
        }
        for (k, x) in fields {
            switch k {
            case "memberOfTypes":
                guard let arr = x.arrayValue else { throw fail(path + ".memberOfTypes", "expected an array") }
                decl.memberOf = try arr.map { try rawPath(try string($0, path + ".memberOfTypes"), path + ".memberOfTypes") }
            case "shape": decl.shape = try type(x, path + ".shape", depth: 0, allowAnnotations: false)
            case "tags": decl.tags = try type(x, path + ".tags", depth: 0, allowAnnotations: false)
            case "enum":
                guard let arr = x.arrayValue, !arr.isEmpty else { throw fail(path + ".enum", "expected a non-empty array of strings") }
                decl.enumChoices = try arr.map { try string($0, path + ".enum") }
            default: try annotationsOK(x, path + "." + k)
            }
        }
        return decl
    }

    static func action(_ name: String, _ v: JSONValue, _ path: String) throws -> RawActionDecl {
        var decl = RawActionDecl(name: name, memberOf: [], principalTypes: nil, resourceTypes: nil, context: nil)
        for (k, x) in try object(v, path, allowed: ["memberOf", "appliesTo", "attributes", "annotations"]) {
            switch k {
            case "memberOf":
                if x == .null { continue }
                guard let arr = x.arrayValue else { throw fail(path + ".memberOf", "expected an array") }
                for m in arr {
                    var id: String?
                    var typePath: RawPath?
                    for (mk, mv) in try object(m, path + ".memberOf", allowed: ["id", "type"]) {
                        if mk == "id" { id = try string(mv, path + ".memberOf.id") } else {
                            typePath = try rawPath(try string(mv, path + ".memberOf.type"), path + ".memberOf.type")
                        }
                    }
                    guard let i = id else { throw fail(path + ".memberOf", "missing `id`") }
                    decl.memberOf.append(RawActionRef(typePath: typePath, id: i, location: nil))
                }
            case "appliesTo":
                if x == .null { continue }
                var ps: [RawPath] = []
                var rs: [RawPath] = []
                for (ak, av) in try object(x, path + ".appliesTo", allowed: ["principalTypes", "resourceTypes", "context"]) {
                    let p = path + ".appliesTo." + ak
                    switch ak {
                    case "principalTypes", "resourceTypes":
                        guard let arr = av.arrayValue else { throw fail(p, "expected an array") }
                        let names = try arr.map { try rawPath(try string($0, p), p) }
                        if ak == "principalTypes" { ps = names } else { rs = names }
                    default:
                        decl.context = try type(av, p, depth: 0, allowAnnotations: false)
                    }
                }
                for required in ["principalTypes", "resourceTypes"] where x[required] == nil {
                    throw fail(path + ".appliesTo", "missing field `\(required)`")
                }
                decl.principalTypes = ps
                decl.resourceTypes = rs
            case "attributes":
                if x != .null { throw fail(path + ".attributes", "action attributes are not supported") }
            default: try annotationsOK(x, path + "." + k)
            }
        }
        return decl
    }

    static func type(_ v: JSONValue, _ path: String, depth: Int, allowAnnotations: Bool) throws -> RawType {
        if depth > maxDepth { throw fail(path, "type is nested too deeply") }
        guard let o = v.objectValue else { throw fail(path, "expected a type object") }
        guard let tv = v["type"], let t = tv.stringValue else { throw fail(path, "missing `type`") }
        var allowed: Set<String> = ["type", "annotations"]
        switch t {
        case "Set": allowed.insert("element")
        case "Record": allowed.formUnion(["attributes", "additionalAttributes"])
        case "Entity", "Extension", "EntityOrCommon": allowed.insert("name")
        default: break
        }
        _ = try object(v, path, allowed: allowed.union(["required"]))
        _ = o
        switch t {
        case "Long": return .long
        case "String": return .string
        case "Boolean": return .bool
        case "Set":
            guard let e = v["element"] else { throw fail(path, "missing `element`") }
            return .set(try type(e, path + ".element", depth: depth + 1, allowAnnotations: false))
        case "Record":
            var attrs: [RawAttribute] = []
            guard v["attributes"] != nil else { throw fail(path, "missing `attributes`") }
            if let a = v["attributes"] {
                for (n, av) in try members(a, path + ".attributes") {
                    let ap = path + ".attributes." + n
                    var required = true
                    if let r = av["required"] {
                        guard case .bool(let b) = r else { throw fail(ap, "`required` must be a boolean") }
                        required = b
                    }
                    attrs.append(RawAttribute(name: n, type: try type(av, ap, depth: depth + 1, allowAnnotations: true), required: required, location: nil))
                }
            }
            var open = false
            if let ad = v["additionalAttributes"] {
                guard case .bool(let b) = ad else { throw fail(path, "`additionalAttributes` must be a boolean") }
                // Cedar (without partial validation) does not support open records.
                if b { throw fail(path, "unsupported feature: records and entities with `additionalAttributes`") }
                open = b
            }
            return .record(RawRecord(attributes: attrs, open: open, location: nil))
        case "Entity", "EntityOrCommon":
            guard let n = v["name"] else { throw fail(path, "missing `name`") }
            return .named(try rawPath(try string(n, path + ".name"), path + ".name"), t == "Entity" ? .entity : .commonOrEntity)
        case "Extension":
            guard let n = v["name"] else { throw fail(path, "missing `name`") }
            let s = try string(n, path + ".name")
            guard schemaExtensionTypes.contains(s) else { throw fail(path, "unknown extension type `\(s)`") }
            return .ext(s, nil)
        default:
            return .named(try rawPath(t, path + ".type"), .common)
        }
    }
}
