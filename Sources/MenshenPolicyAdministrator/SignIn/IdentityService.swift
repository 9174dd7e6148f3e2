import Foundation
import Synchronization
import MenshenCore
import MenshenIdentity
import MenshenStorage

/// Settings of the identity service.
public struct IdentitySettings: Sendable {
    /// Shown in authenticator apps and as the WebAuthn RP name (the organisation).
    public var issuer: String
    public var relyingParty: RelyingPartyConfiguration
    public var passwordPolicy: PasswordPolicy
    /// bcrypt cost (12 in production; tests may lower it, never below 4).
    public var bcryptCost: UInt8
    /// How long a ceremony (challenge, pending second factor, TOTP enrolment) stays valid.
    public var ceremonyLifetime: TimeInterval
    /// The lowest LoA reached by enrolment and credential management (ISO/IEC 29115:
    /// the overall LoA is the lowest phase). Default LoA3: remote proofing only.
    public var enrolmentLevel: LevelOfAssurance
    /// Wrong second-factor codes allowed within one pending sign-in.
    public var secondFactorAttempts: Int
    /// Seals TOTP seeds at rest (the key lives outside the database).
    public var secretBox: SecretBox

    public init(issuer: String, relyingParty: RelyingPartyConfiguration, secretBox: SecretBox, passwordPolicy: PasswordPolicy = .withMultiFactor,
                bcryptCost: UInt8 = PasswordHasher.defaultCost, ceremonyLifetime: TimeInterval = 300,
                enrolmentLevel: LevelOfAssurance = .loa3, secondFactorAttempts: Int = 3) {
        self.issuer = issuer; self.relyingParty = relyingParty; self.passwordPolicy = passwordPolicy
        self.bcryptCost = max(4, bcryptCost); self.ceremonyLifetime = ceremonyLifetime
        self.enrolmentLevel = enrolmentLevel; self.secondFactorAttempts = secondFactorAttempts; self.secretBox = secretBox
    }
}

/// A second factor a user can present.
public enum SecondFactor: String, Sendable, CaseIterable, Codable {
    case passkey, totp, recoveryCode = "recovery_code"
}

/// The result of a sign-in step. Failures are deliberately uninformative:
/// an unknown user, a disabled user and a wrong password look the same.
public enum SignInOutcome: Sendable {
    case signedIn(IssuedSession, SessionGrant)
    /// The password was right; one of `methods` must follow, quoting `pendingToken`.
    case secondFactorRequired(pendingToken: String, methods: [SecondFactor])
    case failed
    case throttled(retryAfter: TimeInterval)
}

/// A WebAuthn ceremony in progress: `handle` comes back with the response,
/// `optionsJSON` goes to `navigator.credentials.create/get` (base64url fields).
public struct CeremonyOptions: Sendable {
    public let handle: String
    public let optionsJSON: String
}

/// Why a passkey registration failed.
public enum RegistrationFailure: Error, Sendable, Equatable {
    case expired
    case malformed(String)
    case rejected(WebAuthnError)
    case alreadyRegistered
}

/// A TOTP enrolment in progress.
public struct PendingTOTPEnrolment: Sendable {
    public let handle: String
    public let enrollment: TOTPEnrollment
}

/// What factors a user has, for the account page and the CLI.
public struct FactorSummary: Sendable, Equatable {
    public struct Passkey: Sendable, Equatable {
        public let id: String
        public let label: String
        public let createdAt: Date
        public let lastUsedAt: Date?
        public let cloneWarning: Bool
    }
    public var hasPassword: Bool
    public var totpCount: Int
    public var passkeys: [Passkey]
    public var recoveryCodesRemaining: Int

    public var secondFactors: [SecondFactor] {
        var out: [SecondFactor] = []
        if !passkeys.isEmpty { out.append(.passkey) }
        if totpCount > 0 { out.append(.totp) }
        if recoveryCodesRemaining > 0 { out.append(.recoveryCode) }
        return out
    }
}

/// Sign-in, step-up and enrolment over the stored credentials.
public struct IdentityService: Sendable {
    public let store: any MenshenStore
    public let clock: any WallClock
    public let random: any RandomSource
    public let settings: IdentitySettings
    public let sessions: SessionManager
    public let throttle: SignInThrottle
    public let events: IdentityEvents
    private let hasher: PasswordHasher
    /// Verified against when the user is unknown, so timing does not tell
    /// (computed on first use: command-line tools never pay for it).
    private let decoy: DecoyHash

    public init(store: any MenshenStore, clock: any WallClock, random: any RandomSource, settings: IdentitySettings,
                sessions: SessionManager, throttle: SignInThrottle = SignInThrottle()) {
        self.store = store; self.clock = clock; self.random = random; self.settings = settings
        self.sessions = sessions; self.throttle = throttle
        self.events = IdentityEvents(store: store, clock: clock, random: random)
        self.hasher = PasswordHasher(cost: settings.bcryptCost)
        self.decoy = DecoyHash(hasher: hasher, random: random)
    }

    // MARK: Sign-in with a password first

    /// The first step: user name and password.
    public func signIn(userName rawName: String, password: String, source: String) async throws -> SignInOutcome {
        let userName = String(rawName.trimmingCharacters(in: .whitespaces).prefix(128))
        let keys = [SignInThrottle.accountKey(userName), SignInThrottle.sourceKey(source)]
        let now = clock.now()
        if let wait = await throttle.retryAfter(keys: keys, at: now) {
            try await events.authentication(.logon, user: nil, userName: userName, success: false, detail: "throttled", source: source)
            return .throttled(retryAfter: wait)
        }
        let user = IdentifierSyntax.isValid(userName) ? try await store.user(UserID(userName)) : nil
        var stored: (record: CredentialRecord, hash: String)?
        if let user { stored = try await passwordHash(of: user.id) }
        let verdict = hasher.verify(String(password.prefix(1024)), against: stored?.hash ?? decoy.value)
        guard let user, let stored, !user.disabled, verdict.isMatch else {
            await throttle.recordFailure(keys: keys, at: now)
            let detail = user == nil ? "unknown user" : user!.disabled ? "account disabled" : stored == nil ? "no password set" : "wrong password"
            try await events.authentication(.logon, user: user?.id, userName: userName, success: false, detail: detail, source: source,
                                            factors: ["pwd"])
            return .failed
        }
        await throttle.recordSuccess(keys: [SignInThrottle.accountKey(userName)])
        if verdict == .matchNeedsRehash {
            _ = try await store.updateCredential(id: stored.record.id, expectedVersion: stored.record.version,
                                                 data: try CredentialData.encode(CredentialData.Password(hash: hasher.hash(password))),
                                                 label: stored.record.label, lastUsedAt: now)
        }
        let methods = try await factorSummary(of: user.id).secondFactors
        if methods.isEmpty {
            return try await complete(user: user.id, factors: [.password], source: source, detail: "password only")
        }
        let token = try await newCeremony(Pending.kind, user: user.id, state: Pending(user: user.id.rawValue, attempts: 0, password: true),
                                          now: now)
        return .secondFactorRequired(pendingToken: token, methods: methods)
    }

    struct Pending: Codable {
        static let kind = "mfa"
        var user: String
        var attempts: Int
        var password: Bool
    }

    /// The second step with a TOTP code.
    public func continueWithTOTP(pendingToken: String, code: String, source: String) async throws -> SignInOutcome {
        try await continueSignIn(pendingToken: pendingToken, source: source, method: "totp") { user in
            try await verifyTOTP(user: user, code: code) ? .totp : nil
        }
    }

    /// The second step with a recovery code (the code is used up).
    public func continueWithRecoveryCode(pendingToken: String, code: String, source: String) async throws -> SignInOutcome {
        try await continueSignIn(pendingToken: pendingToken, source: source, method: "recovery code") { user in
            try await redeemRecoveryCode(user: user, code: code) ? .recoveryCode : nil
        }
    }

    private func continueSignIn(pendingToken: String, source: String, method: String,
                                verify: (UserID) async throws -> SignInFactor?) async throws -> SignInOutcome {
        let now = clock.now()
        guard pendingToken.utf8.count <= 64,
              let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(pendingToken), kind: Pending.kind, at: now),
              let pending = CredentialData.decode(Pending.self, state.data), let user = try await store.user(UserID(pending.user)),
              !user.disabled
        else { return .failed }
        let keys = [SignInThrottle.accountKey(user.id.rawValue), SignInThrottle.sourceKey(source)]
        if let wait = await throttle.retryAfter(keys: keys, at: now) {
            try await store.createFlowState(state)
            return .throttled(retryAfter: wait)
        }
        if let factor = try await verify(user.id) {
            await throttle.recordSuccess(keys: [keys[0]])
            return try await complete(user: user.id, factors: (pending.password ? [.password] : []) + [factor], source: source,
                                      detail: "password and \(method)")
        }
        await throttle.recordFailure(keys: keys, at: now)
        try await events.authentication(.logon, user: user.id, userName: user.id.rawValue, success: false,
                                        detail: "wrong \(method)", source: source)
        let methods = try await factorSummary(of: user.id).secondFactors
        if pending.attempts + 1 < settings.secondFactorAttempts {
            var next = pending
            next.attempts += 1
            var again = state
            again.data = try CredentialData.encode(next)
            try await store.createFlowState(again)
            return .secondFactorRequired(pendingToken: pendingToken, methods: methods)
        }
        return .failed
    }

    private func complete(user: UserID, factors: [SignInFactor], source: String, detail: String) async throws -> SignInOutcome {
        let outcome = AssuranceEvaluator.evaluate(factors: factors, enrolmentLevel: settings.enrolmentLevel)
        guard let grant = SessionGrant(userID: user, outcome: outcome) else { return .failed }
        let issued = try await sessions.issue(grant)
        try await events.authentication(.logon, user: user, userName: user.rawValue, success: true, detail: detail, source: source,
                                        factors: grant.amr, loa: grant.levelOfAssurance, sessionHash: issued.record.idHash)
        return .signedIn(issued, grant)
    }

    // MARK: Passkeys (sign-in, second factor, step-up)

    struct AssertionState: Codable {
        static let kind = "webauthn-get"
        var challenge: String
        /// Set when the ceremony is bound to one user (second factor or step-up).
        var user: String?
        var password: Bool
        var allow: [String]
    }

    /// Starts a passkey ceremony. Without a pending token it is username-less
    /// (any discoverable credential of any user); with one, it is the second
    /// factor of that pending sign-in, limited to the user's credentials.
    public func beginPasskey(pendingToken: String? = nil) async throws -> CeremonyOptions? {
        let now = clock.now()
        var user: UserID?
        var password = false
        if let pendingToken {
            guard pendingToken.utf8.count <= 64,
                  let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(pendingToken), kind: Pending.kind, at: now),
                  let pending = CredentialData.decode(Pending.self, state.data)
            else { return nil }
            user = UserID(pending.user); password = pending.password
        }
        return try await beginAssertion(user: user, password: password, at: now)
    }

    /// Starts a step-up passkey ceremony for the signed-in user.
    public func beginStepUpPasskey(_ session: ActiveSession) async throws -> CeremonyOptions? {
        try await beginAssertion(user: session.user.id, password: false, at: clock.now())
    }

    private func beginAssertion(user: UserID?, password: Bool, at now: Date) async throws -> CeremonyOptions? {
        var allow: [String] = []
        if let user {
            allow = try await store.credentials(of: user).filter { $0.kind == .webauthn }.map(\.id)
            if allow.isEmpty { return nil }
        }
        var generator = SourceGenerator(source: random)
        let challenge = WebAuthnChallenge.generate(using: &generator)
        let handle = try await newCeremony(AssertionState.kind, user: user,
                                           state: AssertionState(challenge: challenge.base64URL, user: user?.rawValue, password: password, allow: allow),
                                           now: now)
        var options: [String: Any] = [
            "challenge": challenge.base64URL, "rpId": settings.relyingParty.rpID,
            "timeout": Int(settings.ceremonyLifetime * 1000),
            "userVerification": settings.relyingParty.requireUserVerification ? "required" : "preferred",
        ]
        if !allow.isEmpty { options["allowCredentials"] = allow.map { ["type": "public-key", "id": $0] } }
        return CeremonyOptions(handle: handle, optionsJSON: try Self.json(options))
    }

    /// Finishes a passkey sign-in (username-less or as the second factor).
    public func finishPasskey(handle: String, response: String, source: String) async throws -> SignInOutcome {
        guard let (user, factor, password) = try await verifyAssertion(handle: handle, response: response, source: source, boundTo: nil)
        else { return .failed }
        return try await complete(user: user, factors: (password ? [.password] : []) + [factor], source: source,
                                  detail: password ? "password and passkey" : "passkey")
    }

    /// Finishes a step-up with a passkey; returns the grant to raise the session with.
    public func finishStepUpPasskey(_ session: ActiveSession, handle: String, response: String, source: String) async throws -> SessionGrant? {
        guard let (_, factor, _) = try await verifyAssertion(handle: handle, response: response, source: source, boundTo: session.user.id)
        else { return nil }
        return try await stepUpGrant(session, factor: factor, source: source, method: "passkey")
    }

    /// Switches to privileged work (``SessionManager/startPrivileged(from:)``: a new session acting in the
    /// privileged roles only, at most `privilegedLifetime` long, after a fresh LoA 3 proof) and records it:
    /// 3002, activity 99, `activity_name` `Privileged work start` — what the maturity assessment counts for 4.2.
    public func startPrivilegedWork(_ session: ActiveSession, source: String) async throws -> Result<IssuedSession, SessionManager.PrivilegeRefusal> {
        let result = try await sessions.startPrivileged(from: session)
        if case .success(let issued) = result {
            try await events.authentication(.other, user: session.user.id, userName: session.user.id.rawValue, success: true,
                                            detail: "privileged work started", source: source, factors: session.record.amr,
                                            loa: session.record.levelOfAssurance, sessionHash: issued.record.idHash, other: .privilegedStart)
        }
        return result
    }

    /// Leaves privileged work (``SessionManager/endPrivileged(_:)``) and records it (`Privileged work end`); nil when
    /// `session` is not a privileged one.
    public func endPrivilegedWork(_ session: ActiveSession, source: String) async throws -> IssuedSession? {
        guard let issued = try await sessions.endPrivileged(session) else { return nil }
        try await events.authentication(.other, user: session.user.id, userName: session.user.id.rawValue, success: true,
                                        detail: "privileged work ended", source: source, sessionHash: issued.record.idHash, other: .privilegedEnd)
        return issued
    }

    /// Step-up with a TOTP code.
    public func stepUpWithTOTP(_ session: ActiveSession, code: String, source: String) async throws -> SessionGrant? {
        let keys = [SignInThrottle.accountKey(session.user.id.rawValue), SignInThrottle.sourceKey(source)]
        if await throttle.retryAfter(keys: keys, at: clock.now()) != nil { return nil }
        guard try await verifyTOTP(user: session.user.id, code: code) else {
            await throttle.recordFailure(keys: keys, at: clock.now())
            try await events.authentication(.other, user: session.user.id, userName: session.user.id.rawValue, success: false,
                                            detail: "step-up: wrong totp", source: source, sessionHash: session.idHash, other: .stepUp)
            return nil
        }
        return try await stepUpGrant(session, factor: .totp, source: source, method: "totp")
    }

    private func stepUpGrant(_ session: ActiveSession, factor: SignInFactor, source: String, method: String) async throws -> SessionGrant? {
        // The knowledge factor proven at sign-in still counts within the session
        // (SP 800-63B §4.2.3 re-authentication); the new factor is fresh.
        let earlier: [SignInFactor] = session.record.amr.contains("pwd") ? [.password] : []
        let outcome = AssuranceEvaluator.evaluate(factors: earlier + [factor], enrolmentLevel: settings.enrolmentLevel)
        guard var grant = SessionGrant(userID: session.user.id, outcome: outcome) else { return nil }
        grant.idp = session.attributes.idp
        try await events.authentication(.other, user: session.user.id, userName: session.user.id.rawValue, success: true,
                                        detail: "step-up with \(method)", source: source, factors: grant.amr,
                                        loa: grant.levelOfAssurance, sessionHash: session.idHash, other: .stepUp)
        return grant
    }

    private func verifyAssertion(handle: String, response: String, source: String,
                                 boundTo expectedUser: UserID?) async throws -> (UserID, SignInFactor, Bool)? {
        let now = clock.now()
        guard handle.utf8.count <= 64,
              let record = try await store.takeFlowState(idHash: SecretHash.sha256Hex(handle), kind: AssertionState.kind, at: now),
              let state = CredentialData.decode(AssertionState.self, record.data),
              let challenge = Base64URL.decode(state.challenge)
        else { return nil }
        if let expectedUser, state.user != expectedUser.rawValue { return nil }
        let parsed: AuthenticationResponse
        do { parsed = try WebAuthnJSON.authentication(response) } catch {
            try await events.authentication(.logon, user: state.user.map(UserID.init), userName: state.user ?? "", success: false,
                                            detail: "malformed passkey response: \(error)", source: source)
            return nil
        }
        let credentialID = Base64URL.encode(parsed.credentialID)
        guard let credential = try await store.credential(id: credentialID), credential.kind == .webauthn,
              state.user == nil || credential.userID.rawValue == state.user,
              let data = CredentialData.decode(CredentialData.WebAuthn.self, credential.data),
              let storedCredential = data.stored(credentialID: parsed.credentialID),
              let user = try await store.user(credential.userID), !user.disabled
        else {
            try await events.authentication(.logon, user: state.user.map(UserID.init), userName: state.user ?? "", success: false,
                                            detail: "unknown passkey", source: source)
            return nil
        }
        let keys = [SignInThrottle.accountKey(user.id.rawValue), SignInThrottle.sourceKey(source)]
        if await throttle.retryAfter(keys: keys, at: now) != nil { return nil }
        var configuration = settings.relyingParty
        configuration.signCountPolicy = .flag
        let verdict = AuthenticationVerifier(configuration: configuration)
            .verify(parsed, expectedChallenge: challenge, credential: storedCredential,
                    allowCredentials: state.allow.isEmpty ? nil : state.allow.compactMap(Base64URL.decode))
        switch verdict {
        case .failure(let error):
            await throttle.recordFailure(keys: keys, at: now)
            try await events.authentication(.logon, user: user.id, userName: user.id.rawValue, success: false,
                                            detail: "passkey refused: \(error.code.rawValue)", source: source)
            return nil
        case .success(let assertion):
            var updated = data
            updated.backupState = assertion.backupState
            if case .regression(let stored, let received) = assertion.signCount {
                // A counter that went backwards hints at a cloned key: keep the
                // credential marked, refuse this sign-in, and tell the SOC.
                updated.cloneWarning = true
                _ = try await store.updateCredential(id: credential.id, expectedVersion: credential.version,
                                                     data: try CredentialData.encode(updated), label: credential.label,
                                                     lastUsedAt: credential.lastUsedAt)
                try await events.authentication(.logon, user: user.id, userName: user.id.rawValue, success: false,
                                                detail: "sign count went from \(stored) to \(received): possible cloned authenticator",
                                                source: source)
                return nil
            }
            updated.signCount = assertion.newSignCount
            guard try await store.updateCredential(id: credential.id, expectedVersion: credential.version,
                                                   data: try CredentialData.encode(updated), label: credential.label, lastUsedAt: now)
            else { return nil }
            await throttle.recordSuccess(keys: [keys[0]])
            return (user.id, .webAuthn(userVerified: assertion.userVerified, backupEligible: assertion.backupEligible), state.password)
        }
    }

    /// Stores single-use ceremony state under the hash of a fresh random
    /// handle and returns the handle (it goes to the browser; the store keeps only its hash).
    private func newCeremony(_ kind: String, user: UserID?, state: some Encodable, now: Date, until: Date? = nil) async throws -> String {
        let handle = random.token()
        try await store.createFlowState(FlowStateRecord(idHash: SecretHash.sha256Hex(handle), kind: kind, userID: user,
                                                        data: try CredentialData.encode(state), createdAt: now,
                                                        expiresAt: until ?? now.addingTimeInterval(settings.ceremonyLifetime)))
        return handle
    }

    // MARK: Factor checks

    private func passwordHash(of user: UserID) async throws -> (record: CredentialRecord, hash: String)? {
        guard let record = try await store.credentials(of: user).first(where: { $0.kind == .password }),
              let data = CredentialData.decode(CredentialData.Password.self, record.data)
        else { return nil }
        return (record, data.hash)
    }

    /// Checks a TOTP code against each of the user's TOTP credentials and moves
    /// the matching one's counter forward with a compare-and-set (a code is
    /// never accepted twice, even by two nodes at once).
    func verifyTOTP(user: UserID, code: String) async throws -> Bool {
        let now = clock.now()
        for record in try await store.credentials(of: user) where record.kind == .totp {
            guard let data = CredentialData.decode(CredentialData.TOTP.self, record.data),
                  let credential = data.credential(box: settings.secretBox, user: user) else { continue }
            if case .accepted(let updated) = credential.verify(code: String(code.prefix(16)), at: now) {
                return try await store.updateCredential(id: record.id, expectedVersion: record.version,
                                                        data: try CredentialData.encode(CredentialData.TOTP(updated, box: settings.secretBox, user: user)),
                                                        label: record.label, lastUsedAt: now)
            }
        }
        return false
    }

    func redeemRecoveryCode(user: UserID, code: String) async throws -> Bool {
        let now = clock.now()
        for record in try await store.credentials(of: user) where record.kind == .recoveryCodes {
            guard let set = CredentialData.decode(CredentialData.Recovery.self, record.data)?.set else { continue }
            if case .accepted(let remaining) = set.redeem(String(code.prefix(32))) {
                let ok = try await store.updateCredential(id: record.id, expectedVersion: record.version,
                                                          data: try CredentialData.encode(CredentialData.Recovery(remaining)),
                                                          label: record.label, lastUsedAt: now)
                if ok {
                    try await events.accountChange(.mfaFactorDisable, user: user, actor: user.rawValue,
                                                   detail: "recovery code used; \(remaining.remaining) left")
                }
                return ok
            }
        }
        return false
    }

    // MARK: Enrolment and management

    /// The user's factors.
    public func factorSummary(of user: UserID) async throws -> FactorSummary {
        var summary = FactorSummary(hasPassword: false, totpCount: 0, passkeys: [], recoveryCodesRemaining: 0)
        for c in try await store.credentials(of: user) {
            switch c.kind {
            case .password: summary.hasPassword = true
            case .totp: summary.totpCount += 1
            case .webauthn:
                let data = CredentialData.decode(CredentialData.WebAuthn.self, c.data)
                summary.passkeys.append(.init(id: c.id, label: c.label, createdAt: c.createdAt, lastUsedAt: c.lastUsedAt,
                                              cloneWarning: data?.cloneWarning ?? true))
            case .recoveryCodes:
                summary.recoveryCodesRemaining += CredentialData.decode(CredentialData.Recovery.self, c.data)?.hashes.count ?? 0
            }
        }
        return summary
    }

    /// Sets (or replaces) the user's password. Returns the policy problems; empty means it was stored.
    public func setPassword(user: UserRecord, password: String, actor: String) async throws -> [PasswordProblem] {
        let problems = settings.passwordPolicy.problems(password: password, userName: user.id.rawValue,
                                                        otherContext: [user.displayName, user.email ?? ""].filter { !$0.isEmpty })
        guard problems.isEmpty else { return problems }
        let data = try CredentialData.encode(CredentialData.Password(hash: hasher.hash(password)))
        let had = try await store.deleteCredentials(of: user.id, kinds: [.password]) > 0
        try await store.createCredential(CredentialRecord(id: random.uuid().uuidString.lowercased(), userID: user.id, kind: .password,
                                                          label: "password", data: data, createdAt: clock.now()))
        try await events.accountChange(had ? .passwordChange : .create, user: user.id, actor: actor,
                                       detail: had ? "password changed" : "password set")
        return []
    }

    struct CreationState: Codable {
        static let kind = "webauthn-create"
        var challenge: String
        var user: String
        var userHandle: String
    }

    /// Starts registering a passkey or security key for `user`.
    public func beginPasskeyRegistration(user: UserRecord) async throws -> CeremonyOptions {
        let now = clock.now()
        let existing = try await store.credentials(of: user.id).filter { $0.kind == .webauthn }
        let handleBytes = existing.compactMap { CredentialData.decode(CredentialData.WebAuthn.self, $0.data)?.userHandle }.first
            .flatMap(Base64URL.decode) ?? random.bytes(32)
        var generator = SourceGenerator(source: random)
        let challenge = WebAuthnChallenge.generate(using: &generator)
        let handle = try await newCeremony(CreationState.kind, user: user.id,
                                           state: CreationState(challenge: challenge.base64URL, user: user.id.rawValue,
                                                                userHandle: Base64URL.encode(handleBytes)),
                                           now: now)
        let algorithms = [COSEAlgorithm.es256, .eddsa, .rs256].filter { settings.relyingParty.allowedAlgorithms.contains($0) }
        let options: [String: Any] = [
            "challenge": challenge.base64URL,
            "rp": ["id": settings.relyingParty.rpID, "name": settings.issuer],
            "user": ["id": Base64URL.encode(handleBytes), "name": user.id.rawValue, "displayName": user.displayName],
            "pubKeyCredParams": algorithms.map { ["type": "public-key", "alg": $0.rawValue] },
            "timeout": Int(settings.ceremonyLifetime * 1000),
            "attestation": "direct",
            "authenticatorSelection": ["residentKey": "required", "requireResidentKey": true,
                                       "userVerification": settings.relyingParty.requireUserVerification ? "required" : "preferred"],
            "excludeCredentials": existing.map { ["type": "public-key", "id": $0.id] },
        ]
        return CeremonyOptions(handle: handle, optionsJSON: try Self.json(options))
    }

    /// Verifies and stores a new passkey.
    public func finishPasskeyRegistration(user: UserRecord, handle: String, response: String, label rawLabel: String,
                                          actor: String) async throws -> Result<CredentialRecord, RegistrationFailure> {
        let now = clock.now()
        guard handle.utf8.count <= 64,
              let record = try await store.takeFlowState(idHash: SecretHash.sha256Hex(handle), kind: CreationState.kind, at: now),
              let state = CredentialData.decode(CreationState.self, record.data), state.user == user.id.rawValue,
              let challenge = Base64URL.decode(state.challenge)
        else { return .failure(.expired) }
        let parsed: RegistrationResponse
        do { parsed = try WebAuthnJSON.registration(response) } catch { return .failure(.malformed(error.description)) }
        switch RegistrationVerifier(configuration: settings.relyingParty).verify(parsed, expectedChallenge: challenge) {
        case .failure(let error):
            try await events.accountChange(.mfaFactorEnable, user: user.id, actor: actor, detail: "passkey refused: \(error.code.rawValue)")
            return .failure(.rejected(error))
        case .success(let verified):
            let id = Base64URL.encode(verified.credentialID)
            if try await store.credential(id: id) != nil { return .failure(.alreadyRegistered) }
            let label = String(rawLabel.trimmingCharacters(in: .whitespacesAndNewlines).prefix(64))
            let data = CredentialData.WebAuthn(
                publicKey: Base64URL.encode(verified.publicKeyCOSE), algorithm: verified.algorithm.rawValue, signCount: verified.signCount,
                backupEligible: verified.backupEligible, backupState: verified.backupState, userHandle: state.userHandle,
                aaguid: verified.aaguid.map { String(format: "%02x", $0) }.joined(), transports: verified.transports,
                attestation: verified.attestation.kind.rawValue, cloneWarning: false)
            let credential = CredentialRecord(id: id, userID: user.id, kind: .webauthn, label: label.isEmpty ? "passkey" : label,
                                              data: try CredentialData.encode(data), createdAt: now)
            try await store.createCredential(credential)
            try await events.accountChange(.mfaFactorEnable, user: user.id, actor: actor,
                                           detail: "passkey \"\(credential.label)\" registered (\(data.attestation) attestation)")
            return .success(credential)
        }
    }

    struct TOTPEnrolmentState: Codable {
        static let kind = "totp-enrol"
        var user: String
        var sealedSecret: String
        var attempts: Int
    }

    /// Starts a TOTP enrolment: show `enrollment.qrCode()` and `keyURI.uri`.
    public func beginTOTPEnrolment(user: UserRecord) async throws -> PendingTOTPEnrolment {
        let now = clock.now()
        var generator = SourceGenerator(source: random)
        let enrollment = try TOTPEnrollment.begin(issuer: settings.issuer, accountName: user.id.rawValue, at: now,
                                                  validFor: settings.ceremonyLifetime * 2, using: &generator)
        let state = TOTPEnrolmentState(user: user.id.rawValue,
                                       sealedSecret: try settings.secretBox.seal(enrollment.secret.bytes, context: "totp-enrol:" + user.id.rawValue),
                                       attempts: 0)
        let handle = try await newCeremony(TOTPEnrolmentState.kind, user: user.id, state: state, now: now, until: enrollment.expiresAt)
        return PendingTOTPEnrolment(handle: handle, enrollment: enrollment)
    }

    /// The QR code and URI of a TOTP enrolment in progress (for re-display after a wrong code).
    public func confirmTOTPEnrolment(user: UserRecord, handle: String, code: String, actor: String) async throws -> Bool {
        let now = clock.now()
        guard handle.utf8.count <= 64,
              let record = try await store.takeFlowState(idHash: SecretHash.sha256Hex(handle), kind: TOTPEnrolmentState.kind, at: now),
              let state = CredentialData.decode(TOTPEnrolmentState.self, record.data), state.user == user.id.rawValue,
              let bytes = settings.secretBox.open(state.sealedSecret, context: "totp-enrol:" + user.id.rawValue),
              let secret = try? TOTPSecret(bytes: bytes)
        else { return false }
        let enrollment = TOTPEnrollment(keyURI: try OTPAuthURI(issuer: settings.issuer, accountName: user.id.rawValue, secret: secret,
                                                               configuration: .standard),
                                        expiresAt: record.expiresAt)
        guard case .confirmed(let credential) = enrollment.confirm(code: String(code.prefix(16)), at: now) else {
            if state.attempts + 1 < 5 {
                var again = record
                var next = state
                next.attempts += 1
                again.data = try CredentialData.encode(next)
                try await store.createFlowState(again)
            }
            return false
        }
        try await store.createCredential(CredentialRecord(id: random.uuid().uuidString.lowercased(), userID: user.id, kind: .totp,
                                                          label: "authenticator app",
                                                          data: try CredentialData.encode(CredentialData.TOTP(credential, box: settings.secretBox, user: user.id)),
                                                          createdAt: now, lastUsedAt: now))
        try await events.accountChange(.mfaFactorEnable, user: user.id, actor: actor, detail: "TOTP authenticator enrolled")
        return true
    }

    /// Replaces the user's recovery codes; returns the new codes (show once).
    public func regenerateRecoveryCodes(user: UserID, actor: String) async throws -> [String] {
        var generator = SourceGenerator(source: random)
        let (codes, set) = RecoveryCodes.generate(using: &generator)
        _ = try await store.deleteCredentials(of: user, kinds: [.recoveryCodes])
        try await store.createCredential(CredentialRecord(id: random.uuid().uuidString.lowercased(), userID: user, kind: .recoveryCodes,
                                                          label: "recovery codes", data: try CredentialData.encode(CredentialData.Recovery(set)),
                                                          createdAt: clock.now()))
        try await events.accountChange(.mfaFactorEnable, user: user, actor: actor, detail: "\(codes.count) recovery codes issued")
        return codes
    }

    /// Removes every second factor of a user and ends their sessions (the
    /// password stays). Returns how many factors were removed.
    public func resetMFA(user: UserID, actor: String) async throws -> Int {
        let removed = try await store.deleteCredentials(of: user, kinds: [.totp, .webauthn, .recoveryCodes])
        try await sessions.revokeAll(of: user, reason: "mfa reset by \(actor)")
        try await events.accountChange(.mfaFactorDisable, user: user, actor: actor, detail: "all second factors removed (\(removed))")
        return removed
    }

    /// Removes one passkey of a user.
    public func removePasskey(user: UserID, id: String, actor: String) async throws -> Bool {
        guard let c = try await store.credential(id: id), c.userID == user, c.kind == .webauthn else { return false }
        let ok = try await store.deleteCredential(id: id)
        if ok { try await events.accountChange(.mfaFactorDisable, user: user, actor: actor, detail: "passkey \"\(c.label)\" removed") }
        return ok
    }

    static func json(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }
}

/// A bcrypt hash of a random string at the configured cost, made once on first use.
final class DecoyHash: Sendable {
    private let hasher: PasswordHasher
    private let random: any RandomSource
    private let cached = Mutex<String?>(nil)
    init(hasher: PasswordHasher, random: any RandomSource) { self.hasher = hasher; self.random = random }
    var value: String {
        if let v = cached.withLock({ $0 }) { return v }
        let v = hasher.hash(random.token())
        return cached.withLock { current in
            if let current { return current }
            current = v
            return v
        }
    }
}

/// Adapts a `RandomSource` to the generator parameter of `MenshenIdentity`.
struct SourceGenerator: RandomNumberGenerator {
    let source: any RandomSource
    mutating func next() -> UInt64 {
        source.bytes(8).reduce(0) { ($0 << 8) | UInt64($1) }
    }
}
