import Foundation
import MenshenCore
import MenshenEnforcementPoint

/// Forward-auth for proxies an institution already runs: the proxy asks the
/// gateway about each request and forwards it only on 200. The same decision
/// as the reverse proxy (``PolicyGate``), on the original request the caller
/// describes:
///
/// | Endpoint | Caller | Original request from |
/// |---|---|---|
/// | `/.menshen/auth/nginx` | nginx `auth_request` | `X-Original-URL` (absolute), `X-Original-Method` |
/// | `/.menshen/auth/traefik` | Traefik `forwardAuth` | `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` |
/// | `/.menshen/auth/envoy/…` | Envoy `ext_authz` (HTTP) | the path after the prefix, `Host`, the method |
///
/// Answers: 200 with the identity headers (`X-Menshen-User`, `-Groups`,
/// `-Roles`, `-LoA`, `-AMR`, `-Assertion`) for the caller to copy upstream, and
/// the request's cookies without the platform's own (``PortalCookies/all``: a
/// bearer token for every application must not reach one) — nginx:
/// `X-Menshen-Upstream-Cookie` (empty when nothing is left), Traefik: `Cookie`
/// (absent then, so `authResponseHeaders` removes the client's), Envoy: `cookie`,
/// or `x-envoy-auth-headers-to-remove: cookie`, which also names
/// `x-menshen-assertion` when no assertion was signed; 401 with
/// `Location` (sign-in or step-up) — nginx turns it into a redirect with
/// `error_page 401`, while Traefik and Envoy pass the browser the 302 itself;
/// 403 on deny, with the deny page or problem+json. Only callers in
/// ``PolicyGate/forwardAuthCallers`` are believed (default loopback): anyone
/// else could describe any request. The caller must overwrite, not append,
/// the identity headers it forwards.
enum ForwardAuth {
    static let pathPrefix = "/.menshen/auth/"

    enum Caller: String, Sendable { case nginx, traefik, envoy }

    struct Refusal: Error { let why: String }

    /// The original request a caller describes, or a reason to refuse.
    static func originalRequest(_ r: GateRequest) -> Result<(Caller, GateRequest), Refusal> {
        // The endpoint is chosen on the target as sent: `/.menshen/auth/envoy/../traefik` must not become another endpoint.
        let rawPath = r.rawTarget.utf8.firstIndex(of: UInt8(ascii: "?")).map { r.rawTarget[..<$0] } ?? r.rawTarget[...]
        guard rawPath == r.path else { return .failure(Refusal(why: "the forward-auth target must be in normal form")) }
        let rest = String(r.path.dropFirst(pathPrefix.count))
        let caller: Caller, method: String, scheme: String, host: String, target: String
        if rest == "nginx" {
            guard let url = single(r, "x-original-url") else { return .failure(Refusal(why: "X-Original-URL missing or repeated")) }
            guard let (s, h, t) = splitAbsolute(url) else { return .failure(Refusal(why: "X-Original-URL is not an absolute http(s) URL")) }
            // No default method: a missing one must not be decided as a harmless GET.
            guard let m = single(r, "x-original-method") else { return .failure(Refusal(why: "X-Original-Method missing or repeated")) }
            caller = .nginx; scheme = s; host = h; target = t; method = m
        } else if rest == "traefik" {
            guard let m = single(r, "x-forwarded-method"), let s = single(r, "x-forwarded-proto"),
                  let h = single(r, "x-forwarded-host"), let u = single(r, "x-forwarded-uri")
            else { return .failure(Refusal(why: "X-Forwarded-Method, -Proto, -Host and -Uri are each required once")) }
            caller = .traefik; method = m; scheme = s.lowercased(); host = h; target = u
        } else if rest == "envoy" || rest.hasPrefix("envoy/") {
            // The Host field as Envoy sent it: the request's own host has lost an absolute name's trailing dot, which
            // Envoy (unless told to strip it) routes on.
            caller = .envoy; method = r.method; scheme = single(r, "x-forwarded-proto")?.lowercased() ?? r.scheme
            host = single(r, "host") ?? r.host
            let afterPrefix = String(r.rawTarget.dropFirst((pathPrefix + "envoy").count))
            target = afterPrefix.isEmpty ? "/" : afterPrefix
        } else {
            return .failure(Refusal(why: "unknown forward-auth endpoint (use nginx, traefik or envoy)"))
        }
        guard scheme == "http" || scheme == "https" else { return .failure(Refusal(why: "the original scheme must be http or https")) }
        guard method.utf8.count <= 32, !method.isEmpty, HeaderRules.isToken(method) else {
            return .failure(Refusal(why: "the original method is not an HTTP method token"))
        }
        guard isAuthority(host) else {
            return .failure(Refusal(why: "the original host is not valid"))
        }
        // The same normalisation as the reverse proxy: what the policy sees is what the application is asked.
        let normalized: PathNormalizer.Normalized
        switch PathNormalizer.normalize(target) {
        case .success(let n): normalized = n
        case .failure(let why): return .failure(Refusal(why: "the original request target is refused (\(why))"))
        }
        // The proxy in front forwards the target as sent, so the decision must be about exactly that
        // target: one that normalises to something else (dot segments, encoded dots…) is refused.
        guard normalized.target == target else {
            return .failure(Refusal(why: "the original request target is not in normal form (it would be decided as \(normalized.path))"))
        }
        let headers = r.headers.filter { !Self.describing.contains(HeaderRules.lowercased($0.0)) }
        // The client's address: the caller's X-Forwarded-For (its last hop) is believed only from a trusted caller.
        // nginx must set it (`proxy_set_header X-Forwarded-For $remote_addr;`), or the client's own value would arrive.
        // Without a usable one the call is refused: deciding as the caller's own address — trusted, usually internal —
        // would put every client in the proxy's network zone.
        guard let client = r.headerValues("x-forwarded-for").last?.split(separator: ",", omittingEmptySubsequences: false).last
                .map(Self.trimmingWhitespace),
              CIDR.isAddress(client)
        else {
            return .failure(Refusal(why: "X-Forwarded-For must end with the client's address (one IP address, no port): the proxy sets it"))
        }
        let original = GateRequest(method: method, path: normalized.path, rawTarget: target, query: normalized.query, host: host,
                                   scheme: scheme, clientAddress: client, headers: headers, requestID: r.requestID,
                                   upgrade: Self.upgrade(in: r))
        return .success((caller, original))
    }

    /// The protocol the original request asks to switch to, as far as the call shows it. `Upgrade` is hop-by-hop, so
    /// nginx, Traefik and Envoy drop it from the authorization call; a WebSocket handshake's `Sec-WebSocket-Key` and
    /// `Sec-WebSocket-Version` are end-to-end and arrive (Envoy: when listed in `allowed_headers`). Either counts as
    /// a WebSocket, so a `read_only` route refuses it as the reverse proxy does — a WebSocket carries writes both ways.
    static func upgrade(in r: GateRequest) -> String? {
        if let u = r.headerValues("upgrade").first.map({ Self.trimmingWhitespace($0[...]) }), !u.isEmpty {
            return String(u.lowercased().prefix(64))
        }
        return r.headerValues("sec-websocket-key").isEmpty && r.headerValues("sec-websocket-version").isEmpty ? nil : "websocket"
    }

    /// `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port. Read as bytes
    /// (every forward-auth call checks one): what it accepts is ASCII, and `GatewayParsingTests` holds it to the
    /// character-based reading it replaced.
    static func isAuthority(_ a: String) -> Bool {
        let bytes = a.utf8
        guard !bytes.isEmpty, bytes.count <= 261 else { return false }
        var host = bytes[...], port: Substring.UTF8View?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !inside.isEmpty, inside.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else { return false }
            let rest = bytes[bytes.index(after: close)...]
            if !rest.isEmpty { guard rest.first == UInt8(ascii: ":") else { return false }; port = Substring(rest.dropFirst()).utf8 }
            host = "x".utf8[...]
        } else if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            host = bytes[..<colon]
            port = Substring(bytes[bytes.index(after: colon)...]).utf8
        }
        if let port {
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  Int(Substring(port))! <= 65535 else { return false }
        }
        return !host.isEmpty && host.count <= 253
            && host.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x2e }
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
            || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }

    /// `text` without leading and trailing whitespace as Foundation's `CharacterSet.whitespaces` has it (Unicode
    /// space separators and tab). A text that starts and ends with an ASCII byte other than space and tab — every
    /// well-formed value — is returned as it is without asking Foundation, whose trim costs microseconds.
    static func trimmingWhitespace(_ text: Substring) -> String {
        let bytes = text.utf8
        if let first = bytes.first, let last = bytes.last, first < 0x80, last < 0x80,
           first != UInt8(ascii: " "), first != UInt8(ascii: "\t"), last != UInt8(ascii: " "), last != UInt8(ascii: "\t") {
            return String(text)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// Fields that describe the original request to the endpoint; not passed on as the request's own.
    static let describing: Set<String> = ["x-original-url", "x-original-method", "x-forwarded-method", "x-forwarded-proto",
                                          "x-forwarded-host", "x-forwarded-uri", "host"]

    static func single(_ r: GateRequest, _ name: String) -> String? {
        let values = r.headerValues(name)
        return values.count == 1 ? values[0] : nil
    }

    /// `scheme://authority/target` → (scheme, authority, target).
    /// Read as bytes (every nginx call has one), not with Foundation's substring search; `GatewayParsingTests`
    /// holds it to the reading it replaced.
    static func splitAbsolute(_ url: String) -> (String, String, String)? {
        let bytes = url.utf8
        var i = bytes.startIndex
        var sep: String.Index?
        while i < bytes.endIndex {
            if bytes[i] == UInt8(ascii: ":") {
                let slash1 = bytes.index(after: i)
                if slash1 < bytes.endIndex, bytes[slash1] == UInt8(ascii: "/") {
                    let slash2 = bytes.index(after: slash1)
                    if slash2 < bytes.endIndex, bytes[slash2] == UInt8(ascii: "/") { sep = i; break }
                }
            }
            i = bytes.index(after: i)
        }
        guard let sep else { return nil }
        let scheme = url[..<sep].lowercased()
        let rest = url[bytes.index(sep, offsetBy: 3)...]
        let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty, !authority.utf8.contains(UInt8(ascii: "@")) else { return nil }
        let target = slash == rest.endIndex ? "/" : String(rest[slash...])
        return (scheme, authority, target)
    }

    /// The request id of a forward-auth answer that is not an allow (the id in the decision event and on Menshen's own pages).
    static let requestIDHeader = "X-Menshen-Request-Id"

    /// The header that carries the request's cookies, without the platform's own, to nginx (`auth_request_set`).
    static let upstreamCookieHeader = "X-Menshen-Upstream-Cookie"

    /// The request's `Cookie` values as one line without the platform's own cookies; nil when none is left.
    static func upstreamCookie(_ original: GateRequest) -> String? {
        HeaderRules.upstreamCookieLine(original.headerValues("cookie"), ownCookies: PortalCookies.all)
    }

    /// The gate's verdict in forward-auth terms, for the original request.
    static func answer(_ verdict: GateVerdict, caller: Caller, original: GateRequest) -> GateVerdict {
        switch verdict {
        case .forward(_, let headers):
            var out = headers + [("Cache-Control", "no-store")]
            let cookie = upstreamCookie(original)
            switch caller {
            case .nginx:
                out.append((upstreamCookieHeader, cookie ?? ""))
            case .traefik:
                if let cookie { out.append(("Cookie", cookie)) }
            case .envoy:
                if let cookie { out.append(("cookie", cookie)) }
                var remove = cookie == nil ? ["cookie"] : []
                if !headers.contains(where: { $0.0.lowercased() == IdentityAssertionSigner.header.lowercased() }) {
                    remove.append(IdentityAssertionSigner.header.lowercased())
                }
                if !remove.isEmpty { out.append(("x-envoy-auth-headers-to-remove", remove.joined(separator: ","))) }
            }
            return .respond(status: 200, headers: out, body: [])
        case .respond(let status, var headers, let body):
            // The decision event's request id, also as a field: nginx keeps only the status of this answer (not the
            // page that shows the id), and its own 401/403 can show the field (`auth_request_set`).
            headers.append((requestIDHeader, original.requestID))
            let location = headers.first { $0.0.lowercased() == "location" }?.1
            if status == 302, let location {
                // nginx only understands 200, 401 and 403; the others can pass a redirect through.
                if caller == .nginx {
                    return .respond(status: 401, headers: [("Location", location), ("Cache-Control", "no-store"), (requestIDHeader, original.requestID),
                                                           ("WWW-Authenticate", GatewayPages.challenge([("realm", "menshen"), ("sign_in", location)]))],
                                    body: [])
                }
                return .respond(status: status, headers: headers, body: body)
            }
            if status == 401 || status == 403 { return .respond(status: status, headers: headers, body: body) }
            // Access paused while decisions cannot be written: Traefik and Envoy pass a 503 on ("try again"), nginx
            // understands only 401 and 403.
            if status == 503 && caller != .nginx { return .respond(status: status, headers: headers, body: body) }
            // Unknown application (404) and anything else: a deny the caller understands.
            return .respond(status: 403, headers: headers, body: body)
        }
    }
}

extension PolicyGate {
    enum ForwardAuthCall { case answered(GateVerdict), decide(ForwardAuth.Caller, GateRequest) }

    /// Who calls and what about: refusals (an untrusted caller, a malformed call) are recorded and answered here.
    func forwardAuthCall(_ request: GateRequest) -> ForwardAuthCall {
        guard let address = request.clientAddress, forwardAuthCallers.contains(where: { $0.contains(address) }) else {
            recorder?.record(DecisionTrail(requestID: request.requestID, time: clock.now(), mode: .forwardAuth("untrusted"),
                                           method: request.method, host: request.host, path: request.path,
                                           sourceIP: request.clientAddress ?? "", outcome: .refused,
                                           detail: "caller not in the trusted forward-auth networks"))
            return .answered(GatewayPages.problem(403, title: "Forbidden", detail: "This address may not use forward-auth.", request: request))
        }
        switch ForwardAuth.originalRequest(request) {
        case .failure(let refusal):
            let why = refusal.why
            recorder?.record(DecisionTrail(requestID: request.requestID, time: clock.now(), mode: .forwardAuth("invalid"),
                                           method: request.method, host: request.host, path: request.path,
                                           sourceIP: address, outcome: .refused, detail: why))
            return .answered(GatewayPages.problem(400, title: "Bad forward-auth request", detail: why, request: request))
        case .success(let (caller, original)):
            return .decide(caller, original)
        }
    }

    func forwardAuth(_ request: GateRequest) async -> GateVerdict {
        switch forwardAuthCall(request) {
        case .answered(let verdict): return verdict
        case .decide(let caller, let original):
            return ForwardAuth.answer(await decide(original, mode: .forwardAuth(caller.rawValue)), caller: caller, original: original)
        }
    }

    /// ``forwardAuth(_:)`` when it can be answered without waiting (see ``PolicyGate/decideImmediately(_:)``).
    func forwardAuthImmediately(_ request: GateRequest) -> GateVerdict? {
        switch forwardAuthCall(request) {
        case .answered(let verdict): return verdict
        case .decide(let caller, let original):
            return decideImmediately(original, mode: .forwardAuth(caller.rawValue)).map { ForwardAuth.answer($0, caller: caller, original: original) }
        }
    }
}
