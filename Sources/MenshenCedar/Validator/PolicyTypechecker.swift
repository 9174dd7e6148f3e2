/// The strict-mode typechecker used by `Validator`: typechecks a policy's condition
/// in every request environment of the schema. It tracks singleton boolean types
/// (so that `false && e`, `true || e` and `if true/false` skip the dead operand, as
/// Cedar does) and capabilities established by `has` / `hasTag` that make later
/// optional-attribute and tag accesses safe.

/// A fact established by a `has` or `hasTag` test.
enum Capability: Hashable, Sendable {
    case attribute(Expr, String)
    case tag(Expr, Expr)
}

/// One request environment.
struct RequestEnvironment: Sendable {
    var principal: EntityType
    var action: EntityUID
    var resource: EntityType
    var context: VType
    var principalSlot: EntityType?
    var resourceSlot: EntityType?
}

/// The answer of typechecking one expression.
struct TypeAnswer {
    var type: VType?
    var caps: Set<Capability>
    var ok: Bool
    static func success(_ t: VType?, _ caps: Set<Capability> = []) -> TypeAnswer { TypeAnswer(type: t, caps: caps, ok: true) }
    static func fail(_ t: VType? = nil) -> TypeAnswer { TypeAnswer(type: t, caps: [], ok: false) }
    /// Capabilities as seen by a consumer (failed answers contribute none).
    var usableCaps: Set<Capability> { ok ? caps : [] }
}

struct ExtensionFunctionSignature: Sendable {
    var args: [VType]
    var result: VType
    /// Constructors: argument must be a literal and (if a string) must parse.
    var literalCheck: (@Sendable (String) -> Bool)?
}

let validatorExtensionFunctions: [String: ExtensionFunctionSignature] = {
    let ip = VType.ext("ipaddr"), dec = VType.ext("decimal"), dt = VType.ext("datetime"), dur = VType.ext("duration")
    var m: [String: ExtensionFunctionSignature] = [:]
    m["ip"] = ExtensionFunctionSignature(args: [.string], result: ip, literalCheck: { IPAddr(parsing: $0) != nil })
    for f in ["isIpv4", "isIpv6", "isLoopback", "isMulticast"] { m[f] = ExtensionFunctionSignature(args: [ip], result: .anyBool) }
    m["isInRange"] = ExtensionFunctionSignature(args: [ip, ip], result: .anyBool)
    m["decimal"] = ExtensionFunctionSignature(args: [.string], result: dec, literalCheck: { CedarDecimal(parsing: $0) != nil })
    for f in ["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"] {
        m[f] = ExtensionFunctionSignature(args: [dec, dec], result: .anyBool)
    }
    m["datetime"] = ExtensionFunctionSignature(args: [.string], result: dt, literalCheck: { CedarDatetime(parsing: $0) != nil })
    m["duration"] = ExtensionFunctionSignature(args: [.string], result: dur, literalCheck: { CedarDuration(parsing: $0) != nil })
    m["offset"] = ExtensionFunctionSignature(args: [dt, dur], result: dt)
    m["durationSince"] = ExtensionFunctionSignature(args: [dt, dt], result: dur)
    m["toDate"] = ExtensionFunctionSignature(args: [dt], result: dt)
    m["toTime"] = ExtensionFunctionSignature(args: [dt], result: dur)
    for f in ["toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays"] {
        m[f] = ExtensionFunctionSignature(args: [dur], result: .long)
    }
    return m
}()

/// Extension types whose values support `<`, `<=`, `>`, `>=`.
let comparableExtensionTypes: Set<String> = ["datetime", "duration"]

/// Validator types derived once from a schema: entity attribute records and action contexts.
struct SchemaTypeTables: Sendable {
    var entityAttributes: [EntityType: [String: VAttr]] = [:]
    var contexts: [EntityUID: VType] = [:]
    init(_ schema: Schema) {
        for (n, def) in schema.entityTypes {
            if case .record(let m, _) = VType(def.attributes) { entityAttributes[n] = m }
        }
        for (u, a) in schema.actions { contexts[u] = VType(a.context) }
    }
}

struct PolicyTypechecker {
    let schema: Schema
    let tables: SchemaTypeTables
    let policy: Policy
    static let maxDepth = 1000

    /// The whole policy condition: principal && (action && (resource && conditions)).
    var condition: Expr {
        let loc = policy.location
        func scopeExpr(_ v: Var, _ c: ScopeConstraint) -> Expr {
            let ve = Expr(.variable(v), at: loc)
            func ref(_ r: EntityReference) -> Expr {
                switch r {
                case .uid(let u): return Expr(.literal(.entity(u)), at: loc)
                case .slot(let s): return Expr(.slot(s), at: loc)
                }
            }
            switch c {
            case .any: return Expr(.literal(.bool(true)), at: loc)
            case .eq(let r): return Expr(.binary(.eq, ve, ref(r)), at: loc)
            case .in(let r): return Expr(.binary(.in, ve, ref(r)), at: loc)
            case .is(let t): return Expr(.isType(ve, t, in: nil), at: loc)
            case .isIn(let t, let r):
                return Expr(.and(Expr(.isType(ve, t, in: nil), at: loc), Expr(.binary(.in, ve, ref(r)), at: loc)), at: loc)
            }
        }
        let av = Expr(.variable(.action), at: loc)
        let actionExpr: Expr
        switch policy.action {
        case .any: actionExpr = Expr(.literal(.bool(true)), at: loc)
        case .eq(let u): actionExpr = Expr(.binary(.eq, av, Expr(.literal(.entity(u)), at: loc)), at: loc)
        case .in(let u): actionExpr = Expr(.binary(.in, av, Expr(.set([Expr(.literal(.entity(u)), at: loc)]), at: loc)), at: loc)
        case .inSet(let us): actionExpr = Expr(.binary(.in, av, Expr(.set(us.map { Expr(.literal(.entity($0)), at: loc) }), at: loc)), at: loc)
        }
        var conds: Expr?
        for c in policy.conditions.reversed() {
            let body = c.kind == .when ? c.body : Expr(.unary(.not, c.body), at: c.body.location)
            conds = conds.map { Expr(.and(body, $0), at: loc) } ?? body
        }
        let tail = Expr(.and(scopeExpr(.resource, policy.resource), conds ?? Expr(.literal(.bool(true)), at: loc)), at: loc)
        return Expr(.and(scopeExpr(.principal, policy.principal), Expr(.and(actionExpr, tail), at: loc)), at: loc)
    }

    /// Request environments from the schema, linked with possible slot types for templates.
    var environments: [RequestEnvironment] {
        var out: [RequestEnvironment] = []
        let slots = policy.slots
        func slotLinks(_ slot: SlotID, _ varType: EntityType, _ c: ScopeConstraint) -> [EntityType?] {
            guard slots.contains(slot) else { return [nil] }
            switch c {
            case .eq: return [varType]
            case .in, .isIn:
                return schema.sortedEntityTypeNames.filter { schema.entityTypes[$0]?.descendants.contains(varType) == true } + [varType]
            case .is, .any: return schema.sortedEntityTypeNames
            }
        }
        for uid in schema.sortedActionUIDs {
            guard let a = schema.actions[uid] else { continue }
            let ctx = tables.contexts[uid] ?? VType(a.context)
            for p in a.principalTypes {
                for r in a.resourceTypes {
                    for ps in slotLinks(.principal, p, policy.principal) {
                        for rs in slotLinks(.resource, r, policy.resource) {
                            out.append(RequestEnvironment(principal: p, action: uid, resource: r, context: ctx, principalSlot: ps, resourceSlot: rs))
                        }
                    }
                }
            }
        }
        return out
    }

    /// Typechecks the condition in every environment. Returns the errors and whether the
    /// condition was `false` in every environment.
    func check() -> ([ValidationDiagnostic], Bool) {
        let cond = condition
        var errors: [ValidationDiagnostic] = []
        var allFalse = true
        for env in environments {
            var tc = SingleEnvironmentChecker(schema: schema, tables: tables, env: env, policyID: policy.id)
            let ans = tc.expect(cond, [.anyBool], [])
            errors += tc.errors
            if ans.type != .singleton(false) { allFalse = false }
        }
        return (errors, allFalse)
    }
}

struct SingleEnvironmentChecker {
    let schema: Schema
    let tables: SchemaTypeTables
    let env: RequestEnvironment
    let policyID: String
    var errors: [ValidationDiagnostic] = []
    var depth = 0

    init(schema: Schema, tables: SchemaTypeTables, env: RequestEnvironment, policyID: String) {
        self.schema = schema; self.tables = tables; self.env = env; self.policyID = policyID
    }

    mutating func error(_ code: ValidationCode, _ e: Expr, _ message: String) {
        errors.append(ValidationDiagnostic(code: code, policyID: policyID, location: e.location, message: message))
    }

    /// Typechecks `e` and requires its type to be a (permissive) subtype of one of `expected`.
    mutating func expect(_ e: Expr, _ expected: [VType], _ prior: Set<Capability>) -> TypeAnswer {
        let a = typecheck(e, prior)
        guard let t = a.type else { return .fail() }
        if !expected.contains(where: { TypeLattice.isSubtype(t, $0, strict: false) }) {
            let exp = expected.map { "\($0)" }.joined(separator: ", ")
            error(.unexpectedType, e, "unexpected type: expected \(expected.count == 1 ? exp : "one of \(exp)") but saw \(t)")
            return .fail()
        }
        return a
    }

    func isLiteral(_ e: Expr) -> Bool {
        if case .literal = e.kind { return true }
        return false
    }

    /// The literal value of `e`, replacing the `action` variable by the environment's action.
    func literalValue(_ e: Expr) -> Value? {
        switch e.kind {
        case .literal(let v): return v
        case .variable(.action): return .entity(env.action)
        default: return nil
        }
    }

    func euidLiteral(_ e: Expr) -> EntityUID? {
        if case .entity(let u)? = literalValue(e) { return u }
        return nil
    }

    func euidLiterals(_ e: Expr) -> [EntityUID]? {
        if let u = euidLiteral(e) { return [u] }
        if case .set(let es) = e.kind {
            var out: [EntityUID] = []
            for x in es {
                guard let u = euidLiteral(x) else { return nil }
                out.append(u)
            }
            return out
        }
        return nil
    }

    func typeOfEntityLiteral(_ u: EntityUID) -> VType? {
        if u.type.isActionType { return schema.actions[u] != nil ? .entityType(u.type) : nil }
        return schema.entityTypes[u.type] != nil ? .entityType(u.type) : nil
    }

    func entityAttributes(_ lub: Set<EntityType>) -> [String: VAttr] {
        var acc: [String: VAttr]?
        for t in lub.sorted() {
            let attrs = tables.entityAttributes[t] ?? [:]
            acc = acc.map { TypeLattice.permissiveAttrsLub($0, attrs) } ?? attrs
        }
        return acc ?? [:]
    }

    func lookupAttribute(_ t: VType, _ attr: String) -> VAttr? {
        switch t {
        case .record(let m, _): return m[attr]
        case .entity(let lub): return entityAttributes(lub)[attr]
        default: return nil
        }
    }

    func mayHaveAttribute(_ t: VType, _ attr: String) -> Bool {
        switch t {
        case .never, .anyEntity: return true
        case .entity(let lub):
            for n in lub where !n.isActionType {
                guard let def = schema.entityTypes[n] else { return true }
                if def.attributes.openAttributes { return true }
            }
            return lub.contains { schema.entityTypes[$0]?.attributes.attributes[attr] != nil }
        case .record(let m, let open): return open || m[attr] != nil
        default: return false
        }
    }

    func tagTypes(_ t: VType) -> Set<VType> {
        switch t {
        case .entity(let lub): return Set(lub.compactMap { schema.entityTypes[$0]?.tags.map(VType.init) })
        case .anyEntity: return Set(schema.entityTypes.values.compactMap { $0.tags.map(VType.init) })
        default: return []
        }
    }

    func isDescendantType(_ lhs: Set<EntityType>, _ rhs: Set<EntityType>) -> Bool {
        for l in lhs {
            for r in rhs {
                if schema.entityTypesIn(r).contains(l) { return true }
                if l == r { return true }
                for a in schema.actions.values where a.uid.type == r {
                    if a.descendants.contains(where: { $0.type == l }) { return true }
                }
            }
        }
        return false
    }

    mutating func typecheck(_ e: Expr, _ prior: Set<Capability>) -> TypeAnswer {
        depth += 1
        defer { depth -= 1 }
        if depth > PolicyTypechecker.maxDepth {
            error(.internalError, e, "expression is nested too deeply to typecheck")
            return .fail()
        }
        switch e.kind {
        case .variable(.principal): return .success(.entityType(env.principal))
        case .variable(.resource): return .success(.entityType(env.resource))
        case .variable(.action):
            return schema.actions[env.action] != nil ? .success(.entityType(env.action.type)) : .fail()
        case .variable(.context): return .success(env.context)
        case .slot(let s):
            let t = s == .principal ? env.principalSlot : env.resourceSlot
            return .success(t.map { VType.entityType($0) } ?? .anyEntity)
        case .literal(let v):
            switch v {
            case .bool(let b): return .success(.singleton(b))
            case .long: return .success(.long)
            case .string: return .success(.string)
            case .entity(let u):
                if let t = typeOfEntityLiteral(u) { return .success(t) }
                return .fail()
            default:
                return .success(nil)
            }
        case .ifThenElse(let c, let t, let f):
            let ta = expect(c, [.anyBool], prior)
            let testCaps = ta.usableCaps
            if ta.type == .singleton(true) {
                let a = typecheck(t, prior.union(testCaps))
                return TypeAnswer(type: a.type, caps: a.usableCaps.union(testCaps), ok: a.ok && ta.ok)
            } else if ta.type == .singleton(false) {
                let a = typecheck(f, prior)
                return TypeAnswer(type: a.type, caps: a.usableCaps, ok: a.ok && ta.ok)
            }
            let at = typecheck(t, prior.union(testCaps))
            let thenCaps = at.ok ? at.caps.union(testCaps) : []
            let af = typecheck(f, prior)
            guard let tt = at.type, let ft = af.type else { return .fail() }
            guard let l = TypeLattice.lub(tt, ft, strict: true) else {
                error(.incompatibleTypes, e, "the types \(tt) and \(ft) are not compatible: the branches of a conditional must have compatible types")
                return .fail()
            }
            return TypeAnswer(type: l, caps: thenCaps.intersection(af.usableCaps), ok: ta.ok && at.ok && af.ok)
        case .and(let l, let r):
            let al = expect(l, [.anyBool], prior)
            if al.type == .singleton(false) { return TypeAnswer(type: al.type, caps: [], ok: al.ok) }
            let capsL = al.usableCaps
            let ar = expect(r, [.anyBool], prior.union(capsL))
            let ok = al.ok && ar.ok
            let capsR = ar.usableCaps
            guard let lt = al.type, let rt = ar.type else { return TypeAnswer(type: .anyBool, caps: [], ok: false) }
            if rt == .singleton(false) { return TypeAnswer(type: .singleton(false), caps: [], ok: ok) }
            if rt == .singleton(true) { return TypeAnswer(type: lt, caps: capsL.union(capsR), ok: ok) }
            if lt == .singleton(true) { return TypeAnswer(type: rt, caps: capsR, ok: ok) }
            return TypeAnswer(type: .anyBool, caps: capsL.union(capsR), ok: ok)
        case .or(let l, let r):
            let al = expect(l, [.anyBool], prior)
            if al.type == .singleton(true) { return TypeAnswer(type: al.type, caps: al.usableCaps, ok: al.ok) }
            let capsL = al.usableCaps
            let ar = expect(r, [.anyBool], prior)
            let ok = al.ok && ar.ok
            let capsR = ar.usableCaps
            guard let lt = al.type, let rt = ar.type else { return TypeAnswer(type: .anyBool, caps: [], ok: false) }
            if rt == .singleton(true) { return TypeAnswer(type: .singleton(true), caps: capsR, ok: ok) }
            if rt == .singleton(false) { return TypeAnswer(type: lt, caps: capsL, ok: ok) }
            if lt == .singleton(false) { return TypeAnswer(type: rt, caps: capsR, ok: ok) }
            return TypeAnswer(type: .anyBool, caps: capsL.intersection(capsR), ok: ok)
        case .unary(let op, let a):
            switch op {
            case .not:
                let aa = expect(a, [.anyBool], prior)
                guard let t = aa.type else { return .fail(.anyBool) }
                let r: VType = t == .singleton(true) ? .singleton(false) : (t == .singleton(false) ? .singleton(true) : .anyBool)
                return TypeAnswer(type: r, caps: [], ok: aa.ok)
            case .neg:
                let aa = expect(a, [.long], prior)
                return TypeAnswer(type: .long, caps: [], ok: aa.ok)
            case .isEmpty:
                let aa = expect(a, [.set(nil)], prior)
                return TypeAnswer(type: .anyBool, caps: [], ok: aa.ok)
            }
        case .binary(let op, let a, let b):
            return typecheckBinary(e, op, a, b, prior)
        case .like(let a, _):
            let aa = expect(a, [.string], prior)
            return TypeAnswer(type: .anyBool, caps: [], ok: aa.ok)
        case .isType(let a, let t, let other):
            let isAns = typecheckIs(a, t, prior)
            guard let o = other else { return isAns }
            // `a is T in o` behaves as `a is T && a in o`.
            if isAns.type == .singleton(false) { return isAns }
            let inAns = typecheckIn(e, a, o, prior)
            let ok = isAns.ok && inAns.ok
            guard let lt = isAns.type, let rt = inAns.type else { return TypeAnswer(type: .anyBool, caps: [], ok: false) }
            if rt == .singleton(false) { return TypeAnswer(type: .singleton(false), caps: [], ok: ok) }
            if rt == .singleton(true) { return TypeAnswer(type: lt, caps: [], ok: ok) }
            if lt == .singleton(true) { return TypeAnswer(type: rt, caps: [], ok: ok) }
            return TypeAnswer(type: .anyBool, caps: [], ok: ok)
        case .has(let a, let attr):
            let aa = expect(a, [.anyEntity, .anyRecord], prior)
            guard let t = aa.type else { return .fail(.anyBool) }
            let cap = Capability.attribute(a, attr)
            if let at = lookupAttribute(t, attr) {
                let isRecord: Bool = { if case .record = t { return true }; return false }()
                let known = prior.contains(cap) || (at.required && isRecord)
                return TypeAnswer(type: known ? .singleton(true) : .anyBool, caps: [cap], ok: aa.ok)
            }
            return TypeAnswer(type: mayHaveAttribute(t, attr) ? .anyBool : .singleton(false), caps: [], ok: aa.ok)
        case .getAttr(let a, let attr):
            let aa = expect(a, [.anyEntity, .anyRecord], prior)
            guard let t = aa.type else { return .fail() }
            if let at = lookupAttribute(t, attr) {
                if at.required || prior.contains(.attribute(a, attr)) { return TypeAnswer(type: at.type, caps: [], ok: aa.ok) }
                error(.unsafeOptionalAttributeAccess, e, "unable to guarantee safety of access to optional attribute `\(attr)` on \(t); try testing for it with `has` first")
                return .fail(at.type)
            }
            error(.unsafeAttributeAccess, e, "attribute `\(attr)` on \(t) not found")
            return .fail()
        case .set(let es):
            var types: [VType] = []
            var ok = true
            var allTyped = true
            for x in es {
                let ax = typecheck(x, prior)
                ok = ok && ax.ok
                if let t = ax.type { types.append(t) } else { allTyped = false }
            }
            var lubType: VType?
            if allTyped {
                lubType = TypeLattice.reduceLub(types, strict: true)
                if lubType == nil {
                    error(.incompatibleTypes, e, "the types \(types.map { "\($0)" }.joined(separator: ", ")) are not compatible: elements of a set must have compatible types")
                }
            }
            if es.isEmpty {
                error(.emptySetForbidden, e, "empty set literals are forbidden in policies")
                return .fail()
            }
            guard let l = lubType else { return .fail() }
            return TypeAnswer(type: .set(l), caps: [], ok: ok)
        case .record(let entries):
            var attrs: [String: VAttr] = [:]
            var ok = true
            var allTyped = true
            for en in entries {
                let ax = typecheck(en.value, prior)
                ok = ok && ax.ok
                if let t = ax.type { attrs[en.key] = VAttr(type: t, required: true) } else { allTyped = false }
            }
            guard allTyped else { return .fail() }
            return TypeAnswer(type: .record(attrs, open: false), caps: [], ok: ok)
        case .call(let name, let args):
            return typecheckExtension(e, name.path.isEmpty ? name.basename : name.qualified, args, prior)
        case .method(let recv, let name, let args):
            return typecheckExtension(e, name, [recv] + args, prior)
        }
    }

    mutating func typecheckIs(_ a: Expr, _ t: EntityType, _ prior: Set<Capability>) -> TypeAnswer {
        let aa = expect(a, [.anyEntity], prior)
        switch aa.type {
        case .entity(let lub)?:
            let r: VType = !lub.contains(t) ? .singleton(false) : (lub.count == 1 ? .singleton(true) : .anyBool)
            return TypeAnswer(type: r, caps: [], ok: aa.ok)
        case .anyEntity?: return TypeAnswer(type: .anyBool, caps: [], ok: aa.ok)
        default: return .fail(.anyBool)
        }
    }

    mutating func typecheckIn(_ e: Expr, _ lhs: Expr, _ rhs: Expr, _ prior: Set<Capability>) -> TypeAnswer {
        let al = expect(lhs, [.anyEntity], prior)
        let ar = expect(rhs, [.set(.anyEntity), .anyEntity], prior)
        guard al.ok && ar.ok else { return .fail(.anyBool) }
        if let l = euidLiteral(lhs), l.type.isActionType, let rs = euidLiterals(rhs) {
            let rhsActions = rs.filter { $0.type.isActionType }
            if rhsActions.isEmpty { return .success(.singleton(false)) }
            guard let ds = schema.actions(in: rhsActions) else { return .fail(.anyBool) }
            return .success(.singleton(ds.contains(l)))
        }
        var lhsTypes: Set<EntityType>?
        if case .entity(let s)? = al.type { lhsTypes = s }
        var rhsTypes: Set<EntityType>?
        switch ar.type {
        case .entity(let s)?: rhsTypes = s
        case .set(.some(.entity(let s)))?: rhsTypes = s
        default: break
        }
        if let lt = lhsTypes, let rt = rhsTypes, !isDescendantType(lt, rt) { return .success(.singleton(false)) }
        return .success(.anyBool)
    }

    /// Strict equality: unless the result type is a singleton boolean, the operand types need a strict LUB.
    mutating func enforceStrictEquality(_ e: Expr, _ result: VType, _ lhs: VType?, _ rhs: VType?, ok: Bool, what: String) -> TypeAnswer {
        if result == .singleton(true) || result == .singleton(false) { return TypeAnswer(type: result, caps: [], ok: ok) }
        if let l = lhs, let r = rhs, TypeLattice.lub(l, r, strict: true) == nil {
            error(.incompatibleTypes, e, "the types \(l) and \(r) are not compatible: \(what)")
            return .fail(result)
        }
        return TypeAnswer(type: result, caps: [], ok: ok)
    }

    mutating func typeOfEquality(_ a: Expr, _ ta: VType?, _ b: Expr, _ tb: VType?) -> VType {
        if case .entity(let l0)? = ta, case .entity(let l1)? = tb, l0.isDisjoint(with: l1) { return .singleton(false) }
        if let va = literalValue(a), let vb = literalValue(b) { return .singleton(va == vb) }
        return .anyBool
    }

    mutating func typecheckBinary(_ e: Expr, _ op: BinaryOp, _ a: Expr, _ b: Expr, _ prior: Set<Capability>) -> TypeAnswer {
        switch op {
        case .eq, .neq:
            let aa = typecheck(a, prior)
            let ab = typecheck(b, prior)
            let t = typeOfEquality(a, aa.type, b, ab.type)
            var r = enforceStrictEquality(e, t, aa.type, ab.type, ok: aa.ok && ab.ok, what: "the operands of `==` must have compatible types")
            if op == .neq, let rt = r.type {
                r.type = rt == .singleton(true) ? .singleton(false) : (rt == .singleton(false) ? .singleton(true) : .anyBool)
            }
            return r
        case .lt, .lte, .gt, .gte:
            let (x, y) = (op == .lt || op == .lte) ? (a, b) : (b, a)
            let ax = typecheck(x, prior)
            let ay = typecheck(y, prior)
            let ok = ax.ok && ay.ok
            guard let t1 = ax.type, let t2 = ay.type else { return .fail(.anyBool) }
            func valid(_ t: VType) -> Bool {
                if case .long = t { return true }
                if case .ext(let n) = t { return comparableExtensionTypes.contains(n) }
                return false
            }
            switch (t1, t2) {
            case (.never, .never): return .fail(.anyBool)
            case (.never, let o), (let o, .never):
                if valid(o) { return TypeAnswer(type: .anyBool, caps: [], ok: ok) }
            default:
                if t1 == t2 && valid(t1) { return TypeAnswer(type: .anyBool, caps: [], ok: ok) }
            }
            error(.unexpectedType, e, "unexpected types \(t1) and \(t2) for a comparison: expected Long, datetime or duration operands of the same type")
            return .fail(.anyBool)
        case .add, .sub, .mul:
            let ax = expect(a, [.long], prior)
            let ay = expect(b, [.long], prior)
            return TypeAnswer(type: .long, caps: [], ok: ax.ok && ay.ok)
        case .in:
            return typecheckIn(e, a, b, prior)
        case .contains:
            let ax = expect(a, [.set(nil)], prior)
            let ay = typecheck(b, prior)
            var elem: VType?
            if case .set(let el)? = ax.type { elem = el }
            return enforceStrictEquality(e, .anyBool, elem, ay.type, ok: ax.ok && ay.ok, what: "the element type of the set and the argument of `contains` must be compatible")
        case .containsAll, .containsAny:
            let ax = expect(a, [.set(nil)], prior)
            let ay = expect(b, [.set(nil)], prior)
            return enforceStrictEquality(e, .anyBool, ax.type, ay.type, ok: ax.ok && ay.ok, what: "the operands of `\(op.rawValue)` must be sets of compatible types")
        case .hasTag, .getTag:
            let ax = expect(a, [.anyEntity], prior)
            let ay = expect(b, [.string], prior)
            guard let t = ax.type, ay.type != nil else { return .fail(op == .hasTag ? .anyBool : nil) }
            let ok = ax.ok && ay.ok
            let cap = Capability.tag(a, b)
            let tags = tagTypes(t)
            if op == .hasTag {
                let r: VType = tags.isEmpty ? .singleton(false) : (prior.contains(cap) ? .singleton(true) : .anyBool)
                return TypeAnswer(type: r, caps: [cap], ok: ok)
            }
            guard prior.contains(cap) else {
                error(.unsafeTagAccess, e, "unable to guarantee safety of access to a tag of \(t); try testing for it with `hasTag` first")
                return .fail()
            }
            if tags.isEmpty {
                error(.noTagsAllowed, e, "\(t) does not allow tags")
                return .fail()
            }
            guard let l = TypeLattice.reduceLub(tags.sorted { $0.description < $1.description }, strict: true) else {
                error(.incompatibleTypes, e, "the tag types of \(t) are not compatible")
                return .fail()
            }
            return TypeAnswer(type: l, caps: [], ok: ok)
        }
    }

    mutating func typecheckExtension(_ e: Expr, _ name: String, _ args: [Expr], _ prior: Set<Capability>) -> TypeAnswer {
        guard let sig = validatorExtensionFunctions[name] else {
            error(.undefinedFunction, e, "undefined extension function: \(name)")
            for a in args { _ = typecheck(a, prior) }
            return .fail()
        }
        var failed = false
        if args.count != sig.args.count {
            error(.wrongNumberArguments, e, "wrong number of arguments in extension function application: expected \(sig.args.count), got \(args.count)")
            failed = true
        }
        if let check = sig.literalCheck {
            if args.count == 1, case .literal(.string(let s)) = args[0].kind, !check(s) {
                error(.functionArgumentValidation, e, "error during extension function argument validation: failed to parse as a \(sig.result) value: \(cedarQuoted(s))")
                failed = true
            }
            if !args.allSatisfy(isLiteral) {
                error(.nonLitExtConstructor, e, "extension constructors may not be called with non-literal expressions")
                failed = true
            }
        }
        if failed {
            for a in args { _ = typecheck(a, prior) }
            return .fail(sig.result)
        }
        var ok = true
        for (a, t) in zip(args, sig.args) {
            let aa = expect(a, [t], prior)
            ok = ok && aa.ok
        }
        return TypeAnswer(type: sig.result, caps: [], ok: ok)
    }
}
