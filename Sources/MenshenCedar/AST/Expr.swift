/// The four request variables.
public enum Var: String, Sendable, Hashable, CaseIterable {
    case principal, action, resource, context
}

/// Template slots.
public enum SlotID: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case principal = "?principal"
    case resource = "?resource"
    public var description: String { rawValue }
}

/// Unary operators (`isEmpty` is written as a method call `e.isEmpty()`).
public enum UnaryOp: String, Sendable, Hashable {
    case not = "!"
    case neg = "-"
    case isEmpty
}

/// Binary operators. `contains`, `containsAll`, `containsAny`, `getTag`, `hasTag` are
/// written as method calls `lhs.op(rhs)`.
public enum BinaryOp: String, Sendable, Hashable {
    case eq = "==", neq = "!=", lt = "<", lte = "<=", gt = ">", gte = ">="
    case add = "+", sub = "-", mul = "*"
    case `in` = "in"
    case contains, containsAll, containsAny, getTag, hasTag
}

/// One element of a `like` pattern.
public enum PatternElem: Sendable, Hashable {
    /// A literal Unicode scalar.
    case char(Unicode.Scalar)
    /// `*`: any sequence of characters (an escaped `\*` is a `.char("*")`).
    case wildcard
}

/// A `like` pattern.
public struct Pattern: Sendable, Hashable, CustomStringConvertible {
    public let elems: [PatternElem]
    public init(_ elems: [PatternElem]) { self.elems = elems }

    /// Matches `s` against the pattern (greedy wildcard with backtracking, O(n·m) worst case).
    public func matches(_ s: String) -> Bool {
        let text = Array(s.unicodeScalars)
        var ti = 0, pi = 0
        var starP = -1, starT = 0
        while ti < text.count {
            if pi < elems.count, case .char(let c) = elems[pi], c == text[ti] {
                ti += 1; pi += 1
            } else if pi < elems.count, case .wildcard = elems[pi] {
                starP = pi; starT = ti; pi += 1
            } else if starP >= 0 {
                pi = starP + 1; starT += 1; ti = starT
            } else {
                return false
            }
        }
        while pi < elems.count, case .wildcard = elems[pi] { pi += 1 }
        return pi == elems.count
    }

    /// The pattern as Cedar source text (without quotes), re-escaping `*` and specials.
    public var description: String {
        var out = ""
        for e in elems {
            switch e {
            case .wildcard: out += "*"
            case .char(let c):
                if c == "*" { out += "\\*" } else {
                    let q = cedarQuoted(String(c)).unicodeScalars
                    out.unicodeScalars.append(contentsOf: q.dropFirst().dropLast())
                }
            }
        }
        return out
    }
}

/// A Cedar expression: an `ExprKind` plus the source location it was parsed from
/// (nil for synthesized nodes).
public struct Expr: Sendable, Hashable {
    public var kind: ExprKind
    public var location: SourceLocation?
    public init(_ kind: ExprKind, at location: SourceLocation? = nil) {
        self.kind = kind; self.location = location
    }
    /// Structural equality ignores source locations.
    public static func == (a: Expr, b: Expr) -> Bool { a.kind == b.kind }
    public func hash(into h: inout Hasher) { h.combine(kind) }
}

/// Expression variants.
public indirect enum ExprKind: Sendable, Hashable {
    /// A literal: bool, long, string or entity UID (other `Value`s only appear in synthesized exprs).
    case literal(Value)
    /// `principal`, `action`, `resource`, `context`.
    case variable(Var)
    /// `?principal`, `?resource` (only in templates).
    case slot(SlotID)
    /// `if c then t else e`.
    case ifThenElse(Expr, Expr, Expr)
    /// `a && b` (short-circuit).
    case and(Expr, Expr)
    /// `a || b` (short-circuit).
    case or(Expr, Expr)
    /// `!e`, `-e`, `e.isEmpty()`.
    case unary(UnaryOp, Expr)
    /// Binary operators and binary built-in methods.
    case binary(BinaryOp, Expr, Expr)
    /// `e like "pat*tern"`.
    case like(Expr, Pattern)
    /// `e is T` or `e is T in other`.
    case isType(Expr, EntityType, in: Expr?)
    /// `e has attr` (nested paths are desugared by the parser into `&&` chains).
    case has(Expr, String)
    /// `e.attr` or `e["attr"]`.
    case getAttr(Expr, String)
    /// `{a: e, "b": f}` (source order; keys unique).
    case record([RecordEntry])
    /// `[e, f]`.
    case set([Expr])
    /// Extension function call `ip("...")`, `decimal("...")`, `datetime("...")`, `duration("...")`.
    case call(Name, [Expr])
    /// Extension method call `receiver.name(args…)`, e.g. `x.isInRange(y)`, `d.toDays()`.
    case method(Expr, String, [Expr])
}

/// A key/value pair in a record literal.
public struct RecordEntry: Sendable, Hashable {
    public let key: String
    public let value: Expr
    public init(key: String, value: Expr) { self.key = key; self.value = value }
}

extension Expr {
    public static func lit(_ v: Value) -> Expr { Expr(.literal(v)) }
    public static func variable(_ v: Var) -> Expr { Expr(.variable(v)) }
    public static let trueExpr = Expr(.literal(.bool(true)))
}

extension Expr {
    /// Direct sub-expressions.
    public var children: [Expr] {
        switch kind {
        case .literal, .variable, .slot: return []
        case .ifThenElse(let a, let b, let c): return [a, b, c]
        case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): return [a, b]
        case .unary(_, let a), .like(let a, _), .has(let a, _), .getAttr(let a, _): return [a]
        case .isType(let a, _, let b): return b.map { [a, $0] } ?? [a]
        case .record(let es): return es.map(\.value)
        case .set(let es): return es
        case .call(_, let args): return args
        case .method(let r, _, let args): return [r] + args
        }
    }

    /// The nesting depth of the expression (a leaf has depth 1), computed without recursion.
    /// Continuing a left-nested `&&` or `||` chain (`a && b && c`) does not add depth, because
    /// the evaluator and formatter process such chains iteratively.
    public var depth: Int {
        var maxDepth = 0
        var stack: [(Expr, Int)] = [(self, 1)]
        while let (e, d) = stack.popLast() {
            maxDepth = max(maxDepth, d)
            switch e.kind {
            case .and(let l, let r):
                if case .and = l.kind { stack.append((l, d)) } else { stack.append((l, d + 1)) }
                stack.append((r, d + 1))
            case .or(let l, let r):
                if case .or = l.kind { stack.append((l, d)) } else { stack.append((l, d + 1)) }
                stack.append((r, d + 1))
            default:
                for c in e.children { stack.append((c, d + 1)) }
            }
        }
        return maxDepth
    }

    /// For a left-nested chain `a && b && c` (or `||`), returns the operands in evaluation
    /// order `[a, b, c]`; `isAnd` selects the operator.
    public func chainOperands(and isAnd: Bool) -> [Expr] {
        var rights: [Expr] = []
        var cur = self
        while true {
            if isAnd, case .and(let l, let r) = cur.kind { rights.append(r); cur = l; continue }
            if !isAnd, case .or(let l, let r) = cur.kind { rights.append(r); cur = l; continue }
            break
        }
        rights.append(cur)
        rights.reverse()
        return rights
    }
}
