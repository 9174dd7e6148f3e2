import Foundation

/// A user vouched for by an OpenID Provider, after every id_token check.
/// Key users by `issuer` + `subject` (OIDC Core §5.7), never by e-mail.
public struct FederatedIdentity: Sendable, Hashable {
    /// Where the level of assurance came from.
    public enum AssuranceSource: String, Sendable, Hashable {
        case acr
        case amr
    }

    public let providerID: String
    public let issuer: String
    public let subject: String
    public let email: String?
    /// The provider's `email_verified`; false when absent.
    public let emailVerified: Bool
    public let name: String?
    /// Menshen group ids from the provider's claim → group mapping, sorted, unique.
    public let groups: [String]
    public let userKind: OIDCProviderConfiguration.UserKind
    public let acr: String?
    /// The provider's `amr` values as sent.
    public let amr: [String]
    public let authTime: Date?
    public let issuedAt: Date
    public let expiresAt: Date
    public let levelOfAssurance: LevelOfAssurance
    public let authenticatorAssuranceLevel: AuthenticatorAssuranceLevel
    public let assuranceSource: AssuranceSource

    public init(providerID: String, issuer: String, subject: String, email: String?, emailVerified: Bool, name: String?,
                groups: [String], userKind: OIDCProviderConfiguration.UserKind, acr: String?, amr: [String],
                authTime: Date?, issuedAt: Date, expiresAt: Date, levelOfAssurance: LevelOfAssurance,
                authenticatorAssuranceLevel: AuthenticatorAssuranceLevel, assuranceSource: AssuranceSource) {
        self.providerID = providerID
        self.issuer = issuer
        self.subject = subject
        self.email = email
        self.emailVerified = emailVerified
        self.name = name
        self.groups = groups
        self.userKind = userKind
        self.acr = acr
        self.amr = amr
        self.authTime = authTime
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.levelOfAssurance = levelOfAssurance
        self.authenticatorAssuranceLevel = authenticatorAssuranceLevel
        self.assuranceSource = assuranceSource
    }

    /// The RFC 8176 values among `amr` (unknown values dropped), sorted.
    public var authenticationMethods: [AuthenticationMethodReference] {
        Set(amr.compactMap(AuthenticationMethodReference.init(rawValue:))).sorted()
    }
}

/// `acr`/`amr` → level of assurance for one provider (standards §7).
public enum FederatedAssurance {
    /// The level a provider's sign-in reached, or nil when nothing maps.
    ///
    /// 1. `acr == "0"`: the provider says the sign-in did not reach LoA1 → nil.
    /// 2. `acr` with an entry in `provider.acrLevels` → that level.
    /// 3. else the `amr` values mapped to factors (`provider.amrFactors`; a
    ///    key next to a user-verification value such as `pin` or `fpt` counts
    ///    as user-verified) and evaluated by `AssuranceEvaluator`.
    /// The result is capped at `provider.maximumLevelOfAssurance`.
    public static func evaluate(acr: String?, amr: [String], provider: OIDCProviderConfiguration)
        -> (level: LevelOfAssurance, source: FederatedIdentity.AssuranceSource)?
    {
        if acr == "0" { return nil }
        if let acr, let level = provider.acrLevels[acr] {
            return (min(level, provider.maximumLevelOfAssurance), .acr)
        }
        let userVerified = amr.contains(where: { provider.userVerificationAMR.contains($0) })
        let factors: [SignInFactor] = amr.compactMap { value in
            guard let factor = provider.amrFactors[value] else { return nil }
            if case .webAuthn(_, let backupEligible) = factor, userVerified {
                return .webAuthn(userVerified: true, backupEligible: backupEligible)
            }
            return factor
        }
        guard !factors.isEmpty else { return nil }
        let outcome = AssuranceEvaluator.evaluate(factors: factors, enrolmentLevel: provider.maximumLevelOfAssurance)
        return outcome.levelOfAssurance.map { ($0, .amr) }
    }
}
