import Synchronization

/// The members of an event that a detection engine reads: a tree of OCSF
/// field paths (`actor.user.name`, `src_endpoint.ip`, …) compiled from the
/// loaded Sigma rules, the Swift detectors' declared fields and the accessors
/// of ``DetectionEvent``.
///
/// Parsing an event through a projection builds values only for those members
/// and steps over the rest (checking their JSON syntax, not decoding them),
/// which is most of a decision event. The saving is the point: the detection
/// service reads every event of the log back, so a full tree per event was
/// the largest cost of the audit pipeline.
///
/// A projection is an optimisation, never a filter on what can be read: a
/// look-up outside it (a detector reading a field it did not declare) parses
/// the event in full and answers from that, and ``fallbackCount`` counts such
/// look-ups so tests can hold the built-in engine to zero. Hand-written: no
/// listed package has a selective JSON reader.
public final class EventProjection: Sendable {
    struct Node: Sendable {
        /// Wanted members: their UTF-8 names, the names as strings (the projected
        /// object's keys, made once here instead of per event) and child nodes.
        var members: [(name: [UInt8], key: String, child: Int)] = []
        /// The whole value at this node is wanted (a path ends here).
        var whole = false
    }

    let nodes: [Node]
    /// The paths, sorted (for messages and tests).
    public let paths: [String]
    private let fallbacks = Atomic<Int>(0)

    /// A projection of these paths (and of every member below each of them),
    /// plus ``eventAccessorPaths``, which ``DetectionEvent`` reads at parse.
    public init(paths: some Sequence<FieldPath>) {
        var nodes = [Node()]
        var texts = Set<String>()
        for path in Self.eventAccessorPaths + Array(paths) {
            texts.insert(path.description)
            var at = 0
            for segment in path.segments {
                if nodes[at].whole { break }
                let name = Array(segment.utf8)
                if let found = nodes[at].members.first(where: { $0.name == name }) {
                    at = found.child
                } else {
                    nodes.append(Node())
                    nodes[at].members.append((name, segment, nodes.count - 1))
                    at = nodes.count - 1
                }
            }
            nodes[at].whole = true
            nodes[at].members = []
        }
        self.nodes = nodes
        self.paths = texts.sorted()
        // Where each accessor path's walk ends: its own node, or a node wanted whole above it (then the rest
        // of the path is walked in that node's value).
        accessorNodes = Accessor.allCases.map { accessor in
            let segments = accessor.path.segments
            var at = 0
            for (i, segment) in segments.enumerated() {
                if nodes[at].whole { return (at, Array(segments[i...])) }
                guard let next = nodes[at].members.first(where: { $0.name.elementsEqual(segment.utf8) })?.child else {
                    preconditionFailure("accessor path \(accessor.path) is not in the projection")
                }
                at = next
            }
            return (at, [])
        }
    }

    /// The fields ``DetectionEvent`` reads at parse for every event, in a fixed order so an event reads them
    /// by position (``accessorNodes``) rather than by name.
    enum Accessor: Int, CaseIterable {
        case classUID, activityID, statusID, actionID, userName, userUID, actorUserName, actorUserUID, sourceIP,
             sessionUID, actorSessionUID, country, latitude, longitude, decisionCountry, logName, deviceUID

        var text: String {
            switch self {
            case .classUID: "class_uid"
            case .activityID: "activity_id"
            case .statusID: "status_id"
            case .actionID: "action_id"
            case .userName: "user.name"
            case .userUID: "user.uid"
            case .actorUserName: "actor.user.name"
            case .actorUserUID: "actor.user.uid"
            case .sourceIP: "src_endpoint.ip"
            case .sessionUID: "session.uid"
            case .actorSessionUID: "actor.session.uid"
            case .country: "src_endpoint.location.country"
            case .latitude: "src_endpoint.location.lat"
            case .longitude: "src_endpoint.location.long"
            case .decisionCountry: "unmapped.decision.context.country"
            case .logName: "metadata.log_name"
            case .deviceUID: "device.uid"
            }
        }

        /// The path's segments, split once for all accessors (an unprojected event walks them for every accessor).
        var segments: [String] { Self.allSegments[rawValue] }
        private static let allSegments = allCases.map { $0.text.split(separator: ".").map(String.init) }

        var path: FieldPath { FieldPath.unchecked(segments) }
    }

    /// Per ``Accessor`` (by raw value): the node its walk ends on and the segments left below it.
    let accessorNodes: [(node: Int, rest: [String])]

    /// The value a slot holds for a node that is not wanted whole when the event has an object there: its
    /// wanted members are in their own slots. One shared value: no allocation per event.
    static let objectMarker: EventValue = .object([:])

    /// The paths ``DetectionEvent``'s own accessors read (subject, source,
    /// session, class and outcome, place, device; the log name the detection
    /// service skips its own events by), wanted by every engine.
    public static let eventAccessorPaths: [FieldPath] = Accessor.allCases.map(\.path)

    /// Look-ups that fell outside the projection and parsed an event in full.
    public var fallbackCount: Int { fallbacks.load(ordering: .relaxed) }

    func noteFallback() { fallbacks.add(1, ordering: .relaxed) }

    /// The child of `node` for a member name, if that member is wanted. Names are compared as contiguous bytes,
    /// lengths first (rules look members up by name for every event).
    @inline(__always)
    func child(of node: Int, named name: String) -> Int? {
        var name = name
        return name.withUTF8 { child(of: node, bytes: $0) }
    }

    @inline(__always)
    func child(of node: Int, named name: Substring) -> Int? {
        var name = name
        return name.withUTF8 { child(of: node, bytes: $0) }
    }

    @inline(__always)
    func child(of node: Int, bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        for m in nodes[node].members where m.name.count == bytes.count && m.name.elementsEqual(bytes) { return m.child }
        return nil
    }

    /// The wanted member of `node` whose name is `bytes[range]`: its key and child.
    @inline(__always)
    func member(of node: Int, in bytes: [UInt8], _ range: Range<Int>) -> (key: String, child: Int)? {
        bytes.withUnsafeBufferPointer { buf in
            let name = UnsafeBufferPointer(rebasing: buf[range])
            for m in nodes[node].members where m.name.count == name.count && m.name.elementsEqual(name) { return (m.key, m.child) }
            return nil
        }
    }

    /// Whether every value a look-up of `segments` can reach is in a projected tree.
    func covers(_ segments: [String]) -> Bool { covers(segments[...], from: 0) }

    /// Whether every value a look-up of `segments` below `node` can reach is projected.
    func covers(_ segments: ArraySlice<String>, from node: Int) -> Bool {
        var at = node
        for segment in segments {
            if nodes[at].whole { return true }
            guard let next = child(of: at, named: segment) else { return false }
            at = next
        }
        return nodes[at].whole
    }
}

extension EventProjection {
    /// The projected tree of an event parsed into slots (what ``JSONReader/projected(_:node:depth:)`` would
    /// have built): for ``DetectionEvent/payload``, equality and look-ups outside the fast paths.
    func tree(from slots: [EventValue?], node: Int = 0) -> EventValue {
        var members: [String: EventValue] = [:]
        for m in nodes[node].members {
            guard let v = slots[m.child] else { continue }
            if !nodes[m.child].whole, case .object = v {
                members[m.key] = tree(from: slots, node: m.child)
            } else {
                members[m.key] = v
            }
        }
        return .object(members)
    }
}

extension JSONReader {
    /// Reads a member name and its `:` at the reader's position (whitespace after it skipped): the member's key
    /// and child node when `projection` wants it below `node`, else `nil`. Names with escapes are compared decoded.
    mutating func memberName(_ projection: EventProjection, node: Int) throws(VisibilityError) -> (key: String, child: Int)? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
        let keyStart = position + 1
        let wanted: (key: String, child: Int)?
        if try skipString() {
            wanted = projection.member(of: node, in: bytes, keyStart..<(position - 1))
        } else {
            position = keyStart - 1
            let decoded = try string()
            wanted = projection.child(of: node, named: decoded).map { (decoded, $0) }
        }
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
        position += 1
        skipWhitespace()
        return wanted
    }

    /// Parses the object at the reader's position (on its `{`), the value at projection node `node`, into
    /// `slots` (one per projection node): a wanted member's value goes to its child's slot — whole when the
    /// child is wanted whole; ``EventProjection/objectMarker`` and its own members' slots when it is an object
    /// the projection looks into; the projected tree otherwise (an array, or a scalar). Nothing else is built:
    /// no dictionary per object, no key hashed. A wanted member named twice is refused, as in the full parse.
    mutating func fill(_ projection: EventProjection, node: Int, depth: Int, into slots: inout [EventValue?]) throws(VisibilityError) {
        guard depth < EventLimits.maxDepth else { throw error("nested deeper than \(EventLimits.maxDepth) levels") }
        position += 1   // the opening brace
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipWhitespace()
            let wanted = try memberName(projection, node: node)
            if let (name, child) = wanted {
                guard slots[child] == nil else { throw error("duplicate member \"\(name.prefix(64))\"") }
                if projection.nodes[child].whole {
                    slots[child] = try value(depth: depth + 1)
                } else if position < bytes.count, bytes[position] == UInt8(ascii: "{") {
                    slots[child] = EventProjection.objectMarker
                    try fill(projection, node: child, depth: depth + 1, into: &slots)
                } else {
                    slots[child] = try projected(projection, node: child, depth: depth + 1)
                }
            } else {
                try skip(depth: depth + 1)
            }
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input in an object") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return }
            throw error("expected ',' or '}'")
        }
    }

    /// The value at the reader's position with only the members `projection`
    /// wants below `node` (arrays are looked into, as ``FieldPath`` does).
    /// Members not wanted are stepped over with ``skip(depth:)``.
    mutating func projected(_ projection: EventProjection, node: Int, depth: Int) throws(VisibilityError) -> EventValue {
        if projection.nodes[node].whole { return try value(depth: depth) }
        guard depth < EventLimits.maxDepth else { throw error("nested deeper than \(EventLimits.maxDepth) levels") }
        guard position < bytes.count else { throw error("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var members: [String: EventValue] = Dictionary(minimumCapacity: projection.nodes[node].members.count)
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                let wanted = try memberName(projection, node: node)
                if let (name, child) = wanted {
                    let v = try projected(projection, node: child, depth: depth + 1)
                    guard members.updateValue(v, forKey: name) == nil else { throw error("duplicate member \"\(name.prefix(64))\"") }
                } else {
                    try skip(depth: depth + 1)
                }
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            position += 1
            var elements: [EventValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try projected(projection, node: node, depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                throw error("expected ',' or ']'")
            }
        default:
            return try value(depth: depth)
        }
    }

    /// Steps over one value, checking its syntax (structure, string escapes,
    /// number form, depth) without building it. Member names are not checked
    /// for duplicates and strings are not checked for valid UTF-8: the value
    /// is never read.
    mutating func skip(depth: Int) throws(VisibilityError) {
        guard depth < EventLimits.maxDepth else { throw error("nested deeper than \(EventLimits.maxDepth) levels") }
        guard position < bytes.count else { throw error("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                _ = try skipString()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipWhitespace()
                try skip(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return }
            while true {
                skipWhitespace()
                try skip(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of input in an array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): _ = try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try numberSpan()
        }
    }

    /// Steps over a string at the reader's position (on its opening quote),
    /// checking escapes and control characters; returns whether it had no escape.
    mutating func skipString() throws(VisibilityError) -> Bool {
        position += 1
        var plain = true
        while position < bytes.count {
            // Most of a string is plain bytes: run over them without a bounds check per byte.
            let from = position
            position = bytes.withUnsafeBufferPointer { buf in
                var p = from
                while p < buf.count, buf[p] >= 0x20, buf[p] != UInt8(ascii: "\""), buf[p] != UInt8(ascii: "\\") { p += 1 }
                return p
            }
            guard position < bytes.count else { break }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") { position += 1; return plain }
            if b < 0x20 { throw error("a control character in a string") }
            if b == UInt8(ascii: "\\") {
                plain = false
                guard position + 1 < bytes.count else { throw error("unterminated escape") }
                switch bytes[position + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                case UInt8(ascii: "u"):
                    position += 2
                    _ = try hex4()
                default: throw error("an invalid escape")
                }
                continue
            }
            position += 1
        }
        throw error("unterminated string")
    }
}
