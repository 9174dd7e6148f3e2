/// Cedar's JSON policy format (the "EST"): policies as JSON objects with `effect`,
/// `principal`/`action`/`resource` scope objects, `conditions` and `annotations`, and a
/// policy-set document `{"staticPolicies": {id: policy}, "templates": {id: policy},
/// "templateLinks": [{"templateId", "newId", "values"}]}`.
public enum PolicyJSON {
    /// Parses a policy-set JSON document. A single policy object is also accepted (id `policy0`).
    public static func parsePolicySet(_ text: String) throws(CedarError) -> PolicySet {
        let j = try JSONValue.parse(text)
        var set = PolicySet()
        if j["effect"] != nil {
            try set.add(try policy(j, id: "policy0"))
            return set
        }
        guard case .object = j else { throw CedarError(.parse, "policy set JSON must be an object") }
        for key in ["staticPolicies", "templates"] {
            guard let group = j[key] else { continue }
            guard case .object(let members) = group else { throw CedarError(.parse, "`\(key)` must be an object") }
            for m in members {
                let p = try policy(m.value, id: m.key)
                if key == "staticPolicies" && p.isTemplate { throw CedarError(.parse, "static policy `\(m.key)` has template slots") }
                try set.add(p)
            }
        }
        if let links = j["templateLinks"] {
            guard case .array(let items) = links else { throw CedarError(.parse, "`templateLinks` must be an array") }
            for l in items {
                guard let t = l["templateId"]?.stringValue, let n = l["newId"]?.stringValue else {
                    throw CedarError(.parse, "template link needs `templateId` and `newId`")
                }
                var values: [SlotID: EntityUID] = [:]
                if case .object(let vs)? = l["values"] {
                    for v in vs {
                        guard let s = SlotID(rawValue: v.key) else { throw CedarError(.parse, "invalid slot `\(v.key)`") }
                        values[s] = try EntityJSON.entityUID(v.value)
                    }
                }
                try set.link(templateID: t, newID: n, values: values)
            }
        }
        return set
    }

    /// Parses one policy object.
    public static func policy(_ j: JSONValue, id: String) throws(CedarError) -> Policy {
        guard let eff = j["effect"]?.stringValue, let effect = Effect(rawValue: eff) else {
            throw CedarError(.parse, "policy `\(id)`: `effect` must be \"permit\" or \"forbid\"")
        }
        let principal = try scope(j["principal"], .principal, id)
        let resource = try scope(j["resource"], .resource, id)
        let action = try actionScope(j["action"], id)
        var conds: [Condition] = []
        if let cs = j["conditions"] {
            guard case .array(let items) = cs else { throw CedarError(.parse, "policy `\(id)`: `conditions` must be an array") }
            for c in items {
                guard let k = c["kind"]?.stringValue, let kind = Condition.Kind(rawValue: k), let body = c["body"] else {
                    throw CedarError(.parse, "policy `\(id)`: condition needs `kind` (when/unless) and `body`")
                }
                let e = try expr(body, depth: 0)
                guard e.depth <= MenshenCedar.Limits.maxExpressionDepth else { throw CedarError(.parse, "policy `\(id)`: expression too deep") }
                conds.append(Condition(kind: kind, body: e))
            }
        }
        var anns: [Annotation] = []
        if case .object(let ms)? = j["annotations"] {
            for m in ms {
                guard let v = m.value.stringValue ?? (m.value == .null ? "" : nil) else { throw CedarError(.parse, "annotation values must be strings") }
                anns.append(Annotation(key: m.key, value: v))
            }
        }
        return Policy(id: id, effect: effect, principal: principal, action: action, resource: resource,
                      conditions: conds, annotations: Annotations(anns))
    }

    private static func ref(_ j: JSONValue, _ v: Var, _ id: String) throws(CedarError) -> EntityReference {
        if let s = j["slot"]?.stringValue {
            guard let slot = SlotID(rawValue: s), (slot == .principal) == (v == .principal) else {
                throw CedarError(.parse, "policy `\(id)`: invalid slot `\(s)` in the \(v.rawValue) scope")
            }
            return .slot(slot)
        }
        guard let e = j["entity"] else { throw CedarError(.parse, "policy `\(id)`: scope needs `entity` or `slot`") }
        return .uid(try EntityJSON.entityUID(e))
    }

    private static func scope(_ j: JSONValue?, _ v: Var, _ id: String) throws(CedarError) -> ScopeConstraint {
        guard let j, let op = j["op"]?.stringValue else { throw CedarError(.parse, "policy `\(id)`: missing \(v.rawValue) scope") }
        switch op {
        case "All": return .any
        case "==": return .eq(try ref(j, v, id))
        case "in": return .in(try ref(j, v, id))
        case "is":
            guard let t = j["entity_type"]?.stringValue, let name = Name.parse(t) else { throw CedarError(.parse, "policy `\(id)`: invalid `entity_type`") }
            if let inner = j["in"] { return .isIn(name, try ref(inner, v, id)) }
            return .is(name)
        default: throw CedarError(.parse, "policy `\(id)`: invalid scope operator `\(op)`")
        }
    }

    private static func actionScope(_ j: JSONValue?, _ id: String) throws(CedarError) -> ActionConstraint {
        guard let j, let op = j["op"]?.stringValue else { throw CedarError(.parse, "policy `\(id)`: missing action scope") }
        switch op {
        case "All": return .any
        case "==":
            guard let e = j["entity"] else { throw CedarError(.parse, "policy `\(id)`: action scope needs `entity`") }
            return .eq(try EntityJSON.entityUID(e))
        case "in":
            if case .array(let items)? = j["entities"] {
                var uids: [EntityUID] = []
                for it in items { uids.append(try EntityJSON.entityUID(it)) }
                return .inSet(uids)
            }
            guard let e = j["entity"] else { throw CedarError(.parse, "policy `\(id)`: action scope needs `entity` or `entities`") }
            return .in(try EntityJSON.entityUID(e))
        default: throw CedarError(.parse, "policy `\(id)`: invalid action scope operator `\(op)`")
        }
    }

    private static let binaryOps: [String: BinaryOp] = [
        "==": .eq, "!=": .neq, "<": .lt, "<=": .lte, ">": .gt, ">=": .gte, "+": .add, "-": .sub, "*": .mul,
        "in": .in, "contains": .contains, "containsAll": .containsAll, "containsAny": .containsAny,
        "getTag": .getTag, "hasTag": .hasTag,
    ]

    /// Parses a JSON expression.
    public static func expr(_ j: JSONValue, depth: Int = 0) throws(CedarError) -> Expr {
        guard depth < MenshenCedar.Limits.maxNestingDepth else { throw CedarError(.parse, "expression nesting too deep") }
        guard case .object(let ms) = j, ms.count == 1, let m = ms.first else {
            throw CedarError(.parse, "an expression must be an object with exactly one key")
        }
        let d = depth + 1
        let body = m.value
        func sub(_ k: String) throws(CedarError) -> Expr {
            guard let x = body[k] else { throw CedarError(.parse, "`\(m.key)` needs `\(k)`") }
            return try expr(x, depth: d)
        }
        func attr() throws(CedarError) -> String {
            guard let a = body["attr"]?.stringValue else { throw CedarError(.parse, "`\(m.key)` needs a string `attr`") }
            return a
        }
        switch m.key {
        case "Value": return Expr(.literal(try EntityJSON.value(body)))
        case "Var":
            guard let s = body.stringValue, let v = Var(rawValue: s) else { throw CedarError(.parse, "invalid variable") }
            return Expr(.variable(v))
        case "Slot":
            guard let s = body.stringValue, let slot = SlotID(rawValue: s) else { throw CedarError(.parse, "invalid slot") }
            return Expr(.slot(slot))
        case "!": return Expr(.unary(.not, try sub("arg")))
        case "neg": return Expr(.unary(.neg, try sub("arg")))
        case "isEmpty": return Expr(.unary(.isEmpty, try sub("arg")))
        case "&&": return Expr(.and(try sub("left"), try sub("right")))
        case "||": return Expr(.or(try sub("left"), try sub("right")))
        case ".": return Expr(.getAttr(try sub("left"), try attr()))
        case "has": return Expr(.has(try sub("left"), try attr()))
        case "like":
            guard case .array(let items)? = body["pattern"] else { throw CedarError(.parse, "`like` needs a `pattern` array") }
            var elems: [PatternElem] = []
            for it in items {
                if it == .string("Wildcard") { elems.append(.wildcard); continue }
                guard let lit = it["Literal"]?.stringValue else { throw CedarError(.parse, "invalid pattern element") }
                for c in lit.unicodeScalars { elems.append(.char(c)) }
            }
            return Expr(.like(try sub("left"), Pattern(elems)))
        case "is":
            guard let t = body["entity_type"]?.stringValue, let name = Name.parse(t) else { throw CedarError(.parse, "`is` needs a valid `entity_type`") }
            let inExpr: Expr? = body["in"] == nil ? nil : try sub("in")
            return Expr(.isType(try sub("left"), name, in: inExpr))
        case "if-then-else": return Expr(.ifThenElse(try sub("if"), try sub("then"), try sub("else")))
        case "Set":
            guard case .array(let items) = body else { throw CedarError(.parse, "`Set` needs an array") }
            var es: [Expr] = []
            for it in items { es.append(try expr(it, depth: d)) }
            return Expr(.set(es))
        case "Record":
            guard case .object(let fields) = body else { throw CedarError(.parse, "`Record` needs an object") }
            var entries: [RecordEntry] = []
            var seen = Set<String>()
            for f in fields {
                guard seen.insert(f.key).inserted else { throw CedarError(.parse, "duplicate record key `\(f.key)`") }
                entries.append(RecordEntry(key: f.key, value: try expr(f.value, depth: d)))
            }
            return Expr(.record(entries))
        default:
            if let op = binaryOps[m.key] { return Expr(.binary(op, try sub("left"), try sub("right"))) }
            guard case .array(let items) = body else { throw CedarError(.parse, "unknown expression `\(m.key)`") }
            var args: [Expr] = []
            for it in items { args.append(try expr(it, depth: d)) }
            if ExtensionNames.functions.contains(m.key) { return Expr(.call(Name(basename: m.key), args)) }
            if ExtensionNames.methods.contains(m.key), let first = args.first {
                return Expr(.method(first, m.key, Array(args.dropFirst())))
            }
            throw CedarError(.parse, "unknown extension function `\(m.key)`")
        }
    }
}
