import Foundation

/// Sigma `level`, and the OCSF `severity_id` a finding gets from it.
public enum SigmaLevel: String, Sendable, CaseIterable, Comparable {
    case informational, low, medium, high, critical

    /// OCSF severity: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
    public var severityID: Int {
        switch self { case .informational: 1; case .low: 2; case .medium: 3; case .high: 4; case .critical: 5 }
    }

    public static func < (l: SigmaLevel, r: SigmaLevel) -> Bool { l.severityID < r.severityID }
}

/// Sigma `status`.
public enum SigmaStatus: String, Sendable, CaseIterable {
    case stable, test, experimental, deprecated, unsupported
}

/// What every rule carries, detection or correlation.
public struct RuleMetadata: Sendable, Equatable {
    /// The file the rule came from (as named by the caller).
    public var file: String
    public var id: String?
    /// The `name` other rules use to refer to this one.
    public var name: String?
    public var title: String
    public var status: SigmaStatus?
    /// `level`; a rule without one is treated as `medium`.
    public var level: SigmaLevel
    public var tags: [String] { didSet { techniques = ATTACK.techniques(fromTags: tags) } }
    public var description: String?
    /// The ATT&CK techniques named in the tags (`attack.t1110.003`), with their tactics: resolved when the
    /// tags are set, not for every finding.
    public private(set) var techniques: [AttackTechnique]

    public init(file: String, id: String?, name: String?, title: String, status: SigmaStatus?, level: SigmaLevel, tags: [String],
                description: String?) {
        self.file = file; self.id = id; self.name = name; self.title = title; self.status = status; self.level = level
        self.tags = tags; self.description = description
        techniques = ATTACK.techniques(fromTags: tags)
    }

    /// How the rule is named in messages: file, title and id.
    public var reference: String { "\(file), rule \"\(title)\"" + (id.map { " (id \($0))" } ?? "") }

    /// `id`, else `name`, else the title: what a finding names as its analytic.
    public var key: String { id ?? name ?? title }
}

/// Sigma `logsource`. `product` must be `menshen`; `category` names the OCSF
/// class the rule reads (see ``LogSourceCatalog``) and restricts it to that
/// class's events.
public struct LogSource: Sendable, Equatable {
    public var product: String
    public var category: String?
    public var service: String?
    /// The OCSF class the category stands for, if a category is given.
    public var classUID: Int?
}

/// The categories rules may name, one per OCSF class our events use.
/// `service` is free text (`identity` for sign-in and account events,
/// `gateway` for access decisions) and does not filter.
public enum LogSourceCatalog {
    public static let product = "menshen"
    public static let categories: [String: Int] = [
        "authentication": 3002,
        "account_change": 3001,
        "authorize_session": 3003,
        "entity_management": 3004,
        "user_access_management": 3005,
        "group_management": 3006,
        "web_resources_activity": 6001,
        "api_activity": 6003,
        "http_activity": 4002,
        "detection_finding": 2004,
        "device_inventory_info": 5001,
    ]
}

/// A Sigma detection rule: search identifiers and a condition over one event.
public struct SigmaDetectionRule: Sendable {
    public var metadata: RuleMetadata
    public var logsource: LogSource
    let searches: [String: Search]
    let condition: SigmaCondition
    /// `searches` in name order, and `condition` over their indices: what ``matches(_:)`` evaluates for
    /// every event without hashing a name or allocating a memo.
    private let searchList: [Search]
    private let compiled: CompiledCondition

    init(metadata: RuleMetadata, logsource: LogSource, searches: [String: Search], condition: SigmaCondition) {
        self.metadata = metadata; self.logsource = logsource; self.searches = searches; self.condition = condition
        let names = searches.keys.sorted()
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() { index[n] = i }
        searchList = names.map { searches[$0]! }
        compiled = CompiledCondition(condition, index: index)
    }

    enum Search: Sendable {
        /// A map: every field matches.
        case all([FieldMatcher])
        /// A list of maps: any one of them matches.
        case any([[FieldMatcher]])

        func matches(_ event: DetectionEvent) -> Bool {
            switch self {
            case .all(let fields): fields.allSatisfy { $0.matches(event) }
            case .any(let maps): maps.contains { $0.allSatisfy { $0.matches(event) } }
            }
        }
    }

    /// ``SigmaCondition`` with identifiers resolved to indices into `searchList` (-1: no such search,
    /// which never matches, as before).
    indirect enum CompiledCondition: Sendable {
        case search(Int)
        case and([CompiledCondition])
        case or([CompiledCondition])
        case not(CompiledCondition)
        case anyOf([Int])
        case allOf([Int])

        init(_ c: SigmaCondition, index: [String: Int]) {
            switch c {
            case .identifier(let n): self = .search(index[n] ?? -1)
            case .and(let parts): self = .and(parts.map { CompiledCondition($0, index: index) })
            case .or(let parts): self = .or(parts.map { CompiledCondition($0, index: index) })
            case .not(let inner): self = .not(CompiledCondition(inner, index: index))
            case .anyOf(let names): self = .anyOf(names.map { index[$0] ?? -1 })
            case .allOf(let names): self = .allOf(names.map { index[$0] ?? -1 })
            }
        }

        func evaluate(_ search: (Int) -> Bool) -> Bool {
            switch self {
            case .search(let i): search(i)
            case .and(let parts): parts.allSatisfy { $0.evaluate(search) }
            case .or(let parts): parts.contains { $0.evaluate(search) }
            case .not(let inner): !inner.evaluate(search)
            case .anyOf(let ids): ids.contains(where: search)
            case .allOf(let ids): ids.allSatisfy(search)
            }
        }
    }

    /// Whether the event satisfies the rule (its log source class and its condition). Each search is
    /// evaluated at most once per event (remembered in two bit sets; a rule with more than 64 searches
    /// evaluates the ones past the 64th each time they are named).
    public func matches(_ event: DetectionEvent) -> Bool {
        if let cls = logsource.classUID, event.classUID != cls { return false }
        var known: UInt64 = 0, value: UInt64 = 0
        return compiled.evaluate { i in
            guard i >= 0 else { return false }
            guard i < 64 else { return searchList[i].matches(event) }
            let bit: UInt64 = 1 << UInt64(i)
            if known & bit != 0 { return value & bit != 0 }
            let result = searchList[i].matches(event)
            known |= bit
            if result { value |= bit }
            return result
        }
    }
}

/// A Sigma correlation rule over the matches of detection rules.
public struct SigmaCorrelationRule: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Matches counted per group within the timespan.
        case eventCount = "event_count"
        /// Distinct values of `condition.field` counted per group within the timespan.
        case valueCount = "value_count"
        /// Every referenced rule matched for the same group within the timespan.
        case temporal
        /// As `temporal`, in the order the rules are listed.
        case temporalOrdered = "temporal_ordered"
    }

    /// `condition` of a count correlation: `gt|gte|lt|lte|eq|neq: N`.
    public struct Threshold: Sendable, Equatable {
        public enum Operator: String, Sendable, CaseIterable { case gt, gte, lt, lte, eq, neq }
        public var op: Operator
        public var value: Int

        public func holds(_ n: Int) -> Bool {
            switch op {
            case .gt: n > value
            case .gte: n >= value
            case .lt: n < value
            case .lte: n <= value
            case .eq: n == value
            case .neq: n != value
            }
        }

        /// Whether the threshold can be decided while the window is still open
        /// (a count that only grows crosses `gt`/`gte` once; the others need the window closed).
        var decidableEarly: Bool { op == .gt || op == .gte }
    }

    public var metadata: RuleMetadata
    public var kind: Kind
    /// The referenced rules, as written (names or ids).
    public var rules: [String]
    /// The `group-by` fields or alias names.
    public var groupBy: [String]
    /// `aliases`: alias name → (rule name or id → field in that rule's events).
    public var aliases: [String: [String: FieldPath]]
    public var timespan: TimeInterval
    public var threshold: Threshold?
    /// `condition.field` of a `value_count`.
    public var valueField: FieldPath?
    /// `generate`: whether the referenced rules also produce findings of their own.
    public var generate: Bool
}
