/// `permit` or `forbid`.
public enum Effect: String, Sendable, Hashable {
    case permit, forbid
}

/// An entity in a scope constraint: a concrete UID or a template slot.
public enum EntityReference: Sendable, Hashable, CustomStringConvertible {
    case uid(EntityUID)
    case slot(SlotID)
    public var description: String {
        switch self {
        case .uid(let u): return u.description
        case .slot(let s): return s.description
        }
    }
}

/// Principal or resource scope constraint.
public enum ScopeConstraint: Sendable, Hashable {
    /// No constraint (`principal`).
    case any
    /// `principal == E`.
    case eq(EntityReference)
    /// `principal in E`.
    case `in`(EntityReference)
    /// `principal is T`.
    case `is`(EntityType)
    /// `principal is T in E`.
    case isIn(EntityType, EntityReference)
}

/// Action scope constraint.
public enum ActionConstraint: Sendable, Hashable {
    /// No constraint (`action`).
    case any
    /// `action == A`.
    case eq(EntityUID)
    /// `action in A`.
    case `in`(EntityUID)
    /// `action in [A, B]`.
    case inSet([EntityUID])
}

/// A `when { … }` or `unless { … }` clause.
public struct Condition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case when, unless }
    public let kind: Kind
    public let body: Expr
    public let location: SourceLocation?
    public init(kind: Kind, body: Expr, location: SourceLocation? = nil) {
        self.kind = kind; self.body = body; self.location = location
    }
}

/// One annotation `@key("value")` (value "" when written as `@key`).
public struct Annotation: Sendable, Hashable {
    public let key: String
    public let value: String
    public let location: SourceLocation?
    public init(key: String, value: String, location: SourceLocation? = nil) {
        self.key = key; self.value = value; self.location = location
    }
}

/// Annotations in source order, with keyed lookup. Keys are unique.
public struct Annotations: Sendable, Hashable, Sequence {
    public private(set) var entries: [Annotation]
    public init(_ entries: [Annotation] = []) { self.entries = entries }
    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }
    public var isEmpty: Bool { entries.isEmpty }
    public func makeIterator() -> IndexingIterator<[Annotation]> { entries.makeIterator() }
    /// As a dictionary (order lost).
    public var dictionary: [String: String] {
        var d: [String: String] = [:]
        for a in entries { d[a.key] = a.value }
        return d
    }
}

/// A policy or template.
///
/// A template has a non-empty `slots` set (`?principal` / `?resource` in its scope);
/// a linked policy carries `templateID` and `slotValues` and has the slots substituted.
public struct Policy: Sendable, Hashable {
    public var id: String
    public var effect: Effect
    public var principal: ScopeConstraint
    public var action: ActionConstraint
    public var resource: ScopeConstraint
    public var conditions: [Condition]
    public var annotations: Annotations
    public var location: SourceLocation?
    /// For linked policies: the template it was linked from.
    public var templateID: String?
    /// For linked policies: the slot values used.
    public var slotValues: [SlotID: EntityUID]

    public init(id: String, effect: Effect, principal: ScopeConstraint = .any, action: ActionConstraint = .any,
                resource: ScopeConstraint = .any, conditions: [Condition] = [], annotations: Annotations = Annotations(),
                location: SourceLocation? = nil, templateID: String? = nil, slotValues: [SlotID: EntityUID] = [:]) {
        self.id = id; self.effect = effect; self.principal = principal; self.action = action
        self.resource = resource; self.conditions = conditions; self.annotations = annotations
        self.location = location; self.templateID = templateID; self.slotValues = slotValues
    }

    /// The slots used in the scope (empty for static policies).
    public var slots: Set<SlotID> {
        var s = Set<SlotID>()
        func add(_ c: ScopeConstraint) {
            switch c {
            case .eq(.slot(let x)), .in(.slot(let x)), .isIn(_, .slot(let x)): s.insert(x)
            default: break
            }
        }
        add(principal); add(resource)
        return s
    }
    /// True if this is a template (it has slots).
    public var isTemplate: Bool { !slots.isEmpty }
}

/// A set of policies: static policies, templates, and template links, each kept in
/// insertion order. Ids are unique across all three.
public struct PolicySet: Sendable, Hashable {
    public static func == (a: PolicySet, b: PolicySet) -> Bool {
        a.staticPolicies == b.staticPolicies && a.templates == b.templates && a.linkedPolicies == b.linkedPolicies
    }
    public func hash(into h: inout Hasher) {
        h.combine(staticPolicies); h.combine(templates); h.combine(linkedPolicies)
    }
    /// Static (slot-free) policies.
    public private(set) var staticPolicies: [Policy] = []
    /// Templates (policies with slots).
    public private(set) var templates: [Policy] = []
    /// Linked policies (templates instantiated with slot values).
    public private(set) var linkedPolicies: [Policy] = []

    /// Shared references to `policies`, kept in sync (used by the authorizer to avoid copies).
    public private(set) var policyRefs: [PolicyRef] = []

    public init() {}

    /// All policies that are evaluated: static policies followed by linked policies.
    public var policies: [Policy] { staticPolicies + linkedPolicies }

    private mutating func rebuildRefs() { policyRefs = (staticPolicies + linkedPolicies).map(PolicyRef.init) }

    /// Looks a policy, template or link up by id.
    public func policy(id: String) -> Policy? {
        staticPolicies.first { $0.id == id } ?? linkedPolicies.first { $0.id == id } ?? templates.first { $0.id == id }
    }

    private func containsID(_ id: String) -> Bool { policy(id: id) != nil }

    /// Adds a static policy or template (by whether it has slots). Throws on duplicate ids.
    public mutating func add(_ p: Policy) throws(CedarError) {
        guard !containsID(p.id) else { throw CedarError(.policySet, "duplicate policy id `\(p.id)`", at: p.location) }
        if p.isTemplate { templates.append(p) } else { staticPolicies.append(p); rebuildRefs() }
    }

    /// Links template `templateID` with `values` into a new policy `newID`.
    /// Errors: unknown template, duplicate id, missing or extra slot values.
    @discardableResult
    public mutating func link(templateID: String, newID: String, values: [SlotID: EntityUID]) throws(CedarError) -> Policy {
        guard let t = templates.first(where: { $0.id == templateID }) else {
            throw CedarError(.link, "no template with id `\(templateID)`")
        }
        guard !containsID(newID) else { throw CedarError(.link, "duplicate policy id `\(newID)`") }
        let slots = t.slots
        for s in slots.sorted(by: { $0.rawValue < $1.rawValue }) where values[s] == nil {
            throw CedarError(.link, "missing value for slot \(s) when linking template `\(templateID)`")
        }
        for s in values.keys.sorted(by: { $0.rawValue < $1.rawValue }) where !slots.contains(s) {
            throw CedarError(.link, "unexpected value for slot \(s): template `\(templateID)` has no such slot")
        }
        func sub(_ r: EntityReference) -> EntityReference {
            if case .slot(let s) = r, let v = values[s] { return .uid(v) }
            return r
        }
        func subC(_ c: ScopeConstraint) -> ScopeConstraint {
            switch c {
            case .any, .is: return c
            case .eq(let r): return .eq(sub(r))
            case .in(let r): return .in(sub(r))
            case .isIn(let t, let r): return .isIn(t, sub(r))
            }
        }
        var p = t
        p.id = newID
        p.principal = subC(t.principal)
        p.resource = subC(t.resource)
        p.templateID = templateID
        p.slotValues = values
        linkedPolicies.append(p)
        policyRefs.append(PolicyRef(p))
        return p
    }

    /// Removes a link (not a template or static policy). Returns whether it existed.
    @discardableResult
    public mutating func unlink(id: String) -> Bool {
        guard let i = linkedPolicies.firstIndex(where: { $0.id == id }) else { return false }
        linkedPolicies.remove(at: i)
        rebuildRefs()
        return true
    }
}
