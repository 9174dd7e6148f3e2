import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import MenshenCore
import MenshenEnforcementPoint
import NIOCore

/// The request context of the user-facing listener: it knows the peer address
/// (for throttling and events) and accepts small bodies only.
public struct PortalContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Forms and WebAuthn responses are small; anything bigger is refused (413).
    public var maxUploadSize: Int { 128 * 1024 }

    /// The peer's IP address as text ("" when unknown).
    var sourceAddress: String { remoteAddress?.ipAddress ?? "" }
}

/// Cookie names and attributes. `__Host-` binds a cookie to this exact origin
/// (no Domain, Path=/, Secure), so a sibling subdomain cannot plant one.
enum PortalCookies {
    static let session = "__Host-menshen-session"
    static let csrf = "__Host-menshen-csrf"

    /// Every cookie the platform sets, lower-case: the gateway keeps them from upstreams (``ProxyConfiguration/ownCookies``).
    static let all: Set<String> = Set([session, csrf, IdentityPortal.oidcBindingCookie].map { $0.lowercased() })

    static func set(_ name: String, _ value: String, maxAge: Int?) -> String {
        var c = "\(name)=\(value); Path=/; Secure; HttpOnly; SameSite=Lax"
        if let maxAge { c += "; Max-Age=\(maxAge)" }
        return c
    }

    static func clear(_ name: String) -> String { "\(name)=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0" }

    /// A cookie's value from the request's `Cookie` headers (first match), size-limited.
    static func value(_ name: String, in request: Request) -> String? {
        value(name, inHeaders: request.headers[values: .cookie])
    }

    /// A cookie's value from `Cookie` header values (first match); nil when absent or over 256 bytes.
    static func value(_ name: String, inHeaders headers: [String]) -> String? {
        // Pairs separated by `;`, each with optional spaces or tabs around it (RFC 6265 §5.4), read in place as bytes
        // (the gateway reads the session cookie on every request): the first pair named `name` answers.
        var name = name
        return name.withUTF8 { wanted -> String?? in
            for header in headers {
                var header = header
                let found: String?? = header.withUTF8 { bytes in
                    var start = 0
                    while start < bytes.count {
                        var end = start
                        while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
                        let (a, b) = HeaderRules.trimmed(bytes, start, end)
                        start = end + 1
                        guard b - a > wanted.count, bytes[a + wanted.count] == UInt8(ascii: "="),
                              wanted.isEmpty || memcmp(bytes.baseAddress! + a, wanted.baseAddress!, wanted.count) == 0 else { continue }
                        let v = UnsafeBufferPointer(rebasing: bytes[(a + wanted.count + 1)..<b])
                        return .some(v.count <= 256 ? String(decoding: v, as: UTF8.self) : nil)
                    }
                    return .none
                }
                if let found { return found }
            }
            return .none
        } ?? nil
    }
}

/// CSRF protection: a random `__Host-` cookie plus, in every form, the
/// HMAC-SHA256 of a fixed label keyed with that cookie. A cross-site page can
/// neither read the cookie nor compute the token. POSTs also must not carry a
/// foreign `Origin` or `Sec-Fetch-Site: cross-site`.
enum CSRF {
    static func token(forCookie cookie: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("menshen-csrf-v1".utf8), using: SymmetricKey(data: Data(cookie.utf8)))
        return Base64URL.encode(Array(mac))
    }

    /// The CSRF cookie of this request (``CSRFCookieMiddleware`` guarantees one).
    static func cookie(_ request: Request) -> String {
        PortalCookies.value(PortalCookies.csrf, in: request) ?? ""
    }

    static func isWellFormed(_ cookie: String) -> Bool { cookie.utf8.count == 43 && Base64URL.decode(cookie) != nil }

    static func check(_ request: Request, submitted: String?, publicOrigin: String) -> Bool {
        if let origin = request.headers[.origin], origin != publicOrigin { return false }
        if request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" { return false }
        guard let cookie = PortalCookies.value(PortalCookies.csrf, in: request), let submitted,
              submitted.utf8.count == 43 else { return false }
        let expected = Array(token(forCookie: cookie).utf8)
        let given = Array(submitted.utf8)
        var diff: UInt8 = 0
        for (a, b) in zip(expected, given) { diff |= a ^ b }
        return diff == 0 && expected.count == given.count
    }
}

/// Where a user may be sent back to after sign-in or step-up: a path on this
/// portal, or a URL on the portal's own origin, the enforcement point's origin,
/// or a protected application's host (https). Anything else (other hosts, `//host`, `\`, schemes
/// other than http(s), control characters, over 2 KiB) falls back to `/`.
enum ReturnURL {
    static func validate(_ raw: String?, publicOrigin: String, applicationHosts: Set<String>, trustedOrigins: Set<String> = []) -> String {
        guard let raw, !raw.isEmpty, raw.utf8.count <= 2048,
              !raw.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" })
        else { return "/" }
        if raw.hasPrefix("/") {
            return raw.hasPrefix("//") ? "/" : raw
        }
        guard let url = URLComponents(string: raw), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
              let host = url.host?.lowercased(), url.user == nil, url.password == nil
        else { return "/" }
        let origin = "\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")"
        if origin == publicOrigin.lowercased() || trustedOrigins.contains(origin) { return raw }
        if scheme == "https" && applicationHosts.contains(host) { return raw }
        return "/"
    }
}

/// Gives every request a CSRF cookie before its handler runs: when the browser
/// sent none (or a malformed one), a fresh random value is put into the
/// request's `Cookie` header and set on the response. A POST arriving without
/// the cookie therefore fails its CSRF check (nobody knows the fresh value).
struct CSRFCookieMiddleware: RouterMiddleware {
    typealias Context = PortalContext
    let random: any RandomSource

    func handle(_ request: Request, context: PortalContext,
                next: (Request, PortalContext) async throws -> Response) async throws -> Response {
        if let c = PortalCookies.value(PortalCookies.csrf, in: request), CSRF.isWellFormed(c) {
            return try await next(request, context)
        }
        let value = random.token()
        // The fresh value goes first, so it wins over a malformed one; other cookies stay.
        var head = request.head
        let existing = head.headerFields[values: .cookie]
        head.headerFields[.cookie] = nil
        head.headerFields.append(HTTPField(name: .cookie, value: "\(PortalCookies.csrf)=\(value)"))
        for line in existing { head.headerFields.append(HTTPField(name: .cookie, value: line)) }
        var response = try await next(Request(head: head, body: request.body), context)
        response.headers.append(HTTPField(name: .setCookie, value: PortalCookies.set(PortalCookies.csrf, value, maxAge: nil)))
        return response
    }
}

/// Gives every 401 of the portal a `WWW-Authenticate` challenge (RFC 9110 §11.6.1: a 401 must carry one) when its
/// handler set none: scheme `Menshen` (see ``GatewayPages/challenge(_:)``), with the portal's sign-in page.
struct ChallengeMiddleware: RouterMiddleware {
    typealias Context = PortalContext
    let signIn: String

    func handle(_ request: Request, context: PortalContext,
                next: (Request, PortalContext) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if response.status == .unauthorized, response.headers[.wwwAuthenticate] == nil {
            response.headers[.wwwAuthenticate] = GatewayPages.challenge([("realm", "menshen"), ("sign_in", signIn)])
        }
        return response
    }
}
