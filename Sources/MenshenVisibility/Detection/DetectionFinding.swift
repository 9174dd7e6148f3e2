import Crypto
import Foundation
import MenshenCore

/// What a detection produces: the substance of an OCSF Detection Finding
/// (class 2004), with ``ocsf`` giving the event itself.
public struct DetectionFinding: Sendable, Equatable {
    /// Deterministic: SHA-256 over the rule, the group and the evidence, so the
    /// same finding computed twice (a replay) has the same uid and can be de-duplicated.
    public var uid: String
    /// The rule's id (else name, else title).
    public var ruleID: String
    public var title: String
    public var level: SigmaLevel
    public var techniques: [AttackTechnique]
    /// The user the finding is about, when there is one.
    public var user: String?
    /// The source address the finding is about, when there is one.
    public var sourceIP: String?
    /// The enrolled device the finding is about (the event's `device.uid`), when one event made it
    /// and that event named a device. Not part of ``uid``: the evidence already identifies the event.
    public var device: String?
    /// The correlation's `group-by` values (field or alias → value).
    public var groupBy: [String: String]
    /// Ids of the events that made the finding (bounded; the most recent are kept).
    public var evidence: [String]
    public var firstTime: Date
    public var lastTime: Date
    /// One sentence for the analyst.
    public var message: String

    public var severityID: Int { level.severityID }

    public init(metadata: RuleMetadata, user: String?, sourceIP: String?, device: String? = nil, groupBy: [String: String] = [:],
                evidence: [String], firstTime: Date, lastTime: Date, message: String) {
        ruleID = metadata.key; title = metadata.title; level = metadata.level; techniques = metadata.techniques
        self.user = user; self.sourceIP = sourceIP; self.device = device; self.groupBy = groupBy; self.evidence = evidence
        self.firstTime = firstTime; self.lastTime = lastTime; self.message = message
        var h = SHA256()
        for part in [ruleID, groupBy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}"),
                     user ?? "", evidence.joined(separator: ","), String(Int64(lastTime.timeIntervalSince1970 * 1000))] {
            h.update(data: Data(part.utf8)); h.update(data: Data([0]))
        }
        let hex = SecretHash.hex(h.finalize().prefix(16))
        // Shaped as a UUID (version nibble 8: custom, RFC 9562) for stores that index uids as UUIDs.
        let chars = Array(hex)
        uid = "\(String(chars[0..<8]))-\(String(chars[8..<12]))-8\(String(chars[13..<16]))-\(String(chars[16..<20]))-\(String(chars[20..<32]))"
    }

    /// The OCSF 1.8.0 Detection Finding (2004, activity 1 Create) for this finding.
    public var ocsf: EventValue {
        func ms(_ d: Date) -> EventValue { .int(Int64((d.timeIntervalSince1970 * 1000).rounded())) }
        let attacks: [EventValue] = techniques.flatMap { t -> [EventValue] in
            let tacticList = t.tactics.isEmpty ? [nil] : t.tactics.map(Optional.some)
            return tacticList.map { tactic in
                var a: [String: EventValue] = ["version": .string(MenshenVisibility.attackVersion)]
                if let parent = t.parentUID {
                    a["technique"] = ["uid": .string(parent), "name": .string(t.parentName ?? "")]
                    a["sub_technique"] = ["uid": .string(t.uid), "name": .string(t.name)]
                } else {
                    a["technique"] = ["uid": .string(t.uid), "name": .string(t.name)]
                }
                if let tactic { a["tactic"] = ["uid": .string(tactic.uid), "name": .string(tactic.name)] }
                return .object(a)
            }
        }
        var evidenceObject: [String: EventValue] = [:]
        if let user { evidenceObject["actor"] = ["user": ["name": .string(user)]] }
        if let sourceIP { evidenceObject["src_endpoint"] = ["ip": .string(sourceIP)] }
        // OCSF `device` needs `type_id`; the id is all the finding knows, so the type is Unknown (0).
        if let device { evidenceObject["device"] = ["uid": .string(String(device.prefix(128))), "type_id": 0, "type": "Unknown"] }
        var event: [String: EventValue] = [
            "class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200_401,
            "severity_id": .int(Int64(severityID)), "time": ms(lastTime),
            "metadata": ["version": .string(MenshenVisibility.ocsfVersion), "uid": .string(uid),
                         "product": ["name": "Menshen", "vendor_name": "Menshen project"]],
            "is_alert": true, "status_id": 1, "status": "New",
            "finding_info": .object([
                "uid": .string(uid), "title": .string(title), "desc": .string(message),
                "types": ["Detection"],
                "analytic": ["uid": .string(ruleID), "name": .string(title), "type_id": 1, "type": "Rule"],
                "attacks": .array(attacks),
                "related_events": .array(evidence.map { ["uid": .string($0)] }),
                "first_seen_time": ms(firstTime), "last_seen_time": ms(lastTime),
            ]),
            "message": .string(message),
        ]
        if !evidenceObject.isEmpty { event["evidences"] = [.object(evidenceObject)] }
        if !groupBy.isEmpty { event["unmapped"] = ["group_by": .object(groupBy.mapValues { .string($0) })] }
        return .object(event)
    }
}
