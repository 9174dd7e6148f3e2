import Foundation

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
        /// Points at the time asked, after decay.
        public var points: Double
        public var time: Date
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

/// Raw contributions per user, bounded (64 per user, users bounded with the baselines).
struct RiskLedger: Sendable {
    struct Entry: Sendable { var source: String; var reason: String; var points: Double; var time: Date }
    private(set) var entries: [String: [Entry]] = [:]
    let maxUsers: Int

    mutating func add(user: String, source: String, reason: String, points: Double, time: Date) {
        if entries[user] == nil, entries.count >= maxUsers {
            let n = max(1, entries.count / 10)
            for (k, _) in entries.sorted(by: { ($0.value.last?.time ?? .distantPast) < ($1.value.last?.time ?? .distantPast) }).prefix(n) {
                entries.removeValue(forKey: k)
            }
        }
        var list = entries[user, default: []]
        // A behaviour signal of the same kind counts once per hour.
        if source.hasPrefix("behaviour:"), list.contains(where: { $0.source == source && time.timeIntervalSince($0.time) < 3600 }) { return }
        list.append(Entry(source: source, reason: reason, points: points, time: time))
        list.removeAll { time.timeIntervalSince($0.time) >= RiskScore.decay }
        if list.count > 64 { list.removeFirst(list.count - 64) }
        entries[user] = list
    }

    func score(user: String, at now: Date) -> RiskScore {
        var parts: [RiskScore.Contribution] = []
        for e in entries[user] ?? [] {
            let age = now.timeIntervalSince(e.time)
            guard age >= 0 || age > -60 else { continue }   // tolerate a minute of clock skew
            let weight = max(0, 1 - max(0, age) / RiskScore.decay)
            guard weight > 0 else { continue }
            parts.append(.init(source: e.source, reason: e.reason, points: e.points * weight, time: e.time))
        }
        let total = parts.reduce(0) { $0 + $1.points }
        return RiskScore(user: user, value: min(100, Int(total.rounded())), contributions: parts)
    }
}
