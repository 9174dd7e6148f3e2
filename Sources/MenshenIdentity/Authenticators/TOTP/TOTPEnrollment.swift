import Foundation

/// TOTP enrolment as a pure state machine:
/// `begin` (new secret, key URI, QR) → the user scans → `confirm` with the
/// first code → a `TOTPCredential` to store. The caller keeps the pending
/// enrolment in the session and stores the secret encrypted at rest.
public struct TOTPEnrollment: Sendable, Hashable {
    public let keyURI: OTPAuthURI
    /// After this instant `confirm` answers `.expired`.
    public let expiresAt: Date

    public var secret: TOTPSecret { keyURI.secret }
    public var configuration: TOTPConfiguration { keyURI.configuration }

    /// Starts an enrolment with a fresh 160-bit secret from `generator`.
    public static func begin(issuer: String, accountName: String, configuration: TOTPConfiguration = .standard,
                             at now: Date, validFor lifetime: TimeInterval = 600,
                             using generator: inout some RandomNumberGenerator) throws(OTPError) -> TOTPEnrollment {
        let secret = TOTPSecret.generate(using: &generator)
        let uri = try OTPAuthURI(issuer: issuer, accountName: accountName, secret: secret, configuration: configuration)
        return TOTPEnrollment(keyURI: uri, expiresAt: now.addingTimeInterval(max(0, lifetime)))
    }

    public init(keyURI: OTPAuthURI, expiresAt: Date) {
        self.keyURI = keyURI
        self.expiresAt = expiresAt
    }

    /// The QR code of the key URI (render with `svg()`).
    public func qrCode() throws(QRError) -> QRCode {
        try QRCode(text: keyURI.uri)
    }

    /// Checks the first code the user typed.
    public func confirm(code: String, at date: Date) -> TOTPEnrollmentOutcome {
        guard date < expiresAt else { return .expired }
        switch TOTPVerifier(configuration: configuration).verify(code: code, secret: secret, at: date, lastAcceptedCounter: nil) {
        case .accepted(let counter):
            return .confirmed(TOTPCredential(secret: secret, configuration: configuration, lastAcceptedCounter: counter))
        case .rejected(let reason):
            return .rejected(reason)
        }
    }
}

public enum TOTPEnrollmentOutcome: Sendable, Hashable {
    /// Store this credential; the confirming code is already consumed.
    case confirmed(TOTPCredential)
    /// Let the user try again (the caller throttles attempts).
    case rejected(TOTPRejection)
    /// Start over with `begin`.
    case expired
}

/// A stored TOTP authenticator: secret, parameters and replay state.
public struct TOTPCredential: Sendable, Hashable {
    public let secret: TOTPSecret
    public let configuration: TOTPConfiguration
    /// The time step of the last accepted code; codes for it or earlier are replays.
    public let lastAcceptedCounter: UInt64?

    public init(secret: TOTPSecret, configuration: TOTPConfiguration, lastAcceptedCounter: UInt64?) {
        self.secret = secret
        self.configuration = configuration
        self.lastAcceptedCounter = lastAcceptedCounter
    }

    /// Verifies a sign-in code. On `.accepted`, store the returned credential
    /// (its counter moved forward) before reporting success to the user.
    public func verify(code: String, at date: Date) -> TOTPCredentialVerification {
        switch TOTPVerifier(configuration: configuration).verify(code: code, secret: secret, at: date, lastAcceptedCounter: lastAcceptedCounter) {
        case .accepted(let counter):
            return .accepted(updated: TOTPCredential(secret: secret, configuration: configuration, lastAcceptedCounter: counter))
        case .rejected(let reason):
            return .rejected(reason)
        }
    }
}

public enum TOTPCredentialVerification: Sendable, Hashable {
    case accepted(updated: TOTPCredential)
    case rejected(TOTPRejection)
}
