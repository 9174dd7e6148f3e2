import Foundation

/// T1078 Valid Accounts: a dormant account suddenly active. A successful
/// sign-in by a user whose last activity (sign-in or allowed access) was more
/// than ``DetectionConfiguration/dormantDays`` days before. The engine knows
/// only what it has seen: after a restart, replay history or seed last
/// activity with ``DetectionEngine/seedLastSeen(user:at:)``.
public struct DormantAccountDetector: BehaviourDetector {
    public let metadata = BuiltInRules.metadata(
        id: "9fc7423a-cad8-4c5a-bbca-8547ff97b0fd", title: "Dormant account suddenly active", level: .medium,
        tags: ["attack.initial-access", "attack.persistence", "attack.privilege-escalation", "attack.defense-evasion", "attack.t1078"],
        description: "A successful sign-in to an account unused for longer than the dormancy period.")

    public init() {}

    public mutating func observe(_ e: DetectionEvent, baselines: BaselineBook, configuration c: DetectionConfiguration) -> [DetectionFinding] {
        guard e.isSuccessfulSignIn, let user = e.userName, let b = baselines[user] else { return [] }
        let idle = e.time.timeIntervalSince(b.lastSeen)
        guard idle > Double(c.dormantDays) * 86_400 else { return [] }
        return [DetectionFinding(metadata: metadata, user: user, sourceIP: e.sourceIP, device: e.deviceUID, evidence: [e.id], firstTime: b.lastSeen, lastTime: e.time,
                                 message: "\(metadata.title): \(user) signed in after \(Int(idle / 86_400)) days without activity")]
    }
}
