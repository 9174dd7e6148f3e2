import Foundation
import MenshenCore

/// A compiled regular expression for `|re`. Guarded at load: the pattern is
/// at most ``RuleLimits/maxRegexLength`` characters, has no back-references
/// and no nested quantifiers (`(a+)+`, `(a|aa)*`), the shapes that make a
/// backtracking engine take exponential time; and at match time it sees at
/// most ``RuleLimits/maxRegexInput`` UTF-16 units of the value.
final class GuardedRegex: @unchecked Sendable, CustomStringConvertible {
    // Invariant: `regex` is created once and never mutated; NSRegularExpression
    // is documented as safe to use from several threads for matching.
    private let regex: NSRegularExpression
    let pattern: String

    init(_ pattern: String, caseInsensitive: Bool, multiline: Bool, dotAll: Bool) throws(VisibilityError) {
        guard pattern.count <= RuleLimits.maxRegexLength else {
            throw VisibilityError(.invalidRule, "regular expression longer than \(RuleLimits.maxRegexLength) characters")
        }
        if let problem = Self.danger(in: pattern) {
            throw VisibilityError(.invalidRule, "regular expression refused: \(problem)")
        }
        var options: NSRegularExpression.Options = []
        if caseInsensitive { options.insert(.caseInsensitive) }
        if multiline { options.insert(.anchorsMatchLines) }
        if dotAll { options.insert(.dotMatchesLineSeparators) }
        do {
            regex = try NSRegularExpression(pattern: pattern, options: options)
        } catch {
            throw VisibilityError(.invalidRule, "regular expression does not compile: \(pattern)")
        }
        self.pattern = pattern
    }

    var description: String { pattern }

    func matches(_ text: String) -> Bool {
        let capped = text.utf16.count > RuleLimits.maxRegexInput
            ? String(decoding: Array(text.utf16.prefix(RuleLimits.maxRegexInput)), as: UTF16.self) : text
        let range = NSRange(location: 0, length: capped.utf16.count)
        return regex.firstMatch(in: capped, options: [], range: range) != nil
    }

    /// Back-references, and a quantified group that itself contains a
    /// quantifier or an alternation: refused (a conservative static check).
    static func danger(in pattern: String) -> String? {
        let chars = Array(pattern)
        // For each open group: whether it contains a quantifier or `|`.
        var stack: [Bool] = []
        var i = 0
        var inClass = false
        func isQuantifier(at j: Int) -> Bool {
            guard j < chars.count else { return false }
            return chars[j] == "*" || chars[j] == "+" || chars[j] == "{" || (chars[j] == "?" && j > 0 && chars[j - 1] != "(")
        }
        while i < chars.count {
            let c = chars[i]
            if c == "\\" {
                if i + 1 < chars.count, chars[i + 1].isNumber, chars[i + 1] != "0" { return "back-references are not allowed" }
                if i + 1 < chars.count, chars[i + 1] == "k" { return "back-references are not allowed" }
                i += 2
                if !inClass, isQuantifier(at: i), !stack.isEmpty { stack[stack.count - 1] = true }
                continue
            }
            if inClass {
                if c == "]" { inClass = false; if isQuantifier(at: i + 1), !stack.isEmpty { stack[stack.count - 1] = true } }
                i += 1
                continue
            }
            switch c {
            case "[": inClass = true
            case "(": stack.append(false)
            case ")":
                guard let inner = stack.popLast() else { return "unbalanced parentheses" }
                // A repeated group (`*`, `+`, `{n,m}`) whose body can itself match in several ways.
                if inner, i + 1 < chars.count, ["*", "+", "{"].contains(chars[i + 1]) {
                    return "a repeated group contains a quantifier or an alternation (catastrophic backtracking)"
                }
                if inner, !stack.isEmpty { stack[stack.count - 1] = true }
                if isQuantifier(at: i + 1), !stack.isEmpty { stack[stack.count - 1] = true }
            case "|":
                if !stack.isEmpty { stack[stack.count - 1] = true }
            case "*", "+", "{":
                if !stack.isEmpty { stack[stack.count - 1] = true }
            case "?":
                if i > 0, chars[i - 1] != "(", !stack.isEmpty { stack[stack.count - 1] = true }
            default: break
            }
            i += 1
        }
        return nil
    }
}

/// A Sigma wildcard string: `*` any run, `?` one character, `\` escapes
/// `*`, `?` and `\` (any other backslash is literal). Matched case-insensitively
/// unless the field carries `|cased`.
struct WildcardPattern: Sendable, Equatable {
    /// A pattern element over text elements `E` (characters, or bytes for ASCII).
    enum GlobToken<E: Equatable & Sendable>: Sendable, Equatable { case literal(E), any, one }
    typealias Token = GlobToken<Character>
    typealias ByteToken = GlobToken<UInt8>
    let tokens: [Token]
    let cased: Bool
    /// ``tokens`` over bytes when every literal is ASCII (nearly every rule; `nil` otherwise).
    let asciiTokens: [ByteToken]?

    init(sigma text: String, cased: Bool, prefixAny: Bool = false, suffixAny: Bool = false) {
        var out: [Token] = prefixAny ? [.any] : []
        let chars = Array(cased ? text : text.lowercased())
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count, ["*", "?", "\\"].contains(chars[i + 1]) {
                out.append(.literal(chars[i + 1])); i += 2; continue
            }
            out.append(c == "*" ? .any : c == "?" ? .one : .literal(c))
            i += 1
        }
        if suffixAny { out.append(.any) }
        tokens = out
        self.cased = cased
        var bytes: [ByteToken] = []
        for token in out {
            switch token {
            case .any: bytes.append(.any)
            case .one: bytes.append(.one)
            case .literal(let c):
                guard let a = c.asciiValue, c != "\r\n" else { asciiTokens = nil; return }
                bytes.append(.literal(a))
            }
        }
        asciiTokens = bytes
    }

    func matches(_ value: String) -> Bool {
        if let asciiTokens, let fast = Self.asciiMatch(asciiTokens, value, cased: cased) { return fast }
        return characterMatch(value)
    }

    /// The match over bytes, for an ASCII value (where a character is a byte, and lower-casing is ASCII's);
    /// `nil` for any other value (and for a CR LF pair, which is one character).
    static func asciiMatch(_ tokens: [ByteToken], _ value: String, cased: Bool) -> Bool? {
        var value = value
        return value.withUTF8 { u -> Bool? in
            var previous: UInt8 = 0
            for b in u {
                if b >= 0x80 || (b == 0x0A && previous == 0x0D) { return nil }
                previous = b
            }
            return glob(tokens, u.prefix(RuleLimits.maxMatchInput)) { b in !cased && b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        }
    }

    /// The match over characters (any value).
    func characterMatch(_ value: String) -> Bool {
        Self.glob(tokens, Array((cased ? value : value.lowercased()).prefix(RuleLimits.maxMatchInput))) { $0 }
    }

    /// Glob matching with the classic single-backtrack algorithm: O(n·m) at worst. `fold` maps each text element
    /// before it is compared with a literal (ASCII lower-casing on the byte path).
    @inline(__always)
    static func glob<C: RandomAccessCollection>(_ tokens: [GlobToken<C.Element>], _ text: C, fold: (C.Element) -> C.Element) -> Bool
    where C.Index == Int, C.Element: Equatable & Sendable {
        var t = text.startIndex, p = 0
        var starP = -1, starT = t
        while t < text.endIndex {
            if p < tokens.count {
                switch tokens[p] {
                case .any: starP = p; starT = t; p += 1; continue
                case .one: t += 1; p += 1; continue
                case .literal(let c) where c == fold(text[t]): t += 1; p += 1; continue
                default: break
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1; starT += 1; t = starT
        }
        while p < tokens.count, tokens[p] == .any { p += 1 }
        return p == tokens.count
    }
}

/// One value a field is compared with, after its modifiers are applied.
enum ValuePattern: Sendable {
    /// `null`: the field is absent or null.
    case null
    /// `|exists: true/false`.
    case exists(Bool)
    /// A string with wildcards (also `contains`/`startswith`/`endswith`).
    case wildcard(WildcardPattern)
    /// A number or boolean written unquoted in the rule: equal as a number or as text.
    case scalar(number: Double?, text: String)
    /// `|gt`, `|gte`, `|lt`, `|lte`.
    case compare(Comparison, Double)
    /// `|cidr`.
    case cidr(CIDR)
    /// `|re`.
    case regex(GuardedRegex)

    enum Comparison: String, Sendable { case gt, gte, lt, lte }

    /// Whether one event value satisfies this pattern (`.null` and `.exists` are handled by the caller).
    func matches(_ value: EventValue) -> Bool {
        switch self {
        case .null: return value == .null
        case .exists: return true
        case .wildcard(let w):
            guard let text = value.scalarText else { return false }
            return w.matches(text)
        case .scalar(let number, let text):
            if let number, let v = value.numberValue ?? value.scalarText.flatMap(Double.init) { return v == number }
            guard let t = value.scalarText else { return false }
            return Self.equalIgnoringCase(t, text)
        case .compare(let op, let bound):
            guard let v = value.numberValue ?? value.stringValue.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) else {
                return false
            }
            switch op {
            case .gt: return v > bound
            case .gte: return v >= bound
            case .lt: return v < bound
            case .lte: return v <= bound
            }
        case .cidr(let net):
            guard let s = value.stringValue else { return false }
            return net.contains(s)
        case .regex(let r):
            guard let s = value.scalarText else { return false }
            return r.matches(s)
        }
    }
}

extension ValuePattern {
    /// Foundation's case-insensitive equality, with ASCII compared byte by byte first (the usual case; for ASCII
    /// the two agree).
    static func equalIgnoringCase(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        let ascii = a.withUTF8 { ua in
            b.withUTF8 { ub -> Bool? in
                guard ua.allSatisfy({ $0 < 0x80 }), ub.allSatisfy({ $0 < 0x80 }) else { return nil }
                guard ua.count == ub.count else { return false }
                for i in 0..<ua.count {
                    var x = ua[i], y = ub[i]
                    if x >= 0x41 && x <= 0x5A { x |= 0x20 }
                    if y >= 0x41 && y <= 0x5A { y |= 0x20 }
                    if x != y { return false }
                }
                return true
            }
        }
        if let ascii { return ascii }
        return a.caseInsensitiveCompare(b) == .orderedSame
    }
}

/// One `field|modifiers: value(s)` entry of a search identifier.
struct FieldMatcher: Sendable {
    let field: FieldPath
    let patterns: [ValuePattern]
    /// `|all`: every pattern must match (otherwise any one).
    let requireAll: Bool

    func matches(_ event: DetectionEvent) -> Bool {
        let values = event.values(field)
        func one(_ p: ValuePattern) -> Bool {
            switch p {
            case .null: return values.isEmpty || values.contains(.null)
            case .exists(let wanted): return values.contains { $0 != .null } == wanted
            default: return values.contains { p.matches($0) }
            }
        }
        return requireAll ? patterns.allSatisfy(one) : patterns.contains(where: one)
    }
}
