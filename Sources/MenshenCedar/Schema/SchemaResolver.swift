/// Turns an unresolved `SchemaFragment` into a `Schema`: checks declarations for
/// duplicates and reserved names, applies Cedar 4's name-resolution rules (with the
/// RFC 70 shadowing restrictions and the implicit `__cedar` builtins), inlines
/// common types (rejecting cycles), checks that every referenced entity type and
/// action exists, computes the entity-type and action hierarchies (rejecting
/// action-group cycles) and returns the resolved schema.

enum SchemaResolver {
    static let maxCommonTypeDepth = 256

    private struct CommonDef {
        var name: String          // fully qualified
        var namespace: [String]
        var type: RawType
        var location: SourceLocation?
        var builtin: SchemaType?  // for __cedar builtins and aliases
        var aliasOf: String?
    }

    static func qualify(_ ns: [String], _ base: String) -> String {
        ns.isEmpty ? base : (ns + [base]).joined(separator: "::")
    }

    static func resolve(_ frag: SchemaFragment) -> Result<Schema, CedarError> {
        do { return .success(try resolveThrowing(frag)) } catch let e as CedarError { return .failure(e) } catch {
            return .failure(schemaError("\(error)"))
        }
    }

    private static func resolveThrowing(_ frag: SchemaFragment) throws -> Schema {
        // 1. Collect definitions.
        var entityDecls: [String: (RawEntityDecl, [String])] = [:]
        var entityOrder: [String] = []
        var commonDefs: [String: CommonDef] = [:]
        var actionDecls: [EntityUID: (RawActionDecl, [String])] = [:]
        var actionOrder: [EntityUID] = []
        for ns in frag.namespaces {
            for c in ns.path where c == "__cedar" {
                throw schemaError("the namespace `\(ns.path.joined(separator: "::"))` contains `__cedar`, which is reserved", ns.location)
            }
            for e in ns.entities {
                if e.name == "__cedar" { throw schemaError("`__cedar` is reserved and cannot be an entity type name", e.location) }
                if e.name == "Action" { throw schemaError("entity type `Action` declared in the entity types; actions are declared with `action`", e.location) }
                let q = qualify(ns.path, e.name)
                if entityDecls[q] != nil { throw schemaError("duplicate entity type declaration `\(q)`", e.location) }
                entityDecls[q] = (e, ns.path)
                entityOrder.append(q)
            }
            for c in ns.commonTypes {
                if c.name == "__cedar" { throw schemaError("`__cedar` is reserved and cannot be a common type name", c.location) }
                if reservedCommonTypeNames.contains(c.name) {
                    throw schemaError("this is reserved and cannot be the basename of a common-type declaration: \(c.name)", c.location)
                }
                let q = qualify(ns.path, c.name)
                if commonDefs[q] != nil { throw schemaError("duplicate common type declaration `\(q)`", c.location) }
                commonDefs[q] = CommonDef(name: q, namespace: ns.path, type: c.type, location: c.location)
            }
            for a in ns.actions {
                let uid = EntityUID(type: Name(path: ns.path, basename: "Action"), id: a.name)
                if actionDecls[uid] != nil { throw schemaError("duplicate action declaration \(uid)", a.location) }
                actionDecls[uid] = (a, ns.path)
                actionOrder.append(uid)
            }
        }

        // 2. RFC 70 shadowing checks: a qualified declaration may not share its basename
        // with an unqualified (empty-namespace) declaration.
        var qualifiedBasenames: [String: String] = [:]
        for n in entityOrder + Array(commonDefs.keys).sorted() where n.contains("::") {
            qualifiedBasenames[Name(qualified: n).basename] = n
        }
        for n in entityOrder + Array(commonDefs.keys).sorted() where !n.contains("::") {
            if let s = qualifiedBasenames[n] {
                throw schemaError("definition of `\(s)` illegally shadows the existing definition of `\(n)`",
                                  entityDecls[n]?.0.location ?? commonDefs[n]?.location)
            }
        }
        var qualifiedActionIds: [String: EntityUID] = [:]
        for uid in actionOrder where !uid.type.path.isEmpty { qualifiedActionIds[uid.id] = uid }
        for uid in actionOrder where uid.type.path.isEmpty {
            if let s = qualifiedActionIds[uid.id] {
                throw schemaError("definition of \(s) illegally shadows the existing definition of \(uid)", actionDecls[uid]?.0.location)
            }
        }

        // 3. Builtins in `__cedar`, and aliases in the empty namespace.
        let builtins: [(String, SchemaType)] = [("Bool", .bool), ("Long", .long), ("String", .string)]
            + schemaExtensionTypes.map { ($0, SchemaType.ext($0)) }
        for (n, t) in builtins {
            commonDefs["__cedar::" + n] = CommonDef(name: "__cedar::" + n, namespace: ["__cedar"], type: .bool, location: nil, builtin: t)
            if entityDecls[n] == nil && commonDefs[n] == nil {
                commonDefs[n] = CommonDef(name: n, namespace: [], type: .bool, location: nil, builtin: t, aliasOf: "__cedar::" + n)
            }
        }
        var entityNames = Set(entityDecls.keys)
        for uid in actionOrder { entityNames.insert(uid.type.qualified) }

        // 4. Name resolution.
        func candidates(_ p: RawPath, _ ns: [String]) -> [String] {
            if p.isQualified || ns.isEmpty { return [p.text] }
            return [qualify(ns, p.text), p.text]
        }
        func resolveName(_ p: RawPath, _ kind: RawReferenceKind, _ ns: [String]) throws -> (String, isCommon: Bool) {
            for c in candidates(p, ns) {
                if kind != .entity && commonDefs[c] != nil { return (c, true) }
                if kind != .common && entityNames.contains(c) { return (c, false) }
            }
            let what: String
            switch kind {
            case .common: what = "as a common type"
            case .entity: what = "as an entity type"
            case .commonOrEntity: what = "as a common or entity type"
            }
            let cs = candidates(p, ns)
            let help = cs.count == 1 ? "`\(cs[0])` has not been declared \(what)"
                : "neither `\(cs[0])` nor `\(cs[1])` refers to anything that has been declared \(what)"
            throw schemaError("failed to resolve type: \(p.text); \(help)", p.location)
        }

        // Inline a raw type into a SchemaType, expanding common types (with cycle detection).
        var resolvedCommon: [String: SchemaType] = [:]
        var inProgress: Set<String> = []
        func convert(_ t: RawType, _ ns: [String], depth: Int) throws -> SchemaType {
            if depth > maxCommonTypeDepth { throw schemaError("schema type is nested too deeply") }
            switch t {
            case .bool: return .bool
            case .long: return .long
            case .string: return .string
            case .ext(let n, let l):
                guard schemaExtensionTypes.contains(n) else { throw schemaError("unknown extension type `\(n)`", l) }
                return .ext(n)
            case .set(let inner): return .set(try convert(inner, ns, depth: depth + 1))
            case .record(let r):
                var attrs: [String: AttributeType] = [:]
                for a in r.attributes {
                    attrs[a.name] = AttributeType(type: try convert(a.type, ns, depth: depth + 1), required: a.required)
                }
                return .record(RecordType(attributes: attrs, openAttributes: r.open))
            case .named(let p, let kind):
                let (n, isCommon) = try resolveName(p, kind, ns)
                if !isCommon { return .entity(Name(qualified: n)) }
                return try commonType(n, at: p.location, depth: depth + 1)
            }
        }
        func commonType(_ n: String, at loc: SourceLocation?, depth: Int) throws -> SchemaType {
            if let r = resolvedCommon[n] { return r }
            guard let def = commonDefs[n] else { throw schemaError("undeclared common type `\(n)`", loc) }
            if let b = def.builtin { resolvedCommon[n] = b; return b }
            if inProgress.contains(n) { throw schemaError("cycle in common type references containing `\(n)`", def.location ?? loc) }
            inProgress.insert(n)
            let r = try convert(def.type, def.namespace, depth: depth)
            inProgress.remove(n)
            resolvedCommon[n] = r
            return r
        }
        for n in commonDefs.keys.sorted() { _ = try commonType(n, at: commonDefs[n]?.location, depth: 0) }

        // 5. Entity types.
        var entityTypes: [EntityType: EntityTypeDefinition] = [:]
        for q in entityOrder {
            guard let (decl, ns) = entityDecls[q] else { continue }
            var parents: [EntityType] = []
            for p in decl.memberOf {
                let (n, _) = try resolveName(p, .entity, ns)
                if actionDecls.keys.contains(where: { $0.type.qualified == n }) && entityDecls[n] == nil {
                    throw schemaError("entity type `\(q)` cannot be a member of the action type `\(n)`", p.location)
                }
                parents.append(Name(qualified: n))
            }
            let shape = try convert(decl.shape, ns, depth: 0)
            guard case .record(let rec) = shape else {
                throw schemaError("the attributes of entity type `\(q)` must be a record type", decl.location)
            }
            var tags: SchemaType?
            if let t = decl.tags { tags = try convert(t, ns, depth: 0) }
            entityTypes[Name(qualified: q)] = EntityTypeDefinition(name: Name(qualified: q), memberOfTypes: parents, attributes: rec,
                                                                   tags: tags, enumChoices: decl.enumChoices, descendants: [], location: decl.location)
        }
        // Descendants: D is a descendant of T if T is reachable from D via memberOfTypes.
        for (name, def) in entityTypes {
            var seen = Set<EntityType>()
            var stack = def.memberOfTypes
            while let p = stack.popLast() {
                if !seen.insert(p).inserted { continue }
                if let pd = entityTypes[p] { stack.append(contentsOf: pd.memberOfTypes) }
            }
            for anc in seen { entityTypes[anc]?.descendants.insert(name) }
        }

        // 6. Actions.
        var actions: [EntityUID: ActionDefinition] = [:]
        for uid in actionOrder {
            guard let (decl, ns) = actionDecls[uid] else { continue }
            var parents: [EntityUID] = []
            for r in decl.memberOf {
                let typePath = r.typePath ?? RawPath(components: ["Action"], location: r.location)
                var found: EntityUID?
                for c in candidates(typePath, ns) {
                    let cand = EntityUID(type: Name(qualified: c), id: r.id)
                    if actionDecls[cand] != nil { found = cand; break }
                }
                guard let f = found else {
                    throw schemaError("undeclared action \(typePath.text)::\(cedarQuoted(r.id)) in the parents of action \(uid)", r.location ?? decl.location)
                }
                parents.append(f)
            }
            var principals: [EntityType] = []
            var resources: [EntityType] = []
            for p in decl.principalTypes ?? [] {
                let (n, _) = try resolveName(p, .entity, ns)
                guard entityDecls[n] != nil else { throw schemaError("undeclared entity type `\(n)` in the principal types of action \(uid)", p.location) }
                if !principals.contains(Name(qualified: n)) { principals.append(Name(qualified: n)) }
            }
            for p in decl.resourceTypes ?? [] {
                let (n, _) = try resolveName(p, .entity, ns)
                guard entityDecls[n] != nil else { throw schemaError("undeclared entity type `\(n)` in the resource types of action \(uid)", p.location) }
                if !resources.contains(Name(qualified: n)) { resources.append(Name(qualified: n)) }
            }
            var context = RecordType()
            if let c = decl.context {
                let t = try convert(c, ns, depth: 0)
                guard case .record(let r) = t else {
                    throw schemaError("the context of action \(uid) must be a record type", decl.location)
                }
                context = r
            }
            actions[uid] = ActionDefinition(uid: uid, memberOf: parents, ancestors: [], descendants: [],
                                            principalTypes: principals, resourceTypes: resources, context: context, location: decl.location)
        }
        // Transitive closure with cycle detection.
        for uid in actionOrder {
            guard let def = actions[uid] else { continue }
            var seen = Set<EntityUID>()
            var stack = def.memberOf
            while let p = stack.popLast() {
                if p == uid { throw schemaError("the action hierarchy contains a cycle involving \(uid)", def.location) }
                if !seen.insert(p).inserted { continue }
                if let pd = actions[p] { stack.append(contentsOf: pd.memberOf) }
            }
            actions[uid]?.ancestors = seen
            for a in seen { actions[a]?.descendants.insert(uid) }
        }

        var common: [String: SchemaType] = [:]
        for (k, v) in resolvedCommon where commonDefs[k]?.builtin == nil { common[k] = v }
        return Schema(entityTypes: entityTypes, actions: actions, commonTypes: common)
    }
}
