/// Buckets policies by their scope constraints so that a request only evaluates the
/// policies that can apply to it.
///
/// Each policy is filed under one key per scope variable: principal scope (== / in entity,
/// `is` type, or wildcard), and likewise for action and resource. A request probes the
/// buckets with its entity, its ancestors (for `in`) and its type (for `is`). The chosen
/// dimension is the most selective one for each policy: principal if constrained, else
/// resource, else action, else the wildcard list. Candidates are returned in policy-set
/// order, and every candidate is still fully evaluated, so results equal a full scan.
public struct PolicyIndex: Sendable {
    private enum Dim: Int { case principal = 0, resource = 1, action = 2 }
    private struct Key: Hashable { let dim: Dim; let uid: EntityUID }
    private struct TypeKey: Hashable { let dim: Dim; let type: EntityType }

    private let all: [PolicyRef]
    private var byUID: [Key: [Int]] = [:]
    private var byType: [TypeKey: [Int]] = [:]
    private var unconstrained: [Int] = []

    public init(_ set: PolicySet) {
        all = set.policyRefs
        for (i, ref) in all.enumerated() {
            let p = ref.policy
            if !file(i, p.principal, .principal) && !file(i, p.resource, .resource) && !fileAction(i, p.action) {
                unconstrained.append(i)
            }
        }
    }

    public var count: Int { all.count }

    /// Policy sets up to this size are scanned instead of probed.
    public static let scanThreshold = 16

    /// All indexed policies, in policy-set order.
    public var policies: [PolicyRef] { all }

    private mutating func file(_ i: Int, _ c: ScopeConstraint, _ dim: Dim) -> Bool {
        switch c {
        case .eq(.uid(let u)), .in(.uid(let u)):
            byUID[Key(dim: dim, uid: u), default: []].append(i); return true
        case .is(let t), .isIn(let t, _):
            byType[TypeKey(dim: dim, type: t), default: []].append(i); return true
        default: return false
        }
    }

    private mutating func fileAction(_ i: Int, _ c: ActionConstraint) -> Bool {
        switch c {
        case .eq(let u), .in(let u):
            byUID[Key(dim: .action, uid: u), default: []].append(i); return true
        case .inSet(let us):
            guard !us.isEmpty else { return false }
            for u in Set(us) { byUID[Key(dim: .action, uid: u), default: []].append(i) }
            return true
        case .any: return false
        }
    }

    /// Policies that may apply to `request`, in policy-set order.
    public func candidates(for request: Request, entities: Entities) -> [PolicyRef] {
        // For small sets probing costs more than evaluating every scope check.
        if all.count <= PolicyIndex.scanThreshold { return all }
        var idx = unconstrained
        func probe(_ dim: Dim, _ uid: EntityUID) {
            if let b = byUID[Key(dim: dim, uid: uid)] { idx.append(contentsOf: b) }
            if let anc = entities.ancestors[uid] {
                for a in anc { if let b = byUID[Key(dim: dim, uid: a)] { idx.append(contentsOf: b) } }
            }
            if let b = byType[TypeKey(dim: dim, type: uid.type)] { idx.append(contentsOf: b) }
        }
        probe(.principal, request.principal)
        probe(.resource, request.resource)
        probe(.action, request.action)
        idx.sort()
        var out: [PolicyRef] = []
        out.reserveCapacity(idx.count)
        var last = -1
        for i in idx where i != last { out.append(all[i]); last = i }  // indices come from `all`
        return out
    }
}

/// A shared reference to one policy, so that candidate lists and responses pass a single
/// pointer instead of copying the policy struct.
public final class PolicyRef: Sendable {
    public let policy: Policy
    public init(_ policy: Policy) { self.policy = policy }
}
