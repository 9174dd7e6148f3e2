import Foundation
import HTTPTypes
import Hummingbird
import MenshenCore
import MenshenFederation
import MenshenIdentity
import MenshenPolicyAdministrator
import MenshenStorage
import NIOCore

/// What the sign-in, account, enrolment and step-up pages need.
public struct IdentityPortal: Sendable {
    public let store: any MenshenStore
    public let identity: IdentityService
    public let sessions: SessionManager
    public let clock: any WallClock
    public let random: any RandomSource
    /// `scheme://host[:port]` of the portal (from `server.public_url`).
    public let publicOrigin: String
    /// Changing sign-in methods needs an authentication at most this old (seconds).
    public let freshFactorForChanges: TimeInterval
    /// The OpenID Connect relying party, when providers are configured.
    public let federation: OIDCRelyingParty?
    /// Other origins (lower-case `scheme://host[:port]`) users may return to, e.g. the enforcement point's.
    public let trustedReturnOrigins: Set<String>
    /// The protected applications users may be sent back to after sign-in and
    /// see listed: the gateway's current routes when it runs in this process
    /// (store and routes file), otherwise the store's applications.
    public var applicationCatalog: (@Sendable () async throws -> [ApplicationRecord])?
    /// Username-less passkey ceremonies started per source address and minute: each is stored until it expires, and
    /// starting one needs no account (``WindowLimiter``; beyond it, 429 with `Retry-After`).
    public let ceremonyStarts = WindowLimiter(perMinute: IdentityPortal.ceremonyStartsPerMinute)
    public static let ceremonyStartsPerMinute = 120

    public init(store: any MenshenStore, identity: IdentityService, sessions: SessionManager, clock: any WallClock,
                random: any RandomSource, publicOrigin: String, freshFactorForChanges: TimeInterval = 600,
                federation: OIDCRelyingParty? = nil, trustedReturnOrigins: Set<String> = []) {
        self.store = store; self.identity = identity; self.sessions = sessions; self.clock = clock; self.random = random
        self.publicOrigin = publicOrigin; self.freshFactorForChanges = freshFactorForChanges; self.federation = federation
        self.trustedReturnOrigins = trustedReturnOrigins
    }

    // MARK: Forms

    struct SignInForm: Decodable { var user: String?; var password: String?; var csrf: String?; var ret: String? }
    struct CodeForm: Decodable { var pending: String?; var code: String?; var csrf: String?; var ret: String? }
    struct CeremonyStartForm: Decodable { var csrf: String?; var pending: String?; var ret: String? }
    struct CeremonyFinishForm: Decodable { var csrf: String?; var handle: String?; var credential: String?; var label: String?; var ret: String? }
    struct PasswordForm: Decodable { var csrf: String?; var password: String? }
    struct CSRFOnly: Decodable { var csrf: String?; var id: String? }
    struct StepUpCodeForm: Decodable { var csrf: String?; var code: String?; var ret: String? }

    /// Adds every route to `router`.
    public func register(on router: Router<PortalContext>) {
        router.add(middleware: CSRFCookieMiddleware(random: random))
        router.add(middleware: ChallengeMiddleware(signIn: publicOrigin + "/signin"))
        router.get("/static/webauthn.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=300",
                                            .xContentTypeOptions: "nosniff"],
                     body: .init(byteBuffer: ByteBuffer(string: WebAuthnScript.source)))
        }
        router.get("/signin") { request, context in try await signInPage(request, context) }
        router.post("/signin") { request, context in try await signInPost(request, context) }
        router.post("/signin/totp") { request, context in try await secondFactorPost(request, context, totp: true) }
        router.post("/signin/recovery") { request, context in try await secondFactorPost(request, context, totp: false) }
        router.post("/signin/passkey/options") { request, context in try await passkeyOptions(request, context) }
        router.post("/signin/passkey") { request, context in try await passkeyFinish(request, context) }
        router.post("/signout") { request, context in try await signOut(request, context) }
        router.get("/account") { request, context in try await accountPage(request, context, notice: nil) }
        router.post("/account/password") { request, context in try await passwordPost(request, context) }
        router.get("/account/totp") { request, context in try await totpBegin(request, context) }
        router.post("/account/totp") { request, context in try await totpConfirm(request, context) }
        router.post("/account/passkey/options") { request, context in try await registrationOptions(request, context) }
        router.post("/account/passkey") { request, context in try await registrationFinish(request, context) }
        router.post("/account/passkeys/remove") { request, context in try await removePasskey(request, context) }
        router.post("/account/recovery-codes") { request, context in try await recoveryCodes(request, context) }
        router.post("/account/finish") { request, context in try await finishEnrolment(request, context) }
        router.post("/account/privileged") { request, context in try await privilegedWork(request, context, start: true) }
        router.post("/account/privileged/end") { request, context in try await privilegedWork(request, context, start: false) }
        router.get("/stepup") { request, context in try await stepUpPage(request, context, message: nil) }
        router.post("/stepup/totp") { request, context in try await stepUpTOTP(request, context) }
        router.post("/stepup/passkey/options") { request, context in try await stepUpOptions(request, context) }
        router.post("/stepup/passkey") { request, context in try await stepUpFinish(request, context) }
        router.get("/enrol/{token}") { request, context in try await enrolPage(request, context) }
        registerFederation(on: router)
        router.post("/enrol/{token}") { request, context in try await enrolStart(request, context) }
    }

    // MARK: Helpers

    func lang(_ request: Request) -> UILanguage { PortalServer.language(request) }
    func q(_ request: Request) -> String { "?lang=\(lang(request).rawValue)" }

    func page(_ request: Request, title: String, body: String, status: HTTPResponse.Status = .ok, script: Bool = false,
              switchPath: String, setCookies: [String] = [], headers: HTTPFields = [:]) -> Response {
        var extra = headers
        for c in setCookies { extra.append(HTTPField(name: .setCookie, value: c)) }
        return HTMLPage.render(title: title, language: lang(request), body: body, status: status, switchPath: switchPath,
                               csrfToken: CSRF.token(forCookie: CSRF.cookie(request)), script: script, extraHeaders: extra)
    }

    func csrfField(_ request: Request) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(CSRF.token(forCookie: CSRF.cookie(request)))\">"
    }

    func redirect(_ location: String, setCookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        for c in setCookies { headers.append(HTTPField(name: .setCookie, value: c)) }
        return Response(status: .seeOther, headers: headers)
    }

    func json(_ object: [String: Any], status: HTTPResponse.Status = .ok, setCookies: [String] = []) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: status.code >= 400 ? "application/problem+json" : "application/json",
                                   .cacheControl: "no-store", .xContentTypeOptions: "nosniff"]
        for c in setCookies { headers.append(HTTPField(name: .setCookie, value: c)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        json(["type": "about:blank", "title": status.reasonPhrase, "status": status.code, "detail": detail, "message": detail], status: status)
    }

    /// A clear 400 page; nothing was changed. Recorded as an event.
    func badRequest(_ request: Request, _ context: PortalContext, reason: String, session: ActiveSession? = nil) async throws -> Response {
        let t = IdentityText(lang(request))
        try await identity.events.authentication(.other, user: session?.user.id, userName: session?.user.id.rawValue ?? "", success: false,
                                                 detail: "bad request on \(request.uri.path): \(reason)", source: context.sourceAddress,
                                                 other: .badRequest)
        return page(request, title: t.badRequestTitle, body: "<h1>\(t.badRequestTitle)</h1><p class=\"error\">\(t.badRequest)</p>",
                    status: .badRequest, switchPath: "/")
    }

    /// The form, or nil when it does not parse. A body over the limit is a 413.
    func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: PortalContext) async throws -> T? {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: context.maxUploadSize) } catch {
            try await identity.events.authentication(.other, user: nil, userName: "", success: false,
                                                     detail: "bad request on \(request.uri.path): body over \(context.maxUploadSize) bytes",
                                                     source: context.sourceAddress, other: .badRequest)
            throw HTTPError(.contentTooLarge, message: "The request body is larger than \(context.maxUploadSize) bytes.")
        }
        let text = String(buffer: buffer)
        return try? URLEncodedFormDecoder().decode(type, from: text)
    }

    func currentSession(_ request: Request, purpose: SessionPurpose? = .access) async throws -> ActiveSession? {
        guard let token = PortalCookies.value(PortalCookies.session, in: request) else { return nil }
        return try await sessions.resolve(token: token, purpose: purpose)
    }

    func applicationHosts() async throws -> Set<String> {
        Set(try await applications().map { $0.host.lowercased() })
    }

    public func applications() async throws -> [ApplicationRecord] {
        if let applicationCatalog { return try await applicationCatalog() }
        return try await store.listApplications()
    }

    func safeReturn(_ raw: String?) async throws -> String {
        ReturnURL.validate(raw, publicOrigin: publicOrigin, applicationHosts: try await applicationHosts(),
                           trustedOrigins: trustedReturnOrigins)
    }

    func sessionCookie(_ issued: IssuedSession) -> String {
        PortalCookies.set(PortalCookies.session, issued.token, maxAge: nil)
    }

    // MARK: Sign-in

    func signInPage(_ request: Request, _ context: PortalContext) async throws -> Response {
        let ret = try await safeReturn(request.uri.queryParameters.get("return"))
        if try await currentSession(request) != nil {
            // Signed in, and sent here again from an application on another host name: its gateway never receives the
            // session cookie (a `__Host-` cookie goes only to this host), so redirecting back would loop for ever.
            if let host = Self.hostOutOfCookieReach(ret, publicOrigin: publicOrigin) { return renderOtherHost(request, host: host) }
            return redirect(ret)
        }
        return renderSignIn(request, message: nil, status: .ok, ret: ret)
    }

    /// The host of an absolute return URL that is not the portal's host name (ports do not matter to cookies), or nil.
    static func hostOutOfCookieReach(_ ret: String, publicOrigin: String) -> String? {
        guard !ret.hasPrefix("/"), let host = URLComponents(string: ret)?.host?.lowercased(),
              let portal = URLComponents(string: publicOrigin)?.host?.lowercased(), host != portal else { return nil }
        return host
    }

    func renderOtherHost(_ request: Request, host: String) -> Response {
        let t = IdentityText(lang(request))
        let body = """
            <h1>\(t.otherHostTitle)</h1>
            <p>\(t.otherHostIntro) <code>\(HTMLPage.escape(host))</code></p>
            <p>\(t.otherHostAdvice)</p>
            <p><a href="/\(q(request))">\(t.goToPortal)</a></p>
            """
        return page(request, title: t.otherHostTitle, body: body, status: .ok, switchPath: "/signin")
    }

    func renderSignIn(_ request: Request, message: String?, status: HTTPResponse.Status, ret: String, setCookies: [String] = []) -> Response {
        let t = IdentityText(lang(request))
        let body = """
            <h1>\(t.signInTitle)</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(HTMLPage.escape($0))</p>" } ?? "")
            <form method="post" action="/signin\(q(request))">
            \(csrfField(request))<input type="hidden" name="ret" value="\(HTMLPage.escape(ret))">
            <label for="user">\(t.userName)</label><input type="text" id="user" name="user" autocomplete="username webauthn" required maxlength="128">
            <label for="password">\(t.password)</label><input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024">
            <button type="submit" id="signin-submit">\(t.signIn)</button>
            </form>
            <section><p>\(t.orPasskey)</p>
            <button type="button" id="passkey-signin" data-ceremony="get" data-options="/signin/passkey/options" data-finish="/signin/passkey"
              data-return="\(HTMLPage.escape(ret))" data-working="\(t.working)" data-failed="\(t.ceremonyFailed)" hidden>\(t.passkeySignIn)</button>
            <p id="ceremony-status" role="status" aria-live="polite"></p></section>
            \(providerButtons(request, ret: ret))
            """
        return page(request, title: t.signInTitle, body: body, status: status, script: true, switchPath: "/signin", setCookies: setCookies)
    }

    func signInPost(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let form = try await decode(SignInForm.self, request, context), let user = form.user, let password = form.password,
              user.utf8.count <= 256, password.utf8.count <= 4096
        else { return try await badRequest(request, context, reason: "malformed sign-in form") }
        guard CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin) else {
            return try await badRequest(request, context, reason: "CSRF check failed")
        }
        let ret = try await safeReturn(form.ret)
        return try await outcome(try await identity.signIn(userName: user, password: password, source: context.sourceAddress),
                                 request: request, ret: ret, text: t)
    }

    func outcome(_ outcome: SignInOutcome, request: Request, ret: String, text t: IdentityText) async throws -> Response {
        switch outcome {
        case .signedIn(let issued, _):
            return redirect(ret, setCookies: [sessionCookie(issued)])
        case .failed:
            return renderSignIn(request, message: t.failed, status: .unauthorized, ret: ret)
        case .throttled(let wait):
            var response = renderSignIn(request, message: t.throttled, status: .tooManyRequests, ret: ret)
            response.headers[.retryAfter] = String(Int(wait.rounded(.up)))
            return response
        case .secondFactorRequired(let pending, let methods):
            return secondFactorPage(request, pending: pending, methods: methods, ret: ret, message: nil)
        }
    }

    func secondFactorPage(_ request: Request, pending: String, methods: [SecondFactor], ret: String, message: String?) -> Response {
        let t = IdentityText(lang(request))
        var sections = ""
        if methods.contains(.passkey) {
            sections += """
                <section><h2>\(t.usePasskey)</h2>
                <button type="button" id="passkey-second" data-ceremony="get" data-options="/signin/passkey/options" data-finish="/signin/passkey"
                  data-pending="\(HTMLPage.escape(pending))" data-return="\(HTMLPage.escape(ret))" data-working="\(t.working)"
                  data-failed="\(t.ceremonyFailed)" hidden>\(t.usePasskey)</button>
                <p id="ceremony-status" role="status" aria-live="polite"></p></section>
                """
        }
        if methods.contains(.totp) {
            sections += """
                <section><h2>\(t.authenticatorApp)</h2><form method="post" action="/signin/totp\(q(request))">\(csrfField(request))
                <input type="hidden" name="pending" value="\(HTMLPage.escape(pending))"><input type="hidden" name="ret" value="\(HTMLPage.escape(ret))">
                <label for="code">\(t.totpCode)</label><input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required>
                <button type="submit">\(t.verify)</button></form></section>
                """
        }
        if methods.contains(.recoveryCode) {
            sections += """
                <section><h2>\(t.recoveryCode)</h2><form method="post" action="/signin/recovery\(q(request))">\(csrfField(request))
                <input type="hidden" name="pending" value="\(HTMLPage.escape(pending))"><input type="hidden" name="ret" value="\(HTMLPage.escape(ret))">
                <label for="recovery">\(t.recoveryCode)</label><input type="text" id="recovery" name="code" autocomplete="off" maxlength="20" required>
                <button type="submit" class="secondary">\(t.useRecovery)</button></form></section>
                """
        }
        let body = """
            <h1>\(t.secondFactorTitle)</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(HTMLPage.escape($0))</p>" } ?? "<p>\(t.secondFactorIntro)</p>")
            \(sections)
            """
        return page(request, title: t.secondFactorTitle, body: body, status: message == nil ? .ok : .unauthorized,
                    script: methods.contains(.passkey), switchPath: "/signin")
    }

    func secondFactorPost(_ request: Request, _ context: PortalContext, totp: Bool) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let form = try await decode(CodeForm.self, request, context), let pending = form.pending, let code = form.code,
              pending.utf8.count <= 64, code.utf8.count <= 32
        else { return try await badRequest(request, context, reason: "malformed second-factor form") }
        guard CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin) else {
            return try await badRequest(request, context, reason: "CSRF check failed")
        }
        let ret = try await safeReturn(form.ret)
        let result = totp
            ? try await identity.continueWithTOTP(pendingToken: pending, code: code, source: context.sourceAddress)
            : try await identity.continueWithRecoveryCode(pendingToken: pending, code: code, source: context.sourceAddress)
        if case .secondFactorRequired(let p, let methods) = result {
            return secondFactorPage(request, pending: p, methods: methods, ret: ret, message: t.failed)
        }
        return try await outcome(result, request: request, ret: ret, text: t)
    }

    func passkeyOptions(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let form = try await decode(CeremonyStartForm.self, request, context) else { return problem(.badRequest, "malformed form") }
        guard CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin) else { return problem(.forbidden, "CSRF check failed") }
        let pending = (form.pending ?? "").isEmpty ? nil : form.pending
        // (A second factor's ceremony takes the pending sign-in's state for its own: only username-less ones add state.)
        if pending == nil, let wait = ceremonyStarts.admit(context.sourceAddress, at: clock.now()) {
            var response = problem(.tooManyRequests, IdentityText(lang(request)).throttled)
            response.headers[.retryAfter] = String(wait)
            return response
        }
        guard let options = try await identity.beginPasskey(pendingToken: pending) else {
            return problem(.unauthorized, IdentityText(lang(request)).failed)
        }
        return try ceremonyJSON(options)
    }

    func ceremonyJSON(_ options: CeremonyOptions) throws -> Response {
        let publicKey = try JSONSerialization.jsonObject(with: Data(options.optionsJSON.utf8))
        return json(["handle": options.handle, "publicKey": publicKey])
    }

    func passkeyFinish(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let form = try await decode(CeremonyFinishForm.self, request, context), let handle = form.handle, let credential = form.credential
        else { return problem(.badRequest, "malformed form") }
        guard CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin) else { return problem(.forbidden, "CSRF check failed") }
        let ret = try await safeReturn(form.ret)
        switch try await identity.finishPasskey(handle: handle, response: credential, source: context.sourceAddress) {
        case .signedIn(let issued, _): return json(["redirect": ret], setCookies: [sessionCookie(issued)])
        case .throttled: return problem(.tooManyRequests, t.throttled)
        case .failed, .secondFactorRequired: return problem(.unauthorized, t.ceremonyFailed)
        }
    }

    func signOut(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let form = try await decode(CSRFOnly.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "sign-out without a valid CSRF token") }
        if let session = try await currentSession(request, purpose: nil) {
            try await sessions.revoke(idHash: session.idHash, reason: "signed out")
            try await identity.events.authentication(.logoff, user: session.user.id, userName: session.user.id.rawValue, success: true,
                                                     detail: "signed out", source: context.sourceAddress, sessionHash: session.idHash)
        }
        return redirect("/signin\(q(request))", setCookies: [PortalCookies.clear(PortalCookies.session)])
    }

    // MARK: Account

    /// The session for account pages: an access session, or an enrolment session.
    func accountSession(_ request: Request) async throws -> ActiveSession? {
        try await currentSession(request, purpose: nil)
    }

    /// Changes need an enrolment session or a recent authentication.
    func mayChange(_ s: ActiveSession) -> Bool {
        s.attributes.purpose == .enrolment || s.authenticationAge(at: clock.now()) <= freshFactorForChanges
    }

    func needFreshFactor(_ request: Request, _ s: ActiveSession) -> Response {
        redirect("/stepup?loa=\(s.record.levelOfAssurance)&max_age=\(Int(freshFactorForChanges))&return=%2Faccount&lang=\(lang(request).rawValue)")
    }

    func accountPage(_ request: Request, _ context: PortalContext, notice: String?, extra: String = "") async throws -> Response {
        let t = IdentityText(lang(request))
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount&lang=\(lang(request).rawValue)") }
        let f = try await identity.factorSummary(of: s.user.id)
        let passkeys = f.passkeys.isEmpty ? "<p>\(t.noPasskeys)</p>" : "<ul>" + f.passkeys.map { p in
            let used = p.lastUsedAt.map { ISO8601DateFormatter().string(from: $0) } ?? t.never
            return """
                <li><strong>\(HTMLPage.escape(p.label))</strong> — \(t.lastUsed): \(used)\(p.cloneWarning ? " <span class=\"error\">\(t.cloneWarning)</span>" : "")
                <form method="post" action="/account/passkeys/remove\(q(request))">\(csrfField(request))<input type="hidden" name="id" value="\(HTMLPage.escape(p.id))">
                <button type="submit" class="secondary">\(t.remove)</button></form></li>
                """
        }.joined() + "</ul>"
        let enrolment = s.attributes.purpose == .enrolment
        let body = """
            <h1>\(t.accountTitle)</h1>
            \(enrolment ? "<p class=\"note\">\(t.enrolmentSession)</p>" : "")
            \(notice.map { "<p class=\"ok\" role=\"status\">\(HTMLPage.escape($0))</p>" } ?? "")
            \(extra)
            <p>\(t.signedInAs): <strong id="account-user">\(HTMLPage.escape(s.user.id.rawValue))</strong> (\(HTMLPage.escape(s.user.displayName)))</p>
            <p>\(t.assurance): <strong id="account-loa">LoA \(s.record.levelOfAssurance)</strong> · amr: <code id="account-amr">\(HTMLPage.escape(s.record.amr.joined(separator: " ")))</code></p>
            \(try await privilegeSection(request, s, t))
            <section><h2>\(t.password)</h2><form method="post" action="/account/password\(q(request))">\(csrfField(request))
            <label for="new-password">\(t.newPassword)</label><input type="password" id="new-password" name="password" autocomplete="new-password" required maxlength="1024">
            <button type="submit">\(t.setPassword)</button></form></section>
            <section><h2>\(t.passkeys)</h2>\(passkeys)
            <label for="passkey-label">\(t.passkeyLabel)</label><input type="text" id="passkey-label" maxlength="64">
            <button type="button" id="passkey-register" data-ceremony="create" data-options="/account/passkey/options" data-finish="/account/passkey"
              data-working="\(t.working)" data-failed="\(t.ceremonyFailed)" hidden>\(t.addPasskey)</button>
            <p id="ceremony-status" role="status" aria-live="polite"></p></section>
            <section><h2>\(t.authenticatorApp)</h2><p>\(f.totpCount > 0 ? t.totpEnrolled : "")</p>
            <p><a href="/account/totp\(q(request))">\(t.enrolTOTP)</a></p></section>
            <section><h2>\(t.recoveryCodes)</h2><p>\(t.recoveryRemaining): <span id="recovery-remaining">\(f.recoveryCodesRemaining)</span></p>
            <form method="post" action="/account/recovery-codes\(q(request))">\(csrfField(request))<button type="submit" class="secondary">\(t.regenerateRecovery)</button></form></section>
            \(enrolment
                ? "<form method=\"post\" action=\"/account/finish\(q(request))\">\(csrfField(request))<button type=\"submit\" id=\"finish-enrolment\">\(t.finishEnrolment)</button></form>"
                : "<form method=\"post\" action=\"/signout\(q(request))\">\(csrfField(request))<button type=\"submit\" id=\"sign-out\" class=\"secondary\">\(t.signOut)</button></form>")
            """
        return page(request, title: t.accountTitle, body: body, script: true, switchPath: "/account")
    }

    /// Active roles, and the switch between ordinary and privileged work (principle 4.1).
    func privilegeSection(_ request: Request, _ s: ActiveSession, _ t: IdentityText) async throws -> String {
        guard s.attributes.purpose == .access else { return "" }
        let roles = s.attributes.activeRoles.isEmpty ? "—" : s.attributes.activeRoles.map(HTMLPage.escape).joined(separator: ", ")
        var html = "<p>\(t.activeRoles): <code id=\"account-roles\">\(roles)</code>\(s.attributes.privileged ? " <strong>(\(t.privilegedMode))</strong>" : "")</p>"
        if s.attributes.privileged {
            html += "<form method=\"post\" action=\"/account/privileged/end\(q(request))\">\(csrfField(request))<button type=\"submit\" id=\"privileged-end\" class=\"secondary\">\(t.endPrivileged)</button></form>"
        } else if try await !sessions.roles(of: s.user.id).privileged.isEmpty {
            html += "<form method=\"post\" action=\"/account/privileged\(q(request))\">\(csrfField(request))<button type=\"submit\" id=\"privileged-start\">\(t.startPrivileged)</button></form>"
        }
        return html
    }

    func privilegedWork(_ request: Request, _ context: PortalContext, start: Bool) async throws -> Response {
        guard let s = try await currentSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard let form = try await decode(CSRFOnly.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed privileged-work form", session: s) }
        if !start {
            guard let issued = try await identity.endPrivilegedWork(s, source: context.sourceAddress) else { return redirect("/account\(q(request))") }
            return redirect("/account\(q(request))", setCookies: [sessionCookie(issued)])
        }
        switch try await identity.startPrivilegedWork(s, source: context.sourceAddress) {
        case .success(let issued):
            return redirect("/account\(q(request))", setCookies: [sessionCookie(issued)])
        case .failure(.needsStepUp(let loa, let maxAge)):
            return redirect("/stepup?loa=\(loa)&max_age=\(maxAge)&return=%2Faccount&lang=\(lang(request).rawValue)")
        case .failure(.noPrivilegedRole):
            return redirect("/account\(q(request))")
        }
    }

    func passwordPost(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard let form = try await decode(PasswordForm.self, request, context), let password = form.password, password.utf8.count <= 4096,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed password form", session: s) }
        guard mayChange(s) else { return needFreshFactor(request, s) }
        let problems = try await identity.setPassword(user: s.user, password: password, actor: s.user.id.rawValue)
        if problems.isEmpty { return try await accountPage(request, context, notice: t.passwordSaved) }
        let messages = problems.map { p -> String in
            switch p {
            case .tooShort: t.passwordProblemShort
            case .tooLong: t.passwordProblemLong
            case .commonPassword: t.passwordProblemCommon
            case .containsUserName: t.passwordProblemName
            }
        }
        var r = try await accountPage(request, context, notice: nil,
                                      extra: "<div class=\"error\" role=\"alert\">" + messages.map(HTMLPage.escape).joined(separator: "<br>") + "</div>")
        r.status = HTTPResponse.Status(code: 422, reasonPhrase: "Unprocessable Content")
        return r
    }

    func totpBegin(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard mayChange(s) else { return needFreshFactor(request, s) }
        let pending = try await identity.beginTOTPEnrolment(user: s.user)
        return try totpPage(request, handle: pending.handle, enrollment: pending.enrollment, message: nil)
    }

    func totpPage(_ request: Request, handle: String, enrollment: TOTPEnrollment, message: String?) throws -> Response {
        let t = IdentityText(lang(request))
        let svg = try enrollment.qrCode().svg()
        let body = """
            <h1>\(t.enrolTOTP)</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(HTMLPage.escape($0))</p>" } ?? "")
            <p>\(t.totpScan)</p><div class="qr" role="img" aria-label="QR code">\(svg)</div>
            <p>\(t.totpManual) <code id="totp-secret">\(HTMLPage.escape(enrollment.secret.base32))</code></p>
            <form method="post" action="/account/totp\(q(request))">\(csrfField(request))<input type="hidden" name="pending" value="\(HTMLPage.escape(handle))">
            <label for="code">\(t.totpCode)</label><input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required>
            <button type="submit">\(t.verify)</button></form>
            """
        return page(request, title: t.enrolTOTP, body: body, status: message == nil ? .ok : HTTPResponse.Status(code: 422, reasonPhrase: "Unprocessable Content"), switchPath: "/account/totp")
    }

    func totpConfirm(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard let form = try await decode(CodeForm.self, request, context), let handle = form.pending, let code = form.code,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed TOTP form", session: s) }
        guard mayChange(s) else { return needFreshFactor(request, s) }
        if try await identity.confirmTOTPEnrolment(user: s.user, handle: handle, code: code, actor: s.user.id.rawValue) {
            return try await accountPage(request, context, notice: t.totpEnrolled)
        }
        return try await accountPage(request, context, notice: nil, extra: "<p class=\"error\" role=\"alert\">\(t.totpWrong)</p>")
    }

    func registrationOptions(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let s = try await accountSession(request) else { return problem(.unauthorized, IdentityText(lang(request)).signInAgain) }
        guard let form = try await decode(CeremonyStartForm.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return problem(.forbidden, "CSRF check failed") }
        guard mayChange(s) else { return problem(.forbidden, IdentityText(lang(request)).changesNeedFreshFactor) }
        return try ceremonyJSON(try await identity.beginPasskeyRegistration(user: s.user))
    }

    func registrationFinish(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let s = try await accountSession(request) else { return problem(.unauthorized, t.signInAgain) }
        guard let form = try await decode(CeremonyFinishForm.self, request, context), let handle = form.handle, let credential = form.credential,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return problem(.badRequest, "malformed form") }
        switch try await identity.finishPasskeyRegistration(user: s.user, handle: handle, response: credential, label: form.label ?? "",
                                                            actor: s.user.id.rawValue) {
        case .success: return json(["redirect": "/account?lang=\(lang(request).rawValue)&added=1"])
        case .failure(let failure): return problem(.badRequest, "\(t.ceremonyFailed) (\(failure))")
        }
    }

    func removePasskey(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard let form = try await decode(CSRFOnly.self, request, context), let id = form.id, id.utf8.count <= 1400,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed passkey removal", session: s) }
        guard mayChange(s) else { return needFreshFactor(request, s) }
        _ = try await identity.removePasskey(user: s.user.id, id: id, actor: s.user.id.rawValue)
        return redirect("/account\(q(request))")
    }

    func recoveryCodes(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let s = try await accountSession(request) else { return redirect("/signin?return=%2Faccount") }
        guard let form = try await decode(CSRFOnly.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed recovery-code form", session: s) }
        guard mayChange(s) else { return needFreshFactor(request, s) }
        let codes = try await identity.regenerateRecoveryCodes(user: s.user.id, actor: s.user.id.rawValue)
        let list = "<ul class=\"codes\" id=\"recovery-codes\">" + codes.map { "<li>\($0)</li>" }.joined() + "</ul>"
        return try await accountPage(request, context, notice: nil, extra: "<section><h2>\(t.recoveryCodes)</h2><p>\(t.recoveryShown)</p>\(list)</section>")
    }

    func finishEnrolment(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let s = try await currentSession(request, purpose: .enrolment) else { return redirect("/signin\(q(request))") }
        guard let form = try await decode(CSRFOnly.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed enrolment form", session: s) }
        try await sessions.revoke(idHash: s.idHash, reason: "enrolment finished")
        return redirect("/signin\(q(request))", setCookies: [PortalCookies.clear(PortalCookies.session)])
    }

    // MARK: Enrolment links

    func enrolmentRecord(_ token: String) async throws -> EnrolmentTokenRecord? {
        guard token.utf8.count <= 128, Base64URL.decode(token) != nil,
              let record = try await store.enrolmentToken(hash: SecretHash.sha256Hex(token)),
              record.usedAt == nil, clock.now() < record.expiresAt
        else { return nil }
        return record
    }

    func enrolInvalid(_ request: Request, _ token: String) -> Response {
        let p = PortalText(lang(request))
        return page(request, title: p.enrolInvalidTitle, body: "<h1>\(p.enrolInvalidTitle)</h1><p>\(p.enrolInvalid)</p>", status: .notFound,
                    switchPath: "/enrol/\(token.utf8.count <= 128 ? token : "")")
    }

    func enrolPage(_ request: Request, _ context: PortalContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        guard let record = try await enrolmentRecord(token) else { return enrolInvalid(request, token) }
        let p = PortalText(lang(request))
        let t = IdentityText(lang(request))
        let expires = ISO8601DateFormatter().string(from: record.expiresAt)
        let body = """
            <h1>\(p.enrolTitle)</h1>
            <p>\(p.enrolFor) <strong>\(HTMLPage.escape(record.userID.rawValue))</strong></p>
            <p>\(p.enrolExpires) <time datetime="\(expires)">\(expires)</time></p>
            <p class="note">\(p.enrolNext)</p>
            <form method="post" action="/enrol/\(HTMLPage.escape(token))\(q(request))">\(csrfField(request))
            <button type="submit" id="enrol-start">\(t.enrolStart)</button></form>
            """
        return page(request, title: p.enrolTitle, body: body, switchPath: "/enrol/\(token)")
    }

    func enrolStart(_ request: Request, _ context: PortalContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        guard let form = try await decode(CSRFOnly.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "enrolment without a valid CSRF token") }
        guard let record = try await enrolmentRecord(token), let user = try await store.user(record.userID), !user.disabled,
              try await store.consumeEnrolmentToken(hash: SecretHash.sha256Hex(token), at: clock.now())
        else { return enrolInvalid(request, token) }
        let issued = try await sessions.issue(SessionGrant(userID: user.id, levelOfAssurance: 1, amr: [], aal: nil, phishingResistant: false,
                                                           purpose: .enrolment))
        try await identity.events.accountChange(.enable, user: user.id, actor: user.id.rawValue, detail: "one-time enrolment link used")
        return redirect("/account\(q(request))", setCookies: [sessionCookie(issued)])
    }

    // MARK: Step-up

    struct StepUpRequirement {
        var loa: Int
        var maxAge: Int?
        var ret: String

        func satisfied(by s: ActiveSession, at now: Date) -> Bool {
            s.record.levelOfAssurance >= loa && (maxAge.map { s.authenticationAge(at: now) <= Double($0) } ?? true)
        }

        var query: String {
            var items = [URLQueryItem(name: "loa", value: String(loa)), URLQueryItem(name: "return", value: ret)]
            if let maxAge { items.insert(URLQueryItem(name: "max_age", value: String(maxAge)), at: 1) }
            var c = URLComponents()
            c.queryItems = items
            return c.percentEncodedQuery ?? ""
        }
    }

    func requirement(_ request: Request) async throws -> StepUpRequirement? {
        let params = request.uri.queryParameters
        let loa = params.get("loa").flatMap { Int($0) } ?? 1
        let maxAge = params.get("max_age").flatMap { Int($0) }
        guard (1...4).contains(loa), maxAge.map({ (0...86_400).contains($0) }) ?? true else { return nil }
        return StepUpRequirement(loa: loa, maxAge: maxAge, ret: try await safeReturn(params.get("return")))
    }

    func stepUpPage(_ request: Request, _ context: PortalContext, message: String?) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let req = try await requirement(request) else { return try await badRequest(request, context, reason: "bad step-up parameters") }
        guard let s = try await currentSession(request) else {
            let here = "/stepup?" + req.query
            return redirect("/signin?return=\(here.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "%2F")&lang=\(lang(request).rawValue)")
        }
        if message == nil, req.satisfied(by: s, at: clock.now()) { return redirect(req.ret) }
        let f = try await identity.factorSummary(of: s.user.id)
        let action = "?\(req.query)&lang=\(lang(request).rawValue)"
        var sections = ""
        if !f.passkeys.isEmpty {
            sections += """
                <section><h2>\(t.usePasskey)</h2>
                <button type="button" id="passkey-stepup" data-ceremony="get" data-options="/stepup/passkey/options\(HTMLPage.escape(action))"
                  data-finish="/stepup/passkey\(HTMLPage.escape(action))" data-working="\(t.working)" data-failed="\(t.ceremonyFailed)" hidden>\(t.usePasskey)</button>
                <p id="ceremony-status" role="status" aria-live="polite"></p></section>
                """
        }
        if f.totpCount > 0 {
            sections += """
                <section><h2>\(t.authenticatorApp)</h2><form method="post" action="/stepup/totp\(HTMLPage.escape(action))">\(csrfField(request))
                <label for="code">\(t.totpCode)</label><input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required>
                <button type="submit">\(t.verify)</button></form></section>
                """
        }
        // A session from an identity provider steps up there (its own factors are not local ones); the provider's
        // maximum is then the ceiling.
        let provider = sessionProvider(s)
        if let provider {
            let name = HTMLPage.escape(provider.displayName(forLanguage: lang(request).rawValue))
            sections = """
                <section><a class="idp" id="stepup-idp" href="/stepup/oidc\(HTMLPage.escape(action))">\(t.stepUpAtProvider) \(name)</a></section>
                """
        }
        let ceiling = provider?.maximumLevelOfAssurance.rawValue ?? identity.settings.enrolmentLevel.rawValue
        // When nothing here can be verified with: what can be done instead (the account's methods, sign-out).
        let instead = """
            <p><a href="/account\(q(request))">\(t.enrolMethods)</a></p>
            <form method="post" action="/signout\(q(request))">\(csrfField(request))<button type="submit" id="sign-out" class="secondary">\(t.signOut)</button></form>
            """
        if req.loa > ceiling {
            // No method here can give that level (the enrolment level caps every sign-in and step-up): offering them
            // would only end in "too weak" after the user verified.
            sections = "<p class=\"error\" role=\"alert\" id=\"stepup-out-of-reach\">\(HTMLPage.escape(t.stepUpOutOfReach(req.loa, ceiling)))</p>\n" + instead
        } else if sections.isEmpty {
            // Nothing to verify with (a password-only account, or a provider no longer configured): say what can be done instead.
            sections = "<p class=\"error\" role=\"alert\">\(t.noStepUpMethod)</p>\n" + instead
        }
        let body = """
            <h1>\(t.stepUpTitle)</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(HTMLPage.escape($0))</p>" } ?? "<p>\(t.stepUpIntro)</p>")
            <p>\(t.assurance): LoA \(s.record.levelOfAssurance) → LoA \(req.loa)</p>
            \(sections)
            """
        return page(request, title: t.stepUpTitle, body: body, status: message == nil ? .ok : .unauthorized,
                    script: !f.passkeys.isEmpty && req.loa <= ceiling && provider == nil,
                    switchPath: "/stepup?" + req.query)
    }

    func raise(_ s: ActiveSession, _ grant: SessionGrant, _ req: StepUpRequirement) async throws -> IssuedSession? {
        guard grant.levelOfAssurance >= req.loa else { return nil }
        return try await sessions.elevate(s, with: grant)
    }

    func stepUpTOTP(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let req = try await requirement(request), let s = try await currentSession(request) else {
            return redirect("/signin\(q(request))")
        }
        guard let form = try await decode(StepUpCodeForm.self, request, context), let code = form.code, code.utf8.count <= 32,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return try await badRequest(request, context, reason: "malformed step-up form", session: s) }
        guard let grant = try await identity.stepUpWithTOTP(s, code: code, source: context.sourceAddress) else {
            return try await stepUpPage(request, context, message: t.stepUpFailed)
        }
        guard let issued = try await raise(s, grant, req) else { return try await stepUpPage(request, context, message: t.stepUpWeak) }
        return redirect(req.ret, setCookies: [sessionCookie(issued)])
    }

    func stepUpOptions(_ request: Request, _ context: PortalContext) async throws -> Response {
        guard let s = try await currentSession(request) else { return problem(.unauthorized, IdentityText(lang(request)).signInAgain) }
        guard let form = try await decode(CeremonyStartForm.self, request, context), CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return problem(.forbidden, "CSRF check failed") }
        guard let options = try await identity.beginStepUpPasskey(s) else { return problem(.conflict, IdentityText(lang(request)).noPasskeys) }
        return try ceremonyJSON(options)
    }

    func stepUpFinish(_ request: Request, _ context: PortalContext) async throws -> Response {
        let t = IdentityText(lang(request))
        guard let req = try await requirement(request) else { return problem(.badRequest, "bad step-up parameters") }
        guard let s = try await currentSession(request) else { return problem(.unauthorized, t.signInAgain) }
        guard let form = try await decode(CeremonyFinishForm.self, request, context), let handle = form.handle, let credential = form.credential,
              CSRF.check(request, submitted: form.csrf, publicOrigin: publicOrigin)
        else { return problem(.badRequest, "malformed form") }
        guard let grant = try await identity.finishStepUpPasskey(s, handle: handle, response: credential, source: context.sourceAddress) else {
            return problem(.unauthorized, t.stepUpFailed)
        }
        guard let issued = try await raise(s, grant, req) else { return problem(.forbidden, t.stepUpWeak) }
        return json(["redirect": req.ret], setCookies: [sessionCookie(issued)])
    }
}
