import Foundation

/// T1078 Valid Accounts: privileged access outside business hours. An allowed
/// access (6001, `action_id` 1) is privileged when the principal holds a role
/// in ``DetectionConfiguration/privilegedRoles`` (`unmapped.decision.principal.roles`)
/// or the application's classification is in
/// ``DetectionConfiguration/privilegedClassifications``; it is outside business
/// hours when its local time (``DetectionConfiguration/timeZone``) is outside
/// ``DetectionConfiguration/businessHours`` or on a day outside
/// ``DetectionConfiguration/businessDays``. Fires at most once per user per hour.
/// Swift, because hours and days depend on the institution's time zone.
public struct PrivilegedAccessOutsideHoursDetector: BehaviourDetector {
    public let metadata = BuiltInRules.metadata(
        id: "8df99ddf-92fc-409a-b041-e2ea11eca8b9", title: "Privileged access outside business hours", level: .medium,
        tags: ["attack.initial-access", "attack.persistence", "attack.privilege-escalation", "attack.defense-evasion", "attack.t1078"],
        description: "An allowed privileged access (privileged role or restricted application) outside business hours.")

    private var lastFired: [String: Date] = [:]

    public init() {}

    public mutating func observe(_ e: DetectionEvent, baselines: BaselineBook, configuration c: DetectionConfiguration) -> [DetectionFinding] {
        guard e.isAllowedAccess, let user = e.userName else { return [] }
        // The time first: it is arithmetic, the look-ups below are not, and most access is in business hours.
        let (hour, weekday) = c.hourAndWeekday(e.time)
        guard !c.businessHours.contains(hour) || !c.businessDays.contains(weekday) else { return [] }
        let roles = e.values(Self.rolesPath).compactMap(\.stringValue).filter(c.privilegedRoles.contains)
        let classification = e["unmapped.decision.resource.classification"]?.stringValue
            ?? e["web_resources.data.classification"]?.stringValue
        let privilegedData = classification.map(c.privilegedClassifications.contains) ?? false
        guard !roles.isEmpty || privilegedData else { return [] }
        if let last = lastFired[user], e.time.timeIntervalSince(last) < 3600, e.time >= last { return [] }
        if lastFired.count >= 10_000 { lastFired = lastFired.filter { e.time.timeIntervalSince($0.value) < 3600 } }
        if lastFired.count >= 10_000 { lastFired.removeAll() }
        lastFired[user] = e.time
        let what = roles.isEmpty ? "\(classification ?? "") application" : "role \(roles.joined(separator: ", "))"
        let grant = e["unmapped.decision.context.grant_active"]?.boolValue == true ? " under an active grant" : ""
        let app = e["web_resources.uid"]?.stringValue ?? e["unmapped.decision.resource.application"]?.stringValue ?? ""
        return [DetectionFinding(metadata: metadata, user: user, sourceIP: e.sourceIP, device: e.deviceUID, evidence: [e.id], firstTime: e.time, lastTime: e.time,
                                 message: "\(metadata.title): \(user) used \(what) on \(app) at \(String(format: "%02d:00", hour)) local time\(grant)")]
    }

    public var fieldsRead: [FieldPath] {
        [Self.rolesPath] + ["unmapped.decision.resource.classification", "web_resources.data.classification",
                            "unmapped.decision.context.grant_active", "web_resources.uid", "unmapped.decision.resource.application"]
            .compactMap { try? FieldPath($0) }
    }

    static let rolesPath = (try? FieldPath("unmapped.decision.principal.roles"))
        ?? FieldPath.unchecked(["unmapped", "decision", "principal", "roles"])
}
