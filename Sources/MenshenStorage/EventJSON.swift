import Foundation

/// JSON text for OCSF event objects built as dictionaries: object keys sorted
/// (by Unicode scalar values), no insignificant whitespace, `/` not escaped —
/// deterministic, so the hash chain covers exactly what is stored. Written
/// here because Foundation's `JSONSerialization` with `.sortedKeys` compares
/// keys through locale-aware string collation, which made it the single most
/// expensive step of the gateway's decision audit (a third of its CPU per
/// request when profiled); the output is the same JSON.
public enum EventJSON {
    public struct Unsupported: Error, CustomStringConvertible {
        public let description: String
    }

    /// Encodes dictionaries, arrays, strings, integers, finite doubles, booleans and `NSNull`/nil.
    public static func encode(_ value: Any, depthLimit: Int = 32) throws -> String {
        var out = ""
        out.reserveCapacity(1024)
        try write(value, into: &out, depth: depthLimit)
        return out
    }

    static func write(_ value: Any, into out: inout String, depth: Int) throws {
        guard depth > 0 else { throw Unsupported(description: "nested deeper than the limit") }
        switch value {
        case let s as String: string(s, into: &out)
        case let b as Bool: out += b ? "true" : "false"
        case let i as Int: out += String(i)
        case let i as Int64: out += String(i)
        case let i as Int32: out += String(i)
        case let d as Double:
            guard d.isFinite else { throw Unsupported(description: "a non-finite number") }
            out += d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case let dict as [String: Any]:
            out += "{"
            var first = true
            // UTF-8 byte order is Unicode scalar order.
            for key in dict.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                if !first { out += "," }
                first = false
                string(key, into: &out)
                out += ":"
                try write(dict[key]!, into: &out, depth: depth - 1)
            }
            out += "}"
        case let array as [Any]:
            out += "["
            for (n, element) in array.enumerated() {
                if n > 0 { out += "," }
                try write(element, into: &out, depth: depth - 1)
            }
            out += "]"
        case is NSNull: out += "null"
        default:
            // An optional stored as Any: its value, or null.
            let mirror = Mirror(reflecting: value)
            guard mirror.displayStyle == .optional else { throw Unsupported(description: "a value of type \(type(of: value))") }
            if let wrapped = mirror.children.first?.value { try write(wrapped, into: &out, depth: depth - 1) } else { out += "null" }
        }
    }

    static func string(_ s: String, into out: inout String) {
        out += "\""
        // Most values (ids, paths, names) are printable ASCII with nothing to escape: copied whole.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20 || escapedForReaders(scalar):
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Characters that are valid in JSON but mislead whoever reads the log: DEL, the line and
    /// paragraph separators (they end a line in JavaScript and in some viewers), and the
    /// bidirectional controls that can make a path or name display as something else. They are
    /// written as `\uXXXX` escapes, which decode to the same text.
    static func escapedForReaders(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x7F, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}

extension EventJSON {
    /// A JSON value built with literals, encoded without the dynamic casts that
    /// `Any` needs (for events written on the request path, such as the
    /// gateway's decision audit). Same output rules as ``encode(_:depthLimit:)``.
    public indirect enum Value: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
        ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByStringInterpolation
    {
        case string(String)
        case int(Int64)
        case bool(Bool)
        case null
        case array([Value])
        case object([String: Value])

        public init(stringLiteral value: String) { self = .string(value) }
        public init(integerLiteral value: Int64) { self = .int(value) }
        public init(booleanLiteral value: Bool) { self = .bool(value) }
        public init(arrayLiteral elements: Value...) { self = .array(elements) }
        public init(dictionaryLiteral elements: (String, Value)...) {
            self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
        }
        public static func number(_ value: Int) -> Value { .int(Int64(value)) }
        public static func strings(_ values: [String]) -> Value { .array(values.map { .string($0) }) }
    }

    /// Encodes a ``Value``: keys sorted by Unicode scalar value, no insignificant whitespace.
    public static func encode(_ value: Value, depthLimit: Int = 32) throws -> String {
        var out = ""
        out.reserveCapacity(1536)
        try write(value, into: &out, depth: depthLimit)
        return out
    }

    static func write(_ value: Value, into out: inout String, depth: Int) throws {
        guard depth > 0 else { throw Unsupported(description: "nested deeper than the limit") }
        switch value {
        case .string(let s): string(s, into: &out)
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let elements):
            out += "["
            for (n, element) in elements.enumerated() {
                if n > 0 { out += "," }
                try write(element, into: &out, depth: depth - 1)
            }
            out += "]"
        case .object(let members):
            out += "{"
            var first = true
            for (key, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                if !first { out += "," }
                first = false
                string(key, into: &out)
                out += ":"
                try write(member, into: &out, depth: depth - 1)
            }
            out += "}"
        }
    }
}

extension EventJSON {
    /// Writes one JSON object member by member, straight into its text: the
    /// same canonical output as ``encode(_:depthLimit:)-(Value)`` without
    /// building and sorting dictionaries first — for the events written once per
    /// request (the gateway's decisions). The caller gives each object's
    /// members in sorted key order (UTF-8 byte order); debug builds check it,
    /// and the decision log's tests compare the text with the ``Value`` encoding.
    /// Keys must be plain ASCII names (they are written without escaping).
    public struct ObjectWriter {
        /// The UTF-8 text so far, in a buffer of its own: appending a few bytes at a time to an `Array` or a
        /// `String` checks capacity and uniqueness on every append, which cost more than the copying itself.
        private let out: ByteSink
        /// Bit `d` set: the object open at depth `d` has no member yet (the writers nest a handful deep).
        private var emptyAt: UInt64 = 1
        private var depth = 0
        #if DEBUG
        private var lastKey: [String] = [""]
        #endif

        public init(capacity: Int = 1536) {
            out = ByteSink(capacity: capacity)
            out.byte(UInt8(ascii: "{"))
        }

        private mutating func key(_ k: String) {
            #if DEBUG
            precondition(k.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }, "key \(k) needs escaping")
            precondition(emptyAt & (1 << depth) != 0 || lastKey[lastKey.count - 1].utf8.lexicographicallyPrecedes(k.utf8),
                         "key \(k) out of order after \(lastKey[lastKey.count - 1])")
            lastKey[lastKey.count - 1] = k
            #endif
            if emptyAt & (1 << depth) != 0 { emptyAt &= ~(1 << depth) } else { out.byte(UInt8(ascii: ",")) }
            out.byte(UInt8(ascii: "\""))
            raw(k)
            out.byte(UInt8(ascii: "\""))
            out.byte(UInt8(ascii: ":"))
        }

        /// Appends the UTF-8 bytes of `s` as they are (one copy, not byte by byte).
        private func raw(_ s: String) {
            var s = s
            s.withUTF8 { out.append($0) }
        }

        /// A JSON string: printable ASCII without `"` or a backslash is copied as it is (one pass); anything else goes
        /// through ``EventJSON/string(_:into:)``, so the escaping rules live in one place.
        private func quoted(_ v: String) {
            var v = v
            let copied = v.withUTF8 { u -> Bool in
                guard u.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else { return false }
                out.byte(UInt8(ascii: "\""))
                out.append(u)
                out.byte(UInt8(ascii: "\""))
                return true
            }
            guard !copied else { return }
            var escaped = ""
            EventJSON.string(v, into: &escaped)
            raw(escaped)
        }

        public mutating func string(_ k: String, _ v: String) { key(k); quoted(v) }
        public mutating func int(_ k: String, _ v: Int) { key(k); out.decimal(Int64(v)) }
        public mutating func int(_ k: String, _ v: Int64) { key(k); out.decimal(v) }
        public mutating func bool(_ k: String, _ v: Bool) { key(k); raw(v ? "true" : "false") }

        public mutating func strings(_ k: String, _ values: [String]) {
            key(k)
            out.byte(UInt8(ascii: "["))
            for (n, v) in values.enumerated() {
                if n > 0 { out.byte(UInt8(ascii: ",")) }
                quoted(v)
            }
            out.byte(UInt8(ascii: "]"))
        }

        /// A member given as a ``Value`` (for the rare, irregular parts).
        public mutating func value(_ k: String, _ v: Value) throws {
            key(k)
            var encoded = ""
            try EventJSON.write(v, into: &encoded, depth: 32)
            raw(encoded)
        }

        /// A nested object, its members written by `body`.
        public mutating func object(_ k: String, _ body: (inout ObjectWriter) throws -> Void) rethrows {
            key(k)
            try nested(body)
        }

        /// An array of `count` objects, each written by `body`.
        public mutating func objects(_ k: String, count: Int, _ body: (Int, inout ObjectWriter) throws -> Void) rethrows {
            key(k)
            out.byte(UInt8(ascii: "["))
            for i in 0..<count {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                try nested { try body(i, &$0) }
            }
            out.byte(UInt8(ascii: "]"))
        }

        private mutating func nested(_ body: (inout ObjectWriter) throws -> Void) rethrows {
            precondition(depth < 63, "ObjectWriter: objects nested deeper than 63")   // fixed shapes written by this program
            out.byte(UInt8(ascii: "{"))
            depth += 1
            emptyAt |= 1 << depth
            #if DEBUG
            lastKey.append("")
            #endif
            try body(&self)
            depth -= 1
            #if DEBUG
            lastKey.removeLast()
            #endif
            out.byte(UInt8(ascii: "}"))
        }

        /// Closes the object and returns its text.
        public mutating func finish() -> String {
            out.byte(UInt8(ascii: "}"))
            return out.string()
        }
    }

    /// A growable byte buffer for ``ObjectWriter``: one allocation, grown by doubling; appends are a capacity
    /// compare and a copy.
    final class ByteSink {
        private var base: UnsafeMutablePointer<UInt8>
        private var count = 0
        private var capacity: Int

        init(capacity: Int) {
            self.capacity = max(64, capacity)
            base = .allocate(capacity: self.capacity)
        }

        deinit { base.deallocate() }

        @inline(__always) private func reserve(_ extra: Int) {
            if count + extra > capacity { grow(to: count + extra) }
        }

        private func grow(to needed: Int) {
            var c = capacity * 2
            while c < needed { c *= 2 }
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
            bigger.initialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity = c
        }

        @inline(__always) func byte(_ b: UInt8) {
            reserve(1)
            base[count] = b
            count += 1
        }

        @inline(__always) func append(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let from = bytes.baseAddress, bytes.count > 0 else { return }
            reserve(bytes.count)
            (base + count).initialize(from: from, count: bytes.count)
            count += bytes.count
        }

        /// `value` in ASCII decimal, as `String(value)` writes it.
        func decimal(_ value: Int64) {
            reserve(20)
            count += ASCIIDecimal.write(value, to: base + count)
        }

        func string() -> String {
            String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
        }
    }
}
