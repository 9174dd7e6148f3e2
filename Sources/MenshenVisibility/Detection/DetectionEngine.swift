import Foundation

/// A detection written in Swift, for what a Sigma rule cannot express (state
/// beyond a window: baselines, distances, ratios). It judges each event against
/// the baselines as they were before the event; the engine learns afterwards.
public protocol BehaviourDetector: Sendable {
    /// Id, title, level and ATT&CK tags, as a Sigma rule would carry them.
    var metadata: RuleMetadata { get }
    mutating func observe(_ event: DetectionEvent, baselines: BaselineBook, configuration: DetectionConfiguration) -> [DetectionFinding]
    /// Fields read beyond ``DetectionEvent``'s accessors, so that the engine's
    /// ``EventProjection`` parses them (a field left out still reads correctly, at the cost of a full parse).
    var fieldsRead: [FieldPath] { get }
}

extension BehaviourDetector {
    public var fieldsRead: [FieldPath] { [] }
}

/// The detection engine: a pure state machine. Feed it events in time order
/// with ``process(_:)``; it returns the findings they complete. It performs no
/// I/O: the caller stores or exports findings and reads risk scores.
///
/// Per event: every Sigma detection rule is tried; a match either becomes a
/// finding (rules not consumed by a correlation, at most once per rule, user
/// and source within ``DetectionConfiguration/singleEventSuppression``) or feeds the
/// correlations that reference it. Then the Swift detectors judge the event,
/// behaviour signals are scored against the user's baseline, and the baseline
/// learns the event. Findings about a user raise their ``RiskScore``.
///
/// Events older than the newest seen are still processed, at their own time;
/// windows are computed from event times.
public struct DetectionEngine: Sendable {
    public private(set) var rules: SigmaRuleSet
    public private(set) var detectors: [any BehaviourDetector]
    public let configuration: DetectionConfiguration
    public private(set) var baselines: BaselineBook
    private var windows: [CorrelationWindow]
    /// The members events need for these rules and detectors: pass it to
    /// ``DetectionEvent/init(_:projection:)`` to parse only those.
    public private(set) var projection: EventProjection
    private var ledger: RiskLedger
    /// Users whose contributions changed since ``takeRiskChanges()`` (bounded with the ledger's users).
    private var riskChanged: Set<String> = []
    private var suppressed: [String: Date] = [:]
    /// The newest event time seen.
    public private(set) var now: Date = .distantPast
    private var processed = 0

    public init(rules: SigmaRuleSet, detectors: [any BehaviourDetector], configuration: DetectionConfiguration = .init()) {
        self.rules = rules
        self.detectors = detectors
        self.configuration = configuration
        baselines = BaselineBook(configuration: configuration)
        ledger = RiskLedger(maxUsers: configuration.maxUsers)
        windows = Self.windows(for: rules, configuration: configuration)
        projection = Self.projection(rules: rules, detectors: detectors)
    }

    private static func projection(rules: SigmaRuleSet, detectors: [any BehaviourDetector]) -> EventProjection {
        EventProjection(paths: rules.fieldPaths + detectors.flatMap(\.fieldsRead))
    }

    /// The engine with the built-in Sigma rules and Swift detectors.
    public static func builtIn(configuration: DetectionConfiguration = .init()) throws(VisibilityError) -> DetectionEngine {
        DetectionEngine(rules: try BuiltInRules.ruleSet(), detectors: BuiltInRules.detectors(), configuration: configuration)
    }

    private static func windows(for rules: SigmaRuleSet, configuration: DetectionConfiguration) -> [CorrelationWindow] {
        zip(rules.correlations, rules.references).map {
            CorrelationWindow(rule: $0.0, references: $0.1, maxGroups: configuration.maxGroupsPerCorrelation)
        }
    }

    /// Replaces the Sigma rules with a set loaded from files. On any problem it
    /// throws and the current rules stay active, with their windows intact.
    /// On success, correlation windows start empty (baselines and risk are kept).
    public mutating func loadRules(files: [(name: String, text: String)]) throws(VisibilityError) {
        let set = try SigmaRuleSet.load(files: files)
        replaceRules(set)
    }

    /// Replaces the Sigma rules with a loaded set (correlation windows start empty).
    public mutating func replaceRules(_ set: SigmaRuleSet) {
        rules = set
        windows = Self.windows(for: set, configuration: configuration)
        projection = Self.projection(rules: set, detectors: detectors)
        suppressed = [:]
    }

    /// Seeds a user's last activity from history the engine has not seen (for
    /// the dormant-account detection after a restart).
    public mutating func seedLastSeen(user: String, at time: Date) {
        baselines.seed(user: user, lastSeen: time)
    }

    /// Processes one event and returns the findings it completes.
    public mutating func process(_ event: DetectionEvent) -> [DetectionFinding] {
        var findings: [DetectionFinding] = []
        now = max(now, event.time)
        processed += 1

        for (index, rule) in rules.detections.enumerated() where rule.matches(event) {
            if rules.generating.contains(index), let f = singleEventFinding(rule, event) { findings.append(f) }
            for w in windows.indices where windows[w].positions[index] != nil {
                findings.append(contentsOf: windows[w].observe(index: index, event: event))
            }
        }
        for i in detectors.indices {
            findings.append(contentsOf: detectors[i].observe(event, baselines: baselines, configuration: configuration))
        }
        scoreBehaviour(event)
        baselines.learn(event)
        if processed % 256 == 0 { findings.append(contentsOf: advance(to: now)) }
        record(findings)
        return findings
    }

    /// Closes correlation windows that ended before `time` (whole-window
    /// thresholds such as `lt` are judged then) and drops expired state. Call it
    /// on a timer when events are sparse; ``process(_:)`` also calls it.
    public mutating func advance(to time: Date) -> [DetectionFinding] {
        var out: [DetectionFinding] = []
        for w in windows.indices { out.append(contentsOf: windows[w].advance(to: time)) }
        suppressed = suppressed.filter { time.timeIntervalSince($0.value) < configuration.singleEventSuppression }
        return out
    }

    /// Adds findings made elsewhere (e.g. by ``advance(to:)`` on a timer) to the users' risk.
    public mutating func record(_ findings: [DetectionFinding]) {
        for f in findings {
            guard let user = f.user else { continue }
            addRisk(user: user, source: f.ruleID, reason: f.title, points: RiskScore.points(for: f.level), time: f.lastTime)
        }
    }

    /// Adds a contribution to a user's risk from outside the engine: the accounts named in a finding's
    /// evidence (a spray's targets), or a playbook's `raise_risk` step. Points are clamped to 0–100.
    public mutating func addRisk(user: String, source: String, reason: String, points: Double, time: Date) {
        guard ledger.add(user: user, source: source, reason: reason, points: min(100, max(0, points)), time: time) else { return }
        if riskChanged.count < configuration.maxUsers { riskChanged.insert(user) }
    }

    /// Records a step-up requirement for the user (a playbook's `require_step_up`): stored with the
    /// risk contributions, it makes the gateway ask for a fresh authentication from `since` to `until`.
    public mutating func requireStepUp(user: String, source: String, reason: String, since: Date, until: Date) {
        guard until > since, ledger.add(user: user, source: source, reason: reason, points: 0, time: since, until: until) else { return }
        if riskChanged.count < configuration.maxUsers { riskChanged.insert(user) }
    }

    /// The users whose risk contributions changed since the last call (for the store, so the gateway sees them).
    public mutating func takeRiskChanges() -> [String] {
        defer { riskChanged.removeAll(keepingCapacity: true) }
        return riskChanged.sorted()
    }

    /// The user's contributions with their points as added (not decayed), oldest first, for the store.
    public func riskContributions(for user: String) -> [RiskScore.Contribution] {
        ledger.raw(user: user)
    }

    /// The user's risk score at `time` (see ``RiskScore`` for the formula).
    public func riskScore(for user: String, at time: Date) -> RiskScore {
        ledger.score(user: user, at: time)
    }

    /// Every user with a non-zero score at `time`.
    public func riskScores(at time: Date) -> [String: Int] {
        var out: [String: Int] = [:]
        for user in ledger.entries.keys {
            let s = ledger.score(user: user, at: time).value
            if s > 0 { out[user] = s }
        }
        return out
    }

    /// Groups held by each correlation rule (for tests and metrics).
    public var correlationGroupCounts: [String: Int] {
        Dictionary(windows.map { ($0.rule.metadata.key, $0.groups.count) }, uniquingKeysWith: +)
    }

    private mutating func singleEventFinding(_ rule: SigmaDetectionRule, _ e: DetectionEvent) -> DetectionFinding? {
        let key = [rule.metadata.key, e.userName ?? "", e.sourceIP ?? ""].joined(separator: "\u{1F}")
        if let last = suppressed[key], e.time.timeIntervalSince(last) < configuration.singleEventSuppression, e.time >= last { return nil }
        if suppressed.count >= 100_000 { suppressed.removeAll(keepingCapacity: true) }
        suppressed[key] = e.time
        let who = e.userName.map { " by \($0)" } ?? ""
        let from = e.sourceIP.map { " from \($0)" } ?? ""
        return DetectionFinding(metadata: rule.metadata, user: e.userName, sourceIP: e.sourceIP, device: e.deviceUID, evidence: [e.id],
                                firstTime: e.time, lastTime: e.time, message: "\(rule.metadata.title): event \(e.id)\(who)\(from)")
    }

    private mutating func scoreBehaviour(_ e: DetectionEvent) {
        guard e.isSuccessfulSignIn || e.isAllowedAccess, let user = e.userName, let b = baselines[user] else { return }
        let place = e.place
        if let c = place.country, b.activitiesWithCountry >= configuration.minimumSignInsForPlaces, b.countries[c] == nil {
            addRisk(user: user, source: RiskScore.Signal.newCountry.rawValue, reason: "first activity from \(c)",
                       points: RiskScore.Signal.newCountry.points, time: e.time)
        }
        if let p = e.sourcePrefix, b.successfulSignIns >= configuration.minimumSignInsForPlaces,
           b.prefixes[p] == nil {
            addRisk(user: user, source: RiskScore.Signal.newPrefix.rawValue, reason: "first activity from network \(p)",
                       points: RiskScore.Signal.newPrefix.points, time: e.time)
        }
        let hour = configuration.hourAndWeekday(e.time).hour
        if b.isUsualHour(hour, minimum: configuration.minimumActivitiesForHours) == false {
            addRisk(user: user, source: RiskScore.Signal.unusualHour.rawValue, reason: "active at \(hour):00, outside usual hours",
                       points: RiskScore.Signal.unusualHour.points, time: e.time)
        }
    }
}
