@testable import MenshenEnforcementPoint
import Testing

@Suite("Path normalisation")
struct PathNormalizerTests {
    static let accepted: [(String, String)] = [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/admin/../secret", "/secret"),
        ("/%2e%2e/x", "/x"),
        ("/%2E%2E/x", "/x"),
        ("/a/%2e/b", "/a/b"),
        ("/a/./b/", "/a/b/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/..", "/"),
        ("//x", "/x"),
        ("///a//b///", "/a/b/"),
        ("/%61dmin", "/admin"),
        ("/%7e%5F", "/~_"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/a%3fb", "/a%3Fb"),
        ("/a/b?x=1&y=%2F..", "/a/b?x=1&y=%2F.."),
    ]

    @Test("accepted targets normalise to the path the upstream receives")
    func acceptedTargets() throws {
        for (input, expected) in Self.accepted where !expected.isEmpty {
            let result = try PathNormalizer.normalize(input).get()
            #expect(result.target == expected, "\(input)")
        }
    }

    static let rejected: [(String, PathNormalizer.Rejection)] = [
        ("/a/%2f/b", .encodedSlash),
        ("/a/%2F..%2F/secret", .encodedSlash),
        ("/a/..%2f", .encodedSlash),
        ("/a%00", .controlCharacter),
        ("/a%0d%0aX: y", .controlCharacter),
        ("/%c0%ae%c0%ae/x", .invalidUTF8),
        ("/%e0%80%ae", .invalidUTF8),
        ("/%ff", .invalidUTF8),
        ("/a\\..\\b", .backslash),
        ("/a/%5c../b", .backslash),
        ("/%252e%252e/x", .doubleEncoding),
        ("/admin;x=1", .pathParameter),
        ("/..;/admin", .pathParameter),
        ("/a/%3b/b", .pathParameter),
        ("/admin.", .trailingDotOrSpace),
        ("/admin%2e", .trailingDotOrSpace),
        ("/admin%20", .trailingDotOrSpace),
        ("/.../x", .trailingDotOrSpace),
        ("/a%", .invalidPercentEncoding),
        ("/a%2", .invalidPercentEncoding),
        ("/a%zz", .invalidPercentEncoding),
        ("/a?b=%g1", .invalidPercentEncoding),
        ("/a b", .invalidCharacter),
        ("/a#frag", .fragment),
        ("http://evil/x", .notOriginForm),
        ("*", .notOriginForm),
        ("", .notOriginForm),
        ("/é", .rawNonASCII),
    ]

    @Test("bypass-style targets are rejected before the gate is asked")
    func rejectedTargets() {
        for (input, why) in Self.rejected {
            switch PathNormalizer.normalize(input) {
            case .success(let n): Issue.record("\(input) was accepted as \(n.target)")
            case .failure(let r): #expect(r == why, "\(input)")
            }
        }
    }

    @Test("normalisation is idempotent")
    func idempotent() throws {
        for (input, expected) in Self.accepted where !expected.isEmpty {
            let once = try PathNormalizer.normalize(input).get().target
            #expect(try PathNormalizer.normalize(once).get().target == once, "\(input)")
        }
    }

    @Test("hop-by-hop headers, including those Connection lists, are removed")
    func hopByHop() {
        let headers = [("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"),
                       ("TE", "trailers"), ("Accept", "*/*"), ("Upgrade", "websocket")]
        #expect(HeaderRules.removingHopByHop(headers).map(\.0) == ["Accept"])
        #expect(HeaderRules.isIdentity("X-Menshen-User", extra: []))
        #expect(HeaderRules.isIdentity("x-auth-request-email", extra: []))
        #expect(HeaderRules.isIdentity("X-Custom-Id", extra: ["x-custom-id"]))
        #expect(!HeaderRules.isIdentity("Authorization", extra: []))
    }

    @Test("headers are classified once: the kind of each name whatever its case, and the names Connection lists")
    func classified() {
        let c = HeaderRules.Classified([
            ("HOST", "a.example"), ("X-Forwarded-For", "1.2.3.4"), ("x-menshen-user", "mallory"), ("X-Custom-Id", "7"),
            ("Connection", "Keep-Alive, X-Trace"), ("x-trace", "t"), ("Content-Length", "3"), ("Expect", "100-continue"),
            ("Transfer-Encoding", "chunked"), ("Via", "1.1 other"), ("Cookie", "a=b"), ("X-Auth-Request-Email", "m@x"),
        ], extraIdentity: ["x-custom-id"])
        #expect(c.fields.map(\.kind) == [.host, .forwarding, .identity, .identity, .hopByHop, .other, .contentLength, .expect,
                                          .hopByHop, .forwarding, .other, .identity])
        #expect(c.listed == ["keep-alive", "x-trace"])
        #expect(c.fields.filter { c.isHopByHop($0) }.map(\.name) == ["Connection", "x-trace", "Transfer-Encoding"])
        // What may pass upstream as sent: only Cookie here.
        #expect(c.fields.filter { $0.kind == .other && !c.isHopByHop($0) }.map(\.name) == ["Cookie"])
        #expect(c.first("host") == "a.example" && c.count("x-trace") == 1 && c.first("absent") == nil)
        #expect(HeaderRules.kind(ofLowercased: "x-custom-id", extraIdentity: []) == .other)
    }

    @Test("names with '_' (or any byte but letters, digits, '-') are never passed on, nor any X-Forwarded-* or client claim of its address or original URL")
    func underscoresAndForwarding() {
        let kind = { HeaderRules.kind(ofLowercased: $0, extraIdentity: ["x-bank-user"]) }
        for name in ["x-menshen_user", "x_menshen_groups", "x_forwarded_for", "transfer_encoding", "content_length", "x_bank_user", "_"] {
            #expect(kind(name) != .other, "\(name)")
        }
        #expect(kind("x_forwarded_for") == .unusualName && kind("x-menshen_user") == .unusualName)
        // Any byte but letters, digits and '-' (PHP turns '.' and ' ' into '_' too; nginx drops them all).
        for name in ["x.menshen.user", "remote.user", "x-forwarded.for", "x~user", "x!user"] { #expect(kind(name) == .unusualName, "\(name)") }
        for name in ["x-forwarded-server", "x-forwarded-ssl", "x-forwarded-client-cert", "x-forwarded-uri", "x-original-url",
                     "x-rewrite-url", "true-client-ip", "x-client-ip", "cf-connecting-ip", "x-real-ip"] {
            #expect(kind(name) == .forwarding, "\(name)")
        }
        #expect(kind("x-forwarded-user") == .identity && kind("x-forwarded-groups") == .identity)
        for name in ["x-forwarder", "forwarded-for", "x-request-id", "accept-language", "x-bank-user2"] { #expect(kind(name) == .other, "\(name)") }
    }

    @Test("the platform's cookies are taken out of a Cookie value by name, whatever their case; everything else stays as sent")
    func removingCookies() {
        let ours: Set<String> = ["__host-menshen-session", "__host-menshen-csrf"]
        #expect(HeaderRules.removingCookies("a=1; __Host-menshen-session=t; b=2", named: ours) == "a=1; b=2")
        #expect(HeaderRules.removingCookies("__HOST-MENSHEN-CSRF=c;a=1", named: ours) == "a=1")
        #expect(HeaderRules.removingCookies("__Host-menshen-session=t", named: ours) == nil)
        #expect(HeaderRules.removingCookies(" __Host-menshen-session = t ;  ; __Host-menshen-csrf", named: ours) == nil)
        #expect(HeaderRules.removingCookies("a=1;b=2", named: ours) == "a=1;b=2", "untouched: the value as sent")
        #expect(HeaderRules.removingCookies("__Host-menshen-session-old=1; x__Host-menshen-session=2", named: ours)
                == "__Host-menshen-session-old=1; x__Host-menshen-session=2")
        #expect(HeaderRules.removingCookies("a=__Host-menshen-session=t", named: ours) == "a=__Host-menshen-session=t", "a value is not a name")
        #expect(HeaderRules.removingCookies("__Host-menshen-session=t", named: []) == "__Host-menshen-session=t")
        // Delimiters are bytes: a combining mark or a prepended-concatenation mark next to ';' or '=' does not hide them.
        #expect(HeaderRules.removingCookies("z=\u{0600}; __Host-menshen-session=T", named: ours) == "z=\u{0600}")
        #expect(HeaderRules.removingCookies("z=a\u{0301};__Host-menshen-session=T;y=\u{200D}", named: ours) == "z=a\u{0301}; y=\u{200D}")
        #expect(HeaderRules.removingCookies("名=值; __Host-menshen-csrf=c", named: ours) == "名=值")
    }

    @Test("an upstream's Set-Cookie for the platform's cookies and its X-Menshen-* fields do not reach the client")
    func passesToClient() {
        let ours: Set<String> = ["__host-menshen-session"]
        let passes = { HeaderRules.passesToClient(lower: $0, value: $1, ownCookies: ours) }
        #expect(!passes("set-cookie", "__Host-menshen-session=x; Path=/"))
        #expect(!passes("set-cookie", " __HOST-menshen-SESSION =; Max-Age=0"))
        #expect(!passes("set-cookie", "__Host-menshen-session; Path=/"), "a name without a value")
        #expect(passes("set-cookie", "app=__Host-menshen-session; Path=/"))
        #expect(passes("set-cookie", "__Host-menshen-session2=x"))
        #expect(!passes("x-menshen-assertion", "eyJ") && !passes("x-menshen-user", "amy"))
        #expect(passes("x-menshen", "") && passes("content-type", "text/html") && passes("set-cookie2", "__Host-menshen-session=x"))
        #expect(HeaderRules.passesToClient(lower: "set-cookie", value: "__Host-menshen-session=x", ownCookies: []))
        #expect(!passes("set-cookie", "__Host-menshen-session=\u{200D}; Path=/; Secure; Max-Age=0"), "'=' then a joiner is still '='")
        #expect(!passes("set-cookie", "__Host-menshen-session\u{0301}=x".replacingOccurrences(of: "\u{0301}", with: "")))
    }
}

@Suite("Header look-up")
struct HeaderLookupTests {
    @Test("headerValues finds every value of a name whatever its case, in order, and nothing for names that only look alike")
    func headerValues() {
        let request = GateRequest(method: "GET", path: "/", rawTarget: "/", query: nil, host: "a", scheme: "http", clientAddress: nil,
                                  headers: [("Cookie", "a=1"), ("COOKIE", "b=2"), ("cookiE", "c=3"), ("Cookies", "x"), ("Cooki", "y"),
                                            ("X-Cookie", "z"), ("Accept", "text/html"), ("Cookie", "")],
                                  requestID: "r")
        #expect(request.headerValues("cookie") == ["a=1", "b=2", "c=3", ""])
        #expect(request.headerValues("Cookie") == ["a=1", "b=2", "c=3", ""])
        #expect(request.headerValues("accept") == ["text/html"])
        #expect(request.headerValues("cookies") == ["x"])
        #expect(request.headerValues("x-forwarded-for").isEmpty)
        // Letters only fold with letters: '@' (0x40) and '[' (0x5B) are not 'a'-1 or 'z'+1 in disguise.
        #expect(HeaderRules.name("@[", equalsLowercased: "`{") == false)
        #expect(HeaderRules.name("X-A", equalsLowercased: "x-a") && !HeaderRules.name("X-A", equalsLowercased: "x_a"))
        // Every ASCII byte against lowercased(): the same answer as comparing lower-cased copies.
        for byte in UInt8(0x21)...UInt8(0x7E) {
            let name = String(decoding: [UInt8(ascii: "k"), byte], as: UTF8.self)
            for other in UInt8(0x21)...UInt8(0x7E) {
                let lower = String(decoding: [UInt8(ascii: "k"), other], as: UTF8.self).lowercased()
                #expect(HeaderRules.name(name, equalsLowercased: lower) == (name.lowercased() == lower), "\(name) \(lower)")
            }
        }
    }

    @Test("HeaderRules.lowercased gives what lowercased() gives: every byte, long and mixed names, non-ASCII")
    func lowercasedNames() {
        var names = (UInt8(0)...UInt8(0x7F)).map { String(decoding: [UInt8(ascii: "x"), $0, UInt8(ascii: "Y")], as: UTF8.self) }
        names += ["", "host", "Host", "HOST", "x-forwarded-for", "X-Forwarded-For-And-Some-More-Letters", "content-length",
                  "Ä-Name", "x-ÉTÉ", "İstanbul", "\u{212A}elvin", "ß", "ǅ"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...40, using: &generator)
            names.append(String(decoding: (0..<n).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }, as: UTF8.self))
        }
        for name in names { #expect(HeaderRules.lowercased(name) == name.lowercased(), "\(name.debugDescription)") }
    }
}
