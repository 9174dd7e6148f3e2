import Foundation
import MenshenCore

/// Users, groups, roles and who belongs to what.
public protocol DirectoryStore: Sendable {
    /// Adds a user. Throws `.conflict` when the id exists.
    func createUser(_ user: UserRecord) async throws
    /// Replaces a user. Throws `.notFound` when the id does not exist.
    func updateUser(_ user: UserRecord) async throws
    func user(_ id: UserID) async throws -> UserRecord?
    /// All users, ordered by id.
    func listUsers() async throws -> [UserRecord]

    func createGroup(_ group: GroupRecord) async throws
    func listGroups() async throws -> [GroupRecord]
    func createRole(_ role: RoleRecord) async throws
    func listRoles() async throws -> [RoleRecord]

    /// Adds a user to a group (idempotent). Throws `.notFound` for an unknown user or group.
    func addMember(_ user: UserID, to group: GroupID) async throws
    func removeMember(_ user: UserID, from group: GroupID) async throws
    /// The groups a user belongs to, ordered by id.
    func groups(of user: UserID) async throws -> [GroupID]
    /// Assigns a role (idempotent). Throws `.notFound` for an unknown user or role.
    func assignRole(_ role: RoleID, to user: UserID) async throws
    func unassignRole(_ role: RoleID, from user: UserID) async throws
    /// The roles a user holds, ordered by id.
    func roles(of user: UserID) async throws -> [RoleID]
}

/// Server-side sessions, addressed by the SHA-256 of their opaque id.
public protocol SessionStore: Sendable {
    /// Throws `.conflict` when the id hash exists.
    func createSession(_ session: SessionRecord) async throws
    func session(idHash: String) async throws -> SessionRecord?
    /// Records activity and the new idle expiry. Returns false when the session does not exist.
    func touchSession(idHash: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool
    /// Revokes one session. Returns false when it does not exist or was already revoked.
    func revokeSession(idHash: String, at: Date, reason: String) async throws -> Bool
    /// Revokes every active session of a user; returns how many were revoked.
    func revokeSessions(of user: UserID, at: Date, reason: String) async throws -> Int
    /// A user's sessions, newest first.
    func sessions(of user: UserID) async throws -> [SessionRecord]
    /// Deletes at most `limit` sessions whose absolute expiry is before `date`, in one transaction; returns how many.
    /// (Bounded so that a first clean-up of a large table does not hold the writer for long.)
    func deleteSessions(expiredBefore date: Date, limit: Int) async throws -> Int
}

/// Cedar policy documents with their full version history.
public protocol PolicyStore: Sendable {
    /// Saves a new version of a policy document (version = previous + 1, first is 1).
    func savePolicy(_ id: PolicyID, text: String, author: String, comment: String, at: Date) async throws
        -> PolicyVersionRecord
    /// The newest version of every policy document, ordered by id.
    func currentPolicies() async throws -> [PolicyVersionRecord]
    /// Every version of one document, oldest first.
    func policyHistory(_ id: PolicyID) async throws -> [PolicyVersionRecord]
}

/// Protected applications (routes of the enforcement point).
public protocol ApplicationStore: Sendable {
    /// Inserts or replaces an application.
    func putApplication(_ app: ApplicationRecord) async throws
    func application(_ id: ApplicationID) async throws -> ApplicationRecord?
    /// All applications, ordered by id.
    func listApplications() async throws -> [ApplicationRecord]
    /// Returns false when it did not exist.
    func deleteApplication(_ id: ApplicationID) async throws -> Bool
}

/// Computes the chain hash of an event from the previous record's hash.
public typealias EventChainHasher = @Sendable (_ previousHash: String, _ event: NewEvent) -> String

/// The append-only event log. Appends are atomic per batch and serialised
/// across processes, so the hash chain has exactly one successor per record.
public protocol EventStore: Sendable {
    /// Appends events in order, assigning sequence numbers and chain hashes.
    /// Returns the stored records once committed. Throws `.conflict` if an
    /// event id is already present (nothing of the batch is stored then).
    func appendEvents(_ events: [NewEvent], hasher: @escaping EventChainHasher) async throws -> [StoredEvent]
    /// Events with sequence greater than `sequence`, oldest first, at most `limit`.
    func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent]
    /// The newest event, if any.
    func lastEvent() async throws -> StoredEvent?
    func eventCount() async throws -> Int
}

/// Signed checkpoints of the event chain (see ``AuditCheckpointRecord``). Append-only.
public protocol AuditCheckpointStore: Sendable {
    /// Stores a checkpoint. A checkpoint with the same sequence and key id already
    /// stored is left as it is (two nodes may sign the same head).
    func appendCheckpoint(_ checkpoint: AuditCheckpointRecord) async throws
    /// Checkpoints with sequence greater than `sequence`, by sequence then key id, at most `limit`.
    func checkpoints(after sequence: Int64, limit: Int) async throws -> [AuditCheckpointRecord]
    /// The checkpoint with the highest sequence (then the highest key id), if any.
    func lastCheckpoint() async throws -> AuditCheckpointRecord?
}

/// One-time enrolment links; only token hashes are stored.
public protocol EnrolmentTokenStore: Sendable {
    func createEnrolmentToken(_ token: EnrolmentTokenRecord) async throws
    func enrolmentToken(hash: String) async throws -> EnrolmentTokenRecord?
    /// Marks a token used if it is unused and unexpired at `at`; returns whether it was.
    func consumeEnrolmentToken(hash: String, at: Date) async throws -> Bool
}

/// Users' authenticators (passwords, TOTP, WebAuthn, recovery codes).
public protocol CredentialStore: Sendable {
    /// Throws `.conflict` when the id exists, `.notFound` for an unknown user.
    func createCredential(_ credential: CredentialRecord) async throws
    func credential(id: String) async throws -> CredentialRecord?
    /// A user's credentials, oldest first (then by id).
    func credentials(of user: UserID) async throws -> [CredentialRecord]
    /// Replaces `data` and `lastUsedAt` if the stored version is `expectedVersion`,
    /// and adds 1 to the version. Returns false (and changes nothing) otherwise.
    func updateCredential(id: String, expectedVersion: Int, data: String, label: String, lastUsedAt: Date?) async throws -> Bool
    /// Returns false when it did not exist.
    func deleteCredential(id: String) async throws -> Bool
    /// Deletes a user's credentials of the given kinds; returns how many.
    func deleteCredentials(of user: UserID, kinds: [CredentialKind]) async throws -> Int
}

/// Single-use ceremony state (see ``FlowStateRecord``).
public protocol FlowStateStore: Sendable {
    /// Throws `.conflict` when the id hash exists.
    func createFlowState(_ state: FlowStateRecord) async throws
    /// Removes and returns the state if it exists, has this kind and is
    /// unexpired at `at`. A second call for the same id returns nil.
    func takeFlowState(idHash: String, kind: String, at: Date) async throws -> FlowStateRecord?
    /// Deletes states that expired before `date`; returns how many.
    func deleteFlowStates(expiredBefore date: Date) async throws -> Int
}

/// The device inventory and the certificates issued to devices. A change to
/// a device or a certificate revocation advances the device generation
/// (``StoreChange/device``: it changes what requests from that device may do,
/// and nothing else).
public protocol DeviceStore: Sendable {
    /// Throws `.conflict` when the id exists, `.notFound` when the owner does not.
    func createDevice(_ device: DeviceRecord) async throws
    /// Enrolment: creates the device and its first certificate in one transaction — both or neither
    /// (a failure in between must not leave a device without a certificate or the reverse). Throws
    /// like ``createDevice(_:)`` and ``addDeviceCertificate(_:)``; the certificate must name the device.
    func createDevice(_ device: DeviceRecord, certificate: DeviceCertificateRecord) async throws
    func device(_ id: DeviceID) async throws -> DeviceRecord?
    /// All devices, by id.
    func listDevices() async throws -> [DeviceRecord]
    /// Replaces the device if its stored version is `expectedVersion` (the stored
    /// version becomes `expectedVersion + 1`); false when another writer got there first or it does not exist.
    func updateDevice(_ device: DeviceRecord, expectedVersion: Int) async throws -> Bool
    /// Throws `.conflict` when the serial exists, `.notFound` when the device does not.
    func addDeviceCertificate(_ certificate: DeviceCertificateRecord) async throws
    func deviceCertificate(serial: String) async throws -> DeviceCertificateRecord?
    /// A device's certificates, oldest first.
    func deviceCertificates(of device: DeviceID) async throws -> [DeviceCertificateRecord]
    /// Revokes one certificate; false when unknown or already revoked (the first revocation stays).
    func revokeDeviceCertificate(serial: String, at: Date, reason: String) async throws -> Bool
    /// Revokes every unrevoked certificate of a device; returns how many.
    func revokeDeviceCertificates(of device: DeviceID, at: Date, reason: String) async throws -> Int
}

/// Everything a backend provides.
public protocol MenshenStore: DirectoryStore, SessionStore, PolicyStore, ApplicationStore, EventStore, ChangeFeed,
    EnrolmentTokenStore, CredentialStore, FlowStateStore, DeviceStore, AuditCheckpointStore, ConsumerCursorStore,
    RiskScoreStore, PlaybookApprovalStore,
    EventSearchStore, EventPruneStore,
    AttestationStore, AssessmentHistoryStore, CaseStore, LeaseStore
{
    /// A short name for logs and readiness output (`sqlite`, `postgres`, `memory`).
    var backendName: String { get }
    /// Verifies the database answers a trivial query.
    func ping() async throws
    /// The schema version the database is at.
    func schemaVersion() async throws -> Int
    /// Releases connections. The store is unusable afterwards.
    func close() async throws
}

/// The hash of the record before the first one in a chain.
public let genesisEventHash = String(repeating: "0", count: 64)
