// All public errors of MenshenIdentity. Each is a code-carrying struct: equality
// is on the code only; the context (byte offset, detail, source location) is for
// logs and never decides behaviour. Errors are for faults and for malformed or
// refused input; ordinary "wrong code"/"wrong password" outcomes are verdict values.

/// A CBOR decoding failure, with the byte offset where it was detected.
public struct CBORError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case truncated
        case trailingBytes
        case indefiniteLength
        case reservedAdditionalInformation
        case nonCanonicalEncoding
        case unsortedMapKeys
        case duplicateMapKey
        case unsupportedType
        case invalidUTF8
        case tooLarge
        case tooDeep
        case tooManyItems
    }
    public let code: Code
    /// Offset in the input (from the start of the buffer given to the decoder).
    public let offset: Int
    public let file: String
    public let line: Int

    public init(_ code: Code, offset: Int, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.offset = offset
        self.file = file
        self.line = line
    }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { "CBORError.\(code.rawValue) at byte \(offset)" }
}

/// A refused or malformed WebAuthn ceremony.
public struct WebAuthnError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        // client data
        case malformedClientData
        case wrongType
        case challengeMismatch
        case wrongOrigin
        case crossOriginNotAllowed
        case wrongTopOrigin
        // authenticator data
        case malformedAuthenticatorData
        case wrongRPID
        case userPresenceMissing
        case userVerificationMissing
        case backupStateWithoutEligibility
        case backupEligibilityChanged
        case attestedCredentialDataMissing
        case unexpectedAttestedCredentialData
        case credentialIDMismatch
        case credentialIDTooLong
        case credentialNotAllowed
        case userHandleMismatch
        // keys and signatures
        case malformedCBOR
        case malformedCOSEKey
        case unsupportedAlgorithm
        case algorithmNotAllowed
        case badSignature
        case signCountRegression
        // attestation
        case malformedAttestationObject
        case unsupportedAttestationFormat
        case malformedAttestationStatement
        case attestationAlgorithmMismatch
        case attestationNotAllowed
        case invalidAttestationCertificate
        case attestationAAGUIDMismatch
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
        detail.isEmpty ? "WebAuthnError.\(code.rawValue)" : "WebAuthnError.\(code.rawValue): \(detail)"
    }
}

/// Invalid one-time-password configuration or secret (a fault of the caller or
/// of stored data, not a wrong code).
public struct OTPError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidBase32
        case secretTooShort
        case unsupportedDigits
        case unsupportedPeriod
        case invalidLabel
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
        detail.isEmpty ? "OTPError.\(code.rawValue)" : "OTPError.\(code.rawValue): \(detail)"
    }
}

/// QR encoding failure.
public struct QRError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The payload does not fit the largest supported version.
        case dataTooLong
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
        detail.isEmpty ? "QRError.\(code.rawValue)" : "QRError.\(code.rawValue): \(detail)"
    }
}
