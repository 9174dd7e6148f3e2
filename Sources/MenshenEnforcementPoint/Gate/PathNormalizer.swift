/// Normalises an origin-form request target so that the gate authorises
/// exactly the path the upstream will receive.
///
/// Rules (every rejection is a 400 before the gate is asked):
/// - the target must be origin-form (`/…`); fragments (`#`) are refused;
/// - percent-escapes must be two hex digits; escapes of unreserved characters
///   (`A–Z a–z 0–9 - . _ ~`) are decoded, other escapes are kept with upper-case hex;
/// - encoded `/` (`%2F`), `\` in any form, NUL and other control characters,
///   encoded `%` (`%25`, double encoding) and `;` (path parameters, which some
///   servers strip before routing) are refused;
/// - the decoded bytes must be valid, shortest-form UTF-8 (overlong forms such
///   as `%C0%AE` are refused); raw non-ASCII bytes are refused;
/// - `.` and `..` segments (also when written `%2e`) are resolved, never above
///   the root; runs of `/` collapse to one; a trailing `/` is kept;
/// - segments ending in `.` or a space (`/admin.`), which some servers treat as
///   the name without it, are refused.
///
/// The query is kept as received but must contain only valid characters and
/// valid percent-escapes.
public enum PathNormalizer {
    public struct Normalized: Sendable, Hashable {
        /// The normalised path, always starting with `/`.
        public var path: String
        /// The raw query without `?`, or nil.
        public var query: String?
        /// `path` plus `?query` when there is a query: the target sent upstream.
        public var target: String { query.map { "\(path)?\($0)" } ?? path }
    }

    public enum Rejection: Error, Sendable, Hashable {
        case notOriginForm
        case fragment
        case invalidPercentEncoding
        case encodedSlash
        case backslash
        case controlCharacter
        case doubleEncoding
        case pathParameter
        case invalidUTF8
        case rawNonASCII
        case invalidCharacter
        case trailingDotOrSpace
    }

    public static func normalize(_ target: String) -> Result<Normalized, Rejection> {
        let bytes = Array(target.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return .failure(.notOriginForm) }
        if bytes.contains(UInt8(ascii: "#")) { return .failure(.fragment) }
        let pathBytes: ArraySlice<UInt8>
        var query: String?
        if let q = bytes.firstIndex(of: UInt8(ascii: "?")) {
            pathBytes = bytes[..<q]
            let queryBytes = bytes[(q + 1)...]
            if let r = validateQuery(queryBytes) { return .failure(r) }
            query = String(decoding: queryBytes, as: UTF8.self)
        } else {
            pathBytes = bytes[...]
        }

        // 1. Decode into (byte, wasEncoded) pairs.
        var decoded: [(byte: UInt8, encoded: Bool)] = []
        decoded.reserveCapacity(pathBytes.count)
        var i = pathBytes.startIndex
        while i < pathBytes.endIndex {
            let b = pathBytes[i]
            if b == UInt8(ascii: "%") {
                // Bounds: i + 2 < endIndex makes both subscripts below valid.
                guard i + 2 < pathBytes.endIndex,
                      let hi = hexValue(pathBytes[i + 1]), let lo = hexValue(pathBytes[i + 2])
                else { return .failure(.invalidPercentEncoding) }
                let v = hi << 4 | lo
                switch v {
                case UInt8(ascii: "/"): return .failure(.encodedSlash)
                case UInt8(ascii: "\\"): return .failure(.backslash)
                case UInt8(ascii: "%"): return .failure(.doubleEncoding)
                case UInt8(ascii: ";"): return .failure(.pathParameter)
                case 0..<0x20, 0x7F: return .failure(.controlCharacter)
                default: break
                }
                decoded.append((v, true))
                i += 3
                continue
            }
            switch b {
            case UInt8(ascii: "\\"): return .failure(.backslash)
            case UInt8(ascii: ";"): return .failure(.pathParameter)
            case 0..<0x20, 0x7F: return .failure(.controlCharacter)
            case 0x80...: return .failure(.rawNonASCII)
            default:
                guard isPathChar(b) else { return .failure(.invalidCharacter) }
            }
            decoded.append((b, false))
            i += 1
        }

        // 2. The decoded bytes must be valid shortest-form UTF-8.
        guard String(validating: decoded.map(\.byte), as: UTF8.self) != nil else {
            return .failure(.invalidUTF8)
        }

        // 3. Split into segments and resolve dot segments.
        var segments: [[(byte: UInt8, encoded: Bool)]] = []
        var current: [(byte: UInt8, encoded: Bool)] = []
        var endsWithSlash = false
        func finish(_ segment: [(byte: UInt8, encoded: Bool)]) -> Rejection? {
            let raw = segment.map(\.byte)
            if raw.isEmpty { return nil }                       // duplicate slash
            if raw == [0x2E] { return nil }                      // "."
            if raw == [0x2E, 0x2E] {                              // ".."
                if !segments.isEmpty { segments.removeLast() }
                return nil
            }
            if let last = raw.last, last == 0x2E || last == 0x20 { return .trailingDotOrSpace }
            segments.append(segment)
            return nil
        }
        for entry in decoded.dropFirst() {   // the first byte is the leading "/"
            if entry.byte == UInt8(ascii: "/") && !entry.encoded {
                if let r = finish(current) { return .failure(r) }
                current = []
                endsWithSlash = true
            } else {
                current.append(entry)
                endsWithSlash = false
            }
        }
        let lastRaw = current.map(\.byte)
        if lastRaw == [0x2E] || lastRaw == [0x2E, 0x2E] { endsWithSlash = true }
        if let r = finish(current) { return .failure(r) }

        // 4. Re-encode.
        var out: [UInt8] = [UInt8(ascii: "/")]
        for (n, segment) in segments.enumerated() {
            if n > 0 { out.append(UInt8(ascii: "/")) }
            for (byte, encoded) in segment {
                if isUnreserved(byte) || (!encoded && isPathChar(byte)) {
                    out.append(byte)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0xF))
                }
            }
        }
        if endsWithSlash && !segments.isEmpty { out.append(UInt8(ascii: "/")) }
        return .success(Normalized(path: String(decoding: out, as: UTF8.self), query: query))
    }

    private static func validateQuery(_ bytes: ArraySlice<UInt8>) -> Rejection? {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                // Bounds: i + 2 < endIndex makes both subscripts below valid.
                guard i + 2 < bytes.endIndex, hexValue(bytes[i + 1]) != nil, hexValue(bytes[i + 2]) != nil
                else { return .invalidPercentEncoding }
                i += 3
                continue
            }
            switch b {
            case 0..<0x20, 0x7F: return .controlCharacter
            case 0x80...: return .rawNonASCII
            case UInt8(ascii: "\\"): return .backslash
            default:
                guard isPathChar(b) || b == UInt8(ascii: "?") else { return .invalidCharacter }
            }
            i += 1
        }
        return nil
    }

    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// pchar without `%` (RFC 3986): unreserved, sub-delims, `:`, `@`, plus `/`.
    static func isPathChar(_ b: UInt8) -> Bool {
        if isUnreserved(b) { return true }
        switch b {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
             UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
             UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "A") + v - 10
    }
}
