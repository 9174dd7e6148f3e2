/// What the enforcement point must do in addition to allowing or denying.
public enum Obligation: Sendable, Hashable, CustomStringConvertible {
    /// Prove a level of assurance of at least `minimumLoA`, with a factor no older than `maxAgeSeconds`.
    case stepUp(minimumLoA: Int?, maxAgeSeconds: Int?)
    /// Only safe methods are allowed under this decision.
    case readOnly
    /// Raise an alert of this severity to the SOC.
    case alert(AlertSeverity)

    public var description: String {
        switch self {
        case .stepUp(let loa, let age):
            var parts: [String] = []
            if let loa { parts.append("loa=\(loa)") }
            if let age { parts.append("max_age=\(age)") }
            return "step_up" + (parts.isEmpty ? "" : ":" + parts.joined(separator: ";"))
        case .readOnly: return "read_only"
        case .alert(let s): return "alert:\(s.rawValue)"
        }
    }
}

public enum AlertSeverity: String, Sendable, Hashable, Comparable {
    case low, medium, high
    private var rank: Int { switch self { case .low: 0; case .medium: 1; case .high: 2 } }
    public static func < (l: AlertSeverity, r: AlertSeverity) -> Bool { l.rank < r.rank }
}

/// Why a decision came out as it did, in words an operator can search for.
public enum ReasonCode: String, Sendable, Hashable {
    /// A permit policy matched and no forbid did.
    case permitted = "permitted"
    /// A forbid policy matched.
    case forbidden = "forbidden"
    /// No permit policy matched (default deny).
    case noMatchingPermit = "no_matching_permit"
    /// The request is allowed only after the user proves a stronger or fresher factor.
    case stepUpRequired = "step_up_required"
    /// A read-only obligation refused an unsafe method.
    case readOnly = "read_only"
    /// At least one policy raised an evaluation error (that policy was skipped; fail closed).
    case policyError = "policy_error"
    /// The request could not be turned into Cedar input (fail closed).
    case invalidRequest = "invalid_request"
}

/// A verdict as a value. Faults are thrown; "deny" never is.
public struct AccessDecision: Sendable, Equatable {
    public enum Effect: String, Sendable, Equatable { case allow, deny, stepUp = "step_up" }
    public var effect: Effect
    public var reasons: [ReasonCode]
    /// Ids (the `@id` annotation when present, else the Cedar policy id) of the determining policies.
    public var determiningPolicies: [String]
    public var obligations: [Obligation]
    /// Policy ids and messages of policies that errored during evaluation.
    public var errors: [String: String]

    public var isAllowed: Bool { effect == .allow }
}
