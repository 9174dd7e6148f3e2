import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenServer
import Testing

/// Forward-auth, in process: the same decision as the reverse proxy for the
/// request an nginx, Traefik or Envoy caller describes. (The real nginx
/// `auth_request` journey is e2e/test_forward_auth_nginx.py.)
@Suite("Forward-auth")
struct ForwardAuthTests {
    typealias World = PolicyGateTests.World

    /// A call as the proxy makes it; `forwardedFor` is the client's address it adds (unless `headers` have one).
    static func call(_ w: World, _ path: String, method: String = "GET", from caller: String = "127.0.0.1",
                     host: String = "gateway.internal", forwardedFor: String? = "203.0.113.7", headers: [(String, String)]) async -> GateVerdict {
        let added = headers.contains { $0.0.lowercased() == "x-forwarded-for" } ? [] : forwardedFor.map { [("X-Forwarded-For", $0)] } ?? []
        return await w.gate.decide(GateRequest(method: method, path: path.split(separator: "?").first.map(String.init) ?? path, rawTarget: path,
                                               query: nil, host: host, scheme: "http", clientAddress: caller, headers: headers + added,
                                               requestID: "fa-1"))
    }

    static func header(_ v: GateVerdict, _ name: String) -> String? {
        switch v {
        case .respond(_, let h, _), .forward(_, let h): h.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    @Test("nginx auth_request: 200 with identity headers, 401 with the sign-in or step-up location, 403 on deny or unknown application")
    func nginx() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        let cookie = ("Cookie", "__Host-menshen-session=\(token)")
        func ask(_ url: String, _ method: String = "GET", cookie c: (String, String)? = nil) async -> GateVerdict {
            await Self.call(w, "/.menshen/auth/nginx", headers: [("X-Original-URL", url), ("X-Original-Method", method), ("Accept", "text/html")]
                            + (c.map { [$0] } ?? []))
        }
        #expect(PolicyGateTests.status(await ask("http://apps.bank.example:8443/page", cookie: cookie)) == 200, "a port in the authority")
        #expect(PolicyGateTests.status(await ask("http://apps.bank.example:99999/page", cookie: cookie)) == 400)
        #expect(PolicyGateTests.status(await ask("http://apps bank/page", cookie: cookie)) == 400)
        let allowed = await ask("https://apps.bank.example/page?x=1", cookie: cookie)
        #expect(PolicyGateTests.status(allowed) == 200)
        #expect(Self.header(allowed, "X-Menshen-User") == "amy" && Self.header(allowed, "X-Menshen-Groups") == "staff")

        let anonymous = await ask("https://apps.bank.example/page?x=1")
        #expect(PolicyGateTests.status(anonymous) == 401, "nginx only understands 200, 401 and 403")
        #expect(Self.header(anonymous, "Location") == "https://portal.bank.example/signin?return=https%3A%2F%2Fapps.bank.example%2Fpage%3Fx%3D1")

        let write = await ask("https://apps.bank.example/edit", "POST", cookie: cookie)
        #expect(PolicyGateTests.status(write) == 401 && Self.header(write, "Location")?.contains("/stepup?loa=3&max_age=60") == true)
        let denied = await ask("https://apps.bank.example/reports/q3", "DELETE", cookie: cookie)
        #expect(PolicyGateTests.status(denied) == 403)
        // nginx keeps only the status: the decision event's request id travels as a field its page can show.
        #expect(Self.header(denied, "X-Menshen-Request-Id")?.isEmpty == false)
        #expect(Self.header(anonymous, "X-Menshen-Request-Id")?.isEmpty == false)
        #expect(Self.header(allowed, "X-Menshen-Request-Id") == nil, "an allow does not carry it to the application")
        #expect(PolicyGateTests.status(await ask("https://other.example/", cookie: cookie)) == 403)

        // nginx forwards the target as sent, so only a target already in normal form is decided: a dot
        // segment (plain or encoded) would be decided as one path and reach the application as another.
        #expect(PolicyGateTests.status(await ask("https://apps.bank.example/reports/%2e%2e/db/query", cookie: cookie)) == 400)
        #expect(PolicyGateTests.status(await ask("https://apps.bank.example/reports/../page", cookie: cookie)) == 400)
        #expect(PolicyGateTests.status(await ask("https://apps.bank.example/reports/q3", cookie: cookie)) == 200)
        #expect(PolicyGateTests.status(await ask("https://apps.bank.example/reports%2f..%2fdb/query", cookie: cookie)) == 400)
        // Revocation is seen on the next call.
        try await w.sessions.revoke(idHash: SessionManager.hash(token: token), reason: "test")
        #expect(PolicyGateTests.status(await ask("https://apps.bank.example/page", cookie: cookie)) == 401)
    }

    @Test("Traefik and Envoy: same decisions; a browser gets the sign-in redirect itself (they pass non-2xx answers through)")
    func traefikAndEnvoy() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        let traefik: [(String, String)] = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Proto", "https"),
                                           ("X-Forwarded-Host", "apps.bank.example"), ("X-Forwarded-Uri", "/page"), ("Accept", "text/html")]
        let ok = await Self.call(w, "/.menshen/auth/traefik", headers: traefik + [("Cookie", "__Host-menshen-session=\(token)")])
        #expect(PolicyGateTests.status(ok) == 200 && Self.header(ok, "X-Menshen-User") == "amy")
        let anonymous = await Self.call(w, "/.menshen/auth/traefik", headers: traefik)
        #expect(PolicyGateTests.status(anonymous) == 302 && Self.header(anonymous, "Location")?.hasPrefix("https://portal.bank.example/signin?return=") == true)
        let api = await Self.call(w, "/.menshen/auth/traefik", headers: traefik.filter { $0.0 != "Accept" })
        #expect(PolicyGateTests.status(api) == 401)

        let envoy = await Self.call(w, "/.menshen/auth/envoy/reports/q3", method: "DELETE", host: "apps.bank.example",
                                    headers: [("Cookie", "__Host-menshen-session=\(token)")])
        #expect(PolicyGateTests.status(envoy) == 403, "read_only refuses DELETE through Envoy too")
        let envoyRead = await Self.call(w, "/.menshen/auth/envoy/reports/q3", host: "apps.bank.example",
                                        headers: [("Cookie", "__Host-menshen-session=\(token)")])
        #expect(PolicyGateTests.status(envoyRead) == 200)

        // An absolute name (trailing dot) is decided as the caller describes it: Envoy (unless told to strip it) and
        // Traefik route on it as sent, possibly to another backend, so it matches no application here — refused,
        // never decided under apps.bank.example's policy. Envoy's own Host field counts, not the request's host,
        // from which the proxy's conversion has taken the dot (the control: the same call with the plain name).
        let session = ("Cookie", "__Host-menshen-session=\(token)")
        let dottedEnvoy = await Self.call(w, "/.menshen/auth/envoy/reports/q3", host: "apps.bank.example",
                                          headers: [("Host", "apps.bank.example."), session])
        #expect(PolicyGateTests.status(dottedEnvoy) == 403 && Self.header(dottedEnvoy, "X-Menshen-User") == nil)
        let plainEnvoy = await Self.call(w, "/.menshen/auth/envoy/reports/q3", host: "apps.bank.example",
                                         headers: [("Host", "apps.bank.example"), session])
        #expect(PolicyGateTests.status(plainEnvoy) == 200)
        let dottedTraefik = traefik.map { $0.0 == "X-Forwarded-Host" ? ($0.0, "apps.bank.example.") : $0 }
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: dottedTraefik + [session])) == 403)

        // A WebSocket handshake on the read_only route: `Upgrade` is hop-by-hop and does not reach the call, the
        // handshake's Sec-WebSocket-* fields do — refused like a WebSocket through the reverse proxy.
        let cookie = ("Cookie", "__Host-menshen-session=\(token)")
        let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), version = ("Sec-WebSocket-Version", "13")
        let envoySocket = await Self.call(w, "/.menshen/auth/envoy/reports/live", host: "apps.bank.example", headers: [cookie, key, version])
        #expect(PolicyGateTests.status(envoySocket) == 403, "a WebSocket on a read_only route through Envoy")
        let reports = traefik.map { $0.0 == "X-Forwarded-Uri" ? ($0.0, "/reports/live") : $0 }
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: reports + [cookie, version])) == 403)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: reports + [cookie, ("Upgrade", "websocket")])) == 403)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: reports + [cookie])) == 200)
        // Elsewhere a WebSocket is decided like any GET.
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: traefik + [cookie, key, version])) == 200)
    }

    @Test("fail-closed audit: an allowed call while decisions cannot be written gets 403 from nginx's endpoint, 503 from Traefik's and Envoy's")
    func auditPaused() async throws {
        let w = try await World(whenUnwritten: .refuse, grace: .zero)
        let token = try await w.session(loa: 1)
        let cookie = ("Cookie", "__Host-menshen-session=\(token)")
        let nginx: [(String, String)] = [("X-Original-URL", "https://apps.bank.example/page"), ("X-Original-Method", "GET"), cookie]
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: nginx)) == 200, "nothing waiting yet")
        // That decision now waits, and with no grace the store has taken no write since: access is paused.
        #expect(!w.decisions.admitsAccess)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: nginx)) == 403)
        let traefik: [(String, String)] = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "apps.bank.example"),
                                           ("X-Forwarded-Uri", "/page"), cookie]
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: traefik)) == 503)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/envoy/page", host: "apps.bank.example", headers: [cookie])) == 503)
        await w.decisions.flush()
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: traefik)) == 200, "written: access again")
    }

    @Test("only trusted callers are believed; incomplete descriptions get 400; every call is recorded")
    func refusals() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        let headers = [("X-Original-URL", "https://apps.bank.example/page"), ("X-Original-Method", "GET"), ("Cookie", "__Host-menshen-session=\(token)")]
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", from: "203.0.113.9", headers: headers)) == 403)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", from: "::1", headers: headers)) == 200)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: [])) == 400)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: headers + [headers[0]])) == 400, "a repeated X-Original-URL")
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: [("X-Original-URL", "ftp://apps.bank.example/")])) == 400)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: [("X-Original-URL", "https://apps.bank.example/"),
                                                                                           ("X-Original-Method", "GE T")])) == 400)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/traefik", headers: [("X-Forwarded-Host", "apps.bank.example")])) == 400)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/other", headers: headers)) == 400)
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: headers.filter { $0.0 != "X-Original-Method" })) == 400,
                "no default method: a POST must not be decided as a GET")
        // Endpoint switching through dot segments in the endpoint path itself.
        let traefikHeaders = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "apps.bank.example"),
                              ("X-Forwarded-Uri", "/page"), ("Cookie", "__Host-menshen-session=\(token)")]
        #expect(PolicyGateTests.status(await w.gate.decide(GateRequest(method: "GET", path: "/.menshen/auth/traefik",
                                                                       rawTarget: "/.menshen/auth/envoy/../traefik", query: nil, host: "apps.bank.example",
                                                                       scheme: "http", clientAddress: "127.0.0.1", headers: traefikHeaders,
                                                                       requestID: "fa-2"))) == 400)

        let events = try await PolicyGateTests.decisionEvents(w)
        let modes = events.compactMap { (($0["unmapped"] as? [String: Any])?["decision"] as? [String: Any])?["mode"] as? String }
        #expect(modes.filter { $0 == "forward-auth:untrusted" }.count == 1)
        #expect(modes.filter { $0 == "forward-auth:invalid" }.count == 8)
        #expect(modes.filter { $0 == "forward-auth:nginx" }.count == 1)
    }

    @Test("the client address is the caller's X-Forwarded-For when its last entry is one address; otherwise the call is refused, never decided as the caller's own")
    func clientAddress() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        let base = [("X-Original-URL", "https://apps.bank.example/page"), ("X-Original-Method", "GET"), ("Cookie", "__Host-menshen-session=\(token)")]
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: base + [("X-Forwarded-For", "10.9.9.9, 198.51.100.23")])) == 200)
        for bad in ["10.0.0.0/8", "not-an-address", "198.51.100.23:51234", "198.51.100.23, ", ""] {
            #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", headers: base + [("X-Forwarded-For", bad)])) == 400, "\(bad)")
        }
        #expect(PolicyGateTests.status(await Self.call(w, "/.menshen/auth/nginx", forwardedFor: nil, headers: base)) == 400, "none")
        let events = try await PolicyGateTests.decisionEvents(w)
        let contexts = events.compactMap { (($0["unmapped"] as? [String: Any])?["decision"] as? [String: Any]) }
        #expect(contexts.compactMap { ($0["context"] as? [String: Any])?["source_ip"] as? String } == ["198.51.100.23"])
        #expect(contexts.dropFirst().allSatisfy { $0["mode"] as? String == "forward-auth:invalid" } && contexts.count == 7, "\(contexts)")
    }

    @Test("the platform's cookies never reach the application through the caller: each caller gets the cookie line to forward without them")
    func upstreamCookie() async throws {
        let w = try await World()
        let token = try await w.session(loa: 1)
        let session = "__Host-menshen-session=\(token)"
        let nginx = [("X-Original-URL", "https://apps.bank.example/page"), ("X-Original-Method", "GET")]
        let traefik = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "apps.bank.example"),
                       ("X-Forwarded-Uri", "/page")]
        func ask(_ endpoint: String, _ describing: [(String, String)], _ cookies: [String]) async -> GateVerdict {
            await Self.call(w, endpoint, host: "apps.bank.example", headers: describing + cookies.map { ("Cookie", $0) })
        }
        let mixed = ["theme=dark; \(session)", "__Host-menshen-csrf=c; lang=zh-TW"]
        let n = await ask("/.menshen/auth/nginx", nginx, mixed)
        #expect(PolicyGateTests.status(n) == 200 && Self.header(n, "X-Menshen-Upstream-Cookie") == "theme=dark; lang=zh-TW")
        let nOnly = await ask("/.menshen/auth/nginx", nginx, [session])
        #expect(PolicyGateTests.status(nOnly) == 200 && Self.header(nOnly, "X-Menshen-Upstream-Cookie") == "", "empty: nginx then removes Cookie")
        let t = await ask("/.menshen/auth/traefik", traefik, mixed)
        #expect(PolicyGateTests.status(t) == 200 && Self.header(t, "Cookie") == "theme=dark; lang=zh-TW")
        let tOnly = await ask("/.menshen/auth/traefik", traefik, [session])
        #expect(PolicyGateTests.status(tOnly) == 200 && Self.header(tOnly, "Cookie") == nil, "absent: authResponseHeaders then removes the client's")
        let e = await ask("/.menshen/auth/envoy/page", [], mixed)
        #expect(PolicyGateTests.status(e) == 200 && Self.header(e, "cookie") == "theme=dark; lang=zh-TW")
        // This gate signs no assertion: Envoy must not pass one a client sent.
        #expect(Self.header(e, "x-envoy-auth-headers-to-remove") == "x-menshen-assertion")
        let eOnly = await ask("/.menshen/auth/envoy/page", [], [session])
        #expect(Self.header(eOnly, "cookie") == nil && Self.header(eOnly, "x-envoy-auth-headers-to-remove") == "cookie,x-menshen-assertion")
        for v in [n, nOnly, t, tOnly, e, eOnly] {
            guard case .respond(_, let headers, _) = v else { continue }
            #expect(!headers.contains { $0.1.contains(token) }, "the session token in an answer header")
        }
    }
}
