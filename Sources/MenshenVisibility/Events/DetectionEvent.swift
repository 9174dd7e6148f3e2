import Foundation
import MenshenCore
import MenshenStorage

/// One event as the detection engine reads it: the parsed OCSF object, the
/// event's id (the store's record id, used as evidence) and its time.
///
/// The engine works on whatever the store holds, so it reads fields by OCSF
/// path rather than through the producers' Swift types. The accessors below
/// know the two shapes our producers use today: identity events (3002/3001)
/// put the subject in `user`, decision events (6001) in `actor.user`.
public struct DetectionEvent: Sendable, Equatable {
    public let id: String
    public let time: Date
    /// Without a projection: the whole parsed OCSF object (`.null` when projected).
    private let tree: EventValue
    /// With a projection: per projection node, the event's value there (see ``JSONReader/fill(_:node:depth:into:)``).
    private let slots: [EventValue?]
    /// Set when the event is projected: look-ups it does not cover parse `source` in full.
    private let projection: EventProjection?
    private let source: [UInt8]

    /// The parsed OCSF object; with a projection, only the members it wants (built on demand: the engine reads
    /// projected events through their slots).
    public var payload: EventValue { projection.map { $0.tree(from: slots) } ?? tree }

    /// `class_uid`, `activity_id`, `status_id` (read once: every rule and detector asks).
    public let classUID: Int?
    public let activityID: Int?
    public let statusID: Int?
    /// The user the event is about: `user.name` (identity events) or
    /// `actor.user.name` (decision events), else the matching `uid`.
    public let userName: String?
    /// `src_endpoint.ip`, when present and not empty.
    public let sourceIP: String?
    /// `action_id` (decisions: 1 allowed, 2 denied).
    public let actionID: Int?
    /// `device.uid`, when present and not empty: the enrolled device a decision event's
    /// client certificate is bound to, so a finding can name it (a playbook quarantines it).
    public let deviceUID: String?
    /// Where the event says its source is (read once: baselines, risk and travel detection ask).
    let place: EventPlace
    /// The source's network prefix as baselines keep it (``UserBaseline/prefix(of:)``).
    let sourcePrefix: String?

    public init(id: String, time: Date, payload: EventValue) {
        self.init(id: id, time: time, tree: payload, slots: [], projection: nil, source: [])
    }

    private init(id: String, time: Date, tree: EventValue, slots: [EventValue?], projection: EventProjection?, source: [UInt8]) {
        self.id = id; self.time = time; self.tree = tree; self.slots = slots
        self.projection = projection; self.source = source
        func at(_ accessor: EventProjection.Accessor) -> EventValue? {
            Self.accessor(accessor, tree: tree, slots: slots, projection: projection)
        }
        classUID = at(.classUID)?.intValue.map(Int.init)
        activityID = at(.activityID)?.intValue.map(Int.init)
        statusID = at(.statusID)?.intValue.map(Int.init)
        var name: String?
        for candidate in [at(.userName), at(.actorUserName), at(.userUID), at(.actorUserUID)] {
            if let s = candidate?.stringValue, !s.isEmpty { name = s; break }
        }
        userName = name
        if let ip = at(.sourceIP)?.stringValue, !ip.isEmpty { sourceIP = ip } else { sourceIP = nil }
        actionID = at(.actionID)?.intValue.map(Int.init)
        if let device = at(.deviceUID)?.stringValue, !device.isEmpty { deviceUID = device } else { deviceUID = nil }
        place = EventPlace(country: at(.country), latitude: at(.latitude), longitude: at(.longitude), decisionCountry: at(.decisionCountry))
        sourcePrefix = sourceIP.flatMap(UserBaseline.prefix(of:))
    }

    /// An accessor's value, walking objects only (a member that is not an object on the way means absent):
    /// by position in a projected event's slots, by name in a whole tree.
    private static func accessor(_ accessor: EventProjection.Accessor, tree: EventValue, slots: [EventValue?],
                                 projection: EventProjection?) -> EventValue? {
        var v: EventValue
        let rest: [String]
        if let projection {
            let (node, below) = projection.accessorNodes[accessor.rawValue]
            guard let found = slots[node] else { return nil }
            // A node looked into (not wanted whole) holds the marker for an object: the accessor asks for a
            // scalar there, which the event does not have.
            if !projection.nodes[node].whole, case .object = found { return nil }
            v = found
            rest = below
        } else {
            v = tree
            rest = accessor.segments
        }
        for segment in rest { guard let next = v[segment] else { return nil }; v = next }
        return v
    }

    /// Parses the event JSON (within ``EventLimits``); with a projection, only
    /// the members it wants are built (see ``EventProjection``).
    public init(id: String, time: Date, json: String, projection: EventProjection? = nil) throws(VisibilityError) {
        let bytes = Array(json.utf8)
        guard let projection else {
            let value = try EventValue.parse(bytes: bytes)
            guard case .object = value else { throw VisibilityError(.invalidEvent, "event \(id): the JSON is not an object") }
            self.init(id: id, time: time, tree: value, slots: [], projection: nil, source: [])
            return
        }
        guard bytes.count <= EventLimits.maxBytes else {
            throw VisibilityError(.invalidEvent, "event JSON is \(bytes.count) bytes; the limit is \(EventLimits.maxBytes)")
        }
        var reader = JSONReader(bytes)
        reader.skipWhitespace()
        guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: "{") else {
            // Not an object: a syntax error is reported as such, anything else as not an object.
            _ = try EventValue.parse(bytes: bytes)
            throw VisibilityError(.invalidEvent, "event \(id): the JSON is not an object")
        }
        var slots = [EventValue?](repeating: nil, count: projection.nodes.count)
        try reader.fill(projection, node: 0, depth: 0, into: &slots)
        reader.skipWhitespace()
        guard reader.position == bytes.count else { throw reader.error("trailing characters after the JSON value") }
        self.init(id: id, time: time, tree: .null, slots: slots, projection: projection, source: bytes)
    }

    /// An event as the store keeps it.
    public init(_ stored: StoredEvent, projection: EventProjection? = nil) throws(VisibilityError) {
        try self.init(stored.event, projection: projection)
    }

    /// An event about to be stored.
    public init(_ event: NewEvent, projection: EventProjection? = nil) throws(VisibilityError) {
        try self.init(id: UUIDText.lower(event.id), time: event.time, json: event.payloadJSON, projection: projection)
    }

    /// Equal id, time and payload as parsed.
    public static func == (a: DetectionEvent, b: DetectionEvent) -> Bool {
        a.id == b.id && a.time == b.time && a.payload == b.payload
    }

    /// A look-up its projection does not cover: the whole event parsed again (counted on the projection).
    private func unprojectedValues(_ path: FieldPath) -> [EventValue] {
        projection?.noteFallback()
        guard let whole = try? EventValue.parse(bytes: source) else { return [] }
        return path.values(in: whole)
    }

    /// Every value at a dotted OCSF path (see ``FieldPath``).
    public func values(_ path: FieldPath) -> [EventValue] {
        guard let projection else { return path.values(in: tree) }
        let segments = path.segments
        var node = 0
        var i = 0
        while i < segments.count {
            guard let child = projection.child(of: node, named: segments[i]) else { return unprojectedValues(path) }
            guard let v = slots[child] else { return [] }   // wanted members are always kept: absent from the event
            i += 1
            let whole = projection.nodes[child].whole
            if !whole, case .object = v { node = child; continue }   // the marker: its members have their own slots
            // A value wanted whole or a scalar is complete; an array's projected tree holds only what is wanted below.
            if !whole, Self.isArray(v), !projection.covers(segments[i...], from: child) { return unprojectedValues(path) }
            return FieldPath.values(in: v, segments[i...])
        }
        return unprojectedValues(path)   // a whole object the projection only looks into
    }

    /// The first value at a dotted OCSF path.
    public func first(_ path: FieldPath) -> EventValue? {
        values(path).first
    }

    /// The first value at a dotted path; `nil` when absent or when the path is malformed.
    public subscript(path: String) -> EventValue? {
        // Walks objects segment by segment without building a FieldPath (the accessors of detectors run for
        // every event); anything else (arrays on the way, odd paths, members outside the projection) takes
        // the checked route.
        guard !path.isEmpty, path.utf8.count <= EventLimits.maxPathBytes else { return nil }
        var rest = Substring(path)
        var segments = 0
        var node = 0
        var value = tree
        while !rest.isEmpty {
            let segment: Substring
            if let dot = rest.utf8.firstIndex(of: UInt8(ascii: ".")) {
                segment = rest[..<dot]
                rest = rest[rest.utf8.index(after: dot)...]
                guard !rest.isEmpty else { return nil }
            } else {
                segment = rest
                rest = ""
            }
            segments += 1
            guard segments <= EventLimits.maxPathSegments, FieldPath.isAllowedSegment(segment.utf8) else { return nil }
            guard !segment.isEmpty else { return checked(path) }
            if let projection {
                guard let child = projection.child(of: node, named: segment) else { return checked(path) }
                guard let v = slots[child] else { return nil }
                if !projection.nodes[child].whole, case .object = v { node = child; continue }
                // A value wanted whole, a scalar (complete as it is), or an array, whose projected tree may
                // lack members: arrays and anything below take the checked route.
                if rest.isEmpty, !Self.isArray(v) { return v }
                return checked(path)
            }
            guard case .object(let members) = value else { return checked(path) }
            guard let next = members[String(segment)] else { return nil }
            value = next
        }
        if projection != nil { return checked(path) }   // ends on an object the projection only looks into
        if case .array = value { return checked(path) }
        return value
    }

    private static func isArray(_ v: EventValue) -> Bool { if case .array = v { true } else { false } }

    private func checked(_ path: String) -> EventValue? {
        guard let p = try? FieldPath(path) else { return nil }
        return first(p)
    }

    /// The session: `session.uid` (sign-in) or `actor.session.uid` (decisions).
    public var sessionUID: String? {
        (self["session.uid"] ?? self["actor.session.uid"])?.stringValue
    }

    /// A successful Authentication (3002) Logon.
    public var isSuccessfulSignIn: Bool { classUID == 3002 && activityID == 1 && statusID == 1 }
    /// A failed Authentication (3002) Logon.
    public var isFailedSignIn: Bool { classUID == 3002 && activityID == 1 && statusID == 2 }
    /// A Web Resources Activity (6001) decision that was allowed (`action_id` 1).
    public var isAllowedAccess: Bool { classUID == 6001 && actionID == 1 }
}
