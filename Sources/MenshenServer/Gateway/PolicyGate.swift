import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenStorage
import MenshenVisibility
import Synchronization

/// The enforcement point's gate: every request is authorized again from the
/// session behind its cookie and the application it targets.
///
/// session cookie → ``SessionManager/resolve(token:purpose:)`` (revocation and
/// disabling are seen here, on the very next request) → ``AccessRequest``
/// (principal with groups and the session's active roles, LoA, `amr`, factor
/// age, time, source, method, path, the user's risk score from the detection
/// service's stored contributions (``RiskScoreStore``, decayed to the request's
/// time), the application's classification and scenario) → ``PolicyDecisionPoint`` → forward with identity headers, or a
/// sign-in / step-up redirect, or a deny page. Anything unexpected denies.
public struct PolicyGate: AccessGate {
    public let store: any MenshenStore
    public let sessions: SessionManager
    public let clock: any WallClock
    public let state: GatewayState
    /// `scheme://host[:port]` of the portal (sign-in and step-up pages).
    public let portalOrigin: String
    public let timeZone: String
    /// Who may call the forward-auth endpoints (their `X-Original-*` / `X-Forwarded-*` headers are believed).
    public let forwardAuthCallers: [CIDR]
    /// Receives every decision (the audit trail); nil records nothing.
    public let recorder: (any DecisionRecorder)?
    /// Signs the identity assertion for upstreams; nil sends none.
    public let assertions: IdentityAssertionSigner?
    /// Session facts reused while the store vouches for them; nil (PostgreSQL, or turned off) reads
    /// the store on every request.
    let factsCache: SessionFactsCache?
    /// The device behind a request's client certificate (``DeviceBinding``); nil: requests never carry a device.
    public let devices: DeviceBinding?
    /// Whose each session read here is (``sessionUser(of:)``); nil where the store cannot say whom its access changes
    /// concerned anyway.
    let owners: SessionOwners?

    /// - Parameter reuseSessionFacts: remember what was read about a session while the store's
    ///   committed access generation says it is unchanged (``SessionFactsCache``); only stores
    ///   that can say so cheaply (``CommittedAccessGeneration``: SQLite, memory) do.
    public init(store: any MenshenStore, sessions: SessionManager, clock: any WallClock, state: GatewayState,
                portalOrigin: String, timeZone: String, forwardAuthCallers: [CIDR] = CIDR.loopback,
                recorder: (any DecisionRecorder)? = nil, assertions: IdentityAssertionSigner? = nil, reuseSessionFacts: Bool = true,
                devices: DeviceBinding? = nil) {
        self.devices = devices
        self.store = store; self.sessions = sessions; self.clock = clock; self.state = state
        self.portalOrigin = portalOrigin; self.timeZone = timeZone; self.forwardAuthCallers = forwardAuthCallers
        self.recorder = recorder
        self.assertions = assertions
        self.factsCache = reuseSessionFacts ? (store as? any CommittedAccessGeneration).map {
            SessionFactsCache(source: $0, maxAge: sessions.settings.touchInterval)
        } : nil
        self.owners = store is any CommittedAccessGeneration ? SessionOwners() : nil
    }

    /// The user whose session `request`'s cookie presents, if this gate has read that session (nil: not known here —
    /// no cookie, a session never read, or forgotten). For sweeps that ask only about the connections of the users a
    /// change concerned (``ChangeWatcher``).
    public func sessionUser(of request: GateRequest) -> String? {
        guard let owners, let token = Self.cookie(PortalCookies.session, in: request),
              let idHash = SessionManager.idHash(ofToken: token) else { return nil }
        return owners.user(of: idHash)
    }

    /// The enforcement point's own error answers (upstream down or slow, gate unavailable, bad
    /// requests) as zh-TW/English pages for browsers and problem+json for APIs, like the deny pages.
    public static func refusalPage(portalOrigin: String)
        -> @Sendable (ProxyRefusal, String, [(String, String)]?) -> (headers: [(String, String)], body: [UInt8])
    {
        { refusal, requestID, headers in GatewayPages.refusal(refusal, requestID: requestID, headers: headers, portalOrigin: portalOrigin) }
    }

    /// Where the gateway publishes the keys that verify its identity assertions.
    public static let jwksPath = "/.menshen/jwks.json"

    /// Headers the gate sets for the upstream (clients can never send them: `x-menshen-` is an identity prefix).
    public static let userHeader = "X-Menshen-User", groupsHeader = "X-Menshen-Groups", rolesHeader = "X-Menshen-Roles"
    public static let loaHeader = "X-Menshen-LoA", amrHeader = "X-Menshen-AMR"

    public func decide(_ request: GateRequest) async -> GateVerdict {
        if request.path.hasPrefix(ForwardAuth.pathPrefix) || request.rawTarget.hasPrefix(ForwardAuth.pathPrefix) {
            return await forwardAuth(request)
        }
        if request.path == Self.jwksPath, let assertions {
            guard request.method == "GET" || request.method == "HEAD" else {
                return .respond(status: 405, headers: [("Allow", "GET, HEAD")], body: [])
            }
            return .respond(status: 200, headers: [("Content-Type", "application/jwk-set+json"), ("Cache-Control", "max-age=300")],
                            body: request.method == "HEAD" ? [] : assertions.jwks)
        }
        return await decide(request, mode: request.isReevaluation ? .reevaluation : .proxy)
    }

    /// Decides at once, on the event loop, what needs no store read: requests with no route or no
    /// valid session cookie, and sessions whose facts ``SessionFactsCache`` still vouches for (their
    /// identity assertion already signed). Everything else (nil) goes to ``decide(_:)``. Records the
    /// decision exactly like the regular path.
    public func decideImmediately(_ request: GateRequest) -> GateVerdict? {
        guard !request.isReevaluation, factsCache != nil else { return nil }
        if request.path.hasPrefix(ForwardAuth.pathPrefix) || request.rawTarget.hasPrefix(ForwardAuth.pathPrefix) {
            return forwardAuthImmediately(request)
        }
        guard request.path != Self.jwksPath else { return nil }
        return decideImmediately(request, mode: .proxy)
    }

    func decideImmediately(_ request: GateRequest, mode: DecisionMode) -> GateVerdict? {
        var trail = newTrail(request, mode: mode)
        let verdict: GateVerdict
        switch target(of: request, trail: &trail) {
        case .answered(let answer):
            verdict = answer
        case .session(let t):
            guard let cache = factsCache, let facts = cache.facts(idHash: t.idHash, now: trail.time) else { return nil }
            var device: AccessRequest.Device?
            if let devices, mode == .proxy {
                guard let known = devices.remembered(request, now: trail.time) else { return nil }
                device = known.attributes(at: trail.time)
                if case .device(let d) = known {
                    trail.deviceID = d.deviceID.rawValue
                    device?.ownedByPrincipal = d.record.ownerID?.rawValue == facts.session.user.id.rawValue
                }
            }
            let (access, decision) = decide(request, target: t, facts: facts, device: device, now: trail.time)
            var assertion: String?
            if decision.effect == .allow, let assertions {
                guard let cached = assertions.cachedAssertion(
                    application: t.route.application.id.rawValue, sessionHash: facts.session.record.idHash, groups: facts.groups,
                    roles: facts.session.attributes.activeRoles, loa: facts.session.record.levelOfAssurance, amr: facts.session.record.amr,
                    device: trail.deviceID)
                else { return nil }
                assertion = cached
            }
            verdict = answer(request, target: t, facts: facts, access: access, decision: decision, assertion: assertion, trail: &trail)
        }
        return recorded(verdict, request, trail: &trail)
    }

    /// Records the decision. An access the recorder cannot vouch to write (``DecisionRecorder/admitsAccess``: a
    /// decision log that fails closed and whose store takes no write) is refused instead, with a 503, and that
    /// refusal is recorded (`detail` `audit_unavailable`).
    func recorded(_ verdict: GateVerdict, _ request: GateRequest, trail: inout DecisionTrail) -> GateVerdict {
        guard let recorder else { return verdict }
        guard trail.outcome == .allow else {
            recorder.record(trail)
            return verdict
        }
        if recorder.admitsAccess, recorder.record(trail) { return verdict }
        // Not taken (the log is full): a log that admits access regardless has shed it (``admitsAccess`` is always true
        // there, so the record was tried); one that fails closed refuses.
        if !recorder.failsClosed { return verdict }
        trail.outcome = .deny
        trail.detail = "audit_unavailable"
        recorder.record(trail)
        return GatewayPages.deny(request, reason: .auditUnavailable, portalOrigin: portalOrigin, status: 503)
    }

    /// The audit record of one decision, before anything is decided.
    func newTrail(_ request: GateRequest, mode: DecisionMode) -> DecisionTrail {
        DecisionTrail(requestID: request.requestID, time: clock.now(), mode: mode, method: request.method,
                      host: request.host, path: request.path, sourceIP: request.clientAddress ?? "")
    }

    /// Decides one request and records the decision.
    func decide(_ request: GateRequest, mode: DecisionMode) async -> GateVerdict {
        var trail = newTrail(request, mode: mode)
        let verdict: GateVerdict
        do { verdict = try await evaluate(request, trail: &trail) } catch {
            trail.outcome = .error
            trail.detail = "\(error)"
            verdict = GatewayPages.deny(request, reason: .unavailable, portalOrigin: portalOrigin)
        }
        return recorded(verdict, request, trail: &trail)
    }

    /// A request whose application and session cookie are known.
    struct Target: Sendable {
        let snapshot: GatewaySnapshot
        let route: RouteTable.Route
        let token: String
        let idHash: String
        let request: GateRequest
        /// The URL the client asked for (where sign-in and step-up return to); built only when one is answered.
        var original: String { PolicyGate.original(of: request) }
    }

    static func original(of request: GateRequest) -> String { "\(request.scheme)://\(request.host)\(request.rawTarget)" }

    enum Targeted { case answered(GateVerdict), session(Target) }

    /// Route and session cookie: everything that is decided before the store is asked.
    func target(of request: GateRequest, trail: inout DecisionTrail) -> Targeted {
        let snapshot = state.snapshot
        trail.policyGeneration = snapshot.generation
        guard let route = snapshot.routes.route(host: request.host, path: request.path), !route.upstreams.isEmpty else {
            trail.outcome = .noRoute
            return .answered(GatewayPages.deny(request, reason: .noSuchApplication, portalOrigin: portalOrigin, status: 404))
        }
        trail.application = route.application.id.rawValue
        guard let token = Self.cookie(PortalCookies.session, in: request), let idHash = SessionManager.idHash(ofToken: token) else {
            trail.outcome = .signIn
            return .answered(GatewayPages.signIn(request, returnURL: Self.original(of: request), portalOrigin: portalOrigin))
        }
        return .session(Target(snapshot: snapshot, route: route, token: token, idHash: idHash, request: request))
    }

    func evaluate(_ request: GateRequest, trail: inout DecisionTrail) async throws -> GateVerdict {
        let t: Target
        switch target(of: request, trail: &trail) {
        case .answered(let verdict): return verdict
        case .session(let target): t = target
        }
        // Read the access generation before the facts, so a change made meanwhile voids what is remembered.
        let generation = factsCache?.generationNow()
        // A re-evaluation of an open connection is the gateway's own check, not the user's activity: it leaves the idle
        // expiry alone, so an open WebSocket does not keep an idle session (and its cookie) alive.
        guard let session = try await sessions.resolve(token: t.token, touch: trail.mode != .reevaluation) else {
            trail.outcome = .signIn
            return GatewayPages.signIn(request, returnURL: t.original, portalOrigin: portalOrigin)
        }
        owners?.record(t.idHash, user: session.user.id.rawValue)
        // Role tiers are read only when the session has active roles (most requests have none to look up).
        let tiers = session.attributes.activeRoles.isEmpty ? [:]
            : Dictionary(try await store.listRoles().map { ($0.id.rawValue, $0.riskTier.rawValue) }, uniquingKeysWith: { a, _ in a })
        let groups = try await store.groups(of: session.user.id).map(\.rawValue)
        // The user's risk as the detection service stored it; a record that does not read fails closed (an error, so a deny).
        let risk = try await store.riskScore(of: session.user.id).map { try RiskScore.decode($0.contributions) } ?? []
        let facts = SessionFactsCache.Facts(
            session: session, groups: groups,
            roleTiers: Dictionary(session.attributes.activeRoles.map { ($0, tiers[$0] ?? "standard") }, uniquingKeysWith: { a, _ in a }),
            risk: risk)
        // Remembered only for a request of the user's: a re-evaluation neither touches the session nor refreshes what
        // is remembered about it — otherwise the gateway's own checks would keep the user's requests on the event
        // loop's path, which never touches the session, until the idle expiry signs an active user out.
        if let generation, let factsCache, trail.mode != .reevaluation {
            factsCache.remember(facts, idHash: t.idHash, generation: generation, now: clock.now())
        }
        // The device of the connection's client certificate (never for forward-auth: its connection is the proxy's).
        var device: AccessRequest.Device?
        if let devices, !request.connectionAttributes.isEmpty, trail.mode == .proxy || trail.mode == .reevaluation {
            let resolution = try await devices.resolve(request, now: trail.time)
            device = resolution.attributes(at: trail.time)
            if case .device(let d) = resolution {
                trail.deviceID = d.deviceID.rawValue
                device?.ownedByPrincipal = d.record.ownerID?.rawValue == session.user.id.rawValue
            }
        }

        let (access, decision) = decide(request, target: t, facts: facts, device: device, now: trail.time)
        var assertion: String?
        // (A re-evaluation's verdict goes nowhere: no assertion is signed for it.)
        if decision.effect == .allow, let assertions, trail.mode != .reevaluation {
            assertion = try await assertions.assertion(
                user: session.user.id.rawValue, application: t.route.application.id.rawValue, sessionHash: session.record.idHash,
                groups: groups, roles: session.attributes.activeRoles, loa: session.record.levelOfAssurance, amr: session.record.amr,
                device: trail.deviceID)
        }
        return answer(request, target: t, facts: facts, access: access, decision: decision, assertion: assertion, trail: &trail)
    }

    /// The access request built from the session's facts and the request, and what the decision point says.
    func decide(_ request: GateRequest, target t: Target, facts: SessionFactsCache.Facts, device: AccessRequest.Device?,
                now: Date) -> (AccessRequest, AccessDecision) {
        let session = facts.session
        let app = t.route.application
        let access = AccessRequest(
            principal: .init(id: session.user.id.rawValue, kind: session.user.kind.rawValue, disabled: session.user.disabled,
                             groups: facts.groups, roles: facts.roleTiers),
            session: .init(levelOfAssurance: session.record.levelOfAssurance, amr: session.record.amr,
                           factorAgeSeconds: max(0, Int(session.authenticationAge(at: now))),
                           ageSeconds: max(0, Int(now.timeIntervalSince(session.record.createdAt)))),
            device: device,
            context: .init(time: now, timeZone: timeZone, sourceIP: request.clientAddress ?? "",
                           networkZone: t.snapshot.zone(of: request.clientAddress ?? ""),
                           method: request.method, path: request.path,
                           riskScore: RiskScore(user: session.user.id.rawValue, contributions: facts.risk, at: now).value),
            resource: .init(applicationID: app.id.rawValue, classification: app.classification, scenario: app.scenario ?? ""))
        var decision = t.snapshot.decisionPoint.decide(access)
        // A playbook's `require_step_up` in force: what the policies allow needs an authentication made after it.
        if decision.effect == .allow, let since = RiskScore.stepUpRequiredSince(facts.risk, at: now),
           session.authenticationAge(at: now) > now.timeIntervalSince(since) {
            decision.effect = .stepUp
            decision.reasons.append(.stepUpRequired)
            decision.obligations.append(.stepUp(minimumLoA: nil, maxAgeSeconds: max(1, Int(now.timeIntervalSince(since)))))
        }
        return (access, decision)
    }

    /// The verdict for a decision: forward with the identity headers, a step-up or sign-in redirect, or a deny page.
    func answer(_ request: GateRequest, target t: Target, facts: SessionFactsCache.Facts, access: AccessRequest,
                decision: AccessDecision, assertion: String?, trail: inout DecisionTrail) -> GateVerdict {
        let session = facts.session
        trail.user = session.user.id.rawValue
        trail.sessionHash = session.record.idHash
        trail.access = access
        trail.decision = decision
        switch decision.effect {
        case .allow:
            // read_only: only safe methods, and no upgrade — a WebSocket is a channel for writes in both directions
            // (an upgrade is a GET, and its re-evaluations replay that GET).
            if decision.obligations.contains(.readOnly),
               !AccessRequest.safeMethods.contains(request.method.uppercased()) || request.upgrade != nil {
                trail.outcome = .deny
                trail.detail = "read_only"
                return GatewayPages.deny(request, reason: .readOnly, portalOrigin: portalOrigin)
            }
            trail.outcome = .allow
            var headers = [
                (Self.userHeader, session.user.id.rawValue),
                (Self.groupsHeader, facts.groups.joined(separator: ",")),
                (Self.rolesHeader, session.attributes.activeRoles.joined(separator: ",")),
                (Self.loaHeader, String(session.record.levelOfAssurance)),
                (Self.amrHeader, session.record.amr.joined(separator: " ")),
            ]
            if let assertion { headers.append((IdentityAssertionSigner.header, assertion)) }
            return .forward(upstreams: t.route.upstreams, addHeaders: headers)
        case .stepUp:
            var loa = session.record.levelOfAssurance, maxAge: Int?
            for case .stepUp(let l, let a) in decision.obligations {
                if let l { loa = max(loa, l) }
                if let a { maxAge = min(maxAge ?? a, a) }
            }
            // A requirement the session already meets cannot be proven again: the step-up page would send the user
            // straight back and be asked again, for ever. Refused instead (a policy whose condition no step-up meets,
            // a playbook's requirement dated ahead of this node's clock).
            // (The factor's age to the fraction of a second: whole seconds would call a playbook's requirement met when
            // the authentication came a fraction of a second before it.)
            if loa <= session.record.levelOfAssurance, maxAge.map({ session.authenticationAge(at: clock.now()) <= Double($0) }) ?? true {
                trail.outcome = .deny
                trail.detail = "step_up_unsatisfiable"
                return GatewayPages.deny(request, reason: .notPermitted, portalOrigin: portalOrigin)
            }
            trail.outcome = .stepUp
            return GatewayPages.stepUp(request, loa: loa, maxAge: maxAge, returnURL: t.original, portalOrigin: portalOrigin)
        case .deny:
            trail.outcome = .deny
            trail.detail = decision.reasons.map(\.rawValue).joined(separator: ",")
            let reason: GatewayPages.Reason = decision.reasons.contains(.readOnly) ? .readOnly
                : decision.reasons.contains(.policyError) ? .policyError : .notPermitted
            return GatewayPages.deny(request, reason: reason, portalOrigin: portalOrigin)
        }
    }

    static func cookie(_ name: String, in request: GateRequest) -> String? {
        PortalCookies.value(name, inHeaders: request.headerValues("cookie"))
    }
}
