import Foundation

/// Assembles an ``Assessment`` from per-principle evaluations: levels per
/// pillar and overall, the scenario view, the roadmap and the comparison with
/// the previous assessment. Pure: the caller passes the clock and the inputs.
public struct AssessmentBuilder: Sendable {
    public let catalog: PrincipleCatalog
    public init(catalog: PrincipleCatalog = .builtIn) { self.catalog = catalog }

    public struct Input: Sendable {
        public var id: String
        public var generatedAt: Date
        public var windowStart: Date
        public var organisation: String
        public var producer: String
        /// By principle id. A principle without an entry is "not measurable yet".
        public var evaluations: [String: PrincipleEvaluation]
        public var routes: [RouteAssessment]
        public var attestations: [Attestation]
        public var previous: Assessment?
        public init(id: String, generatedAt: Date, windowStart: Date, organisation: String, producer: String,
                    evaluations: [String: PrincipleEvaluation], routes: [RouteAssessment], attestations: [Attestation],
                    previous: Assessment?) {
            self.id = id; self.generatedAt = generatedAt; self.windowStart = windowStart; self.organisation = organisation
            self.producer = producer; self.evaluations = evaluations; self.routes = routes; self.attestations = attestations
            self.previous = previous
        }
    }

    public func build(_ input: Input) -> Assessment {
        let results: [PrincipleResult] = catalog.principles.map { p in
            let e = input.evaluations[p.id] ?? PrincipleEvaluation(
                verdict: .notMeasurable,
                rationale: LocalizedText(en: "Menshen cannot measure this principle yet, and no attestation covers it.",
                                         zhTW: "Menshen 尚無法量測此原則，且無任何聲明涵蓋。"))
            let atts = input.attestations.filter { $0.principleID == p.id }
                .sorted { $0.attestedAt > $1.attestedAt }
                .map { AttestationStatus(attestation: $0, state: $0.state(at: input.generatedAt)) }
            return PrincipleResult(principleID: p.id, pillar: p.pillar, level: p.level, verdict: e.verdict,
                                   rationale: e.rationale, measurements: e.measurements, attestations: atts,
                                   remedy: e.verdict == .met || e.verdict == .notApplicable ? nil : e.remedy)
        }
        let pillars = Pillar.allCases.map { Self.pillarResult($0, results: results) }
        let overall = pillars.map(\.level).min() ?? 0
        let scenarios = scenarioViews(results: results, routes: input.routes)
        let roadmap = Self.roadmap(results: results, scenarios: scenarios)
        let comparison = input.previous.map { Self.compare(previous: $0, results: results) }
        return Assessment(schemaVersion: Assessment.currentSchemaVersion, id: input.id, generatedAt: input.generatedAt,
                          windowStart: input.windowStart, windowEnd: input.generatedAt, organisation: input.organisation,
                          producer: input.producer, guideline: catalog.source, principles: results, pillars: pillars,
                          overallLevel: overall, routes: input.routes, scenarios: scenarios, roadmap: roadmap,
                          comparison: comparison)
    }

    /// A pillar reaches Level L when every principle of level ≤ L in it is
    /// satisfied; levels are cumulative, so a gap at Level I caps it at 0.
    static func pillarResult(_ pillar: Pillar, results: [PrincipleResult]) -> PillarResult {
        let mine = results.filter { $0.pillar == pillar }
        let tallies = (1...4).map { l in
            let at = mine.filter { $0.level == l }
            return PillarResult.LevelTally(level: l, satisfied: at.filter { $0.verdict.satisfies }.count, total: at.count)
        }
        var level = 0
        for t in tallies {
            guard t.satisfied == t.total else { break }
            level = t.level
        }
        return PillarResult(pillar: pillar, level: level, perLevel: tallies)
    }

    func scenarioViews(results: [PrincipleResult], routes: [RouteAssessment]) -> [ScenarioView] {
        catalog.scenarios.map { s in
            let tagged = routes.filter { $0.scenarios.contains(s.id) }
            let principles = results.map { r in
                let failing = tagged.filter { route in route.checks.contains { $0.principleID == r.principleID && !$0.holds } }
                    .map(\.applicationID)
                return ScenarioView.ScenarioPrinciple(principleID: r.principleID,
                                                      holds: r.verdict.satisfies && failing.isEmpty && !tagged.isEmpty,
                                                      failingRoutes: failing)
            }
            return ScenarioView(scenarioID: s.id, name: s.name, routes: tagged.map(\.applicationID), principles: principles)
        }
    }

    /// The gaps, ordered as the guideline advises: lower levels before higher;
    /// within a level, gaps that touch high-risk scenarios' routes first (more
    /// scenarios first), then partially met before not met (closest to done:
    /// least impact to finish), then pillar and catalog order.
    static func roadmap(results: [PrincipleResult], scenarios: [ScenarioView]) -> [RoadmapItem] {
        let gaps = results.filter { !$0.verdict.satisfies }
        func touched(_ id: String) -> [String] {
            scenarios.filter { view in
                // A gap touches a scenario when a route check of the principle fails on one of its routes.
                view.principles.contains { $0.principleID == id && !$0.failingRoutes.isEmpty }
            }.map(\.scenarioID)
        }
        func closeness(_ v: Verdict) -> Int { v == .partiallyMet ? 0 : v == .notMet ? 1 : 2 }
        let order = Dictionary(uniqueKeysWithValues: results.enumerated().map { ($1.principleID, $0) })
        let sorted = gaps.map { ($0, touched($0.principleID)) }.sorted { a, b in
            if a.0.level != b.0.level { return a.0.level < b.0.level }
            if a.1.count != b.1.count { return a.1.count > b.1.count }
            if closeness(a.0.verdict) != closeness(b.0.verdict) { return closeness(a.0.verdict) < closeness(b.0.verdict) }
            return order[a.0.principleID]! < order[b.0.principleID]!
        }
        return sorted.enumerated().map { i, pair in
            let (r, scen) = pair
            let why = scen.isEmpty
                ? LocalizedText(en: "Level \(r.level) principle, \(r.verdict.label.en.lowercased()).",
                                zhTW: "第 \(r.level) 級原則，\(r.verdict.label.zhTW)。")
                : LocalizedText(en: "Level \(r.level) principle, \(r.verdict.label.en.lowercased()); touches high-risk scenarios: \(scen.joined(separator: ", ")).",
                                zhTW: "第 \(r.level) 級原則，\(r.verdict.label.zhTW)；涉及高風險場景：\(scen.joined(separator: "、"))。")
            return RoadmapItem(rank: i + 1, principleID: r.principleID, pillar: r.pillar, level: r.level, verdict: r.verdict,
                               scenarios: scen, why: why, remedy: r.remedy)
        }
    }

    static func compare(previous: Assessment, results: [PrincipleResult]) -> AssessmentComparison {
        let before = Dictionary(previous.principles.map { ($0.principleID, $0.verdict) }, uniquingKeysWith: { a, _ in a })
        let changes = results.compactMap { r -> AssessmentComparison.Change? in
            guard let b = before[r.principleID], b != r.verdict else { return nil }
            return .init(principleID: r.principleID, before: b, after: r.verdict)
        }
        return AssessmentComparison(previousID: previous.id, previousGeneratedAt: previous.generatedAt,
                                    overallLevelBefore: previous.overallLevel,
                                    pillarLevelsBefore: Dictionary(previous.pillars.map { ($0.pillar.rawValue, $0.level) },
                                                                   uniquingKeysWith: { a, _ in a }),
                                    changes: changes)
    }
}
