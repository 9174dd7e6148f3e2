import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import MenshenCore
import MenshenFederation
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenStorage
import Yams

/// The OpenID Connect providers file (`identity.oidc.providers_file`):
///
/// ```yaml
/// providers:
///   - id: partner-bank                       # 1–64 of a–z 0–9 - _
///     name: { zh-TW: 合作銀行, en: Partner bank }
///     issuer: https://login.partner.example   # exactly as the provider's discovery says
///     client_id: menshen
///     client_secret_env: MENSHEN_OIDC_PARTNER_BANK_SECRET   # the secret itself stays out of files
///     client_authentication: client_secret_basic             # or client_secret_post, none
///     scopes: [openid, profile, email]
///     signing_algorithms: [RS256, ES256]
///     user_kind: partner                      # internal, vendor or partner
///     max_loa: 3                              # the most this provider may assert
///     acr: { phr: 3, phrh: 4 }                # acr value → LoA (default: the EAP values)
///     groups: { claim: groups, map: { ops: branch-ops } }   # claim value → Menshen group
/// ```
public enum OIDCProvidersFile {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    struct File: Decodable { var providers: [Entry] }
    struct Entry: Decodable {
        var id: String
        var name: [String: String]?
        var issuer: String
        var client_id: String
        var client_secret_env: String?
        var client_authentication: String?
        var scopes: [String]?
        var signing_algorithms: [String]?
        var user_kind: String
        var max_loa: Int
        var acr: [String: Int]?
        var groups: GroupEntry?
        var allow_insecure_loopback: Bool?
    }
    struct GroupEntry: Decodable { var claim: String; var map: [String: String] }

    public static let maximumBytes = 256 * 1024

    /// Reads and checks the file; every problem names the file and the provider.
    public static func load(path: String, publicOrigin: String, environment: [String: String]) throws -> [OIDCProviderConfiguration] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Problem(description: "\(path): cannot read the file") }
        guard data.count <= maximumBytes else { throw Problem(description: "\(path): larger than \(maximumBytes) bytes") }
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: String(decoding: data, as: UTF8.self)) } catch {
            throw Problem(description: "\(path): \(error)")
        }
        var seen = Set<String>()
        return try file.providers.map { e in
            func fail(_ message: String) -> Problem { Problem(description: "\(path): provider \(e.id): \(message)") }
            guard e.id.range(of: "^[a-z0-9_-]{1,64}$", options: .regularExpression) != nil else { throw fail("id must be 1–64 of a–z 0–9 - _") }
            guard seen.insert(e.id).inserted else { throw fail("duplicate id") }
            guard let kind = OIDCProviderConfiguration.UserKind(rawValue: e.user_kind) else { throw fail("user_kind must be internal, vendor or partner") }
            guard let maxLoA = LevelOfAssurance(rawValue: e.max_loa) else { throw fail("max_loa must be 1–4") }
            var secret: String?
            if let name = e.client_secret_env {
                guard let value = environment[name], !value.isEmpty else { throw fail("environment variable \(name) (client secret) is not set") }
                secret = value
            }
            var auth: OIDCProviderConfiguration.ClientAuthentication?
            if let a = e.client_authentication {
                guard let parsed = OIDCProviderConfiguration.ClientAuthentication(rawValue: a) else {
                    throw fail("client_authentication must be client_secret_basic, client_secret_post or none")
                }
                auth = parsed
            }
            var acr = OIDCProviderConfiguration.eapACRLevels
            if let map = e.acr {
                acr = [:]
                for (value, level) in map {
                    guard let l = LevelOfAssurance(rawValue: level) else { throw fail("acr \(value): LoA must be 1–4") }
                    acr[value] = l
                }
            }
            let config = OIDCProviderConfiguration(
                id: e.id, displayNameZhTW: e.name?["zh-TW"] ?? e.id, displayNameEnglish: e.name?["en"] ?? e.id, issuer: e.issuer,
                clientID: e.client_id, clientSecret: secret, redirectURI: publicOrigin + "/signin/oidc/callback",
                scopes: e.scopes ?? ["openid", "profile", "email"], allowedSigningAlgorithms: e.signing_algorithms ?? ["RS256", "ES256"],
                groupMappings: e.groups.map { [.init(claim: $0.claim, groups: $0.map)] } ?? [], acrLevels: acr, userKind: kind,
                maximumLevelOfAssurance: maxLoA, tokenEndpointAuthentication: auth, allowsInsecureLoopback: e.allow_insecure_loopback ?? false)
            do { try config.validate() } catch { throw fail("\(error)") }
            return config
        }
    }
}

/// Sign-in through an OpenID Connect provider: the routes, and how a federated
/// identity becomes a local user and a session.
extension IdentityPortal {
    struct OIDCFlow: Codable {
        static let kind = "oidc"
        var pending: PendingAuthorization
        /// SHA-256 of the browser-binding cookie: the callback must come from the browser that started.
        var binding: String
        var ret: String
        /// Set when the flow is a step-up of an existing session, not a sign-in.
        var stepUp: StepUpFlow?
    }

    /// A step-up at the session's identity provider: which session asked, for what, and when (the provider's
    /// authentication must come after it).
    struct StepUpFlow: Codable {
        var sessionHash: String
        var loa: Int
        var startedAt: Date
        /// The step-up page's query (to go back to it when refused).
        var query: String
    }

    static let oidcBindingCookie = "__Host-menshen-oidc"

    func registerFederation(on router: Router<PortalContext>) {
        router.get("/signin/oidc/callback") { request, context in try await oidcCallback(request, context) }
        router.get("/signin/oidc/{idp}") { request, context in try await oidcStart(request, context) }
        router.get("/stepup/oidc") { request, context in try await oidcStepUpStart(request, context) }
    }

    /// The provider a federated session came from, when it is still configured.
    func sessionProvider(_ s: ActiveSession) -> OIDCProviderConfiguration? {
        guard s.attributes.idp != "local", let federation else { return nil }
        return federation.providers.first { $0.id == s.attributes.idp }
    }

    /// Step-up for a session that came from an identity provider: the user signs in there again (`prompt=login`,
    /// `max_age=0`, and the `acr` values that reach the level when the provider lists them), and the session is raised only when the provider authenticated the same account after the
    /// step-up started, at the level asked for (OpenID Connect Core §3.1.2.1, §2: `auth_time`).
    func oidcStepUpStart(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let req = try await requirement(request) else { return try await badRequest(request, context, reason: "bad step-up parameters") }
        guard let s = try await currentSession(request) else { return redirect("/signin\(q(request))") }
        guard let federation, let provider = sessionProvider(s) else {
            return try await badRequest(request, context, reason: "step-up at an identity provider for a session that did not come from one", session: s)
        }
        // Beyond what the provider may assert: the step-up page says so.
        guard req.loa <= provider.maximumLevelOfAssurance.rawValue else { return redirect("/stepup?\(req.query)&lang=\(lang(request).rawValue)") }
        let now = clock.now()
        let (url, pending): (URL, PendingAuthorization)
        do {
            guard let level = LevelOfAssurance(rawValue: req.loa) else { throw OIDCError(.invalidConfiguration, "no level \(req.loa)") }
            (url, pending) = try await federation.beginStepUp(idp: provider.id, level: level, returnURL: req.ret, now: now)
        } catch {
            try await identity.events.authentication(.other, user: s.user.id, userName: s.user.id.rawValue, success: false,
                                                     detail: "step-up: identity provider \(provider.id) unavailable: \(error)", source: context.sourceAddress,
                                                     sessionHash: s.idHash, idp: provider.id, other: .stepUp)
            let t = IdentityText(lang(request))
            return page(request, title: t.stepUpTitle, body: "<h1>\(t.stepUpTitle)</h1><p class=\"error\" role=\"alert\">\(t.idpUnavailable)</p>",
                        status: .badGateway, switchPath: "/stepup?" + req.query)
        }
        return try await sendToProvider(url, pending: pending, ret: req.ret, user: s.user.id, now: now,
                                        stepUp: StepUpFlow(sessionHash: s.idHash, loa: req.loa, startedAt: now, query: req.query))
    }

    /// Stores the flow's state (single use, 10 minutes), binds it to this browser with a `__Host-` cookie, and sends
    /// the browser to the provider: the start of a sign-in and of a step-up alike.
    func sendToProvider(_ url: URL, pending: PendingAuthorization, ret: String, user: UserID?, now: Date,
                        stepUp: StepUpFlow? = nil) async throws -> Response {
        let binding = random.token()
        let flow = OIDCFlow(pending: pending, binding: SecretHash.sha256Hex(binding), ret: ret, stepUp: stepUp)
        let json = String(decoding: try JSONEncoder().encode(flow), as: UTF8.self)
        try await store.createFlowState(FlowStateRecord(idHash: SecretHash.sha256Hex(pending.state), kind: OIDCFlow.kind, userID: user,
                                                        data: json, createdAt: now, expiresAt: now.addingTimeInterval(600)))
        return redirect(url.absoluteString, setCookies: [PortalCookies.set(Self.oidcBindingCookie, binding, maxAge: 600)])
    }

    /// The session grant a provider's verified identity gives (its `amr` values that are registered ones).
    static func grant(_ federated: FederatedIdentity, user: UserID, idp: String) -> SessionGrant {
        let amr = federated.amr.filter { AuthenticationMethodReference(rawValue: $0) != nil }
        return SessionGrant(userID: user, levelOfAssurance: federated.levelOfAssurance.rawValue, amr: amr,
                            aal: federated.authenticatorAssuranceLevel.rawValue,
                            phishingResistant: ["phr", "phrh"].contains(federated.acr ?? "") || amr.contains("hwk") || amr.contains("swk"),
                            idp: idp)
    }

    /// The callback of a step-up: the same session, the same account at the provider, authenticated after the step-up
    /// started, at the level asked for; then the session is raised (a new session id, as every step-up).
    func oidcStepUpFinish(_ request: Request, _ context: PortalContext, flow: OIDCFlow, step: StepUpFlow,
                          federated: FederatedIdentity, clear: String) async throws -> Response {
        let t = IdentityText(lang(request))
        let idp = flow.pending.providerID
        let s = try await currentSession(request)
        func refuse(_ detail: String, _ message: String) async throws -> Response {
            try await identity.events.authentication(.other, user: s?.user.id, userName: s?.user.id.rawValue ?? "", success: false,
                                                     detail: "step-up at \(idp) refused: \(detail)", source: context.sourceAddress,
                                                     sessionHash: s?.idHash, idp: idp, other: .stepUp)
            let body = """
                <h1>\(t.stepUpTitle)</h1><p class="error" role="alert" id="stepup-refused">\(HTMLPage.escape(message))</p>
                <p><a href="/stepup?\(HTMLPage.escape(step.query))&amp;lang=\(lang(request).rawValue)">\(t.stepUpAgain)</a></p>
                """
            return page(request, title: t.stepUpTitle, body: body, status: .unauthorized, switchPath: "/stepup?" + step.query, setCookies: [clear])
        }
        guard let s, s.idHash == step.sessionHash else { return try await refuse("not the session that started the step-up", t.federationFailed) }
        guard Self.localID(of: federated) == s.user.id else {
            return try await refuse("the provider authenticated another account (\(federated.subject))", t.stepUpOtherAccount)
        }
        // The provider may have ignored prompt=login and answered from its own session: only an authentication made after
        // the step-up started proves a fresh factor (a second of leeway for the providers' whole-second auth_time).
        guard let authTime = federated.authTime, authTime >= step.startedAt.addingTimeInterval(-1) else {
            return try await refuse("the provider did not authenticate the user again (auth_time \(federated.authTime.map { "\($0)" } ?? "missing"), step-up started \(step.startedAt))",
                                    t.stepUpNotFresh)
        }
        guard federated.levelOfAssurance.rawValue >= step.loa else {
            return try await refuse("LoA \(federated.levelOfAssurance.rawValue) from the provider, \(step.loa) asked", t.stepUpProviderWeak)
        }
        let grant = Self.grant(federated, user: s.user.id, idp: idp)
        let issued = try await sessions.elevate(s, with: grant)
        try await identity.events.authentication(.other, user: s.user.id, userName: s.user.id.rawValue, success: true,
                                                 detail: "step-up at \(idp) (acr \(federated.acr ?? "-"), LoA from \(federated.assuranceSource.rawValue))",
                                                 source: context.sourceAddress, factors: grant.amr, loa: grant.levelOfAssurance,
                                                 sessionHash: issued.record.idHash, idp: idp, other: .stepUp)
        return redirect(try await safeReturn(flow.ret), setCookies: [sessionCookie(issued), clear])
    }

    /// Buttons for the configured providers on the sign-in page.
    func providerButtons(_ request: Request, ret: String) -> String {
        guard let federation, !federation.providers.isEmpty else { return "" }
        let t = IdentityText(lang(request))
        let encodedReturn = ret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "%2F"
        let links = federation.providers.map { p in
            "<li><a class=\"idp\" id=\"idp-\(HTMLPage.escape(p.id))\" href=\"/signin/oidc/\(HTMLPage.escape(p.id))?return=\(encodedReturn)&lang=\(lang(request).rawValue)\">"
                + "\(t.signInWith) \(HTMLPage.escape(p.displayName(forLanguage: lang(request).rawValue)))</a></li>"
        }.joined()
        return "<section><p>\(t.orFederated)</p><ul>\(links)</ul></section>"
    }

    func oidcStart(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let federation, let idp = context.parameters.get("idp"), federation.providers.contains(where: { $0.id == idp }) else {
            return try await badRequest(request, context, reason: "unknown identity provider")
        }
        let ret = try await safeReturn(request.uri.queryParameters.get("return"))
        let now = clock.now()
        let (url, pending): (URL, PendingAuthorization)
        do { (url, pending) = try await federation.beginSignIn(idp: idp, returnURL: ret, now: now) } catch {
            try await identity.events.authentication(.logon, user: nil, userName: "", success: false,
                                                     detail: "identity provider \(idp) unavailable: \(error)", source: context.sourceAddress, idp: idp)
            let t = IdentityText(lang(request))
            return page(request, title: t.signInTitle, body: "<h1>\(t.signInTitle)</h1><p class=\"error\" role=\"alert\">\(t.idpUnavailable)</p>",
                        status: .badGateway, switchPath: "/signin")
        }
        return try await sendToProvider(url, pending: pending, ret: ret, user: nil, now: now)
    }

    func oidcCallback(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        let clear = PortalCookies.clear(Self.oidcBindingCookie)
        func refuse(_ detail: String, idp: String = "unknown") async throws -> Response {
            try await identity.events.authentication(.logon, user: nil, userName: "", success: false, detail: "federated sign-in refused: \(detail)",
                                                     source: context.sourceAddress, idp: idp)
            return renderSignIn(request, message: t.federationFailed, status: .unauthorized, ret: "/", setCookies: [clear])
        }
        let query = request.uri.query ?? ""
        guard let federation, query.utf8.count <= 8192, let state = request.uri.queryParameters.get("state"), state.utf8.count <= 512,
              let record = try await store.takeFlowState(idHash: SecretHash.sha256Hex(state), kind: OIDCFlow.kind, at: clock.now()),
              let flow = try? JSONDecoder().decode(OIDCFlow.self, from: Data(record.data.utf8))
        else { return try await refuse("unknown, used or expired state") }
        let idp = flow.pending.providerID
        guard let binding = PortalCookies.value(Self.oidcBindingCookie, in: request), SecretHash.sha256Hex(binding) == flow.binding else {
            return try await refuse("the callback did not come from the browser that started the sign-in", idp: idp)
        }
        let federated: FederatedIdentity
        do { federated = try await federation.completeSignIn(pending: flow.pending, callbackQuery: query, now: clock.now()) } catch {
            return try await refuse("\(error)", idp: idp)
        }
        if let step = flow.stepUp {
            return try await oidcStepUpFinish(request, context, flow: flow, step: step, federated: federated, clear: clear)
        }
        guard let user = try await provision(federated) else { return try await refuse("the local account is disabled", idp: idp) }
        let grant = Self.grant(federated, user: user.id, idp: idp)
        let issued = try await sessions.issue(grant)
        try await identity.events.authentication(.logon, user: user.id, userName: user.id.rawValue, success: true,
                                                 detail: "signed in through \(idp) (acr \(federated.acr ?? "-"), LoA from \(federated.assuranceSource.rawValue))",
                                                 source: context.sourceAddress, factors: grant.amr, loa: grant.levelOfAssurance,
                                                 sessionHash: issued.record.idHash, idp: idp)
        return redirect(try await safeReturn(flow.ret), setCookies: [sessionCookie(issued), clear])
    }

    /// The local account of a federated identity, created on first sign-in
    /// (id `SUBJECT@PROVIDER` when that is a valid id, else a hash of issuer and
    /// subject). Mapped groups that exist locally are added. Nil when disabled.
    func provision(_ f: FederatedIdentity) async throws -> UserRecord? {
        let id = Self.localID(of: f)
        let now = clock.now()
        let kind = UserKind(rawValue: f.userKind.rawValue) ?? .partner
        if var existing = try await store.user(id) {
            if existing.disabled { return nil }
            let name = f.name ?? existing.displayName
            if name != existing.displayName || (f.email ?? existing.email) != existing.email {
                existing.displayName = String(name.prefix(200)); existing.email = f.email ?? existing.email; existing.updatedAt = now
                try await store.updateUser(existing)
            }
            try await addGroups(f.groups, to: id)
            return existing
        }
        let user = UserRecord(id: id, displayName: String((f.name ?? f.email ?? f.subject).prefix(200)), email: f.email, kind: kind, createdAt: now)
        try await store.createUser(user)
        try await addGroups(f.groups, to: id)
        try await identity.events.accountChange(.create, user: id, actor: "idp:\(f.providerID)", detail: "created on first federated sign-in")
        return user
    }

    /// The local account id of a federated identity (see ``provision(_:)``).
    static func localID(of f: FederatedIdentity) -> UserID {
        let candidate = "\(f.subject)@\(f.providerID)"
        return UserID(IdentifierSyntax.isValid(candidate) && candidate.count <= 128
                      ? candidate : "oidc-\(SecretHash.sha256Hex(f.issuer + "\u{0}" + f.subject).prefix(24))@\(f.providerID)")
    }

    private func addGroups(_ groups: [String], to user: UserID) async throws {
        let known = Set(try await store.listGroups().map(\.id.rawValue))
        for g in groups where known.contains(g) { try await store.addMember(user, to: GroupID(g)) }
    }
}
