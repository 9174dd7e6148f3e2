import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage

/// The OCSF 1.8.0 events of attestations, appended to the event log like every
/// other operator action: Entity Management (3004) with the attestation as
/// `entity` (type "Attestation", its id as `uid`): activity 1 Create when one
/// is recorded, 11 Deactivate when it is revoked (the reason as `comment`).
/// The operator (the OS account running `menshen attest`) is `actor.user`
/// (type Admin); the principle, who attested, the dates and every evidence
/// file's name, size and SHA-256 are in `unmapped.attestation`, so the audit
/// log alone shows what was attested on what evidence.
public struct AttestationEvents: Sendable {
    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.clock = clock; self.random = random
    }

    public func added(_ r: AttestationRecord) async throws {
        try await append(r, activity: 1, actor: r.createdBy, comment: nil,
                         message: "attestation \(r.id) of principle \(r.principleID) recorded by \(r.createdBy.prefix(128)) "
                            + "(attested by \(r.attestedBy.prefix(128)), expires \(AssessmentRecords.rfc3339(r.expiresAt)), \(r.files.count) evidence file\(r.files.count == 1 ? "" : "s"))")
    }

    public func revoked(_ r: AttestationRecord) async throws {
        let by = r.revokedBy ?? "unknown"
        try await append(r, activity: 11, actor: by, comment: r.revocationReason,
                         message: "attestation \(r.id) of principle \(r.principleID) revoked by \(by.prefix(128))")
    }

    func append(_ r: AttestationRecord, activity: Int, actor: String, comment: String?, message: String) async throws {
        let severity = activity == 11 ? 2 : 1
        var event: [String: Any] = [
            "class_uid": 3004, "category_uid": 3, "activity_id": activity, "type_uid": 3004 * 100 + activity,
            "severity_id": severity, "time": StoreCoding.millis(clock.now()),
            "metadata": ["version": IdentityEvents.ocsfVersion, "uid": random.uuid().uuidString.lowercased(),
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": IdentityEvents.productVersion]],
            "entity": ["uid": r.id, "name": "Attestation of principle \(r.principleID)", "type": "Attestation"],
            "actor": ["user": ["name": String(actor.prefix(128)), "type_id": 2, "type": "Admin"], "app_name": "menshen attest"] as [String: Any],
            "status_id": 1, "status": "Success",
            "message": String(message.prefix(1000)),
        ]
        if let comment, !comment.isEmpty { event["comment"] = String(comment.prefix(1000)) }
        var detail: [String: Any] = [
            "principle_id": r.principleID, "attested_by": r.attestedBy, "statement": String(r.statement.prefix(1000)),
            "attested_at": StoreCoding.millis(r.attestedAt), "expires_at": StoreCoding.millis(r.expiresAt),
            "files": r.files.map { ["name": $0.name, "size": $0.size, "sha256": $0.sha256] as [String: Any] },
        ]
        if let at = r.revokedAt { detail["revoked_at"] = StoreCoding.millis(at) }
        if let by = r.revokedBy { detail["revoked_by"] = by }
        event["unmapped"] = ["attestation": detail]
        let json = try EventJSON.encode(event)
        let record = NewEvent(id: random.uuid(), time: clock.now(), classUID: 3004, severityID: severity, userID: nil, payloadJSON: json)
        _ = try await store.appendEvents([record], hasher: EventChain.hasher)
    }
}
