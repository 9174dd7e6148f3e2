import Foundation

/// The streaming state of one correlation rule: one group per `group-by`
/// value, each holding only what its window needs. Memory is bounded: at most
/// ``DetectionConfiguration/maxGroupsPerCorrelation`` groups (the least recently
/// updated are evicted first), at most ``maxTimesPerGroup`` timestamps,
/// ``maxValuesPerGroup`` distinct values and ``maxEvidence`` event ids per group.
///
/// Window semantics (event time, not wall time):
/// - `gt`/`gte` thresholds slide: the matches of the last `timespan` are
///   counted at each match, and the group fires as soon as the threshold is
///   crossed; it then starts afresh, so one burst makes one finding.
/// - `lt`/`lte`/`eq`/`neq` can only be decided on a whole window: the window
///   opens at a group's first match and closes `timespan` later; it is judged
///   when a later match or ``DetectionEngine/advance(to:)`` passes its end.
/// - `temporal` fires when every referenced rule has matched within
///   `timespan`; `temporal_ordered` also requires them in the listed order.
/// - An event without a value for a `group-by` field takes no part.
struct CorrelationWindow: Sendable {
    static let maxTimesPerGroup = 4096
    static let maxValuesPerGroup = 1024
    static let maxEvidence = 32

    struct Group: Sendable {
        var values: [String: String]
        var windowStart: Date
        var first: Date
        var last: Date
        /// event_count: match times; temporal_ordered: per referenced rule.
        var times: [Date] = []
        /// value_count: value → last time seen.
        var distinct: [String: Date] = [:]
        /// temporal: per referenced rule, match times within the window.
        var perRule: [[Date]]
        var evidence: [String] = []
        var lastUser: String?
        var lastIP: String?
    }

    let rule: SigmaCorrelationRule
    /// Detection rule index → position in `rule.rules`.
    let positions: [Int: Int]
    let maxGroups: Int
    /// Per position in `rule.rules`, the path of each `group-by` field (its alias for that rule, if any);
    /// nil where the name is not a valid path (such an event then takes no part). Resolved once, not per event.
    let groupPaths: [[FieldPath?]]
    private(set) var groups: [String: Group] = [:]

    init(rule: SigmaCorrelationRule, references: [Int], maxGroups: Int) {
        self.rule = rule
        var p: [Int: Int] = [:]
        for (k, i) in references.enumerated() { p[i] = k }
        positions = p
        self.maxGroups = max(1, maxGroups)
        groupPaths = rule.rules.map { ref in
            rule.groupBy.map { g in
                if let alias = rule.aliases[g], let path = alias[ref] { return path }
                return try? FieldPath(g)
            }
        }
    }

    /// The group-by values of an event matched by the referenced rule at `position`, in `group-by` order;
    /// `nil` when one is missing.
    func groupValues(_ event: DetectionEvent, position: Int) -> [String]? {
        var out: [String] = []
        out.reserveCapacity(rule.groupBy.count)
        for k in rule.groupBy.indices {
            guard let path = groupPaths[position][k], let text = event.first(path)?.scalarText, !text.isEmpty else { return nil }
            out.append(text.utf8.count <= 512 ? text : String(text.prefix(512)))
        }
        return out
    }

    /// Feeds a match of detection rule `index`; returns a finding when the correlation fires.
    mutating func observe(index: Int, event: DetectionEvent) -> [DetectionFinding] {
        guard let position = positions[index], let ordered = groupValues(event, position: position) else { return [] }
        let key = ordered.count == 1 ? ordered[0] : ordered.joined(separator: "\u{1F}")
        // The named values, built only for a new group (a `group-by` field named twice reads the same path).
        let groupBy = rule.groupBy
        func named() -> [String: String] { Dictionary(zip(groupBy, ordered), uniquingKeysWith: { _, last in last }) }
        let t = event.time
        var out: [DetectionFinding] = []
        var group: Group
        // Taken out of the dictionary (not copied) so that appending to its arrays does not copy them.
        if let existing = groups.removeValue(forKey: key) {
            group = existing
            // A whole-window threshold whose window has passed is judged before this match opens a new one.
            if !(rule.threshold?.decidableEarly ?? true), t > group.windowStart.addingTimeInterval(rule.timespan) {
                if let f = judgeClosed(group) { out.append(f) }
                group = Group(values: named(), windowStart: t, first: t, last: t, perRule: Array(repeating: [], count: rule.rules.count))
            }
        } else {
            if groups.count >= maxGroups { evictOldest() }
            group = Group(values: named(), windowStart: t, first: t, last: t, perRule: Array(repeating: [], count: rule.rules.count))
        }
        group.last = max(group.last, t)
        group.lastUser = event.userName ?? group.lastUser
        group.lastIP = event.sourceIP ?? group.lastIP
        group.evidence.append(event.id)
        if group.evidence.count > Self.maxEvidence { group.evidence.removeFirst(group.evidence.count - Self.maxEvidence) }
        let horizon = t.addingTimeInterval(-rule.timespan)
        var fired = false
        switch rule.kind {
        case .eventCount:
            group.times.append(t)
            if rule.threshold?.decidableEarly ?? true {
                group.times.removeAll { $0 < horizon }
            }
            if group.times.count > Self.maxTimesPerGroup { group.times.removeFirst(group.times.count - Self.maxTimesPerGroup) }
            if let th = rule.threshold, th.decidableEarly, th.holds(group.times.count) { fired = true }
        case .valueCount:
            if let field = rule.valueField, let v = event.first(field)?.scalarText, !v.isEmpty {
                group.distinct[String(v.prefix(512))] = t
            }
            if rule.threshold?.decidableEarly ?? true {
                group.distinct = group.distinct.filter { $0.value >= horizon }
            }
            if group.distinct.count > Self.maxValuesPerGroup, let oldest = group.distinct.min(by: { $0.value < $1.value }) {
                group.distinct.removeValue(forKey: oldest.key)
            }
            if let th = rule.threshold, th.decidableEarly, th.holds(group.distinct.count) { fired = true }
        case .temporal, .temporalOrdered:
            group.perRule[position].append(t)
            for k in group.perRule.indices {
                group.perRule[k].removeAll { $0 < horizon }
                if group.perRule[k].count > 64 { group.perRule[k].removeFirst(group.perRule[k].count - 64) }
            }
            if rule.kind == .temporal {
                fired = group.perRule.allSatisfy { !$0.isEmpty }
            } else if position == rule.rules.count - 1 {
                fired = Self.inOrder(group.perRule, from: horizon, to: t)
            }
        }
        if fired {
            out.append(finding(group, detail: summary(group)))   // not put back: start afresh, one burst, one finding
        } else {
            groups[key] = group
        }
        return out
    }

    /// Closes every whole-window group whose window ended before `now`, and drops
    /// groups with nothing left inside their window.
    mutating func advance(to now: Date) -> [DetectionFinding] {
        var out: [DetectionFinding] = []
        let early = rule.threshold?.decidableEarly ?? true
        for (key, group) in groups where group.last < now.addingTimeInterval(-rule.timespan)
            || (!early && now > group.windowStart.addingTimeInterval(rule.timespan)) {
            if !early, let f = judgeClosed(group) { out.append(f) }
            groups.removeValue(forKey: key)
        }
        return out
    }

    private func judgeClosed(_ group: Group) -> DetectionFinding? {
        guard let th = rule.threshold, !th.decidableEarly else { return nil }
        let n = rule.kind == .valueCount ? group.distinct.count : group.times.count
        guard th.holds(n) else { return nil }
        var g = group
        g.last = group.windowStart.addingTimeInterval(rule.timespan)
        return finding(g, detail: summary(group))
    }

    private func summary(_ g: Group) -> String {
        let groupText = rule.groupBy.map { "\($0)=\(g.values[$0] ?? "")" }.joined(separator: ", ")
        let span = Self.spanText(rule.timespan)
        switch rule.kind {
        case .eventCount:
            return "\(g.times.count) matching events within \(span) for \(groupText)"
        case .valueCount:
            return "\(g.distinct.count) distinct \(rule.valueField?.description ?? "values") within \(span) for \(groupText)"
        case .temporal:
            return "\(rule.rules.joined(separator: " and ")) all matched within \(span) for \(groupText)"
        case .temporalOrdered:
            return "\(rule.rules.joined(separator: " then ")) matched in order within \(span) for \(groupText)"
        }
    }

    private func finding(_ g: Group, detail: String) -> DetectionFinding {
        let userFields: Set<String> = ["user.name", "actor.user.name", "user.uid", "actor.user.uid", "user"]
        let ipFields: Set<String> = ["src_endpoint.ip", "ip", "source_ip"]
        let user = rule.groupBy.first(where: userFields.contains).flatMap { g.values[$0] } ?? g.lastUser
        let ip = rule.groupBy.first(where: ipFields.contains).flatMap { g.values[$0] } ?? g.lastIP
        return DetectionFinding(metadata: rule.metadata, user: user, sourceIP: ip, groupBy: g.values, evidence: g.evidence,
                                firstTime: g.first, lastTime: g.last, message: "\(rule.metadata.title): \(detail)")
    }

    /// Whether times exist t₀ ≤ t₁ ≤ … (one per rule, in order) within [from, to].
    static func inOrder(_ perRule: [[Date]], from: Date, to: Date) -> Bool {
        var cursor = from
        for times in perRule {
            guard let next = times.filter({ $0 >= cursor && $0 <= to }).min() else { return false }
            cursor = next
        }
        return true
    }

    static func spanText(_ s: TimeInterval) -> String {
        if s >= 86_400, s.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(s / 86_400))d" }
        if s >= 3600, s.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(s / 3600))h" }
        if s >= 60, s.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(s / 60))m" }
        return "\(Int(s))s"
    }

    /// Drops the least recently updated tenth of the groups (at least one).
    private mutating func evictOldest() {
        let n = max(1, groups.count / 10)
        let victims = groups.sorted { $0.value.last < $1.value.last }.prefix(n).map(\.key)
        for k in victims { groups.removeValue(forKey: k) }
    }
}
