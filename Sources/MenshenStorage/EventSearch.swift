import Foundation

/// The part of an audit search a backend evaluates inside its own query (the
/// columns of `events` and a substring test on the payload text), so a search
/// pages through the log with SQL doing the filtering instead of loading it.
/// Filters on fields inside the OCSF JSON are applied by the caller
/// (`AuditSearch` in MenshenVisibility) on the pages this returns; it narrows
/// them first with ``payloadContains``.
///
/// Every condition must hold (AND). ``matches(_:)`` is the reference meaning:
/// the in-memory store uses it and the conformance suite checks the SQL
/// backends against it.
public struct EventQuery: Sendable, Equatable {
    /// At most this many classes, substrings and bytes per substring (a query is bounded like any input).
    public static let maxClasses = 64, maxTerms = 16, maxTermBytes = 1024

    /// Events whose time is at or after this instant (`time >= since`, millisecond precision).
    public var since: Date?
    /// Events whose time is before this instant (`time < until`).
    public var until: Date?
    /// Events of one of these OCSF classes; empty means every class.
    public var classUIDs: [Int]
    /// Events whose user column is this id — or whose payload contains ``userInPayload``, when that is set
    /// (a user named only inside the event, e.g. a failed sign-in of an unknown name).
    public var userID: String?
    /// See ``userID``; only used together with it.
    public var userInPayload: String?
    /// Each of these must occur in the payload text, byte for byte (case-sensitive).
    public var payloadContains: [String]

    public init(since: Date? = nil, until: Date? = nil, classUIDs: [Int] = [], userID: String? = nil, userInPayload: String? = nil,
                payloadContains: [String] = []) {
        self.since = since; self.until = until; self.classUIDs = classUIDs; self.userID = userID
        self.userInPayload = userInPayload; self.payloadContains = payloadContains
    }

    /// Throws `invalidInput` for a query beyond the bounds: too many classes or substrings, an empty or
    /// oversized substring or user id, or one containing NUL (which neither SQL backend stores in text).
    public func validate() throws {
        guard classUIDs.count <= Self.maxClasses else { throw StoreError(.invalidInput, "at most \(Self.maxClasses) event classes per search") }
        guard payloadContains.count <= Self.maxTerms else { throw StoreError(.invalidInput, "at most \(Self.maxTerms) text terms per search") }
        for t in payloadContains + [userID, userInPayload].compactMap({ $0 }) {
            guard !t.isEmpty, t.utf8.count <= Self.maxTermBytes, !t.utf8.contains(0) else {
                throw StoreError(.invalidInput, "search terms must be 1–\(Self.maxTermBytes) bytes without NUL")
            }
        }
    }

    /// Whether a stored event satisfies the query.
    public func matches(_ e: StoredEvent) -> Bool {
        let millis = StoreCoding.millis(e.event.time)
        if let since, millis < StoreCoding.millis(since) { return false }
        if let until, millis >= StoreCoding.millis(until) { return false }
        if !classUIDs.isEmpty, !classUIDs.contains(e.event.classUID) { return false }
        if let userID {
            let byColumn = e.event.userID?.rawValue == userID
            let byPayload = userInPayload.map { Self.contains(e.event.payloadJSON, $0) } ?? false
            if !byColumn, !byPayload { return false }
        }
        return payloadContains.allSatisfy { Self.contains(e.event.payloadJSON, $0) }
    }

    /// Byte-wise substring test over UTF-8 (what SQLite's `instr` and PostgreSQL's `strpos` do on
    /// text; Swift's own `contains` compares characters, which is not the same).
    public static func contains(_ haystack: String, _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard let first = n.first else { return true }
        let h = Array(haystack.utf8)
        guard h.count >= n.count else { return false }
        var i = 0
        while i <= h.count - n.count {
            if h[i] == first, h[i..<(i + n.count)].elementsEqual(n) { return true }
            i += 1
        }
        return false
    }
}

/// The order of a search's results.
public enum EventOrder: Sendable, Equatable {
    case oldestFirst, newestFirst
}

/// Searching the event log page by page (see ``EventQuery``).
public protocol EventSearchStore: Sendable {
    /// Up to `limit` events matching `query`, in `order`, after `cursor` in that order: sequence greater
    /// than `cursor` oldest first, smaller than it newest first; nil starts at the oldest or the newest
    /// event. Throws `invalidInput` for a query beyond its bounds (and reads nothing).
    func searchEvents(_ query: EventQuery, order: EventOrder, after cursor: Int64?, limit: Int) async throws -> [StoredEvent]
}
