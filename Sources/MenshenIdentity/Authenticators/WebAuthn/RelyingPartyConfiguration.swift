/// The relying party's policy for both ceremonies.
public struct RelyingPartyConfiguration: Sendable, Hashable {
    /// The RP ID (a registrable domain, e.g. `bank.example.tw`).
    public var rpID: String
    /// Exact origins accepted in clientDataJSON (`https://login.bank.example.tw`).
    public var allowedOrigins: Set<String>
    /// Algorithms offered in `pubKeyCredParams`; others are refused at registration.
    public var allowedAlgorithms: Set<COSEAlgorithm>
    /// When true (the default, FSC principle 1.2), UV must be set in both ceremonies.
    public var requireUserVerification: Bool
    /// Accept `crossOrigin: true` (only for an expected iframe). Default false.
    public var allowCrossOrigin: Bool
    /// L3 `topOrigin` values accepted when cross-origin is allowed.
    public var allowedTopOrigins: Set<String>
    /// Attestation kinds accepted at registration.
    public var acceptedAttestation: Set<AttestationKind>
    /// What a sign-count regression does (see `SignCountPolicy`).
    public var signCountPolicy: SignCountPolicy

    public init(
        rpID: String,
        allowedOrigins: Set<String>,
        allowedAlgorithms: Set<COSEAlgorithm> = Set(COSEAlgorithm.allCases),
        requireUserVerification: Bool = true,
        allowCrossOrigin: Bool = false,
        allowedTopOrigins: Set<String> = [],
        acceptedAttestation: Set<AttestationKind> = [.none, .selfAttestation, .basic],
        signCountPolicy: SignCountPolicy = .reject
    ) {
        self.rpID = rpID
        self.allowedOrigins = allowedOrigins
        self.allowedAlgorithms = allowedAlgorithms
        self.requireUserVerification = requireUserVerification
        self.allowCrossOrigin = allowCrossOrigin
        self.allowedTopOrigins = allowedTopOrigins
        self.acceptedAttestation = acceptedAttestation
        self.signCountPolicy = signCountPolicy
    }
}

/// A sign count that did not increase (both values non-zero or one non-zero
/// and new ≤ stored) hints at a cloned authenticator.
public enum SignCountPolicy: Sendable, Hashable {
    /// Fail closed: the assertion is refused with `signCountRegression`.
    case reject
    /// Accept, but report `SignCountStatus.regression` in the verdict so the
    /// caller can alert, step up or quarantine. Never silent.
    case flag
}

public enum AttestationKind: String, Sendable, Hashable, Codable {
    case none
    case selfAttestation
    case basic
}
