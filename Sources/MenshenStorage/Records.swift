import Foundation
import MenshenCore

/// Internal staff or an external party (principle 1.3: external users are held
/// to an assurance level no lower than internal users).
public enum UserKind: String, Sendable, Codable, CaseIterable {
    case `internal`
    case vendor
    case partner
}

/// A user account.
public struct UserRecord: Sendable, Equatable, Codable {
    public var id: UserID
    public var displayName: String
    public var email: String?
    public var kind: UserKind
    public var disabled: Bool
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UserID, displayName: String, email: String? = nil, kind: UserKind = .internal,
                disabled: Bool = false, createdAt: Date, updatedAt: Date? = nil) {
        self.id = id; self.displayName = displayName; self.email = email; self.kind = kind
        self.disabled = disabled; self.createdAt = createdAt; self.updatedAt = updatedAt ?? createdAt
    }
}

/// A group of users.
public struct GroupRecord: Sendable, Equatable, Codable {
    public var id: GroupID
    public var displayName: String
    public init(id: GroupID, displayName: String) { self.id = id; self.displayName = displayName }
}

/// How dangerous a role is. Privileged roles are never held in the same
/// session as ordinary work (principle 4.1).
public enum RiskTier: String, Sendable, Codable, CaseIterable, Comparable {
    case standard, sensitive, privileged
    private var rank: Int { switch self { case .standard: 0; case .sensitive: 1; case .privileged: 2 } }
    public static func < (l: RiskTier, r: RiskTier) -> Bool { l.rank < r.rank }
}

/// A role with its risk tier.
public struct RoleRecord: Sendable, Equatable, Codable {
    public var id: RoleID
    public var displayName: String
    public var riskTier: RiskTier
    public init(id: RoleID, displayName: String, riskTier: RiskTier) {
        self.id = id; self.displayName = displayName; self.riskTier = riskTier
    }
}

/// A server-side session. Only the SHA-256 of the opaque session id is ever
/// stored (`idHash`); the id itself lives only in the user's cookie.
public struct SessionRecord: Sendable, Equatable, Codable {
    public var idHash: String
    public var userID: UserID
    public var createdAt: Date
    public var lastSeenAt: Date
    public var idleExpiresAt: Date
    public var absoluteExpiresAt: Date
    /// ISO/IEC 29115 level of assurance (1–4) reached at sign-in or step-up.
    public var levelOfAssurance: Int
    /// Authentication methods references (RFC 8176), e.g. `["pwd", "hwk"]`.
    public var amr: [String]
    /// Free-form session attributes for policy (JSON object text).
    public var attributesJSON: String
    public var revokedAt: Date?
    public var revokedReason: String?

    public init(idHash: String, userID: UserID, createdAt: Date, lastSeenAt: Date? = nil,
                idleExpiresAt: Date, absoluteExpiresAt: Date, levelOfAssurance: Int, amr: [String],
                attributesJSON: String = "{}", revokedAt: Date? = nil, revokedReason: String? = nil) {
        self.idHash = idHash; self.userID = userID; self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt ?? createdAt; self.idleExpiresAt = idleExpiresAt
        self.absoluteExpiresAt = absoluteExpiresAt; self.levelOfAssurance = levelOfAssurance
        self.amr = amr; self.attributesJSON = attributesJSON; self.revokedAt = revokedAt
        self.revokedReason = revokedReason
    }

    /// A session is usable while not revoked and before both expiries.
    public func isActive(at now: Date) -> Bool {
        revokedAt == nil && now < idleExpiresAt && now < absoluteExpiresAt
    }
}

/// One version of a named Cedar policy document. Versions are append-only:
/// saving a policy never overwrites its history.
public struct PolicyVersionRecord: Sendable, Equatable, Codable {
    public var policyID: PolicyID
    public var version: Int
    public var text: String
    public var author: String
    public var comment: String
    public var createdAt: Date
    public init(policyID: PolicyID, version: Int, text: String, author: String, comment: String, createdAt: Date) {
        self.policyID = policyID; self.version = version; self.text = text; self.author = author
        self.comment = comment; self.createdAt = createdAt
    }
}

/// A protected application: where it is reached and where it is served.
public struct ApplicationRecord: Sendable, Equatable, Codable {
    public var id: ApplicationID
    public var displayName: String
    /// Host the enforcement point matches (e.g. `portal.bank.example`).
    public var host: String
    /// Path prefix the enforcement point matches (e.g. `/`).
    public var pathPrefix: String
    /// Upstream URLs, in fail-over order.
    public var upstreams: [String]
    /// Data classification label of the application's resources.
    public var classification: String
    /// The guideline high-risk scenario id (e.g. `remote-work`).
    public var scenario: String?
    public var updatedAt: Date
    public init(id: ApplicationID, displayName: String, host: String, pathPrefix: String, upstreams: [String],
                classification: String, scenario: String?, updatedAt: Date) {
        self.id = id; self.displayName = displayName; self.host = host; self.pathPrefix = pathPrefix
        self.upstreams = upstreams; self.classification = classification; self.scenario = scenario
        self.updatedAt = updatedAt
    }
}

/// An event about to be appended: OCSF JSON plus the indexed columns.
public struct NewEvent: Sendable, Equatable {
    public var id: UUID
    public var time: Date
    /// OCSF `class_uid`, e.g. 3002 for Authentication.
    public var classUID: Int
    /// OCSF `severity_id`.
    public var severityID: Int
    public var userID: UserID?
    /// The OCSF event as JSON text.
    public var payloadJSON: String
    public init(id: UUID, time: Date, classUID: Int, severityID: Int = 1, userID: UserID? = nil, payloadJSON: String) {
        self.id = id; self.time = time; self.classUID = classUID; self.severityID = severityID
        self.userID = userID; self.payloadJSON = payloadJSON
    }
}

/// An event as stored: with its position in the log and its hash-chain links.
/// `hash` = SHA-256 over the previous hash and the canonical encoding of the
/// event (computed by the audit pipeline; stores keep what they are given).
public struct StoredEvent: Sendable, Equatable {
    public var sequence: Int64
    public var event: NewEvent
    public var previousHash: String
    public var hash: String
    public init(sequence: Int64, event: NewEvent, previousHash: String, hash: String) {
        self.sequence = sequence; self.event = event; self.previousHash = previousHash; self.hash = hash
    }
}

/// A signed statement that the event chain's record `sequence` (event `eventID`)
/// had chain hash `hash` at `time`, signed with Ed25519 by the key `keyID`
/// (`signature`, base64). Written by the audit checkpointer, checked by
/// `menshen audit verify`: a rewritten chain cannot pass through it again
/// without the signing key.
public struct AuditCheckpointRecord: Sendable, Equatable, Codable {
    public var sequence: Int64
    public var eventID: UUID
    public var hash: String
    public var time: Date
    public var keyID: String
    public var signature: String
    public init(sequence: Int64, eventID: UUID, hash: String, time: Date, keyID: String, signature: String) {
        self.sequence = sequence; self.eventID = eventID; self.hash = hash; self.time = time; self.keyID = keyID; self.signature = signature
    }
}

/// A one-time enrolment token (only its hash is stored).
public struct EnrolmentTokenRecord: Sendable, Equatable {
    public var tokenHash: String
    public var userID: UserID
    public var purpose: String
    public var createdAt: Date
    public var expiresAt: Date
    public var usedAt: Date?
    public init(tokenHash: String, userID: UserID, purpose: String, createdAt: Date, expiresAt: Date, usedAt: Date? = nil) {
        self.tokenHash = tokenHash; self.userID = userID; self.purpose = purpose
        self.createdAt = createdAt; self.expiresAt = expiresAt; self.usedAt = usedAt
    }
}

/// The kinds of authenticator a user can hold.
public enum CredentialKind: String, Sendable, Codable, CaseIterable {
    /// A memorised secret (bcrypt hash).
    case password
    /// A TOTP secret with the last accepted time step (replay protection).
    case totp
    /// A WebAuthn public-key credential with its sign count.
    case webauthn
    /// The remaining hashes of a user's single-use recovery codes.
    case recoveryCodes = "recovery_codes"
}

/// One authenticator of a user. `data` is the kind-specific state as JSON text
/// (a bcrypt hash, a TOTP secret and counter, a COSE public key and sign count,
/// recovery-code hashes), written and read by the identity layer.
///
/// `version` makes updates compare-and-set: two sign-ins racing on one TOTP
/// code or one recovery code cannot both succeed, on one node or many.
public struct CredentialRecord: Sendable, Equatable {
    /// Unique id. For WebAuthn the base64url credential id; otherwise random.
    public var id: String
    public var userID: UserID
    public var kind: CredentialKind
    /// A name the user recognises ("YubiKey 5", "iPhone passkey").
    public var label: String
    public var data: String
    /// Starts at 1; every successful update adds 1.
    public var version: Int
    public var createdAt: Date
    public var lastUsedAt: Date?

    public init(id: String, userID: UserID, kind: CredentialKind, label: String, data: String, version: Int = 1,
                createdAt: Date, lastUsedAt: Date? = nil) {
        self.id = id; self.userID = userID; self.kind = kind; self.label = label; self.data = data
        self.version = version; self.createdAt = createdAt; self.lastUsedAt = lastUsedAt
    }
}

/// Short-lived, single-use state of a ceremony in progress: a WebAuthn
/// challenge, a sign-in waiting for its second factor, an OpenID Connect
/// authorization (state, nonce, PKCE verifier). Addressed by the SHA-256 of
/// an opaque handle, so several nodes can share it through the store.
public struct FlowStateRecord: Sendable, Equatable {
    public var idHash: String
    /// What the state is for, e.g. `webauthn-authentication`, `mfa`, `oidc`.
    public var kind: String
    public var userID: UserID?
    /// JSON text.
    public var data: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(idHash: String, kind: String, userID: UserID?, data: String, createdAt: Date, expiresAt: Date) {
        self.idHash = idHash; self.kind = kind; self.userID = userID; self.data = data
        self.createdAt = createdAt; self.expiresAt = expiresAt
    }
}

/// Who manages a device (principles 2.1, 2.3): the institution, the user (BYOD) or a vendor.
public enum DeviceClass: String, Sendable, Codable, CaseIterable {
    case managed, byod, vendor
}

/// Where a device stands. Only an active device can be compliant; a
/// quarantined one reaches at most the remediation page; a retired one never
/// comes back (its certificates are revoked).
public enum DeviceState: String, Sendable, Codable, CaseIterable {
    case active, quarantined, retired
}

/// An enrolled device and what is known of its posture (principle 2.1 inventory,
/// 2.2 compliance, 2.4 attributes in every decision).
public struct DeviceRecord: Sendable, Equatable {
    public var id: DeviceID
    /// The user it was enrolled for; nil for a shared device.
    public var ownerID: UserID?
    public var displayName: String
    public var deviceClass: DeviceClass
    /// `linux`, `windows`, `macos`, …
    public var platform: String
    /// True when the device key is held in hardware (a TPM) and cannot be exported.
    public var hardwareBound: Bool
    public var state: DeviceState
    /// The latest compliance result; false until a verified posture says otherwise.
    public var compliant: Bool
    /// Machine-readable reasons of a non-compliant result (empty when compliant).
    public var complianceReasons: [String]
    /// The latest verified posture report, as JSON text (bounded by the caller).
    public var postureJSON: String?
    public var lastPostureAt: Date?
    /// The highest severity among open vulnerability findings: 0 none … 4 critical.
    public var maxVulnerabilitySeverity: Int
    /// The open vulnerability findings of the latest evaluated posture (advisories matched
    /// against its packages), highest severity first; empty when nothing was found or scanned.
    public var vulnerabilityFindings: [DeviceFindingRecord]
    /// Starts at 1; every successful update adds 1 (compare-and-set).
    public var version: Int
    public var enrolledAt: Date
    public var updatedAt: Date

    public init(id: DeviceID, ownerID: UserID?, displayName: String, deviceClass: DeviceClass, platform: String,
                hardwareBound: Bool, state: DeviceState = .active, compliant: Bool = false, complianceReasons: [String] = ["no_posture"],
                postureJSON: String? = nil, lastPostureAt: Date? = nil, maxVulnerabilitySeverity: Int = 0,
                vulnerabilityFindings: [DeviceFindingRecord] = [], version: Int = 1, enrolledAt: Date, updatedAt: Date? = nil) {
        self.id = id; self.ownerID = ownerID; self.displayName = displayName; self.deviceClass = deviceClass
        self.platform = platform; self.hardwareBound = hardwareBound; self.state = state; self.compliant = compliant
        self.complianceReasons = complianceReasons; self.postureJSON = postureJSON; self.lastPostureAt = lastPostureAt
        self.maxVulnerabilitySeverity = maxVulnerabilitySeverity; self.vulnerabilityFindings = vulnerabilityFindings; self.version = version
        self.enrolledAt = enrolledAt; self.updatedAt = updatedAt ?? enrolledAt
    }
}

/// One vulnerability finding stored with a device: an advisory that affects one
/// installed package at the version the device reported (principle 2.2).
public struct DeviceFindingRecord: Sendable, Equatable, Codable {
    /// The advisory's id (`DSA-5678-1`, `CVE-2024-1234`, …).
    public var advisoryID: String
    /// The installed (binary) package and its version.
    public var package: String
    public var installedVersion: String
    /// The lowest version that fixes it, nil when none is published.
    public var fixedVersion: String?
    /// 0 none, 1 low, 2 medium, 3 high, 4 critical.
    public var severity: Int

    public init(advisoryID: String, package: String, installedVersion: String, fixedVersion: String?, severity: Int) {
        self.advisoryID = advisoryID; self.package = package; self.installedVersion = installedVersion
        self.fixedVersion = fixedVersion; self.severity = severity
    }

    enum CodingKeys: String, CodingKey {
        case package, severity
        case advisoryID = "advisory"
        case installedVersion = "installed"
        case fixedVersion = "fixed"
    }
}

/// A certificate the device CA issued to a device.
public struct DeviceCertificateRecord: Sendable, Equatable {
    /// The serial number, lower-case hex.
    public var serial: String
    public var deviceID: DeviceID
    /// SHA-256 of the certificate's DER, lower-case hex.
    public var fingerprint: String
    /// SHA-256 of the subject public key info (the same for a renewal of the same key).
    public var publicKeyFingerprint: String
    public var notBefore: Date
    public var notAfter: Date
    public var revokedAt: Date?
    public var revokedReason: String?

    public init(serial: String, deviceID: DeviceID, fingerprint: String, publicKeyFingerprint: String, notBefore: Date, notAfter: Date,
                revokedAt: Date? = nil, revokedReason: String? = nil) {
        self.serial = serial; self.deviceID = deviceID; self.fingerprint = fingerprint; self.publicKeyFingerprint = publicKeyFingerprint
        self.notBefore = notBefore; self.notAfter = notAfter; self.revokedAt = revokedAt; self.revokedReason = revokedReason
    }
}
