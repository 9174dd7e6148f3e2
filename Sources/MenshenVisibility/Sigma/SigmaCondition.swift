/// A parsed Sigma `condition`: search identifiers combined with `and`, `or`,
/// `not`, parentheses, `1 of <pattern>` / `all of <pattern>` and
/// `1 of them` / `all of them` (identifiers starting with `_` are left out
/// of `them`). Binding from loosest to tightest: `or` < `and` < `not` <
/// `x of` < parentheses. Patterns are resolved to identifiers at load, so an
/// unknown identifier or a pattern matching nothing is a load error.
indirect enum SigmaCondition: Sendable, Equatable {
    case identifier(String)
    case and([SigmaCondition])
    case or([SigmaCondition])
    case not(SigmaCondition)
    case anyOf([String])
    case allOf([String])

    func evaluate(_ search: (String) -> Bool) -> Bool {
        switch self {
        case .identifier(let name): return search(name)
        case .and(let parts): return parts.allSatisfy { $0.evaluate(search) }
        case .or(let parts): return parts.contains { $0.evaluate(search) }
        case .not(let inner): return !inner.evaluate(search)
        case .anyOf(let names): return names.contains(where: search)
        case .allOf(let names): return names.allSatisfy(search)
        }
    }

    /// Parses `text` against the rule's search identifiers.
    static func parse(_ text: String, identifiers: [String]) throws(VisibilityError) -> SigmaCondition {
        guard text.utf8.count <= RuleLimits.maxConditionBytes else {
            throw VisibilityError(.invalidRule, "condition longer than \(RuleLimits.maxConditionBytes) bytes")
        }
        var parser = ConditionParser(tokens: try tokenize(text), identifiers: identifiers)
        let result = try parser.expression(depth: 0)
        guard parser.position == parser.tokens.count else {
            throw VisibilityError(.invalidRule, "condition: unexpected \"\(parser.tokens[parser.position])\" after a complete expression")
        }
        return result
    }

    private static func tokenize(_ text: String) throws(VisibilityError) -> [String] {
        var tokens: [String] = []
        var current = ""
        for c in text {
            if c == "(" || c == ")" {
                if !current.isEmpty { tokens.append(current); current = "" }
                tokens.append(String(c))
            } else if c.isWhitespace {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else if c == "|" {
                throw VisibilityError(.invalidRule, "condition: aggregations with '|' are not supported; use a correlation rule")
            } else if c.isLetter || c.isNumber || c == "_" || c == "*" || c == "-" || c == "." {
                current.append(c)
            } else {
                throw VisibilityError(.invalidRule, "condition: unexpected character \"\(c)\"")
            }
        }
        if !current.isEmpty { tokens.append(current) }
        guard !tokens.isEmpty else { throw VisibilityError(.invalidRule, "condition is empty") }
        return tokens
    }
}

private struct ConditionParser {
    let tokens: [String]
    let identifiers: [String]
    var position = 0

    static let keywords: Set<String> = ["and", "or", "not", "of", "them", "(", ")"]

    var peek: String? { position < tokens.count ? tokens[position] : nil }

    mutating func expression(depth: Int) throws(VisibilityError) -> SigmaCondition {
        guard depth <= RuleLimits.maxConditionDepth else {
            throw VisibilityError(.invalidRule, "condition nested deeper than \(RuleLimits.maxConditionDepth) levels")
        }
        var parts = [try conjunction(depth: depth)]
        while peek == "or" {
            position += 1
            parts.append(try conjunction(depth: depth))
        }
        return parts.count == 1 ? parts[0] : .or(parts)
    }

    mutating func conjunction(depth: Int) throws(VisibilityError) -> SigmaCondition {
        var parts = [try negation(depth: depth)]
        while peek == "and" {
            position += 1
            parts.append(try negation(depth: depth))
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    mutating func negation(depth: Int) throws(VisibilityError) -> SigmaCondition {
        if peek == "not" {
            position += 1
            guard depth + 1 <= RuleLimits.maxConditionDepth else {
                throw VisibilityError(.invalidRule, "condition nested deeper than \(RuleLimits.maxConditionDepth) levels")
            }
            return .not(try negation(depth: depth + 1))
        }
        return try primary(depth: depth)
    }

    mutating func primary(depth: Int) throws(VisibilityError) -> SigmaCondition {
        guard let token = peek else { throw VisibilityError(.invalidRule, "condition ends where an identifier was expected") }
        if token == "(" {
            position += 1
            let inner = try expression(depth: depth + 1)
            guard peek == ")" else { throw VisibilityError(.invalidRule, "condition: missing ')'") }
            position += 1
            return inner
        }
        if token == "1" || token == "all" {
            guard position + 1 < tokens.count, tokens[position + 1] == "of" else {
                throw VisibilityError(.invalidRule, "condition: \"\(token)\" must be followed by \"of\"")
            }
            guard position + 2 < tokens.count else { throw VisibilityError(.invalidRule, "condition: \"\(token) of\" needs a pattern or \"them\"") }
            let target = tokens[position + 2]
            position += 3
            let names: [String]
            if target == "them" {
                names = identifiers.filter { !$0.hasPrefix("_") }
            } else {
                guard !Self.keywords.contains(target) else {
                    throw VisibilityError(.invalidRule, "condition: \"\(token) of\" needs a pattern or \"them\", not \"\(target)\"")
                }
                let pattern = WildcardPattern(sigma: target, cased: true)
                names = identifiers.filter { pattern.matches($0) }
            }
            guard !names.isEmpty else {
                throw VisibilityError(.invalidRule, "condition: \"\(token) of \(target)\" matches no search identifier")
            }
            return token == "all" ? .allOf(names) : .anyOf(names)
        }
        if Self.keywords.contains(token) {
            throw VisibilityError(.invalidRule, "condition: unexpected \"\(token)\"")
        }
        if let n = Int(token) {
            throw VisibilityError(.invalidRule, "condition: \"\(n) of\" is not supported; use \"1 of\" or \"all of\"")
        }
        guard identifiers.contains(token) else {
            throw VisibilityError(.invalidRule, "condition: unknown search identifier \"\(token)\"")
        }
        position += 1
        return .identifier(token)
    }
}
