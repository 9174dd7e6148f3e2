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
    /// The parsed OCSF object; with a projection, only the members it wants.
    public let payload: EventValue
    /// Set when `payload` is projected: look-ups it does not cover parse `source` in full.
    private let projection: EventProjection?
    private let source: [UInt8]

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
        self.init(id: id, time: time, payload: payload, projection: nil, source: [])
    }

    private init(id: String, time: Date, payload: EventValue, projection: EventProjection?, source: [UInt8]) {
        self.id = id; self.time = time; self.payload = payload
        self.projection = projection; self.source = source
        func at(_ path: String...) -> EventValue? {
            // These reads bypass the fallback of the look-ups below: every path read here must be one of
            // EventProjection.eventAccessorPaths, or a projected event would read it as absent.
            assert(projection?.covers(path) != false, "\(path.joined(separator: ".")) is missing from EventProjection.eventAccessorPaths")
            var v = payload
            for segment in path { guard let next = v[segment] else { return nil }; v = next }
            return v
        }
        classUID = at("class_uid")?.intValue.map(Int.init)
        activityID = at("activity_id")?.intValue.map(Int.init)
        statusID = at("status_id")?.intValue.map(Int.init)
        var name: String?
        for candidate in [at("user", "name"), at("actor", "user", "name"), at("user", "uid"), at("actor", "user", "uid")] {
            if let s = candidate?.stringValue, !s.isEmpty { name = s; break }
        }
        userName = name
        if let ip = at("src_endpoint", "ip")?.stringValue, !ip.isEmpty { sourceIP = ip } else { sourceIP = nil }
        actionID = at("action_id")?.intValue.map(Int.init)
        if let device = at("device", "uid")?.stringValue, !device.isEmpty { deviceUID = device } else { deviceUID = nil }
        place = EventPlace(country: at("src_endpoint", "location", "country"), latitude: at("src_endpoint", "location", "lat"),
                           longitude: at("src_endpoint", "location", "long"), decisionCountry: at("unmapped", "decision", "context", "country"))
        sourcePrefix = sourceIP.flatMap(UserBaseline.prefix(of:))
    }

    /// Parses the event JSON (within ``EventLimits``); with a projection, only
    /// the members it wants are built (see ``EventProjection``).
    public init(id: String, time: Date, json: String, projection: EventProjection? = nil) throws(VisibilityError) {
        let bytes = Array(json.utf8)
        let value = try EventValue.parse(bytes: bytes, projection: projection)
        guard case .object = value else { throw VisibilityError(.invalidEvent, "event \(id): the JSON is not an object") }
        self.init(id: id, time: time, payload: value, projection: projection, source: projection == nil ? [] : bytes)
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

    /// The whole event, for a look-up its projection does not cover (counted on the projection).
    private func unprojected() -> EventValue? {
        guard let projection else { return payload }
        projection.noteFallback()
        return try? EventValue.parse(bytes: source)
    }

    /// The tree a look-up of `path` should walk: the payload when it covers the path.
    private func root(for path: FieldPath) -> EventValue? {
        guard let projection, !projection.covers(path.segments) else { return payload }
        return unprojected()
    }

    /// Every value at a dotted OCSF path (see ``FieldPath``).
    public func values(_ path: FieldPath) -> [EventValue] {
        guard let root = root(for: path) else { return [] }
        return path.values(in: root)
    }

    /// The first value at a dotted OCSF path.
    public func first(_ path: FieldPath) -> EventValue? {
        root(for: path).flatMap { path.first(in: $0) }
    }

    /// The first value at a dotted path; `nil` when absent or when the path is malformed.
    public subscript(path: String) -> EventValue? {
        // Walks objects segment by segment without building a FieldPath (the accessors below run for every
        // event), following the projection alongside; anything else (arrays on the way, odd paths, members
        // outside the projection) takes the checked route.
        guard !path.isEmpty, path.utf8.count <= EventLimits.maxPathBytes else { return nil }
        var value = payload
        var rest = Substring(path)
        var segments = 0
        var node: Int? = projection == nil ? nil : 0
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
            guard segments <= EventLimits.maxPathSegments,
                  FieldPath.isAllowedSegment(segment.utf8) else { return nil }
            if let n = node, let projection, !projection.nodes[n].whole {
                guard let next = projection.child(of: n, named: segment.utf8) else { return checked(path) }
                node = next
            }
            guard !segment.isEmpty, case .object(let members) = value else { return checked(path) }
            // Absent from a projected tree means absent from the event: wanted members are always kept.
            guard let next = members[String(segment)] else { return nil }
            value = next
        }
        if case .array = value { return checked(path) }
        if let n = node, let projection, !projection.nodes[n].whole { return checked(path) }
        return value
    }

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
