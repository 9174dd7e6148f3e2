import Foundation

/// How a principle stands. Only `met` (and `notApplicable`, which needs a
/// stated reason) count towards a level; `notMeasurable` — the feature that
/// would produce the evidence does not exist yet — counts as not met.
public enum Verdict: String, Sendable, Codable, CaseIterable {
    case met
    case partiallyMet = "partially_met"
    case notMet = "not_met"
    case notApplicable = "not_applicable"
    case notMeasurable = "not_measurable_yet"

    /// Whether the principle counts as satisfied when levels are computed.
    public var satisfies: Bool { self == .met || self == .notApplicable }

    public var label: LocalizedText {
        switch self {
        case .met: LocalizedText(en: "Met", zhTW: "符合")
        case .partiallyMet: LocalizedText(en: "Partially met", zhTW: "部分符合")
        case .notMet: LocalizedText(en: "Not met", zhTW: "不符合")
        case .notApplicable: LocalizedText(en: "Not applicable", zhTW: "不適用")
        case .notMeasurable: LocalizedText(en: "Not measurable yet", zhTW: "尚無法量測")
        }
    }
}

/// One number measured from the deployment, with the query behind it, so an
/// auditor can reproduce it.
public struct Measurement: Sendable, Equatable, Codable {
    /// Stable id, e.g. `users_with_mfa`.
    public var id: String
    public var label: LocalizedText
    /// The value: a ratio in 0…1 (`unit` "ratio"), a count, seconds, days, or 0/1 for a yes/no.
    public var value: Double?
    /// For ratios: the counted items and the population.
    public var numerator: Int?
    public var denominator: Int?
    public var unit: Unit
    /// What was counted, how: the SQL or the configuration read, in words an auditor can check.
    public var query: String

    public enum Unit: String, Sendable, Codable { case ratio, count, seconds, days, boolean, level }

    public init(id: String, label: LocalizedText, value: Double?, numerator: Int? = nil, denominator: Int? = nil,
                unit: Unit, query: String) {
        self.id = id; self.label = label; self.value = value; self.numerator = numerator
        self.denominator = denominator; self.unit = unit; self.query = query
    }

    /// A ratio `numerator / denominator`; nil value when the population is empty.
    public static func ratio(_ id: String, _ label: LocalizedText, _ numerator: Int, of denominator: Int, query: String) -> Measurement {
        Measurement(id: id, label: label, value: denominator == 0 ? nil : Double(numerator) / Double(denominator),
                    numerator: numerator, denominator: denominator, unit: .ratio, query: query)
    }
    public static func count(_ id: String, _ label: LocalizedText, _ n: Int, query: String) -> Measurement {
        Measurement(id: id, label: label, value: Double(n), unit: .count, query: query)
    }
    public static func flag(_ id: String, _ label: LocalizedText, _ yes: Bool, query: String) -> Measurement {
        Measurement(id: id, label: label, value: yes ? 1 : 0, unit: .boolean, query: query)
    }
}

/// A statement by a named person about what the system cannot observe
/// (penetration tests, CI/CD separation of duties, off-site backups …),
/// with the evidence files it rests on.
public struct Attestation: Sendable, Equatable, Codable {
    public struct EvidenceFile: Sendable, Equatable, Codable {
        public var name: String
        /// Lower-case hex SHA-256 of the file's bytes as stored.
        public var sha256: String
        public var size: Int
        public init(name: String, sha256: String, size: Int) { self.name = name; self.sha256 = sha256; self.size = size }
    }
    public enum State: String, Sendable, Codable { case valid, expired, revoked }

    public var id: String
    public var principleID: String
    public var statement: String
    public var attestedBy: String
    public var attestedAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?
    public var files: [EvidenceFile]

    public init(id: String, principleID: String, statement: String, attestedBy: String, attestedAt: Date, expiresAt: Date,
                revokedAt: Date? = nil, files: [EvidenceFile]) {
        self.id = id; self.principleID = principleID; self.statement = statement; self.attestedBy = attestedBy
        self.attestedAt = attestedAt; self.expiresAt = expiresAt; self.revokedAt = revokedAt; self.files = files
    }

    public func state(at now: Date) -> State {
        if let r = revokedAt, r <= now { return .revoked }
        return expiresAt <= now ? .expired : .valid
    }
}

/// An attestation as the report shows it: with its state at assessment time.
public struct AttestationStatus: Sendable, Equatable, Codable {
    public var attestation: Attestation
    public var state: Attestation.State
    public init(attestation: Attestation, state: Attestation.State) { self.attestation = attestation; self.state = state }
}

/// What a principle rule concludes.
public struct PrincipleEvaluation: Sendable, Equatable, Codable {
    public var verdict: Verdict
    /// Why, in both languages, naming the numbers that decided it.
    public var rationale: LocalizedText
    public var measurements: [Measurement]
    /// What to do to improve it (empty when met).
    public var remedy: LocalizedText?
    public init(verdict: Verdict, rationale: LocalizedText, measurements: [Measurement] = [], remedy: LocalizedText? = nil) {
        self.verdict = verdict; self.rationale = rationale; self.measurements = measurements; self.remedy = remedy
    }
}

/// One principle in a report.
public struct PrincipleResult: Sendable, Equatable, Codable {
    public var principleID: String
    public var pillar: Pillar
    public var level: Int
    public var verdict: Verdict
    public var rationale: LocalizedText
    public var measurements: [Measurement]
    public var attestations: [AttestationStatus]
    public var remedy: LocalizedText?
}

/// A pillar's level: the highest L such that every principle of level ≤ L in
/// the pillar is met (or not applicable). 0 means not even Level I.
public struct PillarResult: Sendable, Equatable, Codable {
    public var pillar: Pillar
    public var level: Int
    /// Per level 1…4: principles met (or not applicable) and principles in total.
    public var perLevel: [LevelTally]
    public struct LevelTally: Sendable, Equatable, Codable {
        public var level: Int
        public var satisfied: Int
        public var total: Int
    }
}

/// One protected application (route) as the assessment saw it.
public struct RouteAssessment: Sendable, Equatable, Codable {
    public var applicationID: String
    public var displayName: String
    public var host: String
    public var pathPrefix: String
    public var classification: String
    /// High-risk scenario ids the route is tagged with.
    public var scenarios: [String]
    /// Route-level checks of principles (TLS on both legs, DLP, step-up, …).
    public var checks: [RouteCheck]
    public init(applicationID: String, displayName: String, host: String, pathPrefix: String, classification: String,
                scenarios: [String], checks: [RouteCheck]) {
        self.applicationID = applicationID; self.displayName = displayName; self.host = host; self.pathPrefix = pathPrefix
        self.classification = classification; self.scenarios = scenarios; self.checks = checks
    }
}

public struct RouteCheck: Sendable, Equatable, Codable {
    public var principleID: String
    public var holds: Bool
    public var detail: LocalizedText
    public init(principleID: String, holds: Bool, detail: LocalizedText) {
        self.principleID = principleID; self.holds = holds; self.detail = detail
    }
}

/// For one high-risk scenario: the routes tagged with it, and per principle
/// whether it holds for them (the deployment-wide verdict is met and every
/// route check of that principle on those routes holds).
public struct ScenarioView: Sendable, Equatable, Codable {
    public var scenarioID: String
    public var name: LocalizedText
    public var routes: [String]
    public var principles: [ScenarioPrinciple]
    public struct ScenarioPrinciple: Sendable, Equatable, Codable {
        public var principleID: String
        public var holds: Bool
        /// Routes of the scenario on which a route check of the principle fails.
        public var failingRoutes: [String]
    }
}

/// A gap, in the order the guideline advises closing them.
public struct RoadmapItem: Sendable, Equatable, Codable {
    public var rank: Int
    public var principleID: String
    public var pillar: Pillar
    public var level: Int
    public var verdict: Verdict
    /// High-risk scenarios whose routes the gap touches.
    public var scenarios: [String]
    public var why: LocalizedText
    public var remedy: LocalizedText?
}

/// What changed since the previous stored assessment.
public struct AssessmentComparison: Sendable, Equatable, Codable {
    public var previousID: String
    public var previousGeneratedAt: Date
    public var overallLevelBefore: Int
    public var pillarLevelsBefore: [String: Int]
    public var changes: [Change]
    public struct Change: Sendable, Equatable, Codable {
        public var principleID: String
        public var before: Verdict
        public var after: Verdict
    }
}

/// A complete assessment: what the reports render and the evidence pack carries.
public struct Assessment: Sendable, Equatable, Codable {
    /// Version of this document's shape (docs/assessment.schema.json).
    public var schemaVersion: Int
    public var id: String
    public var generatedAt: Date
    public var windowStart: Date
    public var windowEnd: Date
    public var organisation: String
    /// Menshen version and store backend that produced it.
    public var producer: String
    public var guideline: LocalizedText
    public var principles: [PrincipleResult]
    public var pillars: [PillarResult]
    /// The minimum of the pillar levels (0: below Level I).
    public var overallLevel: Int
    public var routes: [RouteAssessment]
    public var scenarios: [ScenarioView]
    public var roadmap: [RoadmapItem]
    public var comparison: AssessmentComparison?

    public static let currentSchemaVersion = 1

    public func result(_ principleID: String) -> PrincipleResult? { principles.first { $0.principleID == principleID } }
}
