import Foundation
import MenshenStorage

/// One event as the detection engine reads it: the parsed OCSF object, the
/// event's id (the store's record id, used as evidence) and its time.
///
/// The engine works on whatever the store holds, so it reads fields by OCSF
/// path rather than through the producers' Swift types. The accessors below
/// know the two shapes our producers use today: identity events (3002/3001)
/// put the subject in `user`, decision events (6001) in `actor.user`.
public struct DetectionEvent: Sendable, Equatable {
    public var id: String
    public var time: Date
    public var payload: EventValue

    public init(id: String, time: Date, payload: EventValue) {
        self.id = id; self.time = time; self.payload = payload
    }

    /// Parses the event JSON (within ``EventLimits``).
    public init(id: String, time: Date, json: String) throws(VisibilityError) {
        let value = try EventValue.parse(json)
        guard case .object = value else { throw VisibilityError(.invalidEvent, "event \(id): the JSON is not an object") }
        self.init(id: id, time: time, payload: value)
    }

    /// An event as the store keeps it.
    public init(_ stored: StoredEvent) throws(VisibilityError) {
        try self.init(stored.event)
    }

    /// An event about to be stored.
    public init(_ event: NewEvent) throws(VisibilityError) {
        try self.init(id: event.id.uuidString.lowercased(), time: event.time, json: event.payloadJSON)
    }

    /// Every value at a dotted OCSF path (see ``FieldPath``).
    public func values(_ path: FieldPath) -> [EventValue] { path.values(in: payload) }

    /// The first value at a dotted path; `nil` when absent or when the path is malformed.
    public subscript(path: String) -> EventValue? {
        // Walks objects segment by segment without building a FieldPath (the accessors below run for every
        // event); anything else (arrays on the way, odd paths) takes the checked route.
        guard !path.isEmpty, path.utf8.count <= EventLimits.maxPathBytes else { return nil }
        var value = payload
        var rest = Substring(path)
        var segments = 0
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
            guard !segment.isEmpty, case .object(let members) = value else {
                guard let p = try? FieldPath(path) else { return nil }
                return p.first(in: payload)
            }
            guard let next = members[String(segment)] else { return nil }
            value = next
        }
        if case .array = value {
            guard let p = try? FieldPath(path) else { return nil }
            return p.first(in: payload)
        }
        return value
    }

    public var classUID: Int? { self["class_uid"]?.intValue.map(Int.init) }
    public var activityID: Int? { self["activity_id"]?.intValue.map(Int.init) }
    public var statusID: Int? { self["status_id"]?.intValue.map(Int.init) }

    /// The user the event is about: `user.name` (identity events) or
    /// `actor.user.name` (decision events), else the matching `uid`.
    public var userName: String? {
        for path in ["user.name", "actor.user.name", "user.uid", "actor.user.uid"] {
            if let s = self[path]?.stringValue, !s.isEmpty { return s }
        }
        return nil
    }

    /// `src_endpoint.ip`, when present and not empty.
    public var sourceIP: String? {
        guard let s = self["src_endpoint.ip"]?.stringValue, !s.isEmpty else { return nil }
        return s
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
    public var isAllowedAccess: Bool { classUID == 6001 && self["action_id"]?.intValue == 1 }
}
