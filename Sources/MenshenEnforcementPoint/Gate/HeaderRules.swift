/// The header vocabulary of the enforcement point: which headers are
/// connection-scoped (hop-by-hop), which carry identity that only the gate may
/// set, and which describe forwarding. Pure; names compared case-insensitively.
public enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 §7.6.1), plus the legacy ones proxies drop.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Client-supplied forwarding headers, and client claims of its address or of the request's original URL or
    /// method: the proxy sets its own forwarding headers, and none of these passes from a client — an application
    /// or framework that honours one (`X-Original-URL` in IIS rewrite and older Symfony/Zend, `True-Client-IP` in
    /// CDN-aware logging and rate limits) would act on another request or client than the one decided.
    /// Every `X-Forwarded-*` name is one too (``forwardingPrefixes``).
    public static let forwarding: Set<String> = [
        "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "via",
        "x-original-url", "x-original-uri", "x-original-method", "x-original-host", "x-rewrite-url",
        "true-client-ip", "x-client-ip", "x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip",
        "x-envoy-external-address", "x-envoy-original-path",
    ]
    /// Forwarding header prefixes (`X-Forwarded-Server`, `-Ssl`, `-Scheme`, `-Uri`, `-Client-Cert`, …).
    public static let forwardingPrefixes: [String] = ["x-forwarded-"]

    /// Exact identity header names that clients must never supply.
    public static let identityExact: Set<String> = ["x-forwarded-user", "x-remote-user", "remote-user",
                                                    "x-forwarded-email", "x-forwarded-groups"]
    /// Identity header prefixes that clients must never supply.
    public static let identityPrefixes: [String] = ["x-menshen-", "x-auth-request-"]

    /// Headers without hop-by-hop ones (fixed list and `Connection`-listed).
    public static func removingHopByHop(_ headers: [(String, String)]) -> [(String, String)] {
        Classified(headers).endToEnd
    }

    /// True when `name` is an identity header only the gate may set.
    public static func isIdentity(_ name: String, extra: Set<String>) -> Bool {
        kind(ofLowercased: name.lowercased(), extraIdentity: extra) == .identity
    }

    /// What a header is to the proxy. Every kind but `other` is something a client's request
    /// does not pass on upstream as it came.
    public enum Kind: Sendable, Equatable {
        case other
        /// Connection-scoped (``hopByHop``).
        case hopByHop
        /// Describes forwarding (``forwarding``): the proxy sets its own.
        case forwarding
        /// Identity only the gate may set (``identityExact``, ``identityPrefixes``, configured extras).
        case identity
        case host, expect, contentLength
        /// A name with a byte other than a letter, a digit or `-` (`_`, `.`, …): never passed on, as nginx drops
        /// them by default (`ignore_invalid_headers`). CGI, WSGI, Rack and PHP map `_`, `.` and `-` in header names
        /// to the same variable, so a client's `X_Menshen_User`, `X.Menshen.User` or `Remote.User` would reach such
        /// an application as the gate's or the proxy's own field (CVE-2024-45614).
        case unusualName
    }

    /// Kinds of the fixed names, for one look-up per header (hop-by-hop first: it decides what the gate sees).
    static let kinds: [String: Kind] = {
        var k: [String: Kind] = ["host": .host, "expect": .expect, "content-length": .contentLength]
        for n in identityExact { k[n] = .identity }
        for n in forwarding { k[n] = .forwarding }
        for n in hopByHop { k[n] = .hopByHop }
        return k
    }()

    /// The kind of a lower-cased header name; `extraIdentity` holds lower-cased names.
    public static func kind(ofLowercased name: String, extraIdentity: Set<String>) -> Kind {
        if let known = kinds[name] { return known }
        if !extraIdentity.isEmpty, extraIdentity.contains(name) { return .identity }
        for prefix in identityPrefixes where name.hasPrefix(prefix) { return .identity }
        for prefix in forwardingPrefixes where name.hasPrefix(prefix) { return .forwarding }
        if !isPlainName(name) { return .unusualName }
        return .other
    }

    /// Whether a response field from an upstream goes on to the client, given its lower-cased name (hop-by-hop
    /// fields are judged by the caller): not the gate's identity fields (`X-Menshen-*`: an upstream echoing the
    /// assertion would hand it to the client), and not a `Set-Cookie` for one of the access platform's own cookies
    /// (`ownCookies`, lower-case names) — an application could otherwise fix, replace or clear the user's
    /// sign-in session in the browser.
    ///
    /// Cookie names are read from the bytes, as browsers read them: a `;` or `=` followed by a combining mark is
    /// still the delimiter (compared as `Character`s, it would not be).
    public static func passesToClient(lower: String, value: String, ownCookies: Set<String>) -> Bool {
        if lower.hasPrefix("x-menshen-") { return false }
        if !ownCookies.isEmpty, lower == "set-cookie" {
            var v = value
            let own = v.withUTF8 { bytes -> Bool in
                var end = 0
                while end < bytes.count, bytes[end] != semicolon, bytes[end] != equals { end += 1 }
                let (a, b) = trimmed(bytes, 0, end)
                return isOwnCookie(bytes, a, b, ownCookies)
            }
            if own { return false }
        }
        return true
    }

    private static let semicolon = UInt8(ascii: ";"), equals = UInt8(ascii: "=")

    /// `from..<to` without leading and trailing spaces and tabs (the optional whitespace around header tokens and
    /// cookie pairs).
    public static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> (Int, Int) {
        var a = from, b = to
        while a < b, bytes[a] == 0x20 || bytes[a] == 0x09 { a += 1 }
        while b > a, bytes[b - 1] == 0x20 || bytes[b - 1] == 0x09 { b -= 1 }
        return (a, b)
    }

    /// Whether `bytes[a..<b]` is one of `own` (lower-case names), ASCII letters compared without regard to case.
    private static func isOwnCookie(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Int, _ b: Int, _ own: Set<String>) -> Bool {
        for name in own where name.utf8.count == b - a {
            var i = a, equal = true
            for c in name.utf8 {
                let x = bytes[i]
                if (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) != c { equal = false; break }
                i += 1
            }
            if equal { return true }
        }
        return false
    }

    /// Whether a lower-cased header name has only letters, digits and `-`.
    static func isPlainName(_ name: String) -> Bool {
        name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// A `Cookie` field value without the pairs whose name is one of `ownCookies` (lower-case names; a cookie's
    /// name compared without regard to case): the access platform's session and CSRF cookies are bearer
    /// credentials for every application and must not reach any of them. The value as it was when nothing is
    /// removed; nil when nothing is left.
    ///
    /// Read from the bytes, as browsers and the portal read cookies: a `;` or `=` followed by a combining mark is
    /// still the delimiter (compared as `Character`s, a value ending in U+0600 would swallow the `;` after it and hide
    /// the next cookie). Pairs are split at the ASCII `;`, so what is kept stays valid UTF-8.
    public static func removingCookies(_ value: String, named ownCookies: Set<String>) -> String? {
        guard !ownCookies.isEmpty else { return value }
        var v = value
        let result: (removed: Bool, kept: [UInt8]) = v.withUTF8 { bytes in
            var kept: [UInt8] = []
            var removed = false
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != semicolon { end += 1 }
                let (a, b) = trimmed(bytes, start, end)
                var nameEnd = a
                while nameEnd < b, bytes[nameEnd] != equals { nameEnd += 1 }
                let (n0, n1) = trimmed(bytes, a, nameEnd)
                if isOwnCookie(bytes, n0, n1, ownCookies) {
                    removed = true
                } else if a < b {
                    if !kept.isEmpty { kept.append(semicolon); kept.append(0x20) }
                    kept.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[a..<b]))
                }
                start = end + 1
            }
            return (removed, kept)
        }
        guard result.removed else { return value }
        return result.kept.isEmpty ? nil : String(decoding: result.kept, as: UTF8.self)
    }

    /// The one `Cookie` line an upstream gets from a request's `Cookie` field values: each without the platform's own
    /// cookies (``removingCookies(_:named:)``), joined with `"; "` (RFC 9113 §8.2.3: HTTP/2 clients send each cookie as a
    /// field of its own, and an HTTP/1.1 server reads one line); nil when nothing is left. The reverse proxy and the
    /// forward-auth answers build it alike.
    public static func upstreamCookieLine<Values: Sequence<String>>(_ values: Values, ownCookies: Set<String>) -> String? {
        var kept: [String] = []
        for value in values { if let k = removingCookies(value, named: ownCookies) { kept.append(k) } }
        return kept.isEmpty ? nil : kept.count == 1 ? kept[0] : kept.joined(separator: "; ")
    }

    /// A message's headers with each name lower-cased and classified once, in wire order.
    public struct Classified: Sendable {
        public struct Field: Sendable {
            public let name: String
            public let value: String
            /// The name in lower case.
            public let lower: String
            public let kind: Kind
        }

        public let fields: [Field]
        /// Names listed in `Connection` headers: hop-by-hop for this message too.
        public let listed: Set<String>

        public init(_ headers: [(String, String)], extraIdentity: Set<String> = []) {
            var fields: [Field] = []
            fields.reserveCapacity(headers.count)
            var listed = Set<String>()
            for (name, value) in headers {
                let lower = HeaderRules.lowercased(name)
                if lower == "connection" { HeaderRules.insertTokens(of: value, into: &listed) }
                fields.append(Field(name: name, value: value, lower: lower, kind: HeaderRules.kind(ofLowercased: lower, extraIdentity: extraIdentity)))
            }
            self.fields = fields
            self.listed = listed
        }

        /// Whether a field is connection-scoped: of a hop-by-hop name, or named in `Connection`.
        public func isHopByHop(_ field: Field) -> Bool {
            field.kind == .hopByHop || (!listed.isEmpty && listed.contains(field.lower))
        }

        /// The fields that are not hop-by-hop, as name/value pairs.
        public var endToEnd: [(String, String)] {
            var out: [(String, String)] = []
            out.reserveCapacity(fields.count)
            for field in fields where !isHopByHop(field) { out.append((field.name, field.value)) }
            return out
        }

        /// How many fields have this lower-cased name.
        public func count(_ lower: String) -> Int { fields.reduce(0) { $0 + ($1.lower == lower ? 1 : 0) } }

        /// The first value of a lower-cased name.
        public func first(_ lower: String) -> String? { fields.first { $0.lower == lower }?.value }
    }

    /// Adds the lower-cased tokens of a `Connection` field value to `listed` (names that are hop-by-hop for its message).
    public static func insertTokens(of value: String, into listed: inout Set<String>) {
        for token in value.split(separator: ",") {
            let t = token.trimmingASCIISpaces().lowercased()
            if !t.isEmpty { listed.insert(t) }
        }
    }

    /// A header name in lower case: the name itself (no copy) when it has no upper-case ASCII letter, as most
    /// names on the wire after the first letters; `lowercased()` for anything but ASCII.
    public static func lowercased(_ name: String) -> String {
        var upper = false
        for b in name.utf8 {
            if b >= 0x80 { return name.lowercased() }
            if b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") { upper = true }
        }
        guard upper else { return name }
        return String(unsafeUninitializedCapacity: name.utf8.count) { out in
            var i = 0
            for b in name.utf8 {
                out[i] = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
                i += 1
            }
            return i
        }
    }

    /// Whether a field name equals `lower` (already lower-case) with ASCII letters compared case-insensitively.
    public static func name(_ name: String, equalsLowercased lower: String) -> Bool {
        guard name.utf8.count == lower.utf8.count else { return false }
        return zip(name.utf8, lower.utf8).allSatisfy { a, b in
            (a >= UInt8(ascii: "A") && a <= UInt8(ascii: "Z") ? a | 0x20 : a) == b
        }
    }

    /// Whether every byte of `text` is an RFC 9110 `tchar` (methods, header names).
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(RequestValidator.isTokenChar)
    }
}

extension StringProtocol {
    func trimmingASCIISpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
