import Crypto
import X509

/// What the browser returns from `navigator.credentials.create()`, decoded
/// from base64url by the web layer.
public struct RegistrationResponse: Sendable, Hashable {
    /// `rawId`.
    public var credentialID: [UInt8]
    public var clientDataJSON: [UInt8]
    public var attestationObject: [UInt8]
    /// `response.getTransports()`, if given ("usb", "nfc", "ble", "internal", "hybrid").
    public var transports: [String]

    public init(credentialID: [UInt8], clientDataJSON: [UInt8], attestationObject: [UInt8], transports: [String] = []) {
        self.credentialID = credentialID
        self.clientDataJSON = clientDataJSON
        self.attestationObject = attestationObject
        self.transports = transports
    }
}

/// An attestation certificate chain (leaf first) that passed the packed
/// format's checks but has **not** been validated against trust anchors
/// (e.g. FIDO MDS roots). Chain validation needs a trust store and is the
/// caller's step; until then treat the authenticator model as unproven.
public struct UnverifiedAttestationChain: Sendable, Hashable {
    public let certificates: [Certificate]
}

public enum AttestationResult: Sendable, Hashable {
    case none
    case selfAttestation
    case basic(UnverifiedAttestationChain)

    public var kind: AttestationKind {
        switch self {
        case .none: return .none
        case .selfAttestation: return .selfAttestation
        case .basic: return .basic
        }
    }
}

/// The credential record to store after a successful registration.
public struct VerifiedCredential: Sendable, Hashable {
    public let credentialID: [UInt8]
    /// The COSE_Key bytes exactly as the authenticator sent them.
    public let publicKeyCOSE: [UInt8]
    public let algorithm: COSEAlgorithm
    public let signCount: UInt32
    public let backupEligible: Bool
    public let backupState: Bool
    /// Whether UV was performed at registration (`uvInitialized`).
    public let userVerified: Bool
    public let transports: [String]
    public let aaguid: [UInt8]
    public let attestation: AttestationResult
    /// Authenticator extension outputs (authData ED), for the caller to check
    /// against what it requested (e.g. `credProtect`); nil when absent.
    public let authenticatorExtensions: CBORValue?
}

/// Registration ceremony checks (WebAuthn L3 §7.1). Pure: no I/O; the
/// caller checks that the credential id is not already registered (step 23)
/// and stores the result.
public struct RegistrationVerifier: Sendable {
    public let configuration: RelyingPartyConfiguration

    public init(configuration: RelyingPartyConfiguration) {
        self.configuration = configuration
    }

    public func verify(_ response: RegistrationResponse, expectedChallenge: [UInt8]) -> Result<VerifiedCredential, WebAuthnError> {
        do {
            return .success(try check(response, expectedChallenge: expectedChallenge))
        } catch {
            return .failure(error)
        }
    }

    private func check(_ response: RegistrationResponse, expectedChallenge: [UInt8]) throws(WebAuthnError) -> VerifiedCredential {
        let clientData = try CollectedClientData(json: response.clientDataJSON)
        try clientData.check(type: "webauthn.create", challenge: expectedChallenge, configuration: configuration)
        let clientDataHash = Array(SHA256.hash(data: response.clientDataJSON))

        let object: CBORValue
        do {
            object = try CBORDecoder().decode(response.attestationObject)
        } catch {
            throw WebAuthnError(.malformedCBOR, "attestationObject: \(error)")
        }
        guard let format = object[text: "fmt"]?.textValue,
              let statement = object[text: "attStmt"], let statementEntries = statement.mapValue,
              let authDataBytes = object[text: "authData"]?.bytesValue
        else { throw WebAuthnError(.malformedAttestationObject, "fmt, attStmt and authData are required") }

        let authData = try AuthenticatorData(bytes: authDataBytes)
        try WebAuthnChecks.authenticatorData(authData, configuration: configuration)
        guard let attested = authData.attestedCredential else { throw WebAuthnError(.attestedCredentialDataMissing) }
        guard configuration.allowedAlgorithms.contains(attested.publicKey.algorithm) else {
            throw WebAuthnError(.algorithmNotAllowed, "\(attested.publicKey.algorithm)")
        }
        guard attested.credentialID == response.credentialID else { throw WebAuthnError(.credentialIDMismatch) }

        let signedData = authDataBytes + clientDataHash
        let attestation: AttestationResult
        switch format {
        case "none":
            guard statementEntries.isEmpty else { throw WebAuthnError(.malformedAttestationStatement, "none must be empty") }
            attestation = .none
        case "packed":
            attestation = try PackedAttestation.verify(statement: statement, signedData: signedData, attested: attested)
        default:
            throw WebAuthnError(.unsupportedAttestationFormat, format)
        }
        guard configuration.acceptedAttestation.contains(attestation.kind) else {
            throw WebAuthnError(.attestationNotAllowed, attestation.kind.rawValue)
        }
        return VerifiedCredential(
            credentialID: attested.credentialID, publicKeyCOSE: attested.publicKeyBytes, algorithm: attested.publicKey.algorithm,
            signCount: authData.signCount, backupEligible: authData.flags.contains(.backupEligible),
            backupState: authData.flags.contains(.backupState), userVerified: authData.flags.contains(.userVerified),
            transports: response.transports, aaguid: attested.aaguid, attestation: attestation,
            authenticatorExtensions: authData.extensions)
    }
}

/// Checks shared by both ceremonies.
enum WebAuthnChecks {
    static func authenticatorData(_ authData: AuthenticatorData, configuration: RelyingPartyConfiguration) throws(WebAuthnError) {
        let expected = Array(SHA256.hash(data: Array(configuration.rpID.utf8)))
        guard authData.rpIDHash == expected else { throw WebAuthnError(.wrongRPID) }
        guard authData.flags.contains(.userPresent) else { throw WebAuthnError(.userPresenceMissing) }
        if configuration.requireUserVerification && !authData.flags.contains(.userVerified) {
            throw WebAuthnError(.userVerificationMissing)
        }
        if authData.flags.contains(.backupState) && !authData.flags.contains(.backupEligible) {
            throw WebAuthnError(.backupStateWithoutEligibility)
        }
    }
}
