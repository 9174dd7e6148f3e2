/// The header vocabulary of the enforcement point: which headers are
/// connection-scoped (hop-by-hop), which carry identity that only the gate may
/// set, and which describe forwarding. Pure; names compared case-insensitively.
public enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 §7.6.1), plus the legacy ones proxies drop.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Client-supplied forwarding headers; the proxy sets its own.
    public static let forwarding: Set<String> = [
        "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "via",
    ]

    /// Exact identity header names that clients must never supply.
    public static let identityExact: Set<String> = ["x-forwarded-user", "x-remote-user", "remote-user",
                                                    "x-forwarded-email", "x-forwarded-groups"]
    /// Identity header prefixes that clients must never supply.
    public static let identityPrefixes: [String] = ["x-menshen-", "x-auth-request-"]

    /// Header names listed in `Connection` headers (they are hop-by-hop too).
    public static func connectionListed(_ headers: [(String, String)]) -> Set<String> {
        var listed = Set<String>()
        for (name, value) in headers where name.lowercased() == "connection" {
            for token in value.split(separator: ",") {
                let t = token.trimmingASCIISpaces().lowercased()
                if !t.isEmpty { listed.insert(t) }
            }
        }
        return listed
    }

    /// Headers without hop-by-hop ones (fixed list and `Connection`-listed).
    public static func removingHopByHop(_ headers: [(String, String)]) -> [(String, String)] {
        let listed = connectionListed(headers)
        return headers.filter { name, _ in
            let n = name.lowercased()
            return !hopByHop.contains(n) && !listed.contains(n)
        }
    }

    /// True when `name` is an identity header only the gate may set.
    public static func isIdentity(_ name: String, extra: Set<String>) -> Bool {
        let n = name.lowercased()
        if identityExact.contains(n) || extra.contains(n) { return true }
        return identityPrefixes.contains { n.hasPrefix($0) }
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
