/// Token kinds of the Cedar policy language.
enum TokenKind: Equatable {
    case ident(String)
    /// An unsigned integer literal; nil if it does not fit in UInt64.
    case int(UInt64?)
    /// A string literal, still escaped (without the quotes).
    case string(String)
    /// `?name`
    case slot(String)
    /// Punctuation or operator, e.g. `::`, `==`, `(`.
    case punct(String)
    case eof
}

/// A token with its source span.
struct Token {
    let kind: TokenKind
    let location: SourceLocation

    var text: String {
        switch kind {
        case .ident(let s): return s
        case .int(let n): return n.map(String.init) ?? "<integer>"
        case .string(let s): return "\"\(s)\""
        case .slot(let s): return "?\(s)"
        case .punct(let p): return p
        case .eof: return "end of input"
        }
    }
}

/// Hand-written lexer over UTF-8 bytes. Comments (`// …`) and whitespace are skipped.
struct Lexer {
    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    private var lineStart = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    private func loc(_ start: Int, _ startLine: Int, _ startLineStart: Int) -> SourceLocation {
        SourceLocation(offset: start, length: pos - start, line: startLine, column: start - startLineStart + 1)
    }

    private mutating func skipTrivia() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x0A { pos += 1; line += 1; lineStart = pos }
            else if b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C { pos += 1 }
            else if b == 0x2F && pos + 1 < bytes.count && bytes[pos + 1] == 0x2F {
                while pos < bytes.count && bytes[pos] != 0x0A { pos += 1 }
            } else if b == 0xC2 && pos + 1 < bytes.count && (bytes[pos + 1] == 0xA0 || bytes[pos + 1] == 0x85) {
                pos += 2
            } else { return }
        }
    }

    private static func isIdentStart(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F }
    private static func isIdentChar(_ b: UInt8) -> Bool { isIdentStart(b) || (b >= 0x30 && b <= 0x39) }

    /// Tokenizes the whole input. Every `bytes[i]` access is preceded by an `i < bytes.count` check.
    mutating func tokenize() throws(CedarError) -> [Token] {
        var out: [Token] = []
        while true {
            skipTrivia()
            let start = pos, sl = line, sls = lineStart
            guard pos < bytes.count else {
                out.append(Token(kind: .eof, location: loc(start, sl, sls)))
                return out
            }
            let b = bytes[pos]
            if Lexer.isIdentStart(b) {
                while pos < bytes.count && Lexer.isIdentChar(bytes[pos]) { pos += 1 }
                out.append(Token(kind: .ident(String(decoding: bytes[start..<pos], as: UTF8.self)), location: loc(start, sl, sls)))
            } else if b >= 0x30 && b <= 0x39 {
                var v: UInt64? = 0
                while pos < bytes.count && bytes[pos] >= 0x30 && bytes[pos] <= 0x39 {
                    if let cur = v {
                        let (m, o1) = cur.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(UInt64(bytes[pos] - 0x30))
                        v = (o1 || o2) ? nil : a
                    }
                    pos += 1
                }
                out.append(Token(kind: .int(v), location: loc(start, sl, sls)))
            } else if b == 0x22 { // "
                pos += 1
                var closed = false
                while pos < bytes.count {
                    let c = bytes[pos]
                    if c == 0x5C { pos += 2; continue }
                    if c == 0x22 { closed = true; break }
                    if c == 0x0A { line += 1; lineStart = pos + 1 }
                    pos += 1
                }
                guard closed, pos < bytes.count else {
                    pos = min(pos, bytes.count)
                    throw CedarError(.parse, "unterminated string literal", at: loc(start, sl, sls))
                }
                let content = String(decoding: bytes[(start + 1)..<pos], as: UTF8.self)
                pos += 1
                out.append(Token(kind: .string(content), location: loc(start, sl, sls)))
            } else if b == 0x3F && pos + 1 < bytes.count && Lexer.isIdentStart(bytes[pos + 1]) { // ?slot
                pos += 1
                while pos < bytes.count && Lexer.isIdentChar(bytes[pos]) { pos += 1 }
                out.append(Token(kind: .slot(String(decoding: bytes[(start + 1)..<pos], as: UTF8.self)), location: loc(start, sl, sls)))
            } else {
                let two = pos + 1 < bytes.count ? String(decoding: bytes[pos...(pos + 1)], as: UTF8.self) : ""
                if ["::", "==", "!=", "<=", ">=", "&&", "||"].contains(two) {
                    pos += 2
                    out.append(Token(kind: .punct(two), location: loc(start, sl, sls)))
                } else if "@.,;:(){}[]<>+-*/%!=".utf8.contains(b) {
                    pos += 1
                    out.append(Token(kind: .punct(String(UnicodeScalar(b))), location: loc(start, sl, sls)))
                } else {
                    // consume one full UTF-8 scalar for the error span
                    pos += 1
                    while pos < bytes.count && (bytes[pos] & 0xC0) == 0x80 { pos += 1 }
                    let text = String(decoding: bytes[start..<pos], as: UTF8.self)
                    throw CedarError(.parse, "unexpected character `\(text)`", at: loc(start, sl, sls))
                }
            }
        }
    }
}

/// String-literal unescaping following Cedar (Rust) rules: `\n \r \t \\ \0 \' \" \xHH`
/// (HH ≤ 7F) and `\u{H…}` (1–6 hex digits, a valid scalar). With `pattern: true`, `\*`
/// produces a literal star and unescaped `*` a wildcard.
enum Unescaper {
    enum Piece { case scalar(Unicode.Scalar), star }

    static func unescape(_ s: String, pattern: Bool) -> [Piece]? {
        var out: [Piece] = []
        let u = Array(s.unicodeScalars)
        var i = 0
        while i < u.count {
            let c = u[i]
            if c == "*" && pattern { out.append(.star); i += 1; continue }
            if c != "\\" { out.append(.scalar(c)); i += 1; continue }
            i += 1
            guard i < u.count else { return nil }
            let e = u[i]; i += 1
            switch e {
            case "n": out.append(.scalar("\n"))
            case "r": out.append(.scalar("\r"))
            case "t": out.append(.scalar("\t"))
            case "\\": out.append(.scalar("\\"))
            case "0": out.append(.scalar("\0"))
            case "'": out.append(.scalar("'"))
            case "\"": out.append(.scalar("\""))
            case "*" where pattern: out.append(.scalar("*"))
            case "x":
                guard i + 1 < u.count, let h = hex(u[i]), let l = hex(u[i + 1]) else { return nil }
                let v = h * 16 + l
                guard v <= 0x7F, let sc = Unicode.Scalar(v) else { return nil }
                out.append(.scalar(sc)); i += 2
            case "u":
                guard i < u.count, u[i] == "{" else { return nil }
                i += 1
                var v: UInt32 = 0, n = 0
                while i < u.count, u[i] != "}" {
                    if u[i] == "_" && n > 0 { i += 1; continue }
                    guard let d = hex(u[i]), n < 6 else { return nil }
                    v = v * 16 + d; n += 1; i += 1
                }
                guard i < u.count, n >= 1, let sc = Unicode.Scalar(v) else { return nil }
                i += 1
                out.append(.scalar(sc))
            default: return nil
            }
        }
        return out
    }

    private static func hex(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x61...0x66: return c.value - 0x61 + 10
        case 0x41...0x46: return c.value - 0x41 + 10
        default: return nil
        }
    }

    static func string(_ s: String) -> String? {
        guard let pieces = unescape(s, pattern: false) else { return nil }
        var out = String.UnicodeScalarView()
        for p in pieces { if case .scalar(let c) = p { out.append(c) } }
        return String(out)
    }
}
