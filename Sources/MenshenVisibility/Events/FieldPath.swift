/// A dotted OCSF field path such as `actor.user.name`, `src_endpoint.ip` or
/// `unmapped.decision.device.managed`. Sigma rules name fields this way.
///
/// Lookup walks objects by member name. When it meets an array it looks into
/// every element (so `auth_factors.factor_type` reads the factor type of each
/// factor), and a path that ends on an array yields its elements: a rule value
/// then matches when any of them matches. At most
/// ``EventLimits/maxLookupValues`` values come back.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public let segments: [String]

    /// Parses a dotted path; refuses empty segments and paths beyond ``EventLimits``.
    public init(_ text: String) throws(VisibilityError) {
        guard !text.isEmpty else { throw VisibilityError(.invalidFieldPath, "empty field name") }
        guard text.utf8.count <= EventLimits.maxPathBytes else {
            throw VisibilityError(.invalidFieldPath, "field name longer than \(EventLimits.maxPathBytes) bytes")
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= EventLimits.maxPathSegments else {
            throw VisibilityError(.invalidFieldPath, "field \"\(text)\" has more than \(EventLimits.maxPathSegments) segments")
        }
        guard !parts.contains(where: \.isEmpty) else {
            throw VisibilityError(.invalidFieldPath, "field \"\(text)\" has an empty segment")
        }
        guard parts.allSatisfy({ Self.isAllowedSegment($0.utf8) }) else {
            throw VisibilityError(.invalidFieldPath, "field \"\(text)\" contains a space, a control character or '|'")
        }
        segments = parts
    }

    /// Whether a segment's bytes are allowed: no space, control character or `|` (UTF-8 bytes of other
    /// scalars are all ≥ 0x80, so a byte test is the scalar test). Emptiness is checked separately.
    static func isAllowedSegment(_ bytes: some Sequence<UInt8>) -> Bool {
        bytes.allSatisfy { $0 >= 0x21 && $0 != UInt8(ascii: "|") }
    }

    /// A path from segments known to be valid (literals in this module).
    static func unchecked(_ segments: [String]) -> FieldPath { FieldPath(segments: segments) }
    private init(segments: [String]) { self.segments = segments }

    public var description: String { segments.joined(separator: ".") }

    /// Every value at this path in `root` (empty when the path is absent).
    public func values(in root: EventValue) -> [EventValue] { Self.values(in: root, segments[...]) }

    /// Every value at the path `segments` in `root`: the walk ``values(in:)`` does, from any point of a path.
    static func values(in root: EventValue, _ segments: ArraySlice<String>) -> [EventValue] {
        // Fast path: objects all the way down (the usual case) need no intermediate arrays.
        var value = root
        for index in segments.indices {
            switch value {
            case .object(let members):
                guard let next = members[segments[index]] else { return [] }
                value = next
            case .array:
                return valuesThroughArrays(in: value, segments[index...])
            default:
                return []
            }
        }
        if case .array(let elements) = value { return Array(elements.prefix(EventLimits.maxLookupValues)) }
        return [value]
    }

    /// The general walk of `segments`, looking into arrays.
    private static func valuesThroughArrays(in root: EventValue, _ segments: ArraySlice<String>) -> [EventValue] {
        var current: [EventValue] = [root]
        for segment in segments {
            var next: [EventValue] = []
            for value in current {
                Self.descend(value, segment, into: &next)
                if next.count >= EventLimits.maxLookupValues { break }
            }
            current = next
            if current.isEmpty { return [] }
        }
        var out: [EventValue] = []
        for value in current {
            if case .array(let elements) = value {
                out.append(contentsOf: elements.prefix(EventLimits.maxLookupValues - out.count))
            } else {
                out.append(value)
            }
            if out.count >= EventLimits.maxLookupValues { break }
        }
        return out
    }

    /// The first value at this path, if any.
    public func first(in root: EventValue) -> EventValue? { values(in: root).first }

    private static func descend(_ value: EventValue, _ segment: String, into out: inout [EventValue]) {
        switch value {
        case .object(let members):
            if let v = members[segment] { out.append(v) }
        case .array(let elements):
            // Arrays of objects: look into each element (one level; OCSF does not nest arrays in arrays).
            for case .object(let members) in elements.prefix(EventLimits.maxLookupValues) {
                if let v = members[segment] { out.append(v) }
            }
        default:
            break
        }
    }
}
