/// Parser for the human-readable Cedar schema syntax (`.cedarschema`), producing an
/// unresolved `SchemaFragment`. Every error carries a line:column location. Nesting
/// depth and input size are bounded; the parser never traps on malformed input.

struct SchemaToken: Sendable {
    enum Kind: Sendable, Equatable {
        case ident(String)
        case string(String)
        case number
        case punct(String)
        case eof
    }
    var kind: Kind
    var location: SourceLocation
}

enum SchemaLexer {
    static func tokenize(_ text: String) -> Result<[SchemaToken], CedarError> {
        let bytes = Array(text.utf8)
        var tokens: [SchemaToken] = []
        var i = 0
        var line = 1
        var lineStart = 0
        // Column counts Unicode scalars from the line start (1-based).
        func column(_ at: Int) -> Int {
            var c = 1
            var k = lineStart
            while k < at && k < bytes.count {
                let b = bytes[k]
                if b & 0xC0 != 0x80 { c += 1 }
                k += 1
            }
            return c
        }
        func loc(_ start: Int, _ end: Int) -> SourceLocation {
            SourceLocation(offset: start, length: end - start, line: line, column: column(start))
        }
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0A { i += 1; line += 1; lineStart = i; continue }
            if b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C { i += 1; continue }
            if b == 0x2F && i + 1 < bytes.count && bytes[i + 1] == 0x2F {
                while i < bytes.count && bytes[i] != 0x0A { i += 1 }
                continue
            }
            let start = i
            if isIdentStart(b) {
                i += 1
                while i < bytes.count && isIdentContinue(bytes[i]) { i += 1 }
                let s = String(decoding: bytes[start..<i], as: UTF8.self)
                tokens.append(SchemaToken(kind: .ident(s), location: loc(start, i)))
                continue
            }
            if b >= 0x30 && b <= 0x39 {
                while i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
                tokens.append(SchemaToken(kind: .number, location: loc(start, i)))
                continue
            }
            if b == 0x22 {
                i += 1
                var closed = false
                let startLine = line
                let startCol = column(start)
                while i < bytes.count {
                    let c = bytes[i]
                    if c == 0x5C { i += 2; continue }
                    if c == 0x22 { closed = true; i += 1; break }
                    if c == 0x0A { line += 1; lineStart = i + 1 }
                    i += 1
                }
                let l = SourceLocation(offset: start, length: min(i, bytes.count) - start, line: startLine, column: startCol)
                if !closed { return .failure(schemaError("unterminated string literal", l)) }
                let raw = String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self)
                switch cedarUnescape(raw) {
                case .success(let s): tokens.append(SchemaToken(kind: .string(s), location: l))
                case .failure(let msg): return .failure(schemaError("invalid escape in string literal: \(msg)", l))
                }
                continue
            }
            if b == 0x3A && i + 1 < bytes.count && bytes[i + 1] == 0x3A {
                i += 2
                tokens.append(SchemaToken(kind: .punct("::"), location: loc(start, i)))
                continue
            }
            let puncts: [UInt8: String] = [0x2C: ",", 0x3B: ";", 0x3A: ":", 0x7B: "{", 0x7D: "}", 0x5B: "[", 0x5D: "]",
                                           0x3C: "<", 0x3E: ">", 0x3D: "=", 0x3F: "?", 0x40: "@", 0x28: "(", 0x29: ")"]
            if let p = puncts[b] {
                i += 1
                tokens.append(SchemaToken(kind: .punct(p), location: loc(start, i)))
                continue
            }
            // Unknown character: report it (decode one scalar for the message).
            var end = i + 1
            while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
            let ch = String(decoding: bytes[i..<end], as: UTF8.self)
            return .failure(schemaError("unexpected character `\(ch)`", loc(start, end)))
        }
        tokens.append(SchemaToken(kind: .eof, location: loc(bytes.count, bytes.count)))
        return .success(tokens)
    }

    static func isIdentStart(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F }
    static func isIdentContinue(_ b: UInt8) -> Bool { isIdentStart(b) || (b >= 0x30 && b <= 0x39) }
}

/// Unescapes the body of a Cedar string literal: `\n \r \t \\ \0 \' \" \xHH \u{H..}`.
func cedarUnescape(_ raw: String) -> Result<String, SchemaUnescapeError> {
    var out = String.UnicodeScalarView()
    var it = Array(raw.unicodeScalars)[...]
    while let c = it.popFirst() {
        if c != "\\" { out.append(c); continue }
        guard let e = it.popFirst() else { return .failure(SchemaUnescapeError(message: "trailing backslash")) }
        switch e {
        case "n": out.append("\n")
        case "r": out.append("\r")
        case "t": out.append("\t")
        case "\\": out.append("\\")
        case "0": out.append("\0")
        case "'": out.append("'")
        case "\"": out.append("\"")
        case "x":
            guard let h1 = it.popFirst(), let h2 = it.popFirst(),
                  let v = UInt32(String(h1) + String(h2), radix: 16), v <= 0x7F,
                  let s = Unicode.Scalar(v) else { return .failure(SchemaUnescapeError(message: "invalid \\x escape")) }
            out.append(s)
        case "u":
            guard it.popFirst() == "{" else { return .failure(SchemaUnescapeError(message: "invalid \\u escape")) }
            var hex = ""
            var closed = false
            while let h = it.popFirst() {
                if h == "}" { closed = true; break }
                hex.unicodeScalars.append(h)
                if hex.unicodeScalars.count > 6 { break }
            }
            guard closed, !hex.isEmpty, hex.unicodeScalars.count <= 6, let v = UInt32(hex, radix: 16), let s = Unicode.Scalar(v) else {
                return .failure(SchemaUnescapeError(message: "invalid \\u escape"))
            }
            out.append(s)
        default:
            return .failure(SchemaUnescapeError(message: "unknown escape `\\\(e)`"))
        }
    }
    return .success(String(out))
}

struct SchemaUnescapeError: Error, Sendable { var message: String }

struct SchemaHumanParser {
    static let maxDepth = 128

    var tokens: [SchemaToken]
    var pos = 0
    var depth = 0

    static func parse(_ text: String) -> Result<SchemaFragment, CedarError> {
        if text.utf8.count > MenshenCedar.Limits.maxInputBytes {
            return .failure(schemaError("schema text is too large"))
        }
        switch SchemaLexer.tokenize(text) {
        case .failure(let e): return .failure(e)
        case .success(let toks):
            var p = SchemaHumanParser(tokens: toks)
            do { return .success(try p.parseSchema()) } catch let e as CedarError { return .failure(e) } catch {
                return .failure(schemaError("\(error)"))
            }
        }
    }

    // MARK: token helpers

    var current: SchemaToken { pos < tokens.count ? tokens[pos] : SchemaToken(kind: .eof, location: tokens.last?.location ?? SourceLocation(offset: 0, length: 0, line: 1, column: 1)) }

    mutating func advance() { if pos < tokens.count - 1 { pos += 1 } }

    func isPunct(_ p: String) -> Bool { if case .punct(let q) = current.kind { return q == p }; return false }
    func isKeyword(_ k: String) -> Bool { if case .ident(let q) = current.kind { return q == k }; return false }
    func peekIsPunct(_ p: String, _ ahead: Int = 1) -> Bool {
        let k = pos + ahead
        guard k < tokens.count else { return false }
        if case .punct(let q) = tokens[k].kind { return q == p }
        return false
    }

    func describe(_ t: SchemaToken) -> String {
        switch t.kind {
        case .ident(let s): return "`\(s)`"
        case .string(let s): return cedarQuoted(s)
        case .number: return "number"
        case .punct(let p): return "`\(p)`"
        case .eof: return "end of input"
        }
    }

    func unexpected(_ expected: String) -> CedarError {
        schemaError("unexpected token \(describe(current)), expected \(expected)", current.location)
    }

    mutating func expectPunct(_ p: String) throws {
        guard isPunct(p) else { throw unexpected("`\(p)`") }
        advance()
    }

    mutating func expectKeyword(_ k: String) throws {
        guard isKeyword(k) else { throw unexpected("`\(k)`") }
        advance()
    }

    /// Any identifier token (keywords included).
    mutating func anyIdent() throws -> (String, SourceLocation) {
        guard case .ident(let s) = current.kind else { throw unexpected("identifier") }
        let l = current.location
        advance()
        return (s, l)
    }

    /// An identifier that is not a reserved word.
    mutating func ident() throws -> (String, SourceLocation) {
        let (s, l) = try anyIdent()
        if cedarReservedIdentifiers.contains(s) {
            throw schemaError("`\(s)` is a reserved identifier", l)
        }
        return (s, l)
    }

    mutating func stringLit() throws -> (String, SourceLocation) {
        guard case .string(let s) = current.kind else { throw unexpected("string literal") }
        let l = current.location
        advance()
        return (s, l)
    }

    /// Name := Ident | STR
    mutating func name() throws -> (String, SourceLocation) {
        if case .string = current.kind { return try stringLit() }
        return try ident()
    }

    mutating func path() throws -> RawPath {
        let (first, l) = try ident()
        var comps = [first]
        var end = l
        while isPunct("::"), pos + 1 < tokens.count, case .ident = tokens[pos + 1].kind {
            advance()
            let (n, nl) = try ident()
            comps.append(n)
            end = nl
        }
        return RawPath(components: comps, location: span(l, end))
    }

    func span(_ a: SourceLocation, _ b: SourceLocation) -> SourceLocation {
        SourceLocation(offset: a.offset, length: max(a.length, b.offset + b.length - a.offset), line: a.line, column: a.column)
    }

    mutating func enter() throws {
        depth += 1
        if depth > SchemaHumanParser.maxDepth { throw schemaError("schema nesting is too deep", current.location) }
    }
    mutating func leave() { depth -= 1 }

    // MARK: grammar

    mutating func annotations() throws {
        var seen = Set<String>()
        while isPunct("@") {
            advance()
            let (key, l) = try anyIdent()
            if !seen.insert(key).inserted { throw schemaError("duplicate annotation: @\(key)", l) }
            if isPunct("(") {
                advance()
                _ = try stringLit()
                try expectPunct(")")
            }
        }
    }

    mutating func parseSchema() throws -> SchemaFragment {
        var namespaces: [RawNamespace] = []
        var empty = RawNamespace(path: [])
        while true {
            if case .eof = current.kind { break }
            try annotations()
            if isKeyword("namespace") {
                let start = current.location
                advance()
                let p = try path()
                for c in p.components where c == "__cedar" {
                    throw schemaError("the name `\(p.text)` contains `__cedar`, which is reserved", p.location)
                }
                try expectPunct("{")
                if namespaces.contains(where: { $0.path == p.components }) {
                    throw schemaError("duplicate namespace `\(p.text)`", p.location)
                }
                var ns = RawNamespace(path: p.components, location: start)
                while !isPunct("}") {
                    if case .eof = current.kind { throw unexpected("`}`") }
                    try annotations()
                    try declaration(into: &ns)
                }
                advance()
                namespaces.append(ns)
            } else {
                try declaration(into: &empty)
            }
        }
        if !empty.entities.isEmpty || !empty.actions.isEmpty || !empty.commonTypes.isEmpty {
            namespaces.append(empty)
        }
        return SchemaFragment(namespaces: namespaces)
    }

    mutating func declaration(into ns: inout RawNamespace) throws {
        if isKeyword("entity") { try entityDecl(into: &ns) }
        else if isKeyword("action") { try actionDecl(into: &ns) }
        else if isKeyword("type") { try typeDecl(into: &ns) }
        else { throw unexpected("`namespace`, `entity`, `action` or `type`") }
    }

    mutating func entityDecl(into ns: inout RawNamespace) throws {
        let start = current.location
        advance()
        var names: [(String, SourceLocation)] = [try ident()]
        while isPunct(",") { advance(); names.append(try ident()) }
        if isKeyword("enum") {
            advance()
            try expectPunct("[")
            var choices: [String] = [try stringLit().0]
            while isPunct(",") { advance(); choices.append(try stringLit().0) }
            try expectPunct("]")
            try expectPunct(";")
            for (n, l) in names {
                ns.entities.append(RawEntityDecl(name: n, memberOf: [], shape: .record(RawRecord(attributes: [], open: false, location: l)), tags: nil, enumChoices: choices, location: l))
            }
            _ = start
            return
        }
        var parents: [RawPath] = []
        if isKeyword("in") {
            advance()
            parents = try entTypes()
        }
        var shape = RawRecord(attributes: [], open: false, location: current.location)
        if isPunct("=") || isPunct("{") {
            if isPunct("=") { advance() }
            let l = current.location
            try expectPunct("{")
            let attrs = try attrDecls()
            try expectPunct("}")
            shape = RawRecord(attributes: attrs, open: false, location: l)
        }
        var tags: RawType?
        if isKeyword("tags") {
            advance()
            tags = try type()
        }
        try expectPunct(";")
        for (n, l) in names {
            ns.entities.append(RawEntityDecl(name: n, memberOf: parents, shape: .record(shape), tags: tags, enumChoices: nil, location: l))
        }
    }

    mutating func entTypes() throws -> [RawPath] {
        if isPunct("[") {
            advance()
            var out: [RawPath] = []
            if !isPunct("]") {
                out.append(try path())
                while isPunct(",") { advance(); out.append(try path()) }
            }
            try expectPunct("]")
            return out
        }
        return [try path()]
    }

    mutating func qualName() throws -> RawActionRef {
        if case .string = current.kind {
            let (s, l) = try stringLit()
            return RawActionRef(typePath: nil, id: s, location: l)
        }
        // Either Ident (unqualified name) or Path '::' STR
        let (first, l) = try ident()
        var comps = [first]
        while isPunct("::") {
            advance()
            if case .string = current.kind {
                let (s, sl) = try stringLit()
                return RawActionRef(typePath: RawPath(components: comps, location: l), id: s, location: span(l, sl))
            }
            comps.append(try ident().0)
        }
        if comps.count == 1 { return RawActionRef(typePath: nil, id: first, location: l) }
        throw unexpected("`::` followed by a string literal")
    }

    mutating func actionDecl(into ns: inout RawNamespace) throws {
        advance()
        var names: [(String, SourceLocation)] = [try name()]
        while isPunct(",") { advance(); names.append(try name()) }
        let firstName = names.first?.0 ?? ""
        var parents: [RawActionRef] = []
        if isKeyword("in") {
            advance()
            if isPunct("[") {
                advance()
                parents.append(try qualName())
                while isPunct(",") { advance(); parents.append(try qualName()) }
                try expectPunct("]")
            } else {
                parents.append(try qualName())
            }
        }
        var principals: [RawPath]?
        var resources: [RawPath]?
        var context: RawType?
        var hasAppliesTo = false
        if isKeyword("appliesTo") {
            hasAppliesTo = true
            let appliesLoc = current.location
            advance()
            try expectPunct("{")
            var sawAny = false
            var contextSeen = false
            while !isPunct("}") {
                sawAny = true
                let (key, kl) = try anyIdent()
                try expectPunct(":")
                switch key {
                case "principal":
                    if principals != nil { throw schemaError("duplicate `principal` declaration in action `\(firstName)`", kl) }
                    let ts = try entTypes()
                    if ts.isEmpty { throw schemaError("for action `\(firstName)`, `principal` is declared with an empty list", kl) }
                    principals = ts
                case "resource":
                    if resources != nil { throw schemaError("duplicate `resource` declaration in action `\(firstName)`", kl) }
                    let ts = try entTypes()
                    if ts.isEmpty { throw schemaError("for action `\(firstName)`, `resource` is declared with an empty list", kl) }
                    resources = ts
                case "context":
                    if contextSeen { throw schemaError("duplicate `context` declaration in action `\(firstName)`", kl) }
                    contextSeen = true
                    if isPunct("{") {
                        let l = current.location
                        advance()
                        let attrs = try attrDecls()
                        try expectPunct("}")
                        context = .record(RawRecord(attributes: attrs, open: false, location: l))
                    } else {
                        context = .named(try path(), .common)
                    }
                default:
                    throw schemaError("unexpected token `\(key)`, expected `principal`, `resource` or `context`", kl)
                }
                if isPunct(",") { advance() } else { break }
            }
            try expectPunct("}")
            if !sawAny { throw schemaError("`appliesTo` must declare `principal` and `resource`", appliesLoc) }
            if principals == nil { throw schemaError("missing `principal` declaration for action `\(firstName)`", appliesLoc) }
            if resources == nil { throw schemaError("missing `resource` declaration for action `\(firstName)`", appliesLoc) }
        }
        if isKeyword("attributes") {
            advance()
            try expectPunct("{")
            try expectPunct("}")
        }
        try expectPunct(";")
        for (n, l) in names {
            ns.actions.append(RawActionDecl(name: n, memberOf: parents,
                                            principalTypes: hasAppliesTo ? principals : nil,
                                            resourceTypes: hasAppliesTo ? resources : nil,
                                            context: context, location: l))
        }
    }

    mutating func typeDecl(into ns: inout RawNamespace) throws {
        advance()
        let (n, l) = try ident()
        try expectPunct("=")
        let t = try type()
        try expectPunct(";")
        ns.commonTypes.append(RawCommonTypeDecl(name: n, type: t, location: l))
    }

    mutating func type() throws -> RawType {
        try enter()
        defer { leave() }
        if isKeyword("Set") && peekIsPunct("<") {
            advance(); advance()
            let inner = try type()
            try expectPunct(">")
            return .set(inner)
        }
        if isPunct("{") {
            let l = current.location
            advance()
            let attrs = try attrDecls()
            try expectPunct("}")
            return .record(RawRecord(attributes: attrs, open: false, location: l))
        }
        return .named(try path(), .commonOrEntity)
    }

    mutating func attrDecls() throws -> [RawAttribute] {
        var out: [RawAttribute] = []
        var seen = Set<String>()
        while !isPunct("}") {
            try annotations()
            let (n, l) = try name()
            var required = true
            if isPunct("?") { advance(); required = false }
            try expectPunct(":")
            let t = try type()
            // As in Cedar, a repeated attribute name replaces the earlier declaration.
            if !seen.insert(n).inserted { out.removeAll { $0.name == n } }
            out.append(RawAttribute(name: n, type: t, required: required, location: l))
            if isPunct(",") { advance() } else { break }
        }
        return out
    }
}
