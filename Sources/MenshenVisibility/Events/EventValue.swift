import MenshenCore

/// Limits on the events the detection engine reads. An event larger or deeper
/// than these is refused with ``VisibilityError/Code/invalidEvent``.
public enum EventLimits {
    /// Largest event JSON accepted, in bytes (the store's own limit).
    public static let maxBytes = InputLimits.maxEventPayloadBytes
    /// Deepest nesting of objects and arrays accepted.
    public static let maxDepth = 32
    /// Most segments in a field path (`actor.user.name` has three).
    public static let maxPathSegments = 16
    /// Longest field path, in bytes.
    public static let maxPathBytes = 256
    /// Most values one path lookup returns when it passes through arrays.
    public static let maxLookupValues = 256
}

/// A JSON value as the detection engine sees it: the parsed OCSF event.
/// Objects are dictionaries (OCSF objects have no meaningful member order);
/// integers that fit in `Int64` are ``int``, other numbers ``double``.
public indirect enum EventValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([EventValue])
    case object([String: EventValue])

    /// Member lookup for objects.
    public subscript(key: String) -> EventValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var objectValue: [String: EventValue]? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [EventValue]? { if case .array(let a) = self { return a }; return nil }

    /// The value as an integer: integers, and doubles without a fraction.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }

    /// The value as a number: integers and doubles (strings are not converted).
    public var numberValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The text a string comparison uses: strings as they are, numbers and
    /// booleans in their JSON spelling; `nil` for null, arrays and objects.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }

    /// Parses JSON text (RFC 8259) within ``EventLimits``.
    public static func parse(_ text: String) throws(VisibilityError) -> EventValue {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses JSON UTF-8 bytes within ``EventLimits``; with a projection, only
    /// the members it wants are built (the rest is checked and stepped over).
    static func parse(bytes: [UInt8], projection: EventProjection? = nil) throws(VisibilityError) -> EventValue {
        guard bytes.count <= EventLimits.maxBytes else {
            throw VisibilityError(.invalidEvent, "event JSON is \(bytes.count) bytes; the limit is \(EventLimits.maxBytes)")
        }
        var reader = JSONReader(bytes)
        reader.skipWhitespace()
        let value: EventValue
        if let projection { value = try reader.projected(projection, node: 0, depth: 0) } else { value = try reader.value(depth: 0) }
        reader.skipWhitespace()
        guard reader.position == reader.bytes.count else { throw reader.error("trailing characters after the JSON value") }
        return value
    }
}

extension EventValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: EventValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, EventValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A strict, bounded JSON reader over UTF-8 bytes: no trailing commas, no
/// comments, duplicate object keys refused, nesting capped at
/// ``EventLimits/maxDepth``.
struct JSONReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func error(_ what: String) -> VisibilityError {
        VisibilityError(.invalidEvent, "event JSON at byte \(position): \(what)")
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            let b = bytes[position]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            position += 1
        }
    }

    mutating func value(depth: Int) throws(VisibilityError) -> EventValue {
        guard depth < EventLimits.maxDepth else { throw error("nested deeper than \(EventLimits.maxDepth) levels") }
        guard position < bytes.count else { throw error("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var members: [String: EventValue] = [:]
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let key = try string()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipWhitespace()
                let v = try value(depth: depth + 1)
                guard members.updateValue(v, forKey: key) == nil else { throw error("duplicate member \"\(key.prefix(64))\"") }
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            position += 1
            var elements: [EventValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return try number()
        }
    }

    mutating func literal(_ word: String) throws(VisibilityError) {
        let w = word.utf8
        guard position + w.count <= bytes.count, bytes[position..<position + w.count].elementsEqual(w) else {
            throw error("unexpected character")
        }
        position += w.count
    }

    mutating func number() throws(VisibilityError) -> EventValue {
        let (start, integral) = try numberSpan()
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if integral, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { throw error("a number out of range") }
        return .double(d)
    }

    /// Steps over a number, checking its form; returns where it starts and whether it has no fraction or exponent.
    mutating func numberSpan() throws(VisibilityError) -> (start: Int, integral: Bool) {
        let start = position
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
        guard position > digitsStart else { throw error("unexpected character") }
        guard !(bytes[digitsStart] == 0x30 && position - digitsStart > 1) else { throw error("a number with a leading zero") }
        var integral = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            integral = false
            position += 1
            let f = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            guard position > f else { throw error("a number without digits after '.'") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            integral = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            let e = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            guard position > e else { throw error("a number without exponent digits") }
        }
        return (start, integral)
    }

    mutating func string() throws(VisibilityError) -> String {
        position += 1   // the opening quote
        // Most strings have no escape: find the closing quote and take the bytes as they are.
        let start = position
        var end = position
        var ascii = true
        while end < bytes.count {
            let b = bytes[end]
            if b == UInt8(ascii: "\"") {
                // ASCII is valid UTF-8 as it is; anything else is validated (String(validating:) is not
                // specialised for these slices, and most event strings are ASCII).
                let s: String
                if ascii {
                    s = String(decoding: bytes[start..<end], as: UTF8.self)
                } else {
                    guard let v = String(validating: bytes[start..<end], as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                    s = v
                }
                position = end + 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            if b >= 0x80 { ascii = false }
            end += 1
        }
        var out: [UInt8] = Array(bytes[start..<end])
        position = end
        while position < bytes.count {
            let b = bytes[position]
            switch b {
            case UInt8(ascii: "\""):
                position += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return s
            case UInt8(ascii: "\\"):
                guard position + 1 < bytes.count else { throw error("unterminated escape") }
                let e = bytes[position + 1]
                position += 2
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
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                        else { throw error("a lone surrogate") }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("a lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("a lone surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("an invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("an invalid escape")
                }
            case 0x00..<0x20:
                throw error("a control character in a string")
            default:
                out.append(b)
                position += 1
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws(VisibilityError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("a short \\u escape") }
        var v: UInt32 = 0
        for b in bytes[position..<position + 4] {
            v <<= 4
            switch b {
            case 0x30...0x39: v |= UInt32(b - 0x30)
            case 0x41...0x46: v |= UInt32(b - 0x41 + 10)
            case 0x61...0x66: v |= UInt32(b - 0x61 + 10)
            default: throw error("a non-hex digit in a \\u escape")
            }
        }
        position += 4
        return v
    }
}
