import Foundation
import MenshenStorage

/// An audit search as an operator states it (`menshen audit search` and `tail`): a time range, OCSF
/// classes, a user, a device, a route, a gateway decision and free text. It splits into the part the
/// store evaluates in SQL (``storeQuery``: time, class and user columns, substrings of the payload)
/// and the part checked on the parsed event (fields inside the OCSF JSON); ``matches(_:)`` is the
/// whole meaning and what `tail --follow` applies to new events.
///
/// Field filters compare whole values (exact, case-sensitive):
/// - `user`: the event's user column, or `user.name`, `user.uid`, `actor.user.name`, `actor.user.uid`;
/// - `device`: `device.uid`, `device.name`, `device.hostname`, `unmapped.decision.device.uid`;
/// - `route`: an application id (`web_resources.uid`, `web_resources.name`,
///   `unmapped.decision.resource.application`), or, starting with `/`, a prefix of `http_request.url.path`;
/// - `decision`: the gateway's outcome, `unmapped.decision.outcome` (`allow`, `deny`, `step_up`, …);
/// - `text`: a substring of the event's stored JSON text, byte for byte.
public struct AuditSearchFilter: Sendable, Equatable {
    /// Longest value accepted for any one filter, in bytes.
    public static let maxValueBytes = 256

    public var since: Date?
    public var until: Date?
    public var classUIDs: [Int] = []
    public var user: String?
    public var device: String?
    public var route: String?
    public var decision: String?
    public var text: String?

    public init() {}

    /// Throws `invalidAuditSearch` for an empty or oversized value, one with control characters, or a
    /// time range that ends before it starts.
    public func validate() throws(VisibilityError) {
        for (name, value) in [("user", user), ("device", device), ("route", route), ("decision", decision), ("text", text)] {
            guard let value else { continue }
            guard !value.isEmpty, value.utf8.count <= Self.maxValueBytes else {
                throw VisibilityError(.invalidAuditSearch, "--\(name) must be 1–\(Self.maxValueBytes) bytes")
            }
            guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw VisibilityError(.invalidAuditSearch, "--\(name) must not contain control characters")
            }
        }
        guard classUIDs.count <= EventQuery.maxClasses else {
            throw VisibilityError(.invalidAuditSearch, "at most \(EventQuery.maxClasses) --class values")
        }
        if let since, let until, until <= since {
            throw VisibilityError(.invalidAuditSearch, "--until must be later than --since")
        }
    }

    /// What the store evaluates: the time range, the classes, the user (column, or its JSON string in the
    /// payload) and, for every filter on a JSON field, the field's JSON string as a payload substring (a
    /// necessary condition, checked exactly by ``matches(_:)`` afterwards). A value is pushed down as a
    /// substring only when every JSON writer spells it the same way (printable ASCII without `"`, `\`, `/`);
    /// otherwise it is checked on the parsed event alone.
    public var storeQuery: EventQuery {
        var q = EventQuery(since: since, until: until, classUIDs: classUIDs)
        if let user, let quoted = Self.quotedIfPlain(user) {
            q.userID = user
            q.userInPayload = quoted
        }
        for value in [device, decision].compactMap({ $0 }) {
            if let quoted = Self.quotedIfPlain(value) { q.payloadContains.append(quoted) }
        }
        if let route {
            if route.hasPrefix("/") {
                if let quoted = Self.quotedIfPlain(route, allowSlash: true) { q.payloadContains.append(String(quoted.dropLast())) }
            } else if let quoted = Self.quotedIfPlain(route) {
                q.payloadContains.append(quoted)
            }
        }
        if let text { q.payloadContains.append(text) }
        return q
    }

    /// `"value"` when the value is printable ASCII without the characters JSON writers may escape.
    /// (Paths keep `/`: the gateway's events are written by ``EventJSON``, which never escapes it.)
    static func quotedIfPlain(_ value: String, allowSlash: Bool = false) -> String? {
        let plain = value.utf8.allSatisfy { b in b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C && (allowSlash || b != 0x2F) }
        return plain ? "\"" + value + "\"" : nil
    }

    /// Whether the filters need the parsed event (anything beyond ``storeQuery``'s exact conditions).
    var needsFields: Bool { user != nil || device != nil || route != nil || decision != nil }

    static let userPaths = ["user.name", "user.uid", "actor.user.name", "actor.user.uid"].compactMap { try? FieldPath($0) }
    static let devicePaths = ["device.uid", "device.name", "device.hostname", "unmapped.decision.device.uid"].compactMap { try? FieldPath($0) }
    static let applicationPaths = ["web_resources.uid", "web_resources.name", "unmapped.decision.resource.application"]
        .compactMap { try? FieldPath($0) }
    static let urlPath = try? FieldPath("http_request.url.path")
    static let outcomePath = try? FieldPath("unmapped.decision.outcome")

    /// Whether a stored event satisfies every filter. An event whose JSON cannot be read matches only
    /// filters that do not look inside it.
    public func matches(_ stored: StoredEvent) -> Bool {
        var base = EventQuery(since: since, until: until, classUIDs: classUIDs)
        if let text { base.payloadContains = [text] }
        guard base.matches(stored) else { return false }
        guard needsFields else { return true }
        guard let event = try? DetectionEvent(stored) else { return false }
        func any(_ paths: [FieldPath], _ test: (String) -> Bool) -> Bool {
            paths.contains { p in event.values(p).contains { $0.stringValue.map(test) ?? false } }
        }
        if let user, stored.event.userID?.rawValue != user, !any(Self.userPaths, { $0 == user }) { return false }
        if let device, !any(Self.devicePaths, { $0 == device }) { return false }
        if let route {
            if route.hasPrefix("/") {
                guard let p = Self.urlPath, any([p], { $0.hasPrefix(route) }) else { return false }
            } else if !any(Self.applicationPaths, { $0 == route }) {
                return false
            }
        }
        if let decision {
            guard let p = Self.outcomePath, any([p], { $0 == decision }) else { return false }
        }
        return true
    }
}

/// Pages through the store for an ``AuditSearchFilter``: the store filters what SQL can, each page is
/// checked with ``AuditSearchFilter/matches(_:)``, and reading stops at `limit` matches or the end of the
/// log. Memory holds one page and the matches, never the log.
public struct AuditSearch: Sendable {
    /// The most results one search returns.
    public static let maxLimit = 10_000
    public var filter: AuditSearchFilter
    public var pageSize: Int

    public init(filter: AuditSearchFilter, pageSize: Int = 500) {
        self.filter = filter
        self.pageSize = min(max(1, pageSize), 5000)
    }

    /// Up to `limit` matching events in `order`, after `cursor` (see ``EventSearchStore``).
    public func run(store: any EventSearchStore, order: EventOrder, after cursor: Int64? = nil, limit: Int) async throws -> [StoredEvent] {
        try filter.validate()
        guard (1...Self.maxLimit).contains(limit) else {
            throw VisibilityError(.invalidAuditSearch, "--limit must be 1–\(Self.maxLimit)")
        }
        let query = filter.storeQuery
        var out: [StoredEvent] = []
        var cursor = cursor
        while out.count < limit {
            let page = try await store.searchEvents(query, order: order, after: cursor, limit: pageSize)
            for e in page where filter.matches(e) {
                out.append(e)
                if out.count == limit { break }
            }
            guard page.count == pageSize, let last = page.last else { break }
            cursor = last.sequence
        }
        return out
    }
}

/// Reading the times operators type: RFC 3339 (`2026-11-26T09:30:00Z`, `2026-11-26T17:30:00.250+08:00`)
/// or an age relative to now (`90s`, `15m`, `2h`, `7d`, `4w`). Parsed by hand, strictly (Foundation's
/// ISO 8601 formatter accepts more than RFC 3339 and differs between platforms).
public enum AuditTime {
    /// Parses `text`; relative ages count back from `now`. Throws `invalidAuditSearch` naming `option`.
    public static func parse(_ text: String, now: Date, option: String) throws(VisibilityError) -> Date {
        let fail = VisibilityError(.invalidAuditSearch,
                                   "\(option): expected an RFC 3339 time such as 2026-11-26T09:30:00Z or 2026-11-26T17:30:00+08:00, or an age such as 90s, 15m, 2h, 7d, 4w; got \(String(text.prefix(64)).debugDescription)")
        let b = Array(text.utf8)
        guard !b.isEmpty, b.count <= 40 else { throw fail }
        if let unit = b.last, let seconds: Int64 = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800][Character(Unicode.Scalar(unit))],
           b.count >= 2, b.count <= 7, b.dropLast().allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
           let n = Int64(String(decoding: b.dropLast(), as: UTF8.self)) {
            return now.addingTimeInterval(-Double(n * seconds))
        }
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let year = digits(0, 4), b[4] == 0x2D, let month = digits(5, 2), b[7] == 0x2D, let day = digits(8, 2),
              b[10] == 0x54 || b[10] == 0x74, let hour = digits(11, 2), b[13] == 0x3A, let minute = digits(14, 2), b[16] == 0x3A,
              let second = digits(17, 2)
        else { throw fail }
        var i = 19
        var nanos = 0
        if b[i] == 0x2E {
            i += 1
            var count = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if count < 9 { nanos = nanos * 10 + Int(b[i] - 0x30) }
                count += 1; i += 1
            }
            guard count >= 1, count <= 9 else { throw fail }
            for _ in count..<9 { nanos *= 10 }
        }
        guard i < b.count else { throw fail }
        var offset = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A, let om = digits(i + 4, 2), oh <= 23, om <= 59 else { throw fail }
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2D ? -1 : 1)
            i += 6
        } else {
            throw fail
        }
        guard i == b.count, (1...9999).contains(year), (1...12).contains(month), (1...31).contains(day), hour <= 23, minute <= 59,
              second <= 59 else { throw fail }
        var calendar = Calendar(identifier: .gregorian)
        guard let utc = TimeZone(identifier: "UTC") else { throw fail }
        calendar.timeZone = utc
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        // The calendar rolls 31 February over into March: a round trip tells a real date.
        guard let date = calendar.date(from: components),
              calendar.dateComponents([.year, .month, .day], from: date) == DateComponents(year: year, month: month, day: day)
        else { throw fail }
        return date.addingTimeInterval(Double(-offset) + Double(nanos) / 1_000_000_000)
    }

    /// An instant as RFC 3339 in UTC with milliseconds (how events' times are shown).
    public static func format(_ date: Date) -> String {
        let millis = StoreCoding.millis(date)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let whole = Date(timeIntervalSince1970: Double(millis.floorDiv(1000)))
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: whole)
        func pad(_ v: Int?, _ n: Int) -> String { let s = String(v ?? 0); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)).\(pad(Int(millis.floorMod(1000)), 3))Z"
    }
}

extension Int64 {
    fileprivate func floorDiv(_ d: Int64) -> Int64 { (self >= 0 ? self : self - d + 1) / d }
    fileprivate func floorMod(_ d: Int64) -> Int64 { self - floorDiv(d) * d }
}

/// The OCSF classes `--class` accepts by name (the classes Menshen writes and their neighbours), and
/// the name shown for a class uid.
public enum OCSFClassName {
    public static let byName: [String: Int] = [
        "file_activity": 1001, "event_log_activity": 1008,
        "compliance_finding": 2003, "detection_finding": 2004, "incident_finding": 2005,
        "account_change": 3001, "authentication": 3002, "authorize_session": 3003, "entity_management": 3004,
        "user_access": 3005, "user_access_management": 3005, "group_management": 3006,
        "network_activity": 4001, "http_activity": 4002,
        "inventory_info": 5001, "device_inventory_info": 5001, "device_config_state": 5002,
        "web_resources_activity": 6001, "application_lifecycle": 6002, "api_activity": 6003,
        "remediation_activity": 7001,
    ]

    /// The uid for a name (case-insensitive; `-` and spaces count as `_`) or a number 1–999999.
    public static func uid(_ text: String) throws(VisibilityError) -> Int {
        if text.utf8.count <= 6, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text), n >= 1 { return n }
        let key = String(text.lowercased().prefix(64).map { $0 == "-" || $0 == " " ? "_" : $0 })
        guard let uid = byName[key] else {
            throw VisibilityError(.invalidAuditSearch,
                                  "--class: \(String(text.prefix(64)).debugDescription) is neither an OCSF class uid nor one of \(byName.keys.sorted().joined(separator: ", "))")
        }
        return uid
    }

    /// The class's name for display (the first name listed for it), or nil for an unknown uid.
    public static func name(_ uid: Int) -> String? {
        byName.filter { $0.value == uid }.keys.sorted { $0.count < $1.count || ($0.count == $1.count && $0 < $1) }.first
    }
}

/// How search and tail print events: a readable table, or one JSON object per line.
public enum AuditEventText {
    public static let tableHeader = "SEQ        TIME (UTC)                CLASS                        SEV  USER                  SUMMARY"

    /// One table row. Text from the event is cleaned of control, bidirectional and line-breaking
    /// characters first (the log holds what clients sent; it must not drive the operator's terminal).
    public static func tableRow(_ e: StoredEvent) -> String {
        let parsed = try? DetectionEvent(e)
        let cls = "\(e.event.classUID) \(OCSFClassName.name(e.event.classUID) ?? "")"
        let user = e.event.userID?.rawValue ?? parsed?.userName ?? "-"
        let summary = parsed.flatMap { p in
            ["message", "status_detail", "finding_info.title", "activity_name"].lazy.compactMap { p[$0]?.stringValue }.first { !$0.isEmpty }
        } ?? ""
        return pad(String(e.sequence), 10) + " " + pad(AuditTime.format(e.event.time), 25) + " " + pad(clean(cls, 28), 28) + " "
            + pad(String(e.event.severityID), 4) + " " + pad(clean(user, 21), 21) + " " + clean(summary, 160)
    }

    /// One JSON object: the record's place in the log and chain, and the stored OCSF event under `event`
    /// (unchanged; a payload that is not a JSON object is given as the string `payload_text`).
    public static func jsonLine(_ e: StoredEvent) -> String {
        func q(_ s: String) -> String { (try? EventJSON.encode(EventJSON.Value.string(s))) ?? "\"\"" }
        var out = "{\"sequence\":\(e.sequence),\"id\":\(q(e.event.id.uuidString.lowercased())),\"time\":\(q(AuditTime.format(e.event.time)))"
        out += ",\"class_uid\":\(e.event.classUID),\"severity_id\":\(e.event.severityID)"
        out += ",\"user_id\":" + (e.event.userID.map { q($0.rawValue) } ?? "null")
        out += ",\"prev_hash\":\(q(e.previousHash)),\"hash\":\(q(e.hash)),"
        // Embedded as stored when it is a JSON object on one line (whitespace between tokens could break the line).
        if !e.event.payloadJSON.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }), let parsed = try? DetectionEvent(e), case .object = parsed.payload {
            out += "\"event\":" + e.event.payloadJSON
        } else {
            out += "\"payload_text\":" + q(e.event.payloadJSON)
        }
        return out + "}"
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// At most `max` characters, with control characters, DEL, C1 controls, line and paragraph separators
    /// and bidirectional controls replaced by `�`.
    static func clean(_ s: String, _ max: Int) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        for scalar in s.unicodeScalars {
            guard count < max else { out.append("…"); break }
            switch scalar.value {
            case 0..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: out.append("\u{FFFD}")
            default: out.append(scalar)
            }
            count += 1
        }
        return String(out)
    }
}
