import Foundation
import MenshenCore
import MenshenStorage
import MenshenVisibility

/// Builds the events detection and response write to the event log: the
/// OCSF Detection Finding (2004) of each finding and one OCSF Remediation
/// Activity (7001) for each playbook action taken.
///
/// Every event carries `metadata.log_name` = ``logName``: the detection
/// service skips events so marked, so its own findings and actions never
/// loop back into detections.
///
/// Remediation Activity fits the actions (OCSF 1.8.0 category 7, "the
/// remediation of a finding"): `revoke_sessions` is activity 2 Evict (the
/// user's sessions are thrown out), `disable_user` 1 Isolate (the account is
/// cut off), `quarantine_device` 1 Isolate (the device is cut off; `unmapped.device`
/// names it), `require_step_up` 4 Harden, `webhook`, `log` and `raise_risk` 99
/// Other (`activity_name` Notify / Log / Raise risk). A dry-run playbook's
/// steps are recorded with status 99 "Dry run" and `unmapped.dry_run`; a
/// `quarantine_device` step for a finding that names no device with status 99
/// "Skipped" and `unmapped.skipped`.
/// `command_uid` is the playbook run (finding uid and playbook name) the
/// action belongs to; `status_id` says whether it succeeded; `unmapped` holds
/// the playbook, the action, the finding uid and rule, and what was acted on.
public enum ResponseEvents {
    /// `metadata.log_name` of the events written here.
    public static let logName = "menshen.response"
    static let productVersion = "0.1.0"

    /// The Detection Finding event for `finding`, marked as ours.
    public static func finding(_ finding: DetectionFinding, id: UUID, writtenAt: Date) throws -> NewEvent {
        var payload = finding.ocsf
        if case .object(var o) = payload, case .object(var metadata)? = o["metadata"] {
            metadata["log_name"] = .string(logName)
            o["metadata"] = .object(metadata)
            payload = .object(o)
        }
        let user = finding.user.flatMap { IdentifierSyntax.isValid($0) ? UserID($0) : nil }
        return NewEvent(id: id, time: writtenAt, classUID: 2004, severityID: finding.severityID, userID: user,
                        payloadJSON: try EventJSON.encode(plain(payload)))
    }

    /// What one action did, for its audit event.
    public struct Outcome: Sendable {
        public var success: Bool
        /// One sentence: what was done or why it failed.
        public var detail: String
        /// The users acted on (ids), when the action acts on users.
        public var users: [String]
        /// Extra facts (`sessions_revoked`, `attempts`, `host`, …).
        public var facts: [String: EventJSON.Value]
        /// A status other than success or failure (a step held for approval: 99 "Pending approval").
        public var status: (id: Int, name: String)?
        public init(success: Bool, detail: String, users: [String] = [], facts: [String: EventJSON.Value] = [:],
                    status: (id: Int, name: String)? = nil) {
            self.success = success; self.detail = detail; self.users = users; self.facts = facts; self.status = status
        }
    }

    /// The event of an operator's decision on a held step (`menshen playbook approve|reject`): a
    /// Remediation Activity, activity 99 (`Approve` / `Reject`), the operator in `unmapped.approval.by`
    /// and in the message.
    public static func approvalDecision(_ record: PlaybookApprovalRecord, approved: Bool, operator name: String, id: UUID, at time: Date) throws -> NewEvent {
        let verb = approved ? "approved" : "rejected"
        let event: [String: Any] = [
            "class_uid": 7001, "category_uid": 7, "activity_id": 99, "activity_name": approved ? "Approve" : "Reject", "type_uid": 700_199,
            "severity_id": 1, "time": StoreCoding.millis(time), "status_id": 1, "status": "Success",
            "status_detail": "step \(record.action) of playbook \(record.playbook) \(verb) by \(name)",
            "command_uid": "\(record.findingUID)/\(record.playbook)",
            "message": "playbook \(record.playbook): \(record.action) for finding \(record.findingUID) \(verb) by \(name) (run \(record.id))",
            "remediation": ["desc": "Operator decision on a playbook step held for approval"],
            "metadata": ["version": MenshenVisibility.ocsfVersion, "log_name": logName,
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": productVersion]],
            "unmapped": ["playbook": record.playbook, "action": record.action, "finding_uid": record.findingUID,
                         "approval": ["run": record.id, "state": verb, "by": name]] as [String: Any],
        ]
        return NewEvent(id: id, time: time, classUID: 7001, severityID: 1, userID: nil, payloadJSON: try EventJSON.encode(event))
    }

    /// The Remediation Activity event for one action of a playbook run.
    public static func action(_ step: PlaybookStep, finding: DetectionFinding, outcome: Outcome, id: UUID, at time: Date) throws -> NewEvent {
        let (activity, name): (Int, String?) = switch step.action {
        case .revokeSessions: (2, nil)
        case .disableUser: (1, nil)
        case .raiseRisk: (99, "Raise risk")
        case .requireStepUp: (4, nil)
        case .quarantineDevice: (1, nil)
        case .webhook: (99, "Notify")
        case .log: (99, "Log")
        }
        var unmapped: [String: Any] = [
            "playbook": step.playbook, "action": step.action.kind, "finding_uid": finding.uid, "rule": finding.ruleID,
        ]
        if !outcome.users.isEmpty { unmapped["users"] = outcome.users }
        if step.dryRun { unmapped["dry_run"] = true }
        for (k, v) in outcome.facts { unmapped[k] = plain(v) }
        var event: [String: Any] = [
            "class_uid": 7001, "category_uid": 7, "activity_id": activity, "type_uid": 700_100 + activity,
            "severity_id": finding.severityID, "time": StoreCoding.millis(time),
            // A dry run's step is neither a success nor a failure: status 99 Other, "Dry run".
            "status_id": step.dryRun ? 99 : outcome.status?.id ?? (outcome.success ? 1 : 2),
            "status": step.dryRun ? "Dry run" : outcome.status?.name ?? (outcome.success ? "Success" : "Failure"),
            "status_detail": String(outcome.detail.prefix(512)),
            "command_uid": "\(finding.uid)/\(step.playbook)",
            "message": "\(step.dryRun ? "[dry run] " : "")playbook \(step.playbook): \(step.action.kind) for finding \(finding.uid) (\(finding.title)): \(outcome.detail.prefix(256))",
            "remediation": ["desc": "Playbook \(step.playbook), action \(step.action.kind), answering \"\(finding.title)\""],
            "metadata": ["version": MenshenVisibility.ocsfVersion, "log_name": logName,
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": productVersion]],
            "unmapped": unmapped,
        ]
        if let name { event["activity_name"] = name }
        let user = outcome.users.count == 1 ? UserID(outcome.users[0]) : nil
        return NewEvent(id: id, time: time, classUID: 7001, severityID: finding.severityID, userID: user,
                        payloadJSON: try EventJSON.encode(event))
    }

    /// The webhook ticket: a summary a ticketing system can file directly, and
    /// the OCSF finding itself for a SIEM.
    public static func ticket(_ finding: DetectionFinding, playbook: String, findingEventID: UUID) throws -> String {
        let ticket: [String: Any] = [
            "source": "menshen", "playbook": playbook,
            "ticket_id": "\(finding.uid)/\(playbook)",
            "finding_uid": finding.uid, "finding_event_id": findingEventID.uuidString.lowercased(),
            "rule": finding.ruleID, "title": finding.title, "severity": finding.level.rawValue, "severity_id": finding.severityID,
            "techniques": finding.techniques.map { ["uid": $0.uid, "name": $0.name] },
            "user": finding.user.map { $0 as Any } ?? NSNull(), "source_ip": finding.sourceIP.map { $0 as Any } ?? NSNull(),
            "evidence": finding.evidence,
            "first_seen_time": StoreCoding.millis(finding.firstTime), "last_seen_time": StoreCoding.millis(finding.lastTime),
            "message": finding.message,
            "ocsf": plain(finding.ocsf),
        ]
        return try EventJSON.encode(ticket)
    }

    static func plain(_ v: EventValue) -> Any {
        switch v {
        case .null: NSNull()
        case .bool(let b): b
        case .int(let i): i
        case .double(let d): d
        case .string(let s): s
        case .array(let a): a.map(plain)
        case .object(let o): o.mapValues(plain)
        }
    }

    static func plain(_ v: EventJSON.Value) -> Any {
        switch v {
        case .null: NSNull()
        case .bool(let b): b
        case .int(let i): i
        case .string(let s): s
        case .array(let a): a.map(plain)
        case .object(let o): o.mapValues(plain)
        }
    }
}
