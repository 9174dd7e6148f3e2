import Foundation
import MenshenCore
import MenshenIdentity
import MenshenStorage

/// Lifetimes of sessions.
public struct SessionSettings: Sendable, Equatable {
    /// A session unused for this long ends (default 30 minutes).
    public var idleTimeout: TimeInterval
    /// A session ends this long after sign-in whatever happens (default 12 hours).
    public var absoluteLifetime: TimeInterval
    /// Enrolment sessions (from a one-time link) end sooner (default 15 minutes).
    public var enrolmentLifetime: TimeInterval
    /// Privileged sessions (principle 4.1) end sooner (default 1 hour) …
    public var privilegedLifetime: TimeInterval
    /// … and need an authentication at most this old to start (default 5 minutes).
    public var privilegedFreshness: TimeInterval
    /// Activity is written back at most this often per session (default 30 s),
    /// so a busy session does not write on every request.
    public var touchInterval: TimeInterval

    public init(idleTimeout: TimeInterval = 1800, absoluteLifetime: TimeInterval = 12 * 3600,
                enrolmentLifetime: TimeInterval = 900, touchInterval: TimeInterval = 30,
                privilegedLifetime: TimeInterval = 3600, privilegedFreshness: TimeInterval = 300) {
        self.idleTimeout = idleTimeout; self.absoluteLifetime = absoluteLifetime
        self.enrolmentLifetime = enrolmentLifetime; self.touchInterval = touchInterval
        self.privilegedLifetime = privilegedLifetime; self.privilegedFreshness = privilegedFreshness
    }
}

/// What a session may be used for.
public enum SessionPurpose: String, Sendable, Codable {
    /// Normal access to protected applications.
    case access
    /// Only the enrolment pages (a one-time link was used; no factor yet).
    case enrolment
}

/// The policy-relevant facts a session carries besides LoA and `amr`
/// (stored as the session's attributes JSON).
public struct SessionAttributes: Sendable, Equatable, Codable {
    public var purpose: SessionPurpose
    /// Where the user was authenticated: `local` or an IdP id.
    public var idp: String
    /// Time of the latest successful authentication (sign-in or step-up), ms.
    public var authTime: Int64
    /// Time each `amr` value was last proven, ms.
    public var factorTimes: [String: Int64]
    /// NIST AAL of the latest authentication.
    public var aal: Int?
    /// True when a phishing-resistant (WebAuthn) factor was used.
    public var phishingResistant: Bool
    /// The roles this session acts in. Privileged roles are never active in the
    /// same session as the others (FSC principle 4.1): an ordinary session holds
    /// the standard and sensitive roles, a privileged session only the privileged ones.
    public var activeRoles: [String]
    /// True for a privileged-work session.
    public var privileged: Bool

    enum CodingKeys: String, CodingKey {
        case purpose, idp, authTime = "auth_time", factorTimes = "factor_times", aal, phishingResistant = "phishing_resistant"
        case activeRoles = "active_roles", privileged
    }

    public init(purpose: SessionPurpose, idp: String, authTime: Int64, factorTimes: [String: Int64], aal: Int?, phishingResistant: Bool,
                activeRoles: [String] = [], privileged: Bool = false) {
        self.purpose = purpose; self.idp = idp; self.authTime = authTime; self.factorTimes = factorTimes
        self.aal = aal; self.phishingResistant = phishingResistant; self.activeRoles = activeRoles; self.privileged = privileged
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        purpose = try c.decode(SessionPurpose.self, forKey: .purpose)
        idp = try c.decode(String.self, forKey: .idp)
        authTime = try c.decode(Int64.self, forKey: .authTime)
        factorTimes = try c.decode([String: Int64].self, forKey: .factorTimes)
        aal = try c.decodeIfPresent(Int.self, forKey: .aal)
        phishingResistant = try c.decode(Bool.self, forKey: .phishingResistant)
        activeRoles = try c.decodeIfPresent([String].self, forKey: .activeRoles) ?? []
        privileged = try c.decodeIfPresent(Bool.self, forKey: .privileged) ?? false
    }
}

/// What a successful authentication establishes.
public struct SessionGrant: Sendable, Equatable {
    public var userID: UserID
    public var levelOfAssurance: Int
    public var amr: [String]
    public var aal: Int?
    public var phishingResistant: Bool
    public var purpose: SessionPurpose
    public var idp: String

    public init(userID: UserID, levelOfAssurance: Int, amr: [String], aal: Int?, phishingResistant: Bool,
                purpose: SessionPurpose = .access, idp: String = "local") {
        self.userID = userID; self.levelOfAssurance = levelOfAssurance; self.amr = amr; self.aal = aal
        self.phishingResistant = phishingResistant; self.purpose = purpose; self.idp = idp
    }

    /// The grant for a local sign-in with `outcome`.
    public init?(userID: UserID, outcome: AssuranceOutcome, purpose: SessionPurpose = .access) {
        guard let loa = outcome.levelOfAssurance else { return nil }
        self.init(userID: userID, levelOfAssurance: loa.rawValue, amr: outcome.amr.map(\.rawValue),
                  aal: outcome.authenticatorAssuranceLevel?.rawValue, phishingResistant: outcome.phishingResistant, purpose: purpose)
    }
}

/// A new session: the opaque token goes into the cookie, never into storage.
public struct IssuedSession: Sendable, Equatable {
    public let token: String
    public let record: SessionRecord
}

/// A session found valid for the current request.
public struct ActiveSession: Sendable {
    public let idHash: String
    public let record: SessionRecord
    public let user: UserRecord
    public let attributes: SessionAttributes

    /// Seconds since the latest authentication.
    public func authenticationAge(at now: Date) -> TimeInterval {
        now.timeIntervalSince(StoreCoding.date(millis: attributes.authTime))
    }
}

/// Issues, resolves, raises and revokes server-side sessions.
public struct SessionManager: Sendable {
    public let store: any MenshenStore
    public let clock: any WallClock
    public let random: any RandomSource
    public let settings: SessionSettings

    /// Session tokens are 32 random bytes, base64url: exactly 43 characters.
    public static let tokenLength = 43

    public init(store: any MenshenStore, clock: any WallClock, random: any RandomSource, settings: SessionSettings = SessionSettings()) {
        self.store = store; self.clock = clock; self.random = random; self.settings = settings
    }

    public static func hash(token: String) -> String { SecretHash.sha256Hex(token) }

    /// The stored id of a well-formed session token (43 base64url characters of 32 bytes), nil otherwise.
    public static func idHash(ofToken token: String) -> String? {
        guard token.utf8.count == tokenLength, Base64URL.decode(token)?.count == 32 else { return nil }
        return hash(token: token)
    }

    /// The user's roles split by tier: (ordinary = standard and sensitive, privileged).
    public func roles(of user: UserID) async throws -> (ordinary: [String], privileged: [String]) {
        let tiers = Dictionary(try await store.listRoles().map { ($0.id, $0.riskTier) }, uniquingKeysWith: { a, _ in a })
        let held = try await store.roles(of: user)
        return (held.filter { tiers[$0] != .privileged }.map(\.rawValue),
                held.filter { tiers[$0] == .privileged }.map(\.rawValue))
    }

    /// Starts a session for `grant`: an ordinary session, acting in the user's
    /// standard and sensitive roles only.
    public func issue(_ grant: SessionGrant) async throws -> IssuedSession {
        let now = clock.now()
        let ms = StoreCoding.millis(now)
        let attributes = SessionAttributes(purpose: grant.purpose, idp: grant.idp, authTime: ms,
                                           factorTimes: Dictionary(grant.amr.map { ($0, ms) }, uniquingKeysWith: max),
                                           aal: grant.aal, phishingResistant: grant.phishingResistant,
                                           activeRoles: grant.purpose == .access ? try await roles(of: grant.userID).ordinary : [])
        let lifetime = grant.purpose == .enrolment ? settings.enrolmentLifetime : settings.absoluteLifetime
        return try await create(user: grant.userID, loa: grant.levelOfAssurance, amr: grant.amr, attributes: attributes,
                                createdAt: now, absoluteExpiresAt: now.addingTimeInterval(lifetime))
    }

    private func create(user: UserID, loa: Int, amr: [String], attributes: SessionAttributes, createdAt: Date,
                        absoluteExpiresAt: Date) async throws -> IssuedSession {
        let token = random.token(byteCount: 32)
        let json = String(decoding: try JSONEncoder.sorted.encode(attributes), as: UTF8.self)
        let record = SessionRecord(idHash: Self.hash(token: token), userID: user, createdAt: createdAt,
                                   idleExpiresAt: min(absoluteExpiresAt, createdAt.addingTimeInterval(settings.idleTimeout)),
                                   absoluteExpiresAt: absoluteExpiresAt, levelOfAssurance: loa, amr: amr.sorted(),
                                   attributesJSON: json)
        try await store.createSession(record)
        return IssuedSession(token: token, record: record)
    }

    /// The session behind a cookie value, if it is valid now: well-formed
    /// token, stored, not revoked, within both lifetimes, its user enabled and
    /// (unless `purpose` is nil) of the wanted purpose. Extends the idle expiry unless `touch` is false: a check
    /// the platform makes by itself (the gateway re-authorizing an open WebSocket) is not the user's activity, and
    /// must not keep an idle session alive.
    public func resolve(token: String, purpose: SessionPurpose? = .access, touch: Bool = true) async throws -> ActiveSession? {
        guard let idHash = Self.idHash(ofToken: token) else { return nil }
        let now = clock.now()
        guard let record = try await store.session(idHash: idHash), record.isActive(at: now),
              let user = try await store.user(record.userID), !user.disabled,
              let attributes = try? JSONDecoder().decode(SessionAttributes.self, from: Data(record.attributesJSON.utf8))
        else { return nil }
        if let purpose, attributes.purpose != purpose { return nil }
        if touch, now.timeIntervalSince(record.lastSeenAt) >= settings.touchInterval {
            let idle = min(record.absoluteExpiresAt, now.addingTimeInterval(settings.idleTimeout))
            _ = try await store.touchSession(idHash: idHash, lastSeenAt: now, idleExpiresAt: idle)
        }
        return ActiveSession(idHash: idHash, record: record, user: user, attributes: attributes)
    }

    /// Raises a session after a step-up: a **new** session id with the higher
    /// LoA, the union of `amr`, fresh factor times and the same absolute expiry;
    /// the old id is revoked so it cannot be replayed (no fixation).
    public func elevate(_ session: ActiveSession, with grant: SessionGrant) async throws -> IssuedSession {
        let now = clock.now()
        let ms = StoreCoding.millis(now)
        var attributes = session.attributes
        attributes.authTime = ms
        for value in grant.amr { attributes.factorTimes[value] = ms }
        attributes.aal = max(attributes.aal ?? 0, grant.aal ?? 0)
        attributes.phishingResistant = attributes.phishingResistant || grant.phishingResistant
        attributes.purpose = grant.purpose
        let amr = Array(Set(session.record.amr).union(grant.amr))
        let issued = try await create(user: session.user.id, loa: max(session.record.levelOfAssurance, grant.levelOfAssurance), amr: amr,
                                      attributes: attributes, createdAt: now, absoluteExpiresAt: session.record.absoluteExpiresAt)
        _ = try await store.revokeSession(idHash: session.idHash, at: now, reason: "rotated")
        return issued
    }

    /// Why a privileged session could not start.
    public enum PrivilegeRefusal: Error, Equatable, Sendable {
        /// The user holds no privileged role.
        case noPrivilegedRole
        /// LoA below 3, or the latest authentication is older than `privilegedFreshness`: step up first.
        case needsStepUp(loa: Int, maxAge: Int)
    }

    /// Switches to privileged work (principle 4.1): a **new** session acting in
    /// the privileged roles only, with a shorter lifetime; the ordinary session
    /// is revoked, so ordinary and privileged work never share a session.
    /// Needs LoA3 proven within `privilegedFreshness`.
    public func startPrivileged(from session: ActiveSession) async throws -> Result<IssuedSession, PrivilegeRefusal> {
        let now = clock.now()
        let privileged = try await roles(of: session.user.id).privileged
        guard !privileged.isEmpty else { return .failure(.noPrivilegedRole) }
        guard session.record.levelOfAssurance >= 3, session.authenticationAge(at: now) <= settings.privilegedFreshness else {
            return .failure(.needsStepUp(loa: 3, maxAge: Int(settings.privilegedFreshness)))
        }
        var attributes = session.attributes
        attributes.activeRoles = privileged
        attributes.privileged = true
        let issued = try await create(user: session.user.id, loa: session.record.levelOfAssurance, amr: session.record.amr,
                                      attributes: attributes, createdAt: now,
                                      absoluteExpiresAt: min(session.record.absoluteExpiresAt, now.addingTimeInterval(settings.privilegedLifetime)))
        _ = try await store.revokeSession(idHash: session.idHash, at: now, reason: "switched to privileged work")
        return .success(issued)
    }

    /// Leaves privileged work: a new ordinary session (no re-authentication is
    /// needed to give up privilege); the privileged session is revoked.
    public func endPrivileged(_ session: ActiveSession) async throws -> IssuedSession? {
        guard session.attributes.privileged else { return nil }
        let now = clock.now()
        var attributes = session.attributes
        attributes.activeRoles = try await roles(of: session.user.id).ordinary
        attributes.privileged = false
        let issued = try await create(user: session.user.id, loa: session.record.levelOfAssurance, amr: session.record.amr,
                                      attributes: attributes, createdAt: now, absoluteExpiresAt: session.record.absoluteExpiresAt)
        _ = try await store.revokeSession(idHash: session.idHash, at: now, reason: "privileged work ended")
        return issued
    }

    /// Ends one session (sign-out or an administrator's revocation).
    @discardableResult
    public func revoke(idHash: String, reason: String) async throws -> Bool {
        try await store.revokeSession(idHash: idHash, at: clock.now(), reason: reason)
    }

    /// Ends every session of a user; returns how many.
    @discardableResult
    public func revokeAll(of user: UserID, reason: String) async throws -> Int {
        try await store.revokeSessions(of: user, at: clock.now(), reason: reason)
    }
}

extension JSONEncoder {
    /// Deterministic output: sorted keys, no escaped slashes.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
