import Foundation
import MenshenCore
import Synchronization

/// A store held in memory, for unit tests and as the reference behaviour that
/// the SQLite and PostgreSQL backends are checked against.
public actor InMemoryStore: MenshenStore, CommittedAccessGeneration, EventAppendSignal {
    private nonisolated let appendNotifier = AppendNotifier()
    private var users: [UserID: UserRecord] = [:]
    private var groupsByID: [GroupID: GroupRecord] = [:]
    private var rolesByID: [RoleID: RoleRecord] = [:]
    private var memberships: Set<Pair<UserID, GroupID>> = []
    private var assignments: Set<Pair<UserID, RoleID>> = []
    private var sessionsByHash: [String: SessionRecord] = [:]
    private var policyVersions: [PolicyID: [PolicyVersionRecord]] = [:]
    private var applications: [ApplicationID: ApplicationRecord] = [:]
    private var log: [StoredEvent] = []
    private var auditCheckpoints: [AuditCheckpointRecord] = []
    private var tokens: [String: EnrolmentTokenRecord] = [:]
    private var credentialsByID: [String: CredentialRecord] = [:]
    private var flowStates: [String: FlowStateRecord] = [:]
    private var devicesByID: [DeviceID: DeviceRecord] = [:]
    private var deviceCertificatesBySerial: [String: DeviceCertificateRecord] = [:]
    private var consumerCursors: [String: Int64] = [:]
    private var leases: [String: Lease] = [:]
    private var riskScores: [UserID: RiskScoreRecord] = [:]
    private var playbookApprovals: [String: PlaybookApprovalRecord] = [:]
    private var prunes: [EventPruneRecord] = []
    private var attestationsByID: [String: AttestationRecord] = [:]
    private var attestationFiles: [String: [AttestationFileContent]] = [:]
    private var assessmentHistory: [AssessmentHistoryRecord] = []
    private var casesByID: [String: CaseRecord] = [:]
    private var closed = false
    private var generations = ChangeGenerations(access: 0, configuration: 0)
    /// ``generations``' access and device counters, readable without awaiting the actor.
    private let accessGeneration = Atomic<Int64>(0)
    private let deviceGeneration = Atomic<Int64>(0)

    private struct Pair<A: Hashable & Sendable, B: Hashable & Sendable>: Hashable, Sendable { var a: A; var b: B }

    public init() {}

    public nonisolated var backendName: String { "memory" }
    public func ping() async throws { try open() }
    public func schemaVersion() async throws -> Int { 19 }

    // MARK: Changes (what the SQL backends' triggers count)

    public func changeGenerations() async throws -> ChangeGenerations { try open(); return generations }
    public nonisolated func changes() -> AsyncStream<StoreChange> { pollingChanges(every: .milliseconds(50)) }
    private func changed(_ kind: StoreChange) {
        switch kind {
        case .access:
            generations.access += 1
            accessGeneration.store(generations.access, ordering: .sequentiallyConsistent)
        case .configuration: generations.configuration += 1
        case .device:
            generations.device += 1
            deviceGeneration.store(generations.device, ordering: .sequentiallyConsistent)
        }
    }
    public func close() async throws { closed = true }
    public nonisolated func committedGenerations() -> CommittedGenerations? {
        let access = accessGeneration.load(ordering: .sequentiallyConsistent)
        return CommittedGenerations(access: access, device: deviceGeneration.load(ordering: .sequentiallyConsistent))
    }

    private func open() throws {
        if closed { throw StoreError(.unavailable, "store is closed") }
    }

    // MARK: Directory

    public func createUser(_ user: UserRecord) async throws {
        try open()
        guard users[user.id] == nil else { throw StoreError(.conflict, "user \(user.id) exists") }
        users[user.id] = user
    }

    public func updateUser(_ user: UserRecord) async throws {
        try open()
        defer { changed(.access) }
        guard users[user.id] != nil else { throw StoreError(.notFound, "no user \(user.id)") }
        users[user.id] = user
    }

    public func user(_ id: UserID) async throws -> UserRecord? { try open(); return users[id] }
    public func listUsers() async throws -> [UserRecord] { try open(); return users.values.sorted { $0.id < $1.id } }

    public func createGroup(_ group: GroupRecord) async throws {
        try open()
        guard groupsByID[group.id] == nil else { throw StoreError(.conflict, "group \(group.id) exists") }
        groupsByID[group.id] = group
    }

    public func listGroups() async throws -> [GroupRecord] { try open(); return groupsByID.values.sorted { $0.id < $1.id } }

    public func createRole(_ role: RoleRecord) async throws {
        try open()
        guard rolesByID[role.id] == nil else { throw StoreError(.conflict, "role \(role.id) exists") }
        rolesByID[role.id] = role
    }

    public func listRoles() async throws -> [RoleRecord] { try open(); return rolesByID.values.sorted { $0.id < $1.id } }

    public func addMember(_ user: UserID, to group: GroupID) async throws {
        try open()
        defer { changed(.access) }
        guard users[user] != nil else { throw StoreError(.notFound, "no user \(user)") }
        guard groupsByID[group] != nil else { throw StoreError(.notFound, "no group \(group)") }
        memberships.insert(Pair(a: user, b: group))
    }

    public func removeMember(_ user: UserID, from group: GroupID) async throws {
        try open()
        defer { changed(.access) }; memberships.remove(Pair(a: user, b: group))
    }

    public func groups(of user: UserID) async throws -> [GroupID] {
        try open(); return memberships.filter { $0.a == user }.map(\.b).sorted()
    }

    public func assignRole(_ role: RoleID, to user: UserID) async throws {
        try open()
        defer { changed(.access) }
        guard users[user] != nil else { throw StoreError(.notFound, "no user \(user)") }
        guard rolesByID[role] != nil else { throw StoreError(.notFound, "no role \(role)") }
        assignments.insert(Pair(a: user, b: role))
    }

    public func unassignRole(_ role: RoleID, from user: UserID) async throws {
        try open()
        defer { changed(.access) }; assignments.remove(Pair(a: user, b: role))
    }

    public func roles(of user: UserID) async throws -> [RoleID] {
        try open(); return assignments.filter { $0.a == user }.map(\.b).sorted()
    }

    // MARK: Sessions

    public func createSession(_ session: SessionRecord) async throws {
        try open()
        guard users[session.userID] != nil else { throw StoreError(.notFound, "no user \(session.userID)") }
        guard sessionsByHash[session.idHash] == nil else { throw StoreError(.conflict, "session exists") }
        sessionsByHash[session.idHash] = session
    }

    public func session(idHash: String) async throws -> SessionRecord? { try open(); return sessionsByHash[idHash] }

    public func touchSession(idHash: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try open()
        guard var s = sessionsByHash[idHash] else { return false }
        s.lastSeenAt = lastSeenAt; s.idleExpiresAt = idleExpiresAt
        sessionsByHash[idHash] = s
        return true
    }

    public func revokeSession(idHash: String, at: Date, reason: String) async throws -> Bool {
        try open()
        defer { changed(.access) }
        guard var s = sessionsByHash[idHash], s.revokedAt == nil else { return false }
        s.revokedAt = at; s.revokedReason = reason
        sessionsByHash[idHash] = s
        return true
    }

    public func revokeSessions(of user: UserID, at: Date, reason: String) async throws -> Int {
        try open()
        defer { changed(.access) }
        var n = 0
        for (k, var s) in sessionsByHash where s.userID == user && s.revokedAt == nil {
            s.revokedAt = at; s.revokedReason = reason; sessionsByHash[k] = s; n += 1
        }
        return n
    }

    public func sessions(of user: UserID) async throws -> [SessionRecord] {
        try open()
        return sessionsByHash.values.filter { $0.userID == user }
            .sorted { ($0.createdAt, $0.idHash) > ($1.createdAt, $1.idHash) }
    }

    public func deleteSessions(expiredBefore date: Date, limit: Int) async throws -> Int {
        try open()
        let doomed = sessionsByHash.filter { $0.value.absoluteExpiresAt < date }.map(\.key).prefix(max(0, limit))
        doomed.forEach { sessionsByHash[$0] = nil }
        return doomed.count
    }

    // MARK: Policies

    public func savePolicy(_ id: PolicyID, text: String, author: String, comment: String, at: Date) async throws
        -> PolicyVersionRecord
    {
        try open()
        defer { changed(.configuration) }
        guard text.utf8.count <= InputLimits.maxPolicyTextBytes else {
            throw StoreError(.invalidInput, "policy \(id) is larger than \(InputLimits.maxPolicyTextBytes) bytes")
        }
        let next = (policyVersions[id]?.last?.version ?? 0) + 1
        let record = PolicyVersionRecord(policyID: id, version: next, text: text, author: author, comment: comment, createdAt: at)
        policyVersions[id, default: []].append(record)
        return record
    }

    public func currentPolicies() async throws -> [PolicyVersionRecord] {
        try open(); return policyVersions.values.compactMap(\.last).sorted { $0.policyID < $1.policyID }
    }

    public func policyHistory(_ id: PolicyID) async throws -> [PolicyVersionRecord] {
        try open(); return policyVersions[id] ?? []
    }

    // MARK: Applications

    public func putApplication(_ app: ApplicationRecord) async throws { try open(); applications[app.id] = app; changed(.configuration) }
    public func application(_ id: ApplicationID) async throws -> ApplicationRecord? { try open(); return applications[id] }
    public func listApplications() async throws -> [ApplicationRecord] {
        try open(); return applications.values.sorted { $0.id < $1.id }
    }
    public func deleteApplication(_ id: ApplicationID) async throws -> Bool {
        try open()
        changed(.configuration)
        return applications.removeValue(forKey: id) != nil
    }

    // MARK: Events

    public func appendEvents(_ events: [NewEvent], hasher: @escaping EventChainHasher) async throws -> [StoredEvent] {
        try open()
        let existing = Set(log.map(\.event.id))
        var seen = Set<UUID>()
        for e in events {
            guard e.payloadJSON.utf8.count <= InputLimits.maxEventPayloadBytes else {
                throw StoreError(.invalidInput, "event \(e.id) payload exceeds \(InputLimits.maxEventPayloadBytes) bytes")
            }
            guard !existing.contains(e.id), seen.insert(e.id).inserted else {
                throw StoreError(.conflict, "event \(e.id) already stored")
            }
        }
        var previous = log.last?.hash ?? genesisEventHash
        var sequence = log.last?.sequence ?? 0
        var stored: [StoredEvent] = []
        for e in events {
            sequence += 1
            let h = hasher(previous, e)
            stored.append(StoredEvent(sequence: sequence, event: e, previousHash: previous, hash: h))
            previous = h
        }
        log.append(contentsOf: stored)
        appendNotifier.signal()
        return stored
    }

    public nonisolated var appendGeneration: Int { appendNotifier.generation }

    public nonisolated func waitForAppends(after generation: Int, timeout: Duration) async {
        await appendNotifier.wait(after: generation, timeout: timeout)
    }

    public func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent] {
        try open(); return Array(log.filter { $0.sequence > sequence }.prefix(max(0, limit)))
    }

    public func lastEvent() async throws -> StoredEvent? { try open(); return log.last }

    public func pruneEvents(_ prune: EventPruneRecord) async throws -> Int {
        try open()
        try prune.validate()
        guard prune.throughSequence > (prunes.last?.throughSequence ?? 0),
              log.first(where: { $0.sequence == prune.throughSequence })?.hash == prune.throughHash
        else { throw StoreError(.conflict, "event \(prune.throughSequence) is not in the log with that hash (or was pruned)") }
        let before = log.count
        log.removeAll { $0.sequence <= prune.throughSequence }
        prunes.append(prune)
        return before - log.count
    }

    public func lastPrune() async throws -> EventPruneRecord? { try open(); return prunes.last }

    public func searchEvents(_ query: EventQuery, order: EventOrder, after cursor: Int64?, limit: Int) async throws -> [StoredEvent] {
        try open()
        try query.validate()
        switch order {
        case .oldestFirst:
            return Array(log.lazy.filter { $0.sequence > (cursor ?? 0) && query.matches($0) }.prefix(max(0, limit)))
        case .newestFirst:
            return Array(log.reversed().lazy.filter { $0.sequence < (cursor ?? .max) && query.matches($0) }.prefix(max(0, limit)))
        }
    }
    public func eventCount() async throws -> Int { try open(); return log.count }

    // MARK: Audit checkpoints

    public func appendCheckpoint(_ checkpoint: AuditCheckpointRecord) async throws {
        try open()
        guard !auditCheckpoints.contains(where: { $0.sequence == checkpoint.sequence && $0.keyID == checkpoint.keyID }) else { return }
        auditCheckpoints.append(checkpoint)
        auditCheckpoints.sort { ($0.sequence, $0.keyID) < ($1.sequence, $1.keyID) }
    }

    public func checkpoints(after sequence: Int64, limit: Int) async throws -> [AuditCheckpointRecord] {
        try open(); return Array(auditCheckpoints.filter { $0.sequence > sequence }.prefix(max(0, limit)))
    }

    public func lastCheckpoint() async throws -> AuditCheckpointRecord? { try open(); return auditCheckpoints.last }

    // MARK: Consumer cursors

    public func cursor(named name: String) async throws -> Int64? {
        try open(); try ConsumerCursorName.validate(name); return consumerCursors[name]
    }

    public func saveCursor(named name: String, sequence: Int64, at: Date) async throws {
        try open(); try ConsumerCursorName.validate(name, sequence: sequence); consumerCursors[name] = sequence
    }

    // MARK: Leases

    public func acquireLease(named name: String, holder: String, duration: Duration) async throws -> Lease {
        try open()
        let millis = try LeaseLimits.validate(name: name, holder: holder, duration: duration)
        let now = Date()
        let expires = now.addingTimeInterval(Double(millis) / 1000)
        if let l = leases[name], l.holder != holder, l.expiresAt > now { return l }
        let keeps = leases[name].map { $0.holder == holder && $0.expiresAt > now } ?? false
        let lease = Lease(name: name, holder: holder, acquiredAt: keeps ? leases[name]!.acquiredAt : now, expiresAt: expires)
        leases[name] = lease
        return lease
    }

    public func releaseLease(named name: String, holder: String) async throws {
        try open(); try LeaseLimits.validateName(name); try LeaseLimits.validateHolder(holder)
        if leases[name]?.holder == holder { leases[name] = nil }
    }

    public func lease(named name: String) async throws -> Lease? {
        try open(); try LeaseLimits.validateName(name); return leases[name]
    }

    // MARK: Risk scores

    public func saveRiskScore(_ record: RiskScoreRecord) async throws {
        try open(); try RiskScoreLimits.validate(record)
        guard users[record.userID] != nil else { throw StoreError(.notFound, "no user \(record.userID)") }
        riskScores[record.userID] = record
        changed(.access)
    }

    public func riskScore(of user: UserID) async throws -> RiskScoreRecord? { try open(); return riskScores[user] }

    // MARK: Playbook approvals

    public func createApproval(_ record: PlaybookApprovalRecord) async throws {
        try open(); try PlaybookApprovalLimits.validate(record)
        guard playbookApprovals[record.id] == nil else { throw StoreError(.conflict, "approval \(record.id) exists") }
        playbookApprovals[record.id] = record
    }

    public func approval(id: String) async throws -> PlaybookApprovalRecord? { try open(); return playbookApprovals[id] }

    public func approvals(in states: [ApprovalState], limit: Int) async throws -> [PlaybookApprovalRecord] {
        try open()
        return Array(playbookApprovals.values.filter { states.contains($0.state) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            .prefix(max(0, limit)))
    }

    public func transitionApproval(id: String, from: ApprovalState, to: ApprovalState, by: String?, at: Date) async throws -> Bool {
        try open()
        guard var r = playbookApprovals[id], r.state == from else { return false }
        r.state = to; r.decidedBy = by ?? r.decidedBy; r.decidedAt = at
        try PlaybookApprovalLimits.validate(r)
        playbookApprovals[id] = r
        return true
    }

    // MARK: Attestations

    public func createAttestation(_ record: AttestationRecord, files: [AttestationFileContent]) async throws -> AttestationRecord {
        try open(); try AttestationLimits.validate(record, files: files)
        guard attestationsByID[record.id] == nil else { throw StoreError(.conflict, "attestation \(record.id) exists") }
        var stored = record
        stored.files = files.map(\.info)
        attestationsByID[record.id] = stored
        attestationFiles[record.id] = files
        return stored
    }

    public func attestation(id: String) async throws -> AttestationRecord? { try open(); return attestationsByID[id] }

    public func attestations(principleID: String?, limit: Int) async throws -> [AttestationRecord] {
        try open()
        return Array(attestationsByID.values.filter { principleID == nil || $0.principleID == principleID }
            .sorted { ($0.attestedAt, $0.id) < ($1.attestedAt, $1.id) }.prefix(max(0, min(limit, AttestationLimits.maxList))))
    }

    public func attestationFile(attestationID: String, name: String) async throws -> AttestationFileContent? {
        try open(); return attestationFiles[attestationID]?.first { $0.name == name }
    }

    public func revokeAttestation(id: String, at: Date, by: String, reason: String) async throws -> Bool {
        try open()
        try AttestationLimits.validateName(by, "revoked by"); try AttestationLimits.validateText(reason, "the reason", max: AttestationLimits.maxReasonLength)
        guard var r = attestationsByID[id], r.revokedAt == nil else { return false }
        r.revokedAt = at; r.revokedBy = by; r.revocationReason = reason
        attestationsByID[id] = r
        return true
    }

    // MARK: Cases

    public func createCase(_ record: CaseRecord) async throws {
        try open(); try CaseLimits.validate(record)
        guard casesByID[record.id] == nil else { throw StoreError(.conflict, "case \(record.id) exists") }
        casesByID[record.id] = record
    }

    public func caseRecord(id: String) async throws -> CaseRecord? { try open(); return casesByID[id] }

    public func cases(status: CaseStatus?, owner: CaseOwnerFilter, limit: Int) async throws -> [CaseRecord] {
        try open()
        return Array(casesByID.values.filter { (status == nil || $0.status == status) && owner.matches($0.owner) }
            .sorted { ($0.modifiedAt, $1.id) > ($1.modifiedAt, $0.id) }.prefix(max(0, min(limit, CaseLimits.maxList))))
    }

    public func openCase(groupKey: String, since: Date) async throws -> CaseRecord? {
        try open()
        return casesByID.values.filter { $0.groupKey == groupKey && $0.status.isOpen && $0.lastFindingAt >= since }
            .max { ($0.lastFindingAt, $1.id) < ($1.lastFindingAt, $0.id) }
    }

    private func existingCase(_ id: String) throws -> CaseRecord {
        guard let r = casesByID[id] else { throw StoreError(.notFound, "no case \(id)") }
        return r
    }

    public func attachFinding(caseID: String, findingUID: String, severityID: Int, findingTime: Date, at: Date) async throws -> CaseRecord {
        try open(); try CaseLimits.validateFindingUID(findingUID); try CaseLimits.validateSeverity(severityID)
        var r = try existingCase(caseID)
        if r.findingUIDs.contains(findingUID) { return r }
        guard r.status.isOpen else { throw StoreError(.conflict, "case \(caseID) is \(r.status.name); findings are attached to open cases only") }
        guard r.findingUIDs.count < CaseLimits.maxFindings else { throw StoreError(.conflict, "case \(caseID) holds \(CaseLimits.maxFindings) findings") }
        r.findingUIDs.append(findingUID)
        r.severityID = CaseLimits.higherSeverity(r.severityID, severityID)
        r.lastFindingAt = max(r.lastFindingAt, findingTime); r.modifiedAt = at
        casesByID[caseID] = r
        return r
    }

    public func assignCase(id: String, owner: String?, at: Date) async throws -> CaseRecord {
        try open()
        if let owner { try AttestationLimits.validateName(owner, "the owner") }
        var r = try existingCase(id)
        guard r.status != .closed else { throw StoreError(.conflict, "case \(id) is closed; reopen it first") }
        r.owner = owner; r.modifiedAt = at
        casesByID[id] = r
        return r
    }

    public func setCaseStatus(id: String, status: CaseStatus, verdict: CaseVerdict?, reopen: Bool, at: Date) async throws -> CaseRecord {
        try open()
        var r = try existingCase(id)
        try CaseLimits.checkTransition(from: r.status, to: status, verdict: verdict, existing: r.verdict, reopen: reopen, id: id)
        r.verdict = status.isOpen ? nil : verdict ?? r.verdict
        r.status = status; r.modifiedAt = at
        casesByID[id] = r
        return r
    }

    public func addCaseNote(id: String, note: CaseNote) async throws -> CaseRecord {
        try open(); try CaseLimits.validateNote(note)
        var r = try existingCase(id)
        guard r.notes.count < CaseLimits.maxNotes else { throw StoreError(.conflict, "case \(id) holds \(CaseLimits.maxNotes) notes") }
        r.notes.append(note); r.modifiedAt = max(r.modifiedAt, note.time)
        casesByID[id] = r
        return r
    }

    // MARK: Assessment history

    public func saveAssessment(_ record: AssessmentHistoryRecord) async throws {
        try open(); try AssessmentHistoryLimits.validate(record)
        guard !assessmentHistory.contains(where: { $0.id == record.id }) else { throw StoreError(.conflict, "assessment \(record.id) exists") }
        assessmentHistory.append(record)
    }

    public func latestAssessment() async throws -> AssessmentHistoryRecord? { try await assessments(limit: 1).first }

    public func assessments(limit: Int) async throws -> [AssessmentHistoryRecord] {
        try open()
        // Newest first: by generation time, then the later saved (the array's order is the order of saving).
        let ordered = assessmentHistory.enumerated().sorted { ($0.element.generatedAt, $0.offset) > ($1.element.generatedAt, $1.offset) }
        return Array(ordered.map(\.element).prefix(max(0, min(limit, AssessmentHistoryLimits.maxList))))
    }

    public func assessment(id: String) async throws -> AssessmentHistoryRecord? { try open(); return assessmentHistory.first { $0.id == id } }

    // MARK: Enrolment tokens

    public func createEnrolmentToken(_ token: EnrolmentTokenRecord) async throws {
        try open()
        guard users[token.userID] != nil else { throw StoreError(.notFound, "no user \(token.userID)") }
        guard tokens[token.tokenHash] == nil else { throw StoreError(.conflict, "token exists") }
        tokens[token.tokenHash] = token
    }

    public func enrolmentToken(hash: String) async throws -> EnrolmentTokenRecord? { try open(); return tokens[hash] }

    public func consumeEnrolmentToken(hash: String, at: Date) async throws -> Bool {
        try open()
        guard var t = tokens[hash], t.usedAt == nil, at < t.expiresAt else { return false }
        t.usedAt = at; tokens[hash] = t
        return true
    }

    // MARK: Credentials

    public func createCredential(_ c: CredentialRecord) async throws {
        try open()
        guard users[c.userID] != nil else { throw StoreError(.notFound, "no user \(c.userID)") }
        guard credentialsByID[c.id] == nil else { throw StoreError(.conflict, "credential exists") }
        credentialsByID[c.id] = c
    }

    public func credential(id: String) async throws -> CredentialRecord? { try open(); return credentialsByID[id] }

    public func credentials(of user: UserID) async throws -> [CredentialRecord] {
        try open()
        return credentialsByID.values.filter { $0.userID == user }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func updateCredential(id: String, expectedVersion: Int, data: String, label: String, lastUsedAt: Date?) async throws -> Bool {
        try open()
        guard var c = credentialsByID[id], c.version == expectedVersion else { return false }
        c.data = data; c.label = label; c.lastUsedAt = lastUsedAt; c.version += 1
        credentialsByID[id] = c
        return true
    }

    public func deleteCredential(id: String) async throws -> Bool {
        try open()
        return credentialsByID.removeValue(forKey: id) != nil
    }

    public func deleteCredentials(of user: UserID, kinds: [CredentialKind]) async throws -> Int {
        try open()
        let doomed = credentialsByID.values.filter { $0.userID == user && kinds.contains($0.kind) }.map(\.id)
        for id in doomed { credentialsByID[id] = nil }
        return doomed.count
    }

    // MARK: Devices

    public func createDevice(_ d: DeviceRecord) async throws {
        try open()
        if let owner = d.ownerID, users[owner] == nil { throw StoreError(.notFound, "no user \(owner)") }
        guard devicesByID[d.id] == nil else { throw StoreError(.conflict, "device \(d.id) exists") }
        devicesByID[d.id] = d
    }

    public func createDevice(_ d: DeviceRecord, certificate c: DeviceCertificateRecord) async throws {
        try open()
        guard c.deviceID == d.id else { throw StoreError(.invalidInput, "certificate \(c.serial) is not for device \(d.id)") }
        guard deviceCertificatesBySerial[c.serial] == nil else { throw StoreError(.conflict, "certificate \(c.serial) exists") }
        if let owner = d.ownerID, users[owner] == nil { throw StoreError(.notFound, "no user \(owner)") }
        guard devicesByID[d.id] == nil else { throw StoreError(.conflict, "device \(d.id) exists") }
        devicesByID[d.id] = d
        deviceCertificatesBySerial[c.serial] = c
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? { try open(); return devicesByID[id] }

    public func listDevices() async throws -> [DeviceRecord] { try open(); return devicesByID.values.sorted { $0.id < $1.id } }

    public func updateDevice(_ d: DeviceRecord, expectedVersion: Int) async throws -> Bool {
        try open()
        guard let stored = devicesByID[d.id], stored.version == expectedVersion else { return false }
        if let owner = d.ownerID, users[owner] == nil { throw StoreError(.notFound, "no user \(owner)") }
        var updated = d
        updated.version = expectedVersion + 1
        devicesByID[d.id] = updated
        changed(.device)
        return true
    }

    public func addDeviceCertificate(_ c: DeviceCertificateRecord) async throws {
        try open()
        guard devicesByID[c.deviceID] != nil else { throw StoreError(.notFound, "no device \(c.deviceID)") }
        guard deviceCertificatesBySerial[c.serial] == nil else { throw StoreError(.conflict, "certificate \(c.serial) exists") }
        deviceCertificatesBySerial[c.serial] = c
    }

    public func deviceCertificate(serial: String) async throws -> DeviceCertificateRecord? {
        try open()
        return deviceCertificatesBySerial[serial]
    }

    public func deviceCertificates(of device: DeviceID) async throws -> [DeviceCertificateRecord] {
        try open()
        return deviceCertificatesBySerial.values.filter { $0.deviceID == device }.sorted { ($0.notBefore, $0.serial) < ($1.notBefore, $1.serial) }
    }

    public func revokeDeviceCertificate(serial: String, at: Date, reason: String) async throws -> Bool {
        try open()
        guard var c = deviceCertificatesBySerial[serial], c.revokedAt == nil else { return false }
        c.revokedAt = at; c.revokedReason = reason
        deviceCertificatesBySerial[serial] = c
        changed(.device)
        return true
    }

    public func revokeDeviceCertificates(of device: DeviceID, at: Date, reason: String) async throws -> Int {
        try open()
        let serials = deviceCertificatesBySerial.values.filter { $0.deviceID == device && $0.revokedAt == nil }.map(\.serial)
        for serial in serials {
            deviceCertificatesBySerial[serial]?.revokedAt = at
            deviceCertificatesBySerial[serial]?.revokedReason = reason
        }
        if !serials.isEmpty { changed(.device) }
        return serials.count
    }

    // MARK: Flow state

    public func createFlowState(_ state: FlowStateRecord) async throws {
        try open()
        guard flowStates[state.idHash] == nil else { throw StoreError(.conflict, "flow state exists") }
        flowStates[state.idHash] = state
    }

    public func takeFlowState(idHash: String, kind: String, at: Date) async throws -> FlowStateRecord? {
        try open()
        guard let s = flowStates[idHash], s.kind == kind else { return nil }
        flowStates[idHash] = nil
        return at < s.expiresAt ? s : nil
    }

    public func deleteFlowStates(expiredBefore date: Date) async throws -> Int {
        try open()
        let doomed = flowStates.values.filter { $0.expiresAt < date }.map(\.idHash)
        for id in doomed { flowStates[id] = nil }
        return doomed.count
    }
}
