/// The outcome of an authorization request.
public enum Decision: String, Sendable, Hashable {
    case allow, deny
}

/// An error raised while evaluating one policy.
public struct PolicyError: Sendable, Hashable {
    public let policyID: String
    public let error: CedarError
    public init(policyID: String, error: CedarError) { self.policyID = policyID; self.error = error }
}

/// An authorization response: the decision, the policies that determined it (satisfied
/// permits for allow, satisfied forbids for deny; empty for a default deny), and the
/// policies whose evaluation raised an error (they are treated as not satisfied).
public struct Response: Sendable {
    public let decision: Decision
    /// The determining policies, in policy-set order.
    public var determiningPolicies: [Policy] { determining.map(\.policy) }
    let determining: [PolicyRef]
    public let errors: [PolicyError]

    /// Ids of the determining policies.
    public var reasons: [String] { determining.map(\.policy.id) }
    /// Annotations of determining policy `id`.
    public func annotations(of id: String) -> Annotations? {
        determining.first { $0.policy.id == id }?.policy.annotations
    }
}

/// Cedar's authorizer: forbid overrides permit, default deny, erroring policies skipped.
public enum Authorizer {
    /// Evaluates every policy of `policies` (static and linked) against the request.
    public static func isAuthorized(_ request: Request, policies: PolicySet, entities: Entities) -> Response {
        decide(request, candidates: policies.policyRefs, entities: entities)
    }

    /// Evaluates only the policies of `index` that can apply to the request; the result is
    /// identical to a full scan.
    public static func isAuthorized(_ request: Request, index: PolicyIndex, entities: Entities) -> Response {
        decide(request, candidates: index.candidates(for: request, entities: entities), entities: entities)
    }

    /// Evaluates `candidates` (in the given order).
    public static func decide(_ request: Request, candidates: [PolicyRef], entities: Entities) -> Response {
        let ev = Evaluator(request: request, entities: entities)
        var permits: [PolicyRef] = [], forbids: [PolicyRef] = []
        var errors: [PolicyError] = []
        for ref in candidates {
            do {
                if try ev.isSatisfied(ref) {
                    if ref.policy.effect == .permit { permits.append(ref) } else { forbids.append(ref) }
                }
            } catch {
                errors.append(PolicyError(policyID: ref.policy.id, error: error))
            }
        }
        if !forbids.isEmpty { return Response(decision: .deny, determining: forbids, errors: errors) }
        if !permits.isEmpty { return Response(decision: .allow, determining: permits, errors: errors) }
        return Response(decision: .deny, determining: [], errors: errors)
    }
}
