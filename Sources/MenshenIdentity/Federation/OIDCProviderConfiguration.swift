import Foundation

/// One OpenID Provider (IdP) that Menshen accepts users from, e.g. the
/// institution's Entra ID for staff or a partner's IdP for its vendors
/// (guideline principles 1.3/1.4: external users on the same assurance scale).
///
/// Built by the configuration layer; `validate()` reports the first problem.
public struct OIDCProviderConfiguration: Sendable, Hashable {
    /// The kind of user this provider vouches for (mirrors the directory's user
    /// kinds; MenshenIdentity does not depend on the storage module).
    public enum UserKind: String, Sendable, Hashable, CaseIterable, Codable {
        case `internal`
        case vendor
        case partner
    }

    /// Client authentication at the token endpoint (OIDC Core §9).
    public enum ClientAuthentication: String, Sendable, Hashable, CaseIterable, Codable {
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"
        /// A public client: `client_id` in the body, no secret (PKCE protects the code).
        case none
    }

    /// Maps the values of one id_token claim (a string or an array of strings)
    /// to Menshen group ids. Values without an entry are ignored.
    public struct GroupMapping: Sendable, Hashable {
        public var claim: String
        /// claim value → Menshen group id
        public var groups: [String: String]
        public init(claim: String, groups: [String: String]) {
            self.claim = claim
            self.groups = groups
        }
    }

    /// Every JWS algorithm the validator knows. `none` is never among them.
    public static let supportedSigningAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
        "HS256", "HS384", "HS512",
    ]
    static let symmetricAlgorithms: Set<String> = ["HS256", "HS384", "HS512"]

    /// RFC 7518 §3.2: an HMAC key at least as long as the hash output.
    static func minimumSecretBytes(for alg: String) -> Int {
        switch alg {
        case "HS384": return 48
        case "HS512": return 64
        default: return 32
        }
    }

    /// OpenID EAP ACR Values 1.0: `phr` (phishing-resistant) ≈ LoA3,
    /// `phrh` (phishing-resistant, hardware-protected key) ≈ LoA4 (standards §7).
    public static let eapACRLevels: [String: LevelOfAssurance] = ["phr": .loa3, "phrh": .loa4]

    /// RFC 8176 `amr` values → the factor they stand for, per standards §7:
    /// knowledge (`pwd`, `pin`), one-time passwords (`otp`), keys (`swk`
    /// software, `hwk`/`sc` hardware). Deliberately absent: `sms`/`tel`
    /// (excluded by principle 1.2), `kba` (banned by SP 800-63-4), `mfa` (a bare
    /// claim; trust it from a vetted IdP through an `acr` mapping instead) and
    /// `geo`/`rba`/`wia`/`user`/`mca`, which never raise the level.
    public static let standardAMRFactors: [String: SignInFactor] = [
        "pwd": .password,
        "pin": .password,
        "otp": .totp,
        "swk": .webAuthn(userVerified: false, backupEligible: true),
        "hwk": .webAuthn(userVerified: false, backupEligible: false),
        "sc": .webAuthn(userVerified: false, backupEligible: false),
    ]

    /// `amr` values that, next to a key (`swk`/`hwk`/`sc`), mean the key was
    /// unlocked by the user (a PIN or biometric): the key counts as user-verified.
    public static let standardUserVerificationAMR: Set<String> = ["pin", "fpt", "face", "iris", "retina", "vbm"]

    /// Stable id used in URLs, pending authorizations and logs (`[a-z0-9-]`).
    public var id: String
    public var displayNameZhTW: String
    public var displayNameEnglish: String
    /// The issuer identifier; the discovery document and every id_token must name it exactly.
    public var issuer: String
    public var clientID: String
    public var clientSecret: String?
    /// Exactly as registered at the provider.
    public var redirectURI: String
    public var scopes: [String]
    /// JWS algorithms accepted for id_tokens (the token header's `alg` must be one of them).
    public var allowedSigningAlgorithms: [String]
    /// HS256/384/512 (keyed with the client secret) may appear in
    /// `allowedSigningAlgorithms` only when this is true and a secret is configured.
    public var allowsSymmetricSigning: Bool
    /// Allowed clock difference for `exp`, `iat`, `nbf` and `auth_time`, in seconds.
    public var clockSkew: TimeInterval
    /// The longest accepted time between the id_token's `iat` and now.
    public var maximumTokenAge: TimeInterval
    /// How long a started sign-in may take before its callback is refused.
    public var pendingAuthorizationLifetime: TimeInterval
    /// Audiences besides our client id that an id_token may name; any other extra audience is refused.
    public var trustedAdditionalAudiences: Set<String>
    public var groupMappings: [GroupMapping]
    /// `acr` value → level. Consulted first; `"0"` always means below LoA1.
    public var acrLevels: [String: LevelOfAssurance]
    /// `amr` value → factor; consulted when `acr` is absent or not mapped.
    public var amrFactors: [String: SignInFactor]
    public var userVerificationAMR: Set<String>
    public var userKind: UserKind
    /// The highest level this provider may assert (its enrolment and
    /// credential management bound it: ISO/IEC 29115 takes the lowest phase).
    public var maximumLevelOfAssurance: LevelOfAssurance
    /// nil: chosen from the discovery document (basic preferred, then post).
    public var tokenEndpointAuthentication: ClientAuthentication?
    /// `acr_values` sent with every authorization request (nil: none).
    public var requestedACRValues: [String]?
    /// Permits `http://localhost`, `http://127.0.0.1` and `http://[::1]` issuers
    /// and endpoints. For tests against a local provider only.
    public var allowsInsecureLoopback: Bool

    public init(
        id: String,
        displayNameZhTW: String,
        displayNameEnglish: String,
        issuer: String,
        clientID: String,
        clientSecret: String? = nil,
        redirectURI: String,
        scopes: [String] = ["openid", "profile", "email"],
        allowedSigningAlgorithms: [String] = ["RS256", "ES256"],
        allowsSymmetricSigning: Bool = false,
        clockSkew: TimeInterval = 60,
        maximumTokenAge: TimeInterval = 600,
        pendingAuthorizationLifetime: TimeInterval = 600,
        trustedAdditionalAudiences: Set<String> = [],
        groupMappings: [GroupMapping] = [],
        acrLevels: [String: LevelOfAssurance] = OIDCProviderConfiguration.eapACRLevels,
        amrFactors: [String: SignInFactor] = OIDCProviderConfiguration.standardAMRFactors,
        userVerificationAMR: Set<String> = OIDCProviderConfiguration.standardUserVerificationAMR,
        userKind: UserKind,
        maximumLevelOfAssurance: LevelOfAssurance,
        tokenEndpointAuthentication: ClientAuthentication? = nil,
        requestedACRValues: [String]? = nil,
        allowsInsecureLoopback: Bool = false
    ) {
        self.id = id
        self.displayNameZhTW = displayNameZhTW
        self.displayNameEnglish = displayNameEnglish
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.allowedSigningAlgorithms = allowedSigningAlgorithms
        self.allowsSymmetricSigning = allowsSymmetricSigning
        self.clockSkew = clockSkew
        self.maximumTokenAge = maximumTokenAge
        self.pendingAuthorizationLifetime = pendingAuthorizationLifetime
        self.trustedAdditionalAudiences = trustedAdditionalAudiences
        self.groupMappings = groupMappings
        self.acrLevels = acrLevels
        self.amrFactors = amrFactors
        self.userVerificationAMR = userVerificationAMR
        self.userKind = userKind
        self.maximumLevelOfAssurance = maximumLevelOfAssurance
        self.tokenEndpointAuthentication = tokenEndpointAuthentication
        self.requestedACRValues = requestedACRValues
        self.allowsInsecureLoopback = allowsInsecureLoopback
    }

    /// The display name for a language tag (`zh…` → Traditional Chinese, else English).
    public func displayName(forLanguage tag: String) -> String {
        tag.lowercased().hasPrefix("zh") ? displayNameZhTW : displayNameEnglish
    }

    /// The discovery document's address (OIDC Discovery §4: issuer without a trailing slash).
    public var discoveryURL: String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// Throws `OIDCError.invalidConfiguration` naming the first problem.
    public func validate() throws {
        func fail(_ detail: String) -> OIDCError { OIDCError(.invalidConfiguration, "provider \(id): \(detail)") }
        guard !id.isEmpty, id.count <= 64,
              id.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
        else { throw OIDCError(.invalidConfiguration, "provider id must be 1-64 characters of a-z, 0-9 and -") }
        guard !displayNameZhTW.isEmpty, !displayNameEnglish.isEmpty else { throw fail("display names must not be empty") }
        do {
            _ = try OIDCURLRules.endpoint(issuer, allowsInsecureLoopback: allowsInsecureLoopback, name: "issuer")
            _ = try OIDCURLRules.endpoint(redirectURI, allowsInsecureLoopback: allowsInsecureLoopback, name: "redirect URI")
        } catch let error as OIDCError {
            throw fail(error.detail)
        }
        guard URLComponents(string: issuer)?.query == nil else { throw fail("issuer must not have a query") }
        guard !clientID.isEmpty else { throw fail("client id must not be empty") }
        if let clientSecret, clientSecret.isEmpty { throw fail("client secret is empty (omit it for a public client)") }
        guard scopes.contains("openid") else { throw fail("scopes must include openid") }
        guard scopes.allSatisfy({ !$0.isEmpty && OIDCURLRules.isScopeToken($0) }) else {
            throw fail("a scope contains a character outside RFC 6749 §3.3")
        }
        guard !allowedSigningAlgorithms.isEmpty else { throw fail("no signing algorithm allowed") }
        for alg in allowedSigningAlgorithms {
            guard alg != "none", Self.supportedSigningAlgorithms.contains(alg) else {
                throw fail("signing algorithm \(alg) is not supported")
            }
            if Self.symmetricAlgorithms.contains(alg) {
                guard allowsSymmetricSigning, let clientSecret else {
                    throw fail("\(alg) needs a client secret and allowsSymmetricSigning")
                }
                guard clientSecret.utf8.count >= Self.minimumSecretBytes(for: alg) else {
                    throw fail("\(alg) needs a client secret of at least \(Self.minimumSecretBytes(for: alg)) bytes")
                }
            }
        }
        guard clockSkew >= 0, clockSkew <= 300 else { throw fail("clock skew must be 0-300 seconds") }
        guard maximumTokenAge > 0, pendingAuthorizationLifetime > 0 else { throw fail("lifetimes must be positive") }
        guard acrLevels["0"] == nil else { throw fail("acr \"0\" means below LoA1 and cannot be mapped") }
        if tokenEndpointAuthentication == ClientAuthentication.none, clientSecret != nil {
            throw fail("token endpoint authentication none with a client secret configured")
        }
        if let method = tokenEndpointAuthentication, method != .none, clientSecret == nil {
            throw fail("\(method.rawValue) needs a client secret")
        }
        for mapping in groupMappings where mapping.claim.isEmpty {
            throw fail("a group mapping has an empty claim name")
        }
    }
}

/// Address rules for issuers and endpoints.
enum OIDCURLRules {
    static let loopbackHosts: Set<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]

    /// An absolute https URL (or http on a loopback host when allowed), with a
    /// host, without user information or fragment.
    static func endpoint(_ text: String, allowsInsecureLoopback: Bool, name: String) throws -> URL {
        guard text.utf8.count <= 2048, let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), let host = components.host, !host.isEmpty,
              let url = components.url
        else { throw OIDCError(.insecureEndpoint, "\(name) is not an absolute URL") }
        guard components.user == nil, components.password == nil, components.fragment == nil else {
            throw OIDCError(.insecureEndpoint, "\(name) must not carry user information or a fragment")
        }
        switch scheme {
        case "https":
            return url
        case "http" where allowsInsecureLoopback && loopbackHosts.contains(host.lowercased()):
            return url
        default:
            throw OIDCError(.insecureEndpoint, "\(name) must use https")
        }
    }

    /// RFC 6749 §3.3 scope-token characters: %x21 / %x23-5B / %x5D-7E.
    static func isScopeToken(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x21 || ($0 >= 0x23 && $0 <= 0x5B) || ($0 >= 0x5D && $0 <= 0x7E) }
    }
}
