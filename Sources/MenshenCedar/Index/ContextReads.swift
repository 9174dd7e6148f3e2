/// Which attributes of `context` the conditions of a policy set can read, found from the policies' text
/// (the scope never reads `context`). Each read is the path of attribute names below `context`:
/// `context.session.loa` and `context.session has loa` are `["session", "loa"]`, `context has session` is
/// `["session"]`. A path that ends at a record reads all of that record (`context.session == {…}`). A use of
/// `context` that does not start such a path — `context` compared, passed to a function, put in a record or
/// a set, chosen by `if` — can read anything: ``everything`` is then true.
///
/// What is not among the reads cannot change a decision of the set: evaluation (``Evaluator``) reaches
/// `context` only through the `context` variable. ``PolicyDecisionPoint`` uses this to remember decisions
/// keyed by what is read (see `DecisionMemo` there).
public struct ContextReads: Sendable, Hashable {
    /// Some condition uses `context` as a whole.
    public private(set) var everything = false
    /// The paths read below `context`.
    public private(set) var paths: Set<[String]> = []

    public init(_ set: PolicySet) {
        for policy in set.policies {
            for condition in policy.conditions { add(condition.body) }
        }
    }

    public init(_ expressions: [Expr]) {
        for e in expressions { add(e) }
    }

    /// Whether the value at `path` below `context` may be read: a read path leads to it or through it (reading a
    /// record reads its members; reading a member reads part of the value at `path`).
    public func reads(_ path: [String]) -> Bool {
        if everything { return true }
        return paths.contains { read in
            read.count <= path.count ? path.starts(with: read) : read.starts(with: path)
        }
    }

    /// Walks `e` without recursion (expressions may be deep), noting each read.
    private mutating func add(_ e: Expr) {
        var stack = [e]
        while let next = stack.popLast() {
            switch next.kind {
            case .variable(.context):
                everything = true
            case .getAttr(let base, let name), .has(let base, let name):
                if let path = Self.path(below: base) {
                    paths.insert(path + [name])
                } else {
                    stack.append(base)
                }
            default:
                stack.append(contentsOf: next.children)
            }
        }
    }

    /// The attribute names from `context` down to `e` when `e` is `context` or a chain of attribute reads on it.
    static func path(below e: Expr) -> [String]? {
        var names: [String] = []
        var cur = e
        while true {
            switch cur.kind {
            case .variable(.context): return names.reversed()
            case .getAttr(let base, let name):
                names.append(name)
                cur = base
            default: return nil
            }
        }
    }
}
