/// One entity: its UID, attributes, direct parents and tags.
public struct Entity: Sendable, Hashable {
    public let uid: EntityUID
    public var attributes: [String: Value]
    /// Direct parents, as written in the data.
    public var parents: Set<EntityUID>
    public var tags: [String: Value]
    public init(uid: EntityUID, attributes: [String: Value] = [:], parents: Set<EntityUID> = [], tags: [String: Value] = [:]) {
        self.uid = uid; self.attributes = attributes; self.parents = parents; self.tags = tags
    }
}

/// An immutable entity store. The transitive ancestor closure of every entity is
/// computed once at construction, so `in` is a set lookup.
public struct Entities: Sendable {
    public let entities: [EntityUID: Entity]
    /// Transitive ancestors (not including the entity itself).
    public let ancestors: [EntityUID: Set<EntityUID>]

    public init() { entities = [:]; ancestors = [:] }

    /// Builds a store; throws on duplicate UIDs.
    public init(_ list: [Entity]) throws(CedarError) {
        var map: [EntityUID: Entity] = [:]
        map.reserveCapacity(list.count)
        for e in list {
            if map[e.uid] != nil { throw CedarError(.entities, "duplicate entity entry `\(e.uid)`") }
            map[e.uid] = e
        }
        self.entities = map
        self.ancestors = Entities.closure(map)
    }

    private static func closure(_ map: [EntityUID: Entity]) -> [EntityUID: Set<EntityUID>] {
        var result: [EntityUID: Set<EntityUID>] = [:]
        result.reserveCapacity(map.count)
        // Iterative DFS with memoization; cycles are tolerated (members of a cycle end up
        // sharing ancestors computed so far, then a fix-point pass completes them).
        var state: [EntityUID: UInt8] = [:] // 1 = in progress, 2 = done
        for root in map.keys where state[root] == nil {
            var stack: [(EntityUID, Bool)] = [(root, false)]
            while let (uid, expanded) = stack.popLast() {
                if expanded {
                    var acc = Set<EntityUID>()
                    for p in map[uid]?.parents ?? [] {
                        acc.insert(p)
                        if let pa = result[p] { acc.formUnion(pa) }
                    }
                    result[uid] = acc
                    state[uid] = 2
                    continue
                }
                if state[uid] != nil { continue }
                state[uid] = 1
                stack.append((uid, true))
                for p in map[uid]?.parents ?? [] where state[p] == nil && map[p] != nil {
                    stack.append((p, false))
                }
            }
        }
        // Fix-point for cyclic hierarchies (rare; terminates since sets only grow).
        var changed = true
        var rounds = 0
        while changed && rounds < 64 {
            changed = false; rounds += 1
            for (uid, anc) in result {
                var acc = anc
                for a in anc { if let more = result[a] { acc.formUnion(more) } }
                if acc.count != anc.count { result[uid] = acc; changed = true }
            }
        }
        return result
    }

    public subscript(uid: EntityUID) -> Entity? { entities[uid] }

    /// True if `a` is `b` or `b` is a (transitive) ancestor of `a`.
    @inline(__always)
    public func isDescendant(_ a: EntityUID, of b: EntityUID) -> Bool {
        if a == b { return true }
        return ancestors[a]?.contains(b) ?? false
    }

    /// Returns a new store with the given entities added (those already present are kept
    /// unless `replacing` is true). Recomputes the closure.
    public func adding(_ more: [Entity], replacing: Bool = false) throws(CedarError) -> Entities {
        var map = entities
        for e in more {
            if map[e.uid] != nil && !replacing { continue }
            map[e.uid] = e
        }
        return try Entities(Array(map.values))
    }

    public var count: Int { entities.count }
}

/// An authorization request.
public struct Request: Sendable, Hashable {
    public var principal: EntityUID
    public var action: EntityUID
    public var resource: EntityUID
    /// The context record.
    public var context: [String: Value]
    public init(principal: EntityUID, action: EntityUID, resource: EntityUID, context: [String: Value] = [:]) {
        self.principal = principal; self.action = action; self.resource = resource; self.context = context
    }
}
