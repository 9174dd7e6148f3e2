/// Renders policies and expressions as canonical Cedar text. Output re-parses to an
/// equal AST (source locations aside); parentheses are added only where precedence
/// requires them.
public enum CedarFormatter {
    /// Formats a whole policy set: static policies and templates in their source
    /// order (policy ids are positional, so re-parsing the output keeps every id).
    public static func format(_ set: PolicySet) -> String {
        let ordered = (set.staticPolicies + set.templates).enumerated().sorted { a, b in
            (a.element.location?.offset ?? Int.max, a.offset) < (b.element.location?.offset ?? Int.max, b.offset)
        }
        let parts = ordered.map { format($0.element) }
        return parts.joined(separator: "\n\n") + (parts.isEmpty ? "" : "\n")
    }

    /// Formats one policy (ending with `;`).
    public static func format(_ p: Policy) -> String {
        var out = ""
        for a in p.annotations {
            out += "@\(a.key)(\(cedarQuoted(a.value)))\n"
        }
        out += "\(p.effect.rawValue) (\n"
        out += "  " + scope("principal", p.principal) + ",\n"
        out += "  " + action(p.action) + ",\n"
        out += "  " + scope("resource", p.resource) + "\n)"
        for c in p.conditions {
            out += "\n\(c.kind.rawValue) { \(format(c.body)) }"
        }
        return out + ";"
    }

    private static func scope(_ v: String, _ c: ScopeConstraint) -> String {
        switch c {
        case .any: return v
        case .eq(let r): return "\(v) == \(r)"
        case .in(let r): return "\(v) in \(r)"
        case .is(let t): return "\(v) is \(t)"
        case .isIn(let t, let r): return "\(v) is \(t) in \(r)"
        }
    }

    private static func action(_ c: ActionConstraint) -> String {
        switch c {
        case .any: return "action"
        case .eq(let u): return "action == \(u)"
        case .in(let u): return "action in \(u)"
        case .inSet(let us): return "action in [" + us.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Formats an expression.
    public static func format(_ e: Expr) -> String { render(e, 0) }

    private static func level(_ e: Expr) -> Int {
        switch e.kind {
        case .ifThenElse: return 0
        case .or: return 1
        case .and: return 2
        case .binary(let op, _, _):
            switch op {
            case .eq, .neq, .lt, .lte, .gt, .gte, .in: return 3
            case .add, .sub: return 4
            case .mul: return 5
            case .contains, .containsAll, .containsAny, .getTag, .hasTag: return 7
            }
        case .like, .isType, .has: return 3
        case .unary(let op, _): return op == .isEmpty ? 7 : 6
        case .literal(.long(let n)) where n < 0: return 6
        default: return 7
        }
    }

    private static func attr(_ s: String) -> String {
        Name.isIdentifier(s) && !ExtensionNames.reserved.contains(s) ? s : cedarQuoted(s)
    }

    private static func render(_ e: Expr, _ need: Int) -> String {
        let text = plain(e)
        return level(e) < need ? "(\(text))" : text
    }

    private static func plain(_ e: Expr) -> String {
        switch e.kind {
        case .literal(let v):
            switch v {
            case .set(let s): return "[" + s.map { lit($0) }.sorted().joined(separator: ", ") + "]"
            default: return lit(v)
            }
        case .variable(let v): return v.rawValue
        case .slot(let s): return s.rawValue
        case .ifThenElse(let c, let t, let f):
            return "if \(render(c, 0)) then \(render(t, 0)) else \(render(f, 0))"
        case .or:
            return e.chainOperands(and: false).enumerated().map { render($1, $0 == 0 ? 1 : 2) }.joined(separator: " || ")
        case .and:
            return e.chainOperands(and: true).enumerated().map { render($1, $0 == 0 ? 2 : 3) }.joined(separator: " && ")
        case .unary(let op, let x):
            switch op {
            case .not: return "!" + render(x, 7)
            case .neg:
                if case .literal(.long(let n)) = x.kind, n >= 0 { return "-(\(n))" }
                return "-" + render(x, 7)
            case .isEmpty: return render(x, 7) + ".isEmpty()"
            }
        case .binary(let op, let l, let r):
            switch op {
            case .eq, .neq, .lt, .lte, .gt, .gte, .in:
                return "\(render(l, 4)) \(op.rawValue) \(render(r, 4))"
            case .add, .sub: return "\(render(l, 4)) \(op.rawValue) \(render(r, 5))"
            case .mul: return "\(render(l, 5)) * \(render(r, 6))"
            case .contains, .containsAll, .containsAny, .getTag, .hasTag:
                return "\(render(l, 7)).\(op.rawValue)(\(render(r, 0)))"
            }
        case .like(let x, let p): return "\(render(x, 4)) like \"\(p)\""
        case .isType(let x, let t, let inExpr):
            if let inExpr { return "\(render(x, 4)) is \(t) in \(render(inExpr, 4))" }
            return "\(render(x, 4)) is \(t)"
        case .has(let x, let a):
            return "\(render(x, 4)) has \(attr(a))"
        case .getAttr(let x, let a):
            let recv = render(x, 7)
            let k = attr(a)
            return k.hasPrefix("\"") ? "\(recv)[\(k)]" : "\(recv).\(k)"
        case .record(let entries):
            return "{" + entries.map { "\(attr($0.key)): \(render($0.value, 0))" }.joined(separator: ", ") + "}"
        case .set(let elems):
            return "[" + elems.map { render($0, 0) }.joined(separator: ", ") + "]"
        case .call(let n, let args):
            return "\(n)(" + args.map { render($0, 0) }.joined(separator: ", ") + ")"
        case .method(let recv, let n, let args):
            return "\(render(recv, 7)).\(n)(" + args.map { render($0, 0) }.joined(separator: ", ") + ")"
        }
    }

    /// Literal values as Cedar expressions (records/sets/extension values included).
    private static func lit(_ v: Value) -> String {
        switch v {
        case .bool(let b): return b ? "true" : "false"
        case .long(let n): return String(n)
        case .string(let s): return cedarQuoted(s)
        case .entity(let u): return u.description
        case .set(let s): return "[" + s.map { lit($0) }.sorted().joined(separator: ", ") + "]"
        case .record(let r): return "{" + r.keys.sorted().map { "\(cedarQuoted($0)): \(lit(r[$0] ?? .bool(false)))" }.joined(separator: ", ") + "}"
        case .ext(let x): return x.description
        }
    }
}
