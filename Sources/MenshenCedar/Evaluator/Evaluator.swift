/// Evaluates Cedar expressions and policies against one request and entity store,
/// with Cedar 4.x semantics: errors propagate, `&&`/`||` short-circuit and require
/// booleans, Int64 arithmetic is overflow-checked, `==` across types is `false`.
public struct Evaluator: Sendable {
    public let request: Request
    public let entities: Entities
    private let principalValue: Value
    private let actionValue: Value
    private let resourceValue: Value
    private let contextValue: Value

    public init(request: Request, entities: Entities) {
        self.request = request
        self.entities = entities
        principalValue = .entity(request.principal)
        actionValue = .entity(request.action)
        resourceValue = .entity(request.resource)
        contextValue = .record(request.context)
    }

    // MARK: policies

    /// Whether `policy` is satisfied by the request (scope matches and all conditions hold).
    /// Throws the evaluation error of its conditions.
    public func isSatisfied(_ policy: Policy) throws(CedarError) -> Bool {
        guard try scopeMatches(policy) else { return false }
        for c in policy.conditions {
            let v = try eval(c.body, depth: 0)
            guard case .bool(let b) = v else {
                throw CedarError(.typeError, "type error: expected bool, got \(v.typeName)", at: c.body.location)
            }
            if b != (c.kind == .when) { return false }
        }
        return true
    }

    /// `isSatisfied` for a shared policy reference (avoids copying the policy).
    public func isSatisfied(_ ref: PolicyRef) throws(CedarError) -> Bool {
        guard try scope(ref.policy.principal, request.principal) else { return false }
        guard action(ref.policy.action) else { return false }
        guard try scope(ref.policy.resource, request.resource) else { return false }
        for c in ref.policy.conditions {
            let v = try eval(c.body, depth: 0)
            guard case .bool(let b) = v else {
                throw CedarError(.typeError, "type error: expected bool, got \(v.typeName)", at: c.body.location)
            }
            if b != (c.kind == .when) { return false }
        }
        return true
    }

    /// Checks only the principal/action/resource scope constraints.
    public func scopeMatches(_ policy: Policy) throws(CedarError) -> Bool {
        guard try scope(policy.principal, request.principal) else { return false }
        guard action(policy.action) else { return false }
        return try scope(policy.resource, request.resource)
    }

    private func ref(_ r: EntityReference) throws(CedarError) -> EntityUID {
        switch r {
        case .uid(let u): return u
        case .slot(let s): throw CedarError(.evaluation, "template slot \(s) is not linked")
        }
    }

    private func scope(_ c: ScopeConstraint, _ uid: EntityUID) throws(CedarError) -> Bool {
        switch c {
        case .any: return true
        case .eq(let r): let x = try ref(r); return uid == x
        case .in(let r): let x = try ref(r); return entities.isDescendant(uid, of: x)
        case .is(let t): return uid.type == t
        case .isIn(let t, let r): let x = try ref(r); return uid.type == t && entities.isDescendant(uid, of: x)
        }
    }

    private func action(_ c: ActionConstraint) -> Bool {
        switch c {
        case .any: return true
        case .eq(let u): return request.action == u
        case .in(let u): return entities.isDescendant(request.action, of: u)
        case .inSet(let us): return us.contains { entities.isDescendant(request.action, of: $0) }
        }
    }

    // MARK: expressions

    /// Evaluates an expression.
    public func evaluate(_ e: Expr) throws(CedarError) -> Value {
        try eval(e, depth: 0)
    }

    @inline(__always)
    private func err(_ code: CedarError.Code, _ msg: String, _ e: Expr) -> CedarError {
        CedarError(code, msg, at: e.location)
    }

    private func typeErr(_ expected: String, _ v: Value, _ e: Expr) -> CedarError {
        CedarError(.typeError, "type error: expected \(expected), got \(v.typeName)", at: e.location)
    }

    private func bool(_ e: Expr, _ depth: Int) throws(CedarError) -> Bool {
        let v = try eval(e, depth: depth)
        guard case .bool(let b) = v else { throw typeErr("bool", v, e) }
        return b
    }

    private func long(_ e: Expr, _ depth: Int) throws(CedarError) -> Int64 {
        let v = try eval(e, depth: depth)
        guard case .long(let n) = v else { throw typeErr("long", v, e) }
        return n
    }

    private func entityUIDs(_ v: Value, _ e: Expr) throws(CedarError) -> [EntityUID] {
        switch v {
        case .entity(let u): return [u]
        case .set(let s):
            var out: [EntityUID] = []
            out.reserveCapacity(s.count)
            for x in s {
                guard case .entity(let u) = x else { throw typeErr("(entity of any type)", x, e) }
                out.append(u)
            }
            return out
        default: throw typeErr("(entity of any type) or set", v, e)
        }
    }

    private func inOp(_ lhs: EntityUID, _ rhs: Value, _ e: Expr) throws(CedarError) -> Bool {
        if case .entity(let r) = rhs { return entities.isDescendant(lhs, of: r) }
        for r in try entityUIDs(rhs, e) where entities.isDescendant(lhs, of: r) { return true }
        return false
    }

    /// The recursive core. Kept small: every non-trivial case is an out-of-line helper so
    /// that each recursion level uses little stack (deep trees on small thread stacks).
    private func eval(_ e: Expr, depth: Int) throws(CedarError) -> Value {
        guard depth < MenshenCedar.Limits.maxEvaluationDepth else { throw depthError(e) }
        let d = depth + 1
        switch e.kind {
        case .literal(let v): return v
        case .variable(let v): return variable(v)
        case .slot: throw slotError(e)
        case .ifThenElse: return try evalIf(e, d)
        case .and: return try evalAnd(e, d)
        case .or: return try evalOr(e, d)
        case .unary: return try evalUnary(e, d)
        case .binary: return try evalBinary(e, d)
        case .like: return try evalLike(e, d)
        case .isType: return try evalIs(e, d)
        case .has: return try evalHas(e, d)
        case .getAttr: return try evalGetAttr(e, d)
        case .record: return try evalRecord(e, d)
        case .set: return try evalSet(e, d)
        case .call, .method: return try evalCall(e, d)
        }
    }

    @inline(never) private func depthError(_ e: Expr) -> CedarError {
        err(.evaluation, "evaluation exceeds the maximum depth of \(MenshenCedar.Limits.maxEvaluationDepth)", e)
    }
    @inline(never) private func slotError(_ e: Expr) -> CedarError {
        if case .slot(let s) = e.kind { return err(.evaluation, "template slot \(s) is not linked", e) }
        return err(.evaluation, "template slot is not linked", e)
    }
    private func variable(_ v: Var) -> Value {
        switch v {
        case .principal: return principalValue
        case .action: return actionValue
        case .resource: return resourceValue
        case .context: return contextValue
        }
    }
    @inline(never) private func evalIf(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .ifThenElse(let c, let t, let f) = e.kind else { return .bool(false) }
        return try bool(c, d) ? try eval(t, depth: d) : try eval(f, depth: d)
    }
    @inline(never) private func evalAnd(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .and(let l, let r) = e.kind else { return .bool(false) }
        if case .and = l.kind {
            // Long chains are evaluated iteratively, left to right.
            for operand in e.chainOperands(and: true) { guard try bool(operand, d) else { return .bool(false) } }
            return .bool(true)
        }
        guard try bool(l, d) else { return .bool(false) }
        return .bool(try bool(r, d))
    }
    @inline(never) private func evalOr(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .or(let l, let r) = e.kind else { return .bool(false) }
        if case .or = l.kind {
            for operand in e.chainOperands(and: false) { if try bool(operand, d) { return .bool(true) } }
            return .bool(false)
        }
        if try bool(l, d) { return .bool(true) }
        return .bool(try bool(r, d))
    }
    @inline(never) private func evalUnary(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .unary(let op, let x) = e.kind else { return .bool(false) }
        switch op {
        case .not: return .bool(!(try bool(x, d)))
        case .neg:
            let n = try long(x, d)
            let (r, o) = Int64(0).subtractingReportingOverflow(n)
            if o { throw err(.overflow, "integer overflow while attempting to negate `\(n)`", e) }
            return .long(r)
        case .isEmpty:
            let v = try eval(x, depth: d)
            guard case .set(let s) = v else { throw typeErr("set", v, x) }
            return .bool(s.isEmpty)
        }
    }
    @inline(never) private func evalBinary(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .binary(let op, let l, let r) = e.kind else { return .bool(false) }
        if op == .add || op == .sub || op == .mul, case .binary(let lop, _, _) = l.kind, lop == .add || lop == .sub || lop == .mul {
            return try arithmeticChain(e, d)
        }
        return try binary(op, l, r, e, d)
    }

    /// Evaluates a left-nested chain of `+`, `-`, `*` iteratively (same order as recursion).
    @inline(never) private func arithmeticChain(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        var steps: [(BinaryOp, Expr, Expr)] = []  // (op, right operand, node)
        var cur = e
        while case .binary(let op, let l, let r) = cur.kind, op == .add || op == .sub || op == .mul {
            steps.append((op, r, cur))
            cur = l
        }
        var acc = try long(cur, d)
        for (op, r, node) in steps.reversed() {
            let y = try long(r, d)
            let (v, o): (Int64, Bool)
            switch op {
            case .add: (v, o) = acc.addingReportingOverflow(y)
            case .sub: (v, o) = acc.subtractingReportingOverflow(y)
            default: (v, o) = acc.multipliedReportingOverflow(by: y)
            }
            if o { throw err(.overflow, "integer overflow while attempting to \(op == .add ? "add" : op == .sub ? "subtract" : "multiply") `\(acc)` and `\(y)`", node) }
            acc = v
        }
        return .long(acc)
    }
    @inline(never) private func evalLike(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .like(let x, let p) = e.kind else { return .bool(false) }
        let v = try eval(x, depth: d)
        guard case .string(let s) = v else { throw typeErr("string", v, x) }
        return .bool(p.matches(s))
    }
    @inline(never) private func evalIs(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .isType(let x, let t, let inExpr) = e.kind else { return .bool(false) }
        let v = try eval(x, depth: d)
        guard case .entity(let u) = v else { throw typeErr("(entity of any type)", v, x) }
        guard u.type == t else { return .bool(false) }
        guard let inExpr else { return .bool(true) }
        return .bool(try inOp(u, try eval(inExpr, depth: d), inExpr))
    }
    @inline(never) private func evalHas(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .has(let x, let attr) = e.kind else { return .bool(false) }
        let v = try eval(x, depth: d)
        switch v {
        case .entity(let u): return .bool(entities[u]?.attributes[attr] != nil)
        case .record(let r): return .bool(r[attr] != nil)
        default: throw typeErr("(entity of any type) or record", v, x)
        }
    }
    @inline(never) private func evalGetAttr(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .getAttr(let x, let attr) = e.kind else { return .bool(false) }
        let v = try eval(x, depth: d)
        switch v {
        case .entity(let u):
            guard let ent = entities[u] else { throw err(.entityNotFound, "entity `\(u)` does not exist", e) }
            guard let a = ent.attributes[attr] else { throw err(.missingAttribute, "`\(u)` does not have the attribute `\(attr)`", e) }
            return a
        case .record(let rec):
            guard let a = rec[attr] else { throw err(.missingAttribute, "record does not have the attribute `\(attr)`", e) }
            return a
        default:
            throw typeErr("(entity of any type) or record", v, x)
        }
    }
    @inline(never) private func evalRecord(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .record(let entries) = e.kind else { return .bool(false) }
        var r: [String: Value] = [:]
        r.reserveCapacity(entries.count)
        for en in entries { r[en.key] = try eval(en.value, depth: d) }
        return .record(r)
    }
    @inline(never) private func evalSet(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        guard case .set(let elems) = e.kind else { return .bool(false) }
        var s = Set<Value>()
        s.reserveCapacity(elems.count)
        for el in elems { s.insert(try eval(el, depth: d)) }
        return .set(s)
    }
    @inline(never) private func evalCall(_ e: Expr, _ d: Int) throws(CedarError) -> Value {
        var vals: [Value] = []
        let name: String
        switch e.kind {
        case .call(let n, let args):
            name = n.qualified
            for a in args { vals.append(try eval(a, depth: d)) }
        case .method(let recv, let n, let args):
            name = n
            vals.append(try eval(recv, depth: d))
            for a in args { vals.append(try eval(a, depth: d)) }
        default: return .bool(false)
        }
        do { return try ExtensionFunctions.call(name, vals) } catch { throw CedarError(error.code, error.message, at: e.location) }
    }

    @inline(never) private func binary(_ op: BinaryOp, _ l: Expr, _ r: Expr, _ e: Expr, _ d: Int) throws(CedarError) -> Value {
        switch op {
        case .eq: return .bool(try eval(l, depth: d) == eval(r, depth: d))
        case .neq: return .bool(try eval(l, depth: d) != eval(r, depth: d))
        case .lt, .lte, .gt, .gte:
            let a = try eval(l, depth: d), b = try eval(r, depth: d)
            let c: Int  // -1, 0, 1
            switch (a, b) {
            case (.long(let x), .long(let y)): c = x < y ? -1 : (x == y ? 0 : 1)
            case (.ext(.datetime(let x)), .ext(.datetime(let y))): c = x < y ? -1 : (x == y ? 0 : 1)
            case (.ext(.duration(let x)), .ext(.duration(let y))): c = x < y ? -1 : (x == y ? 0 : 1)
            default:
                switch a {
                case .long, .ext(.datetime), .ext(.duration): throw typeErr(a.typeName, b, r)
                default: throw typeErr("long, datetime or duration", a, l)
                }
            }
            switch op {
            case .lt: return .bool(c < 0)
            case .lte: return .bool(c <= 0)
            case .gt: return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case .add, .sub, .mul:
            let x = try long(l, d), y = try long(r, d)
            let (v, o): (Int64, Bool)
            switch op {
            case .add: (v, o) = x.addingReportingOverflow(y)
            case .sub: (v, o) = x.subtractingReportingOverflow(y)
            default: (v, o) = x.multipliedReportingOverflow(by: y)
            }
            if o { throw err(.overflow, "integer overflow while attempting to \(op == .add ? "add" : op == .sub ? "subtract" : "multiply") `\(x)` and `\(y)`", e) }
            return .long(v)
        case .in:
            let a = try eval(l, depth: d)
            guard case .entity(let u) = a else { throw typeErr("(entity of any type)", a, l) }
            return .bool(try inOp(u, try eval(r, depth: d), r))
        case .contains:
            let a = try eval(l, depth: d)
            guard case .set(let s) = a else { throw typeErr("set", a, l) }
            return .bool(s.contains(try eval(r, depth: d)))
        case .containsAll, .containsAny:
            let a = try eval(l, depth: d)
            guard case .set(let s) = a else { throw typeErr("set", a, l) }
            let b = try eval(r, depth: d)
            guard case .set(let t) = b else { throw typeErr("set", b, r) }
            return .bool(op == .containsAll ? t.isSubset(of: s) : !s.isDisjoint(with: t))
        case .getTag, .hasTag:
            let a = try eval(l, depth: d)
            guard case .entity(let u) = a else { throw typeErr("(entity of any type)", a, l) }
            let b = try eval(r, depth: d)
            guard case .string(let tag) = b else { throw typeErr("string", b, r) }
            if op == .hasTag { return .bool(entities[u]?.tags[tag] != nil) }
            guard let ent = entities[u] else { throw err(.entityNotFound, "entity `\(u)` does not exist", e) }
            guard let v = ent.tags[tag] else { throw err(.missingAttribute, "`\(u)` does not have the tag `\(tag)`", e) }
            return v
        }
    }
}
