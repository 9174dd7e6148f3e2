import Crypto

/// What the browser returns from `navigator.credentials.get()`.
public struct AuthenticationResponse: Sendable, Hashable {
    public var credentialID: [UInt8]
    public var clientDataJSON: [UInt8]
    public var authenticatorData: [UInt8]
    public var signature: [UInt8]
    public var userHandle: [UInt8]?

    public init(credentialID: [UInt8], clientDataJSON: [UInt8], authenticatorData: [UInt8], signature: [UInt8], userHandle: [UInt8]? = nil) {
        self.credentialID = credentialID
        self.clientDataJSON = clientDataJSON
        self.authenticatorData = authenticatorData
        self.signature = signature
        self.userHandle = userHandle
    }
}

/// The stored credential record the assertion is checked against.
public struct StoredCredential: Sendable, Hashable {
    public var credentialID: [UInt8]
    public var publicKeyCOSE: [UInt8]
    public var signCount: UInt32
    public var backupEligible: Bool
    public var backupState: Bool
    /// The WebAuthn user handle of the owning account.
    public var userHandle: [UInt8]

    public init(credentialID: [UInt8], publicKeyCOSE: [UInt8], signCount: UInt32, backupEligible: Bool, backupState: Bool, userHandle: [UInt8]) {
        self.credentialID = credentialID
        self.publicKeyCOSE = publicKeyCOSE
        self.signCount = signCount
        self.backupEligible = backupEligible
        self.backupState = backupState
        self.userHandle = userHandle
    }

    public init(_ verified: VerifiedCredential, userHandle: [UInt8]) {
        self.init(credentialID: verified.credentialID, publicKeyCOSE: verified.publicKeyCOSE, signCount: verified.signCount,
                  backupEligible: verified.backupEligible, backupState: verified.backupState, userHandle: userHandle)
    }
}

public enum SignCountStatus: Sendable, Hashable {
    /// The counter increased.
    case increased
    /// Both counters are zero: the authenticator does not count (common for synced passkeys).
    case notSupported
    /// new ≤ stored with one of them non-zero: possibly a cloned authenticator.
    /// Only returned under `SignCountPolicy.flag`.
    case regression(stored: UInt32, received: UInt32)
}

/// A successful assertion. Store `newSignCount` (unless `signCount` is a
/// regression and your policy says otherwise) and `backupState`.
public struct VerifiedAssertion: Sendable, Hashable {
    public let credentialID: [UInt8]
    public let newSignCount: UInt32
    public let signCount: SignCountStatus
    public let userVerified: Bool
    public let backupEligible: Bool
    public let backupState: Bool
    /// Authenticator extension outputs (authData ED), nil when absent.
    public let authenticatorExtensions: CBORValue?
}

/// Authentication ceremony checks (WebAuthn L3 §7.2). Pure: no I/O.
public struct AuthenticationVerifier: Sendable {
    public let configuration: RelyingPartyConfiguration

    public init(configuration: RelyingPartyConfiguration) {
        self.configuration = configuration
    }

    /// - Parameter allowCredentials: the ids sent in `allowCredentials`, or
    ///   nil for a discoverable-credential (username-less) request.
    public func verify(_ response: AuthenticationResponse, expectedChallenge: [UInt8], credential: StoredCredential,
                       allowCredentials: [[UInt8]]? = nil) -> Result<VerifiedAssertion, WebAuthnError> {
        do {
            return .success(try check(response, expectedChallenge: expectedChallenge, credential: credential, allowCredentials: allowCredentials))
        } catch {
            return .failure(error)
        }
    }

    private func check(_ response: AuthenticationResponse, expectedChallenge: [UInt8], credential: StoredCredential,
                       allowCredentials: [[UInt8]]?) throws(WebAuthnError) -> VerifiedAssertion {
        if let allowCredentials, !allowCredentials.contains(response.credentialID) {
            throw WebAuthnError(.credentialNotAllowed)
        }
        guard response.credentialID == credential.credentialID else { throw WebAuthnError(.credentialIDMismatch) }
        if let userHandle = response.userHandle, !userHandle.isEmpty, userHandle != credential.userHandle {
            throw WebAuthnError(.userHandleMismatch)
        }
        let clientData = try CollectedClientData(json: response.clientDataJSON)
        try clientData.check(type: "webauthn.get", challenge: expectedChallenge, configuration: configuration)

        let authData = try AuthenticatorData(bytes: response.authenticatorData)
        try WebAuthnChecks.authenticatorData(authData, configuration: configuration)
        guard authData.attestedCredential == nil else { throw WebAuthnError(.unexpectedAttestedCredentialData) }
        let backupEligible = authData.flags.contains(.backupEligible)
        guard backupEligible == credential.backupEligible else { throw WebAuthnError(.backupEligibilityChanged) }

        let key = try COSEPublicKey(bytes: credential.publicKeyCOSE)
        let signedData = response.authenticatorData + Array(SHA256.hash(data: response.clientDataJSON))
        guard key.isValidSignature(response.signature, for: signedData) else { throw WebAuthnError(.badSignature) }

        let received = authData.signCount
        let status: SignCountStatus
        if received == 0 && credential.signCount == 0 {
            status = .notSupported
        } else if received > credential.signCount {
            status = .increased
        } else {
            switch configuration.signCountPolicy {
            case .reject:
                throw WebAuthnError(.signCountRegression, "stored \(credential.signCount), received \(received)")
            case .flag:
                status = .regression(stored: credential.signCount, received: received)
            }
        }
        return VerifiedAssertion(credentialID: credential.credentialID, newSignCount: received, signCount: status,
                                 userVerified: authData.flags.contains(.userVerified), backupEligible: backupEligible,
                                 backupState: authData.flags.contains(.backupState), authenticatorExtensions: authData.extensions)
    }
}
