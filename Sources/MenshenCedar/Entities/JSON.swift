/// A parsed JSON document. Objects keep their members in source order (duplicates are
/// kept so that callers can report them). Integers that fit in `Int64` are `.int`; any
/// other number is `.number` with its source text.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let b): h.combine(b)
        case .int(let i): h.combine(i)
        case .number(let s): h.combine(s)
        case .string(let s): h.combine(s)
        case .array(let a): h.combine(a)
        case .object(let o): for m in o { h.combine(m.key); h.combine(m.value) }
        }
    }

    /// Member lookup (first occurrence) for objects.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [(key: String, value: JSONValue)]? { if case .object(let o) = self { return o }; return nil }

    /// Parses JSON text (RFC 8259) with the size and depth limits of `MenshenCedar.Limits`.
    public static func parse(_ text: String) throws(CedarError) -> JSONValue {
        guard text.utf8.count <= MenshenCedar.Limits.maxInputBytes else {
            throw CedarError(.json, "JSON input exceeds \(MenshenCedar.Limits.maxInputBytes) bytes")
        }
        var r = JSONReader(Array(text.utf8))
        r.skipWS()
        let v = try r.value(depth: 0)
        r.skipWS()
        guard r.pos == r.bytes.count else { throw r.error("trailing characters after JSON value") }
        return v
    }
}

/// Hand-written JSON reader over UTF-8 bytes. Every `bytes[pos]` access is guarded by a
/// `pos < bytes.count` check; nesting is limited by `MenshenCedar.Limits.maxNestingDepth`.
struct JSONReader {
    let bytes: [UInt8]
    var pos = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func error(_ msg: String) -> CedarError {
        var line = 1, col = 1
        for b in bytes[0..<min(pos, bytes.count)] { if b == 0x0A { line += 1; col = 1 } else { col += 1 } }
        return CedarError(.json, "invalid JSON: \(msg)", at: SourceLocation(offset: pos, length: 1, line: line, column: col))
    }

    mutating func skipWS() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x0A || bytes[pos] == 0x0D || bytes[pos] == 0x09 { pos += 1 }
    }

    private mutating func literal(_ word: String, _ v: JSONValue) throws(CedarError) -> JSONValue {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<(pos + w.count)]) == w else { throw error("unexpected token") }
        pos += w.count
        return v
    }

    mutating func value(depth: Int) throws(CedarError) -> JSONValue {
        guard depth <= MenshenCedar.Limits.maxNestingDepth else { throw error("nesting exceeds the limit of \(MenshenCedar.Limits.maxNestingDepth)") }
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipWS()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipWS()
                items.append(try value(depth: depth + 1))
                skipWS()
                guard pos < bytes.count else { throw error("unterminated array") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw error("expected `,` or `]`")
            }
        case UInt8(ascii: "{"):
            pos += 1
            var members: [(key: String, value: JSONValue)] = []
            skipWS()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            while true {
                skipWS()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let k = try string()
                skipWS()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected `:`") }
                pos += 1
                skipWS()
                members.append((k, try value(depth: depth + 1)))
                skipWS()
                guard pos < bytes.count else { throw error("unterminated object") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
                throw error("expected `,` or `}`")
            }
        default:
            return try number()
        }
    }

    private mutating func number() throws(CedarError) -> JSONValue {
        let start = pos
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        let intStart = pos
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 { pos += 1 }
        guard pos > intStart else { throw error("unexpected character") }
        if pos - intStart > 1 && bytes[intStart] == 0x30 { throw error("leading zero in number") }
        var isInt = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            isInt = false; pos += 1
            let f = pos
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 { pos += 1 }
            guard pos > f else { throw error("invalid number") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            isInt = false; pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            let e = pos
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 { pos += 1 }
            guard pos > e else { throw error("invalid number") }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInt, let v = Int64(text) { return .int(v) }
        return .number(text)
    }

    private mutating func hex4() throws(CedarError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("invalid \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    mutating func string() throws(CedarError) -> String {
        pos += 1 // opening quote
        var out = [UInt8]()
        var scalars = String.UnicodeScalarView()
        func flush() { if !out.isEmpty { scalars.append(contentsOf: String(decoding: out, as: UTF8.self).unicodeScalars); out.removeAll(keepingCapacity: true) } }
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw error("unterminated string") }
            let e = bytes[pos]; pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if v >= 0xD800 && v < 0xDC00 {
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw error("invalid surrogate pair") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw error("unpaired surrogate in \\u escape")
                }
                guard let sc = Unicode.Scalar(v) else { throw error("invalid \\u escape") }
                flush()
                scalars.append(sc)
            default: throw error("invalid escape")
            }
        }
        flush()
        return String(scalars)
    }
}
