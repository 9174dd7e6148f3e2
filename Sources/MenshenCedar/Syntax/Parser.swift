/// Entry points for parsing Cedar policy text.
public enum CedarParser {
    /// Parses a policy set. Policies and templates get ids `policy0`, `policy1`, … in source order.
    public static func parsePolicySet(_ text: String) throws(CedarError) -> PolicySet {
        var p = try Parser(text)
        let policies = try p.parsePolicies()
        var set = PolicySet()
        for pol in policies { try set.add(pol) }
        return set
    }

    /// Parses exactly one policy (or template), giving it `id`.
    public static func parsePolicy(_ text: String, id: String = "policy0") throws(CedarError) -> Policy {
        var p = try Parser(text)
        let policies = try p.parsePolicies()
        guard policies.count == 1, var pol = policies.first else {
            throw CedarError(.parse, "expected exactly one policy, found \(policies.count)")
        }
        pol.id = id
        return pol
    }

    /// Parses a standalone expression (slots allowed).
    public static func parseExpression(_ text: String) throws(CedarError) -> Expr {
        var p = try Parser(text)
        p.allowSlotsInExpressions = true
        let e = try p.parseExpr()
        try p.expectEOF()
        try p.checkTreeDepth(e)
        return e
    }

    /// Parses an entity UID in Cedar syntax, e.g. `NS::User::"alice"`.
    public static func parseEntityUID(_ text: String) throws(CedarError) -> EntityUID {
        let e = try parseExpression(text)
        guard case .literal(.entity(let uid)) = e.kind else { throw CedarError(.parse, "expected an entity uid", at: e.location) }
        return uid
    }
}

extension PolicySet {
    /// Parses Cedar policy text; see `CedarParser.parsePolicySet`.
    public init(parsing text: String) throws(CedarError) {
        self = try CedarParser.parsePolicySet(text)
    }
}

/// Names of Cedar extension functions (function-call style) and methods (method style).
enum ExtensionNames {
    static let functions: Set<String> = ["ip", "decimal", "datetime", "duration"]
    static let methods: Set<String> = [
        "isIpv4", "isIpv6", "isLoopback", "isMulticast", "isInRange",
        "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
        "offset", "durationSince", "toDate", "toTime",
        "toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays",
    ]
    static let reserved: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]
}

/// Recursive-descent parser for Cedar policies with a nesting-depth limit.
struct Parser {
    private let tokens: [Token]
    private var i = 0
    private var depth = 0
    var allowSlotsInExpressions = false

    init(_ text: String) throws(CedarError) {
        guard text.utf8.count <= MenshenCedar.Limits.maxInputBytes else {
            throw CedarError(.parse, "policy text exceeds \(MenshenCedar.Limits.maxInputBytes) bytes")
        }
        var lx = Lexer(text)
        tokens = try lx.tokenize()
    }

    // MARK: token helpers

    /// Invariant: `tokens` always ends with `.eof`, and `i` never moves past it.
    private var cur: Token { tokens[min(i, tokens.count - 1)] }
    private func peek(_ k: Int = 1) -> Token { tokens[min(i + k, tokens.count - 1)] }
    private mutating func advance() -> Token {
        let t = cur
        if i < tokens.count - 1 { i += 1 }
        return t
    }
    private func isPunct(_ p: String) -> Bool { cur.kind == .punct(p) }
    private func isIdent(_ s: String) -> Bool { cur.kind == .ident(s) }
    private mutating func eatPunct(_ p: String) -> Bool {
        if isPunct(p) { _ = advance(); return true }
        return false
    }
    private mutating func expectPunct(_ p: String) throws(CedarError) {
        guard eatPunct(p) else { throw unexpected("expected `\(p)`") }
    }
    private func unexpected(_ what: String) -> CedarError {
        CedarError(.parse, "\(what), found \(cur.kind == .eof ? "end of input" : "`\(cur.text)`")", at: cur.location)
    }
    mutating func expectEOF() throws(CedarError) {
        guard cur.kind == .eof else { throw unexpected("expected end of input") }
    }
    private var prevEnd: Int {
        let t = tokens[max(0, i - 1)]
        return t.location.offset + t.location.length
    }
    private func span(from start: SourceLocation) -> SourceLocation {
        SourceLocation(offset: start.offset, length: max(0, prevEnd - start.offset), line: start.line, column: start.column)
    }
    private mutating func enter() throws(CedarError) {
        depth += 1
        if depth > MenshenCedar.Limits.maxNestingDepth {
            throw CedarError(.parse, "expression nesting exceeds the limit of \(MenshenCedar.Limits.maxNestingDepth)", at: cur.location)
        }
    }
    private mutating func leave() { depth -= 1 }

    /// Counts one more operand in an operator chain; long chains make tall trees.
    private func chainStep(_ n: inout Int, limit: Int = MenshenCedar.Limits.maxExpressionDepth) throws(CedarError) {
        n += 1
        if n >= limit {
            throw CedarError(.parse, "operator chain exceeds the limit of \(limit) operands", at: cur.location)
        }
    }

    /// Rejects expression trees taller than `maxExpressionDepth` (long operator chains).
    func checkTreeDepth(_ e: Expr) throws(CedarError) {
        guard e.depth <= MenshenCedar.Limits.maxExpressionDepth else {
            throw CedarError(.parse, "expression is too deeply nested (limit \(MenshenCedar.Limits.maxExpressionDepth))", at: e.location)
        }
    }

    private mutating func identifier(_ what: String) throws(CedarError) -> String {
        guard case .ident(let s) = cur.kind else { throw unexpected("expected \(what)") }
        _ = advance()
        return s
    }

    /// Attribute names written as identifiers (`e.a`, `e has a.b`) must not be reserved words.
    private func checkUnreserved(_ name: String, at loc: SourceLocation) throws(CedarError) {
        if ExtensionNames.reserved.contains(name) {
            throw CedarError(.parse, "this identifier is reserved and cannot be used: \(name)", at: loc)
        }
    }

    private func unescaped(_ raw: String, at loc: SourceLocation) throws(CedarError) -> String {
        guard let s = Unescaper.string(raw) else { throw CedarError(.parse, "invalid escape sequence in string literal", at: loc) }
        return s
    }

    // MARK: policies

    mutating func parsePolicies() throws(CedarError) -> [Policy] {
        var out: [Policy] = []
        while cur.kind != .eof {
            out.append(try parsePolicy(id: "policy\(out.count)"))
        }
        return out
    }

    private mutating func parsePolicy(id: String) throws(CedarError) -> Policy {
        let start = cur.location
        var annotations: [Annotation] = []
        var seen = Set<String>()
        while isPunct("@") {
            let aStart = cur.location
            _ = advance()
            let key = try identifier("an annotation name")
            var value = ""
            if eatPunct("(") {
                guard case .string(let raw) = cur.kind else { throw unexpected("expected a string literal") }
                let sl = cur.location
                _ = advance()
                value = try unescaped(raw, at: sl)
                try expectPunct(")")
            }
            let loc = span(from: aStart)
            guard seen.insert(key).inserted else { throw CedarError(.parse, "duplicate annotation: @\(key)", at: loc) }
            annotations.append(Annotation(key: key, value: value, location: loc))
        }
        let effLoc = cur.location
        let effName = try identifier("`permit` or `forbid`")
        let effect: Effect
        switch effName {
        case "permit": effect = .permit
        case "forbid": effect = .forbid
        default: throw CedarError(.parse, "invalid policy effect `\(effName)`: expected `permit` or `forbid`", at: effLoc)
        }
        try expectPunct("(")
        let principal = try parseScopeVar(.principal)
        try expectPunct(",")
        let action = try parseActionScope()
        try expectPunct(",")
        let resource = try parseScopeVar(.resource)
        _ = eatPunct(",")  // Cedar tolerates a trailing comma in the scope
        try expectPunct(")")
        var conds: [Condition] = []
        while case .ident(let kw) = cur.kind {
            let cStart = cur.location
            let kind: Condition.Kind
            switch kw {
            case "when": kind = .when
            case "unless": kind = .unless
            default: throw CedarError(.parse, "invalid condition keyword `\(kw)`: expected `when` or `unless`", at: cStart)
            }
            _ = advance()
            try expectPunct("{")
            if isPunct("}") { throw CedarError(.parse, "`\(kw)` condition has an empty body", at: cur.location) }
            let body = try parseExpr()
            try checkTreeDepth(body)
            try expectPunct("}")
            conds.append(Condition(kind: kind, body: body, location: span(from: cStart)))
        }
        try expectPunct(";")
        return Policy(id: id, effect: effect, principal: principal, action: action, resource: resource,
                      conditions: conds, annotations: Annotations(annotations), location: span(from: start))
    }

    private mutating func expectVarName(_ v: Var) throws(CedarError) {
        let loc = cur.location
        let name = try identifier("`\(v.rawValue)`")
        guard name == v.rawValue else {
            throw CedarError(.parse, "expected `\(v.rawValue)` in the policy scope, found `\(name)`", at: loc)
        }
        if isPunct(":") {
            throw CedarError(.parse, "type constraints using `:` are not supported; use `is` instead", at: cur.location)
        }
    }

    private mutating func parseScopeVar(_ v: Var) throws(CedarError) -> ScopeConstraint {
        try expectVarName(v)
        var isType: EntityType? = nil
        if isIdent("is") {
            _ = advance()
            isType = try parseTypeName()
        }
        if isPunct("==") {
            let opLoc = cur.location
            _ = advance()
            if isType != nil { throw CedarError(.parse, "`is` cannot be combined with `==` in the policy scope", at: opLoc) }
            return .eq(try parseScopeEntity(v))
        }
        if isIdent("in") {
            _ = advance()
            let ref = try parseScopeEntity(v)
            if let t = isType { return .isIn(t, ref) }
            return .in(ref)
        }
        if isPunct("=") || isPunct("!=") || isPunct("<") || isPunct(">") || isPunct("<=") || isPunct(">=") {
            throw unexpected("expected `==`, `in` or `is` in the policy scope")
        }
        if let t = isType { return .is(t) }
        return .any
    }

    private mutating func parseScopeEntity(_ v: Var) throws(CedarError) -> EntityReference {
        let e = try parseExprAllowingSlots()
        switch e.kind {
        case .literal(.entity(let uid)): return .uid(uid)
        case .slot(let s):
            guard (s == .principal && v == .principal) || (s == .resource && v == .resource) else {
                throw CedarError(.parse, "slot \(s) cannot be used in the \(v.rawValue) scope", at: e.location)
            }
            return .slot(s)
        default:
            throw CedarError(.parse, "expected an entity uid or matching slot in the \(v.rawValue) scope", at: e.location)
        }
    }

    private mutating func parseExprAllowingSlots() throws(CedarError) -> Expr {
        let saved = allowSlotsInExpressions
        allowSlotsInExpressions = true
        defer { allowSlotsInExpressions = saved }
        return try parseExpr()
    }

    private mutating func parseActionScope() throws(CedarError) -> ActionConstraint {
        try expectVarName(.action)
        if isIdent("is") { throw CedarError(.parse, "`is` is not allowed in the action scope", at: cur.location) }
        func actionUID(_ e: Expr) throws(CedarError) -> EntityUID {
            guard case .literal(.entity(let uid)) = e.kind else {
                throw CedarError(.parse, "expected an action entity uid in the action scope", at: e.location)
            }
            guard uid.type.isActionType else {
                throw CedarError(.parse, "expected an entity uid with type `Action` but got `\(uid)`", at: e.location)
            }
            return uid
        }
        if eatPunct("==") {
            let e = try parseExpr()
            return .eq(try actionUID(e))
        }
        if isIdent("in") {
            _ = advance()
            let e = try parseExpr()
            if case .set(let elems) = e.kind {
                var uids: [EntityUID] = []
                for el in elems { uids.append(try actionUID(el)) }
                return .inSet(uids)
            }
            return .in(try actionUID(e))
        }
        if isPunct("=") || isPunct("!=") || isPunct("<") || isPunct(">") {
            throw unexpected("expected `==` or `in` in the action scope")
        }
        return .any
    }

    private mutating func parseTypeName() throws(CedarError) -> EntityType {
        let start = cur.location
        var parts = [try identifier("an entity type name")]
        while isPunct("::"), case .ident = peek().kind {
            _ = advance()
            parts.append(try identifier("an identifier"))
        }
        for p in parts where ExtensionNames.reserved.contains(p) {
            throw CedarError(.parse, "`\(p)` is a reserved identifier", at: span(from: start))
        }
        let base = parts.removeLast()  // `parts` starts with one element, so it is non-empty
        return Name(path: parts, basename: base)
    }

    // MARK: expressions

    mutating func parseExpr() throws(CedarError) -> Expr {
        try enter(); defer { leave() }
        if isIdent("if") {
            let start = cur.location
            _ = advance()
            let c = try parseExpr()
            guard isIdent("then") else { throw unexpected("expected `then`") }
            _ = advance()
            let t = try parseExpr()
            guard isIdent("else") else { throw unexpected("expected `else`") }
            _ = advance()
            let e = try parseExpr()
            return Expr(.ifThenElse(c, t, e), at: span(from: start))
        }
        return try parseOr()
    }

    private mutating func parseOr() throws(CedarError) -> Expr {
        let start = cur.location
        var lhs = try parseAnd()
        var chain = 0
        while eatPunct("||") {
            try chainStep(&chain, limit: MenshenCedar.Limits.maxChainLength)
            let rhs = try parseAnd()
            lhs = Expr(.or(lhs, rhs), at: span(from: start))
        }
        return lhs
    }

    private mutating func parseAnd() throws(CedarError) -> Expr {
        let start = cur.location
        var lhs = try parseRelation()
        var chain = 0
        while eatPunct("&&") {
            try chainStep(&chain, limit: MenshenCedar.Limits.maxChainLength)
            let rhs = try parseRelation()
            lhs = Expr(.and(lhs, rhs), at: span(from: start))
        }
        return lhs
    }

    private func relOp() -> BinaryOp? {
        switch cur.kind {
        case .punct("=="): return .eq
        case .punct("!="): return .neq
        case .punct("<"): return .lt
        case .punct("<="): return .lte
        case .punct(">"): return .gt
        case .punct(">="): return .gte
        case .ident("in"): return .in
        default: return nil
        }
    }

    private var atRelationKeyword: Bool {
        relOp() != nil || isIdent("has") || isIdent("like") || isIdent("is") || isPunct("=")
    }

    private mutating func parseRelation() throws(CedarError) -> Expr {
        let start = cur.location
        let lhs = try parseAdd()
        var result: Expr
        if isPunct("=") {
            throw CedarError(.parse, "invalid operator `=`; did you mean `==`?", at: cur.location)
        } else if let op = relOp() {
            _ = advance()
            let rhs = try parseAdd()
            result = Expr(.binary(op, lhs, rhs), at: span(from: start))
        } else if isIdent("has") {
            _ = advance()
            result = try parseHasRHS(lhs, start: start)
        } else if isIdent("like") {
            _ = advance()
            guard case .string(let raw) = cur.kind else { throw unexpected("expected a string literal pattern after `like`") }
            let ploc = cur.location
            _ = advance()
            guard let pieces = Unescaper.unescape(raw, pattern: true) else {
                throw CedarError(.parse, "invalid escape sequence in pattern", at: ploc)
            }
            let elems: [PatternElem] = pieces.map {
                switch $0 {
                case .star: return .wildcard
                case .scalar(let c): return .char(c)
                }
            }
            result = Expr(.like(lhs, Pattern(elems)), at: span(from: start))
        } else if isIdent("is") {
            _ = advance()
            let t = try parseTypeName()
            var inExpr: Expr? = nil
            if isIdent("in") {
                _ = advance()
                inExpr = try parseAdd()
            }
            result = Expr(.isType(lhs, t, in: inExpr), at: span(from: start))
        } else {
            return lhs
        }
        if atRelationKeyword {
            throw CedarError(.parse, "multiple relational operators (>, ==, in, etc.) must be used with parentheses to make ordering explicit", at: cur.location)
        }
        return result
    }

    /// `has` right-hand side: a string literal, or an identifier path `a.b.c` (desugared into
    /// `e has a && e.a has b && e.a.b has c`).
    private mutating func parseHasRHS(_ target: Expr, start: SourceLocation) throws(CedarError) -> Expr {
        if case .string(let raw) = cur.kind {
            let loc = cur.location
            _ = advance()
            return Expr(.has(target, try unescaped(raw, at: loc)), at: span(from: start))
        }
        guard case .ident(let first) = cur.kind else { throw unexpected("expected an attribute name after `has`") }
        try checkUnreserved(first, at: cur.location)
        _ = advance()
        var path = [first]
        var chain = 0
        while isPunct("."), case .ident(let next) = peek().kind {
            try chainStep(&chain)
            _ = advance()
            try checkUnreserved(next, at: cur.location)
            _ = advance()
            path.append(next)
        }
        if isPunct("(") || isPunct("[") || isPunct(".") {
            throw unexpected("invalid attribute path after `has`")
        }
        let loc = span(from: start)
        var acc = Expr(.has(target, path[0]), at: loc)  // `path` starts with `first`
        var base = target
        for k in 1..<max(1, path.count) where k < path.count {
            base = Expr(.getAttr(base, path[k - 1]), at: loc)
            acc = Expr(.and(acc, Expr(.has(base, path[k]), at: loc)), at: loc)
        }
        return acc
    }

    private mutating func parseAdd() throws(CedarError) -> Expr {
        let start = cur.location
        var lhs = try parseMult()
        var chain = 0
        while true {
            try chainStep(&chain)
            let op: BinaryOp
            if isPunct("+") { op = .add } else if isPunct("-") { op = .sub } else { break }
            _ = advance()
            let rhs = try parseMult()
            lhs = Expr(.binary(op, lhs, rhs), at: span(from: start))
        }
        return lhs
    }

    private mutating func parseMult() throws(CedarError) -> Expr {
        let start = cur.location
        var lhs = try parseUnary()
        var chain = 0
        while true {
            if isPunct("/") || isPunct("%") {
                throw CedarError(.parse, "division and remainder (`\(cur.text)`) are not supported", at: cur.location)
            }
            guard eatPunct("*") else { break }
            try chainStep(&chain)
            let rhs = try parseUnary()
            lhs = Expr(.binary(.mul, lhs, rhs), at: span(from: start))
        }
        return lhs
    }

    private mutating func parseUnary() throws(CedarError) -> Expr {
        try enter(); defer { leave() }
        let start = cur.location
        guard isPunct("!") || isPunct("-") else { return try parseMember() }
        let opText = cur.text
        var count = 0
        while isPunct(opText) { _ = advance(); count += 1 }
        if isPunct("!") || isPunct("-") {
            throw CedarError(.parse, "mixing `!` and `-` without parentheses is not supported", at: cur.location)
        }
        if count > 4 { throw CedarError(.parse, "too many occurrences of `\(opText)`", at: span(from: start)) }
        let isLiteralInt: Bool = {
            if case .int = cur.kind {
                let n = peek().kind
                return !(n == .punct(".") || n == .punct("[") || n == .punct("("))
            }
            return false
        }()
        if opText == "-" && isLiteralInt, case .int(let n) = cur.kind {
            let litLoc = cur.location
            _ = advance()
            var value: Int64
            guard let n, n <= UInt64(Int64.max) + 1 else {
                throw CedarError(.parse, "integer literal is too large", at: litLoc)
            }
            value = n == UInt64(Int64.max) + 1 ? Int64.min : -Int64(n)
            var e = Expr(.literal(.long(value)), at: span(from: start))
            for _ in 1..<count { e = Expr(.unary(.neg, e), at: span(from: start)) }
            return e
        }
        var e = try parseMember()
        let op: UnaryOp = opText == "!" ? .not : .neg
        for _ in 0..<count { e = Expr(.unary(op, e), at: span(from: start)) }
        return e
    }

    private mutating func parseArgs() throws(CedarError) -> [Expr] {
        try expectPunct("(")
        var args: [Expr] = []
        if eatPunct(")") { return args }
        while true {
            args.append(try parseExpr())
            if eatPunct(")") { return args }
            try expectPunct(",")
            if eatPunct(")") { return args }
        }
    }

    private mutating func parseMember() throws(CedarError) -> Expr {
        let start = cur.location
        var e = try parsePrimary()
        var accesses = 0
        while true {
            if isPunct(".") {
                _ = advance()
                let nameLoc = cur.location
                let name = try identifier("an attribute or method name")
                try checkUnreserved(name, at: nameLoc)
                if isPunct("(") {
                    let args = try parseArgs()
                    e = try makeMethod(e, name, args, at: span(from: start), nameLoc: nameLoc)
                } else {
                    e = Expr(.getAttr(e, name), at: span(from: start))
                }
            } else if isPunct("[") {
                _ = advance()
                guard case .string(let raw) = cur.kind else { throw unexpected("expected a string literal index") }
                let sl = cur.location
                _ = advance()
                try expectPunct("]")
                e = Expr(.getAttr(e, try unescaped(raw, at: sl)), at: span(from: start))
            } else if isPunct("(") {
                throw CedarError(.parse, "expression is not callable", at: cur.location)
            } else {
                break
            }
            accesses += 1
            if accesses > MenshenCedar.Limits.maxExpressionDepth {
                throw CedarError(.parse, "member access chain exceeds the nesting limit", at: cur.location)
            }
        }
        return e
    }

    private func makeMethod(_ recv: Expr, _ name: String, _ args: [Expr], at loc: SourceLocation, nameLoc: SourceLocation) throws(CedarError) -> Expr {
        func arity(_ n: Int) throws(CedarError) {
            guard args.count == n else {
                throw CedarError(.parse, "call to `\(name)` requires exactly \(n) argument\(n == 1 ? "" : "s"), but got \(args.count)", at: loc)
            }
        }
        // `arity(n)` guarantees `args[0]` exists wherever it is used below.
        switch name {
        case "contains": try arity(1); return Expr(.binary(.contains, recv, args[0]), at: loc)
        case "containsAll": try arity(1); return Expr(.binary(.containsAll, recv, args[0]), at: loc)
        case "containsAny": try arity(1); return Expr(.binary(.containsAny, recv, args[0]), at: loc)
        case "getTag": try arity(1); return Expr(.binary(.getTag, recv, args[0]), at: loc)
        case "hasTag": try arity(1); return Expr(.binary(.hasTag, recv, args[0]), at: loc)
        case "isEmpty": try arity(0); return Expr(.unary(.isEmpty, recv), at: loc)
        default:
            if ExtensionNames.methods.contains(name) { return Expr(.method(recv, name, args), at: loc) }
            if ExtensionNames.functions.contains(name) {
                throw CedarError(.parse, "`\(name)` is a function, not a method", at: nameLoc)
            }
            throw CedarError(.parse, "`\(name)` is not a valid method", at: nameLoc)
        }
    }

    private mutating func parsePrimary() throws(CedarError) -> Expr {
        let start = cur.location
        switch cur.kind {
        case .int(let n):
            _ = advance()
            guard let n, n <= UInt64(Int64.max) else { throw CedarError(.parse, "integer literal is too large", at: start) }
            return Expr(.literal(.long(Int64(n))), at: start)
        case .string(let raw):
            _ = advance()
            return Expr(.literal(.string(try unescaped(raw, at: start))), at: start)
        case .slot(let name):
            _ = advance()
            guard let s = SlotID(rawValue: "?" + name) else {
                throw CedarError(.parse, "`?\(name)` is not a valid template slot", at: start)
            }
            guard allowSlotsInExpressions else {
                throw CedarError(.parse, "template slots are only allowed in the policy scope", at: start)
            }
            return Expr(.slot(s), at: start)
        case .punct("("):
            _ = advance()
            let e = try parseExpr()
            try expectPunct(")")
            return Expr(e.kind, at: span(from: start))
        case .punct("["):
            return try parseSetLiteral(start)
        case .punct("{"):
            return try parseRecordLiteral(start)
        case .ident:
            return try parseNamePrimary(start)
        default:
            throw unexpected("expected an expression")
        }
    }

    @inline(never)
    private mutating func parseSetLiteral(_ start: SourceLocation) throws(CedarError) -> Expr {
            _ = advance()
            var elems: [Expr] = []
            if !eatPunct("]") {
                while true {
                    elems.append(try parseExpr())
                    if eatPunct("]") { break }
                    try expectPunct(",")
                    if eatPunct("]") { break }
                }
            }
            return Expr(.set(elems), at: span(from: start))
    }

    @inline(never)
    private mutating func parseRecordLiteral(_ start: SourceLocation) throws(CedarError) -> Expr {
            _ = advance()
            var entries: [RecordEntry] = []
            var keys = Set<String>()
            if !eatPunct("}") {
                while true {
                    let kloc = cur.location
                    let key: String
                    switch cur.kind {
                    case .ident(let s):
                        if s != "__cedar" { try checkUnreserved(s, at: kloc) }
                        key = s; _ = advance()
                    case .string(let raw): _ = advance(); key = try unescaped(raw, at: kloc)
                    default: throw unexpected("expected an identifier or string as record key")
                    }
                    try expectPunct(":")
                    let v = try parseExpr()
                    guard keys.insert(key).inserted else {
                        throw CedarError(.parse, "duplicate key `\(key)` in record literal", at: kloc)
                    }
                    entries.append(RecordEntry(key: key, value: v))
                    if eatPunct("}") { break }
                    try expectPunct(",")
                    if eatPunct("}") { break }
                }
            }
            return Expr(.record(entries), at: span(from: start))
    }

    @inline(never)
    private mutating func parseNamePrimary(_ start: SourceLocation) throws(CedarError) -> Expr {
            guard case .ident(let first) = cur.kind else { throw unexpected("expected an identifier") }
            _ = advance()
            if first == "true" { return Expr(.literal(.bool(true)), at: start) }
            if first == "false" { return Expr(.literal(.bool(false)), at: start) }
            var parts = [first]
            while isPunct("::") {
                _ = advance()
                switch cur.kind {
                case .ident(let p): _ = advance(); parts.append(p)
                case .string(let raw):
                    let sl = cur.location
                    _ = advance()
                    for p in parts where ExtensionNames.reserved.contains(p) {
                        throw CedarError(.parse, "`\(p)` is a reserved identifier", at: span(from: start))
                    }
                    let base = parts.removeLast()  // `parts` starts with `first`, so it is non-empty
                    let uid = EntityUID(type: Name(path: parts, basename: base), id: try unescaped(raw, at: sl))
                    return Expr(.literal(.entity(uid)), at: span(from: start))
                case .punct("{"):
                    throw CedarError(.parse, "entity literals with record syntax are not supported", at: cur.location)
                default:
                    throw unexpected("expected an identifier or string literal after `::`")
                }
            }
            if isPunct("(") {
                let args = try parseArgs()
                let loc = span(from: start)
                let fname = parts.joined(separator: "::")
                if parts.count == 1 && ExtensionNames.functions.contains(fname) {
                    return Expr(.call(Name(basename: fname), args), at: loc)
                }
                if parts.count == 1 && ExtensionNames.methods.contains(fname) {
                    throw CedarError(.parse, "`\(fname)` is a method, not a function; use it as `e.\(fname)(…)`", at: loc)
                }
                throw CedarError(.parse, "`\(fname)` is not a valid function", at: loc)
            }
            if parts.count == 1, let v = Var(rawValue: first) { return Expr(.variable(v), at: start) }
            let text = parts.joined(separator: "::")
            if parts.count == 1 && ExtensionNames.reserved.contains(first) {
                throw CedarError(.parse, "unexpected keyword `\(first)`", at: start)
            }
            throw CedarError(.parse, "invalid variable `\(text)`: expected principal, action, resource or context", at: span(from: start))
    }
}
