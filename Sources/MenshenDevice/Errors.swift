// All public errors of MenshenDevice. Each is a code-carrying struct: equality
// is on the code only; the detail (what was wrong, which file, which field) and
// the source location are for logs and never decide behaviour. Errors are for
// faults and for malformed input; "not compliant", "certificate refused" and
// "report refused" are verdict values, not errors.

/// A version string that is not a Debian version (Debian Policy §5.6.12).
public struct DebianVersionError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case empty
        case tooLong
        case nonASCII
        case emptyEpoch
        case epochNotNumber
        case epochTooBig
        case emptyUpstreamVersion
        case upstreamMustStartWithDigit
        case invalidCharacterInUpstreamVersion
        case emptyRevision
        case invalidCharacterInRevision
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
        detail.isEmpty ? "DebianVersionError.\(code.rawValue)" : "DebianVersionError.\(code.rawValue): \(detail)"
    }
}

/// An OSV advisory file or directory that could not be loaded. `path` names
/// the file (or directory) at fault; nothing from the failed call is kept.
public struct OSVError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The directory could not be listed or a file could not be read.
        case unreadable
        /// A symbolic link or other non-regular entry where a file or directory was expected.
        case notARegularFile
        case fileTooLarge
        case tooManyFiles
        case totalSizeTooLarge
        case directoryTooDeep
        case jsonTooDeep
        case malformedJSON
        /// Well-formed JSON that breaks the OSV schema (missing or mistyped field, bad event).
        case invalidAdvisory
        /// A version in an ecosystem whose order we implement that does not parse.
        case invalidVersion
        case duplicateAdvisoryID
        case tooManyEntries
        case stringTooLong
    }
    public let code: Code
    /// The file or directory concerned.
    public let path: String
    public let detail: String
    public let file: String
    public let line: Int

    public init(_ code: Code, path: String, _ detail: String = "", file: String = #fileID, line: Int = #line) {
        self.code = code
        self.path = path
        self.detail = detail
        self.file = file
        self.line = line
    }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String {
        "OSVError.\(code.rawValue) in \(path)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}

/// A fault of the device CA: bad key material, a sealed key that does not
/// open, a CSR that cannot be used, a certificate that cannot be built.
public struct DeviceCAError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidKeyEncryptionKey
        case invalidSealedKey
        /// The sealed key does not open: wrong key-encryption key, tampered blob, or another CA's blob.
        case sealedKeyDoesNotOpen
        case invalidCADescription
        case invalidDeviceID
        case invalidValidity
        case malformedCSR
        case csrTooLarge
        case csrSignatureInvalid
        case unsupportedKeyAlgorithm
        case certificateCreationFailed
        /// Renewal of a certificate that another CA's verifier accepted.
        case certificateFromAnotherCA
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
        detail.isEmpty ? "DeviceCAError.\(code.rawValue)" : "DeviceCAError.\(code.rawValue): \(detail)"
    }
}

/// A posture report (or its envelope) that is malformed or over a limit.
/// A well-formed report that fails verification (bad signature, unknown
/// nonce, stale) is a ``PostureVerdict`` refusal, not this error.
public struct PostureReportError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case tooLarge
        case tooDeep
        case malformedEnvelope
        case malformedReport
        case invalidField
        case tooManyPackages
        case stringTooLong
        case unsupportedFormatVersion
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
        detail.isEmpty ? "PostureReportError.\(code.rawValue)" : "PostureReportError.\(code.rawValue): \(detail)"
    }
}

/// A compliance policy with a bad value. `path` is the key path in the policy
/// document (for example `classes.byod.minimum_os_versions.Debian`).
public struct CompliancePolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case unknownKey
        case missingDeviceClass
        case valueOutOfRange
        case invalidOSName
        case invalidMinimumVersion
        case invalidSeverity
    }
    public let code: Code
    public let path: String
    public let detail: String
    public let file: String
    public let line: Int

    public init(_ code: Code, path: String, _ detail: String = "", file: String = #fileID, line: Int = #line) {
        self.code = code
        self.path = path
        self.detail = detail
        self.file = file
        self.line = line
    }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String {
        "CompliancePolicyError.\(code.rawValue) at \(path)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}

/// Every problem found in a compliance policy document, thrown by
/// ``CompliancePolicy``'s decoding (``CompliancePolicy/validate()`` returns the same list).
public struct CompliancePolicyProblems: Error, Hashable, Sendable, CustomStringConvertible {
    public let problems: [CompliancePolicyError]
    public init(_ problems: [CompliancePolicyError]) { self.problems = problems }
    public var description: String {
        "the device compliance policy has \(problems.count) problem(s): " + problems.map(\.description).joined(separator: "; ")
    }
}

/// TPM 2.0 data (a marshalled `TPMT_PUBLIC`, a credential, TPM evidence) that
/// is malformed, over its size limits or not what Menshen accepts. Untrusted
/// input from an agent; the detail names the field.
public struct TPMError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case truncated, trailingBytes, tooLarge, unsupportedAlgorithm, invalidField, cryptoFailure
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
        detail.isEmpty ? "TPMError.\(code.rawValue)" : "TPMError.\(code.rawValue): \(detail)"
    }
}

/// The posture could not be collected (an unreadable `os-release`, a status file over its limits).
public struct PostureCollectionError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
