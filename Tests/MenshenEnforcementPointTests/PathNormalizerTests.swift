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
