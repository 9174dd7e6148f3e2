import Foundation
import MenshenStorage

/// A user's risk, 0–100, with the reasons that make it up, for the policy
/// engine (`context.risk_score`) and for the analyst.
///
/// The formula, kept simple so it can be explained to a user or an auditor:
///
///     score = min(100, round(Σ pointsᵢ × max(0, 1 − ageᵢ / 24 h)))
///
/// Each contribution decays linearly to nothing over 24 hours. Contributions:
/// - a finding about the user, by level: informational 2, low 10, medium 20,
///   high 35, critical 50;
/// - a behaviour signal at a successful sign-in or allowed access, judged
///   against the user's baseline as it was before: a country never seen for
///   the user +15, a network prefix never seen +5, an hour outside the user's
///   usual hours +10 (each only once the baseline knows enough, see
///   ``DetectionConfiguration``; a signal of the same kind counts once per hour).
public struct RiskScore: Sendable, Equatable {
    public struct Contribution: Sendable, Equatable {
        /// The rule id, or `behaviour:new-country` and the like.
        public var source: String
        public var reason: String
        /// Points at the time asked, after decay (as added, in raw contributions).
        public var points: Double
        public var time: Date
        /// Set on a step-up requirement (a playbook's `require_step_up`, 0 points): requests need an
        /// authentication made after ``time`` until this time.
        public var until: Date?
        public init(source: String, reason: String, points: Double, time: Date, until: Date? = nil) {
            self.source = source; self.reason = reason; self.points = points; self.time = time; self.until = until
        }
    }

    public var user: String
    public var value: Int
    public var contributions: [Contribution]

    public static let decay: TimeInterval = 24 * 3600

    public static func points(for level: SigmaLevel) -> Double {
        switch level { case .informational: 2; case .low: 10; case .medium: 20; case .high: 35; case .critical: 50 }
    }

    /// Behaviour signals and their points.
    public enum Signal: String, Sendable, CaseIterable {
        case newCountry = "behaviour:new-country"
        case newPrefix = "behaviour:new-network"
        case unusualHour = "behaviour:unusual-hour"

        public var points: Double { switch self { case .newCountry: 15; case .newPrefix: 5; case .unusualHour: 10 } }
    }
}

/// Raw contributions per user, bounded (``RiskScore/maxContributions`` per user, users bounded with the baselines).
struct RiskLedger: Sendable {
    struct Entry: Sendable { var source: String; var reason: String; var points: Double; var time: Date; var until: Date? = nil }
    private(set) var entries: [String: [Entry]] = [:]
    let maxUsers: Int

    /// Adds a contribution; false when it was not kept (a behaviour signal of a kind already counted within the hour).
    @discardableResult
    mutating func add(user: String, source: String, reason: String, points: Double, time: Date, until: Date? = nil) -> Bool {
        if entries[user] == nil, entries.count >= maxUsers {
            let n = max(1, entries.count / 10)
            for (k, _) in entries.sorted(by: { ($0.value.last?.time ?? .distantPast) < ($1.value.last?.time ?? .distantPast) }).prefix(n) {
                entries.removeValue(forKey: k)
            }
        }
        var list = entries[user, default: []]
        // A behaviour signal of the same kind counts once per hour.
        if source.hasPrefix("behaviour:"), list.contains(where: { $0.source == source && time.timeIntervalSince($0.time) < 3600 }) { return false }
        list.append(Entry(source: source, reason: reason, points: points, time: time, until: until))
        list.removeAll { time.timeIntervalSince($0.time) >= RiskScore.decay }
        if list.count > RiskScore.maxContributions { list.removeFirst(list.count - RiskScore.maxContributions) }
        entries[user] = list
        return true
    }

    func score(user: String, at now: Date) -> RiskScore {
        RiskScore(user: user, contributions: raw(user: user), at: now)
    }

    /// The user's contributions with their points as added (not decayed).
    func raw(user: String) -> [RiskScore.Contribution] {
        (entries[user] ?? []).map { .init(source: $0.source, reason: $0.reason, points: $0.points, time: $0.time, until: $0.until) }
    }
}

extension RiskScore {
    /// The score at `now` from contributions with their points as added:
    /// the formula above, one place for the engine and for the gateway (which
    /// reads the contributions from the store and computes the score at the
    /// time of each request, so a stored record never needs rewriting as it ages).
    public init(user: String, contributions raw: [Contribution], at now: Date) {
        var parts: [Contribution] = []
        for e in raw {
            let age = now.timeIntervalSince(e.time)
            guard age >= 0 || age > -60 else { continue }   // tolerate a minute of clock skew
            let weight = max(0, 1 - max(0, age) / RiskScore.decay)
            guard weight > 0, e.points > 0 else { continue }
            parts.append(.init(source: e.source, reason: e.reason, points: e.points * weight, time: e.time))
        }
        let total = parts.reduce(0) { $0 + $1.points }
        self.init(user: user, value: min(100, Int(total.rounded())), contributions: parts)
    }

    /// The start of the newest step-up requirement in force at `now` (``Contribution/until`` after `now`),
    /// or nil: a session authenticated before it must step up.
    public static func stepUpRequiredSince(_ contributions: [Contribution], at now: Date) -> Date? {
        contributions.filter { c in c.until.map { now < $0 } ?? false && c.time <= now.addingTimeInterval(60) }.map(\.time).max()
    }

    /// Stored and new raw contributions together (what another node or an earlier run stored is kept):
    /// one of each (source, reason, time, until), none that has decayed or ended by `now`, oldest first,
    /// at most ``maxContributions``.
    public static func merge(_ stored: [Contribution], _ new: [Contribution], at now: Date) -> [Contribution] {
        func key(_ c: Contribution) -> String {
            "\(c.source)\u{1F}\(c.reason)\u{1F}\(Int64((c.time.timeIntervalSince1970 * 1000).rounded()))\u{1F}\(c.until.map { String(Int64(($0.timeIntervalSince1970 * 1000).rounded())) } ?? "")"
        }
        var seen: Set<String> = []
        var out: [Contribution] = []
        for c in stored + new where seen.insert(key(c)).inserted {
            let live = c.until.map { now < $0 } ?? (now.timeIntervalSince(c.time) < decay)
            if live { out.append(c) }
        }
        out.sort { $0.time < $1.time }
        return Array(out.suffix(maxContributions))
    }

    /// Most contributions kept per user (in the engine and in a stored record).
    public static let maxContributions = 64
    /// Longest source or reason kept, in characters.
    public static let maxTextLength = 200

    /// The text form of raw contributions for the store (``MenshenStorage/RiskScoreRecord``):
    /// a JSON array of `{"source", "reason", "points" (whole points as added), "time" (ms), "until" (ms, step-up
    /// requirements only)}`, newest last.
    public static func encode(_ contributions: [Contribution]) throws -> String {
        try EventJSON.encode(contributions.suffix(maxContributions).map { c -> [String: Any] in
            var o: [String: Any] = ["source": String(c.source.prefix(maxTextLength)), "reason": String(c.reason.prefix(maxTextLength)),
                                    "points": Int(c.points.rounded()), "time": Int64((c.time.timeIntervalSince1970 * 1000).rounded())]
            if let until = c.until { o["until"] = Int64((until.timeIntervalSince1970 * 1000).rounded()) }
            return o
        })
    }

    /// Reads what ``encode(_:)`` wrote, within the event reader's size and depth limits and at most
    /// ``maxContributions`` entries of 0–100 points each; anything else is refused whole.
    public static func decode(_ text: String) throws(VisibilityError) -> [Contribution] {
        func bad(_ why: String) -> VisibilityError { VisibilityError(.invalidEvent, "risk contributions: \(why)") }
        guard case .array(let items) = try EventValue.parse(text) else { throw bad("not a JSON array") }
        guard items.count <= maxContributions else { throw bad("\(items.count) entries; at most \(maxContributions)") }
        var out: [Contribution] = []
        for item in items {
            guard let source = item["source"]?.stringValue, let reason = item["reason"]?.stringValue,
                  let points = item["points"]?.intValue, (0...100).contains(points), let ms = item["time"]?.intValue,
                  source.count <= maxTextLength, reason.count <= maxTextLength
            else { throw bad("an entry is not {source, reason, points 0–100, time}") }
            var until: Date?
            if let u = item["until"] {
                guard let v = u.intValue else { throw bad("an entry's until is not a time") }
                until = Date(timeIntervalSince1970: Double(v) / 1000)
            }
            out.append(.init(source: source, reason: reason, points: Double(points), time: Date(timeIntervalSince1970: Double(ms) / 1000),
                             until: until))
        }
        return out
    }
}
