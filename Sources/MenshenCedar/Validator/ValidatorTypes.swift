/// Types used by the Cedar policy validator (strict mode): the lattice of expression
/// types with singleton booleans, entity least-upper-bounds, open/closed records,
/// and the subtype / least-upper-bound relations (strict and permissive variants).

enum BoolKind: Hashable, Sendable { case any, tt, ff }

/// The static type of a Cedar expression.
indirect enum VType: Hashable, Sendable, CustomStringConvertible {
    case never
    case bool(BoolKind)
    case long
    case string
    case anyEntity
    /// An entity whose type is one of the (non-empty) set.
    case entity(Set<EntityType>)
    /// A set; nil element type means "any set".
    case set(VType?)
    case record([String: VAttr], open: Bool)
    case ext(String)

    static let anyBool = VType.bool(.any)
    static func singleton(_ b: Bool) -> VType { .bool(b ? .tt : .ff) }
    static let anyRecord = VType.record([:], open: true)
    static func entityType(_ t: EntityType) -> VType { .entity([t]) }

    var description: String {
        switch self {
        case .never: return "Never"
        case .bool(.any): return "Bool"
        case .bool(.tt): return "True"
        case .bool(.ff): return "False"
        case .long: return "Long"
        case .string: return "String"
        case .anyEntity: return "(any entity)"
        case .entity(let s):
            let names = s.map(\.qualified).sorted()
            return names.count == 1 ? names[0] : "Union<" + names.joined(separator: ", ") + ">"
        case .set(let e): return "Set<\(e.map { "\($0)" } ?? "(any)")>"
        case .record(let attrs, let open):
            let body = attrs.keys.sorted().map { k in "\(k)\(attrs[k]?.required == false ? "?" : ""): \(attrs[k].map { "\($0.type)" } ?? "")" }
            return (open ? "(open) " : "") + "{" + body.joined(separator: ", ") + "}"
        case .ext(let n): return n
        }
    }

    init(_ t: SchemaType) {
        switch t {
        case .bool: self = .anyBool
        case .long: self = .long
        case .string: self = .string
        case .entity(let n): self = .entity([n])
        case .set(let e): self = .set(VType(e))
        case .record(let r): self = VType(r)
        case .ext(let n): self = .ext(n)
        }
    }

    init(_ r: RecordType) {
        var m: [String: VAttr] = [:]
        for (k, a) in r.attributes { m[k] = VAttr(type: VType(a.type), required: a.required) }
        self = .record(m, open: r.openAttributes)
    }

    var isEntity: Bool {
        switch self {
        case .anyEntity, .entity: return true
        default: return false
        }
    }
}

struct VAttr: Hashable, Sendable {
    var type: VType
    var required: Bool
}

enum TypeLattice {
    static func isSubtype(_ a: VType, _ b: VType, strict: Bool) -> Bool {
        switch (a, b) {
        case (.never, _): return true
        case (.bool(let x), .bool(let y)): return x == y || y == .any
        case (.long, .long), (.string, .string): return true
        case (.set(let e0), .set(let e1)):
            switch (e0, e1) {
            case (.some(let x), .some(let y)): return isSubtype(x, y, strict: strict)
            case (.some, .none), (.none, .none): return true
            case (.none, .some): return false
            }
        case (.record(let a0, let o0), .record(let a1, let o1)):
            guard !o0 || o1 else { return false }
            if o1 && !strict && attrsSubtype(a0, a1, strict: strict) { return true }
            return Set(a0.keys) == Set(a1.keys) && attrsSubtype(a0, a1, strict: strict)
        case (.entity(let l0), .entity(let l1)): return strict ? l0 == l1 : l0.isSubset(of: l1)
        case (.anyEntity, .anyEntity): return true
        case (.entity, .anyEntity): return !strict
        case (.ext(let x), .ext(let y)): return x == y
        default: return false
        }
    }

    static func attrsSubtype(_ a0: [String: VAttr], _ a1: [String: VAttr], strict: Bool) -> Bool {
        for (k, t1) in a1 {
            guard let t0 = a0[k] else { return false }
            let q = strict ? t0.required == t1.required : (t0.required || !t1.required)
            if !q || !isSubtype(t0.type, t1.type, strict: strict) { return false }
        }
        return true
    }

    /// Least upper bound, or nil if the types have none.
    static func lub(_ a: VType, _ b: VType, strict: Bool) -> VType? {
        if isSubtype(a, b, strict: strict) { return b }
        if isSubtype(b, a, strict: strict) { return a }
        switch (a, b) {
        case (.bool, .bool): return .anyBool
        case (.set(.none), .set), (.set, .set(.none)): return .set(nil)
        case (.set(.some(let x)), .set(.some(let y))):
            guard let l = lub(x, y, strict: strict) else { return nil }
            return .set(l)
        case (.record(let a0, let o0), .record(let a1, let o1)):
            var out: [String: VAttr] = [:]
            if strict {
                guard Set(a0.keys) == Set(a1.keys) else { return nil }
                for (k, t0) in a0 {
                    guard let t1 = a1[k], t0.required == t1.required, let l = lub(t0.type, t1.type, strict: true) else { return nil }
                    out[k] = VAttr(type: l, required: t0.required)
                }
            } else {
                out = permissiveAttrsLub(a0, a1)
            }
            let open = o0 || o1 || Set(out.keys) != Set(a0.keys).union(a1.keys)
            return .record(out, open: open)
        case (.entity(let l0), .entity(let l1)):
            if strict && l0 != l1 { return nil }
            return .entity(l0.union(l1))
        case (.anyEntity, .anyEntity): return .anyEntity
        case (.anyEntity, .entity), (.entity, .anyEntity): return strict ? nil : .anyEntity
        default: return nil
        }
    }

    static func permissiveAttrsLub(_ a0: [String: VAttr], _ a1: [String: VAttr]) -> [String: VAttr] {
        var out: [String: VAttr] = [:]
        for (k, t0) in a0 {
            guard let t1 = a1[k], let l = lub(t0.type, t1.type, strict: false) else { continue }
            out[k] = VAttr(type: l, required: t0.required && t1.required)
        }
        return out
    }

    static func reduceLub<S: Sequence>(_ types: S, strict: Bool) -> VType? where S.Element == VType {
        var acc = VType.never
        for t in types {
            guard let l = lub(acc, t, strict: strict) else { return nil }
            acc = l
        }
        return acc
    }
}
