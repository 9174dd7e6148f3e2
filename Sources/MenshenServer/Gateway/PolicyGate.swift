import Foundation
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenStorage
import Synchronization

/// The protected applications as routes: host (port ignored, case-insensitive)
/// and the longest matching path prefix on a segment boundary. Refreshed from
/// the store by ``refresh(from:)``; matching reads an immutable snapshot.
public final class RouteTable: Sendable {
    private let snapshot = Mutex<[ApplicationRecord]>([])

    public init(_ applications: [ApplicationRecord] = []) { snapshot.withLock { $0 = applications } }

    public func refresh(from store: any MenshenStore) async throws {
        let apps = try await store.listApplications()
        snapshot.withLock { $0 = apps }
    }

    public var applications: [ApplicationRecord] { snapshot.withLock { $0 } }

    public func match(host rawHost: String, path: String) -> ApplicationRecord? {
        let host = Self.hostOnly(rawHost)
        return applications
            .filter { $0.host.lowercased() == host && Self.prefix($0.pathPrefix, matches: path) }
            .max { $0.pathPrefix.count < $1.pathPrefix.count }
    }

    static func hostOnly(_ header: String) -> String {
        let h = header.lowercased()
        if h.hasPrefix("[") { return String(h.prefix { $0 != "]" }) + "]" }
        return String(h.prefix { $0 != ":" })
    }

    static func prefix(_ prefix: String, matches path: String) -> Bool {
        if prefix == "/" || prefix.isEmpty { return path.hasPrefix("/") }
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        return path == p || path.hasPrefix(p + "/")
    }

    /// The upstream of an application (its first URL; the request path is forwarded unchanged).
    static func upstream(of app: ApplicationRecord) -> Upstream? {
        guard let first = app.upstreams.first, let url = URLComponents(string: first), let host = url.host,
              let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { return nil }
        return Upstream(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), tls: scheme == "https")
    }
}

/// The enforcement point's gate: every request is authorized again from the
/// session behind its cookie and the application it targets.
///
/// session cookie → ``SessionManager/resolve(token:purpose:)`` (revocation and
/// disabling are seen here, on the very next request) → ``AccessRequest``
/// (principal with groups and the session's active roles, LoA, `amr`, factor
/// age, time, source, method, path, the application's classification and
/// scenario) → ``PolicyDecisionPoint`` → forward with identity headers, or a
/// sign-in / step-up redirect, or a deny page. Anything unexpected denies.
public struct PolicyGate: AccessGate {
    public let store: any MenshenStore
    public let sessions: SessionManager
    public let clock: any WallClock
    public let routes: RouteTable
    public let decisionPoint: @Sendable () -> PolicyDecisionPoint
    /// `scheme://host[:port]` of the portal (sign-in and step-up pages).
    public let portalOrigin: String
    public let timeZone: String

    public init(store: any MenshenStore, sessions: SessionManager, clock: any WallClock, routes: RouteTable,
                decisionPoint: @escaping @Sendable () -> PolicyDecisionPoint, portalOrigin: String, timeZone: String) {
        self.store = store; self.sessions = sessions; self.clock = clock; self.routes = routes
        self.decisionPoint = decisionPoint; self.portalOrigin = portalOrigin; self.timeZone = timeZone
    }

    /// Headers the gate sets for the upstream (clients can never send them: `x-menshen-` is an identity prefix).
    public static let userHeader = "X-Menshen-User", groupsHeader = "X-Menshen-Groups", rolesHeader = "X-Menshen-Roles"
    public static let loaHeader = "X-Menshen-LoA", amrHeader = "X-Menshen-AMR"

    public func decide(_ request: GateRequest) async -> GateVerdict {
        do { return try await evaluate(request) } catch {
            return GatewayPages.deny(request, reason: .unavailable, portalOrigin: portalOrigin)
        }
    }

    func evaluate(_ request: GateRequest) async throws -> GateVerdict {
        guard let app = routes.match(host: request.host, path: request.path), let upstream = RouteTable.upstream(of: app) else {
            return GatewayPages.deny(request, reason: .noSuchApplication, portalOrigin: portalOrigin, status: 404)
        }
        let original = "\(request.scheme)://\(request.host)\(request.rawTarget)"
        guard let token = Self.cookie(PortalCookies.session, in: request),
              let session = try await sessions.resolve(token: token)
        else { return GatewayPages.signIn(request, returnURL: original, portalOrigin: portalOrigin) }

        let now = clock.now()
        let tiers = Dictionary(try await store.listRoles().map { ($0.id.rawValue, $0.riskTier.rawValue) }, uniquingKeysWith: { a, _ in a })
        let groups = try await store.groups(of: session.user.id).map(\.rawValue)
        let roles = Dictionary(session.attributes.activeRoles.map { ($0, tiers[$0] ?? "standard") }, uniquingKeysWith: { a, _ in a })
        let access = AccessRequest(
            principal: .init(id: session.user.id.rawValue, kind: session.user.kind.rawValue, disabled: session.user.disabled,
                             groups: groups, roles: roles),
            session: .init(levelOfAssurance: session.record.levelOfAssurance, amr: session.record.amr,
                           factorAgeSeconds: max(0, Int(session.authenticationAge(at: now))),
                           ageSeconds: max(0, Int(now.timeIntervalSince(session.record.createdAt)))),
            device: nil,
            context: .init(time: now, timeZone: timeZone, sourceIP: request.clientAddress ?? "", networkZone: "",
                           method: request.method, path: request.path),
            resource: .init(applicationID: app.id.rawValue, classification: app.classification, scenario: app.scenario ?? ""))
        let decision = decisionPoint().decide(access)
        switch decision.effect {
        case .allow:
            if decision.obligations.contains(.readOnly), !AccessRequest.safeMethods.contains(request.method.uppercased()) {
                return GatewayPages.deny(request, reason: .readOnly, portalOrigin: portalOrigin)
            }
            return .forward(upstream: upstream, addHeaders: [
                (Self.userHeader, session.user.id.rawValue),
                (Self.groupsHeader, groups.joined(separator: ",")),
                (Self.rolesHeader, session.attributes.activeRoles.joined(separator: ",")),
                (Self.loaHeader, String(session.record.levelOfAssurance)),
                (Self.amrHeader, session.record.amr.joined(separator: " ")),
            ])
        case .stepUp:
            var loa = session.record.levelOfAssurance, maxAge: Int?
            for case .stepUp(let l, let a) in decision.obligations {
                if let l { loa = max(loa, l) }
                if let a { maxAge = min(maxAge ?? a, a) }
            }
            return GatewayPages.stepUp(request, loa: loa, maxAge: maxAge, returnURL: original, portalOrigin: portalOrigin)
        case .deny:
            let reason: GatewayPages.Reason = decision.reasons.contains(.readOnly) ? .readOnly
                : decision.reasons.contains(.policyError) ? .policyError : .notPermitted
            return GatewayPages.deny(request, reason: reason, portalOrigin: portalOrigin)
        }
    }

    static func cookie(_ name: String, in request: GateRequest) -> String? {
        PortalCookies.value(name, inHeaders: request.headerValues("cookie"))
    }
}
