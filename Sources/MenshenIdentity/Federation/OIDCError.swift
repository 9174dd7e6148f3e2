/// A refused or failed OpenID Connect sign-in, or an unusable provider
/// configuration. House style (see `Errors.swift`): equality is on the code
/// only; `detail` and the source location are for logs and never decide
/// behaviour. `detail` never contains a token, a code, a secret or a nonce.
public struct OIDCError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        // configuration (a fault of the deployment, found before any user arrives)
        case invalidConfiguration
        case unknownProvider
        // discovery and JWKS documents
        case documentTooLarge
        case malformedDiscovery
        case issuerMismatch
        case insecureEndpoint
        case providerUnsupported
        case malformedJWKS
        // callback (the browser's return from the provider)
        case pendingAuthorizationExpired
        case malformedCallback
        case stateMismatch
        case providerError
        case responseIssuerMismatch
        // token endpoint
        case tokenEndpointError
        case malformedTokenResponse
        case unsupportedTokenType
        case missingIDToken
        // id_token
        case malformedIDToken
        case encryptedIDTokenUnsupported
        case unsupportedCriticalHeader
        case wrongTokenType
        case algorithmNotAllowed
        case unknownKeyID
        case keyMismatch
        case badSignature
        case audienceMismatch
        case untrustedAudience
        case authorizedPartyMismatch
        case expired
        case notYetValid
        case issuedInFuture
        case issuedTooLongAgo
        case nonceMismatch
        case missingClaim
        case malformedClaim
        case authenticationTooOld
        case acrNotSatisfied
        case accessTokenHashMismatch
        case assuranceNotMapped
        // transport (network half)
        case network
        case unexpectedHTTPStatus
    }

    public let code: Code
    public let detail: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ detail: String = "", file: String = #fileID, line: Int = #line) {
        self.code = code
        self.detail = detail
        self.file = file
        self.line = line
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String {
        detail.isEmpty ? "OIDCError.\(code.rawValue)" : "OIDCError.\(code.rawValue): \(detail)"
    }

    /// True when the user may simply try again (a fresh sign-in can succeed
    /// without anyone changing configuration): an expired or replayed
    /// callback, the provider's own refusal, a network failure.
    public var isRetryableByUser: Bool {
        switch code {
        case .pendingAuthorizationExpired, .stateMismatch, .providerError, .tokenEndpointError, .network,
             .unexpectedHTTPStatus, .authenticationTooOld:
            return true
        default:
            return false
        }
    }
}
