import Foundation
import MenshenCore

/// A loaded, checked set of Sigma rules. Built only by ``load(files:)``, which
/// either returns a complete set or throws: a caller that keeps its current
/// set until a new one loads never runs half a set.
public struct SigmaRuleSet: Sendable {
    public private(set) var detections: [SigmaDetectionRule]
    public private(set) var correlations: [SigmaCorrelationRule]
    /// For each correlation, the indices into ``detections`` of the rules it references (in its order).
    let references: [[Int]]
    /// Detection rules whose own matches become findings (not consumed by a correlation with `generate: false`).
    let generating: Set<Int>

    /// An empty set.
    public init() {
        detections = []; correlations = []; references = []; generating = []
    }

    /// Loads rule files (each may hold several YAML documents separated by `---`).
    /// Throws the first problem with its file, rule title or id, and what is wrong;
    /// nothing is returned in that case.
    public static func load(files: [(name: String, text: String)]) throws(VisibilityError) -> SigmaRuleSet {
        var detections: [SigmaDetectionRule] = []
        var correlations: [SigmaCorrelationRule] = []
        var total = 0
        for file in files {
            let documents = try RuleNode.documents(in: file.text, file: file.name)
            guard !documents.isEmpty else { throw VisibilityError(.invalidRule, "\(file.name): no rule in the file") }
            for (n, doc) in documents.enumerated() {
                total += 1
                guard total <= RuleLimits.maxRules else {
                    throw VisibilityError(.limitExceeded, "\(file.name): more than \(RuleLimits.maxRules) rules in the set")
                }
                let place = documents.count > 1 ? "\(file.name), document \(n + 1)" : file.name
                guard case .map = doc else { throw VisibilityError(.invalidRule, "\(place): a rule must be a map, not \(doc.kind)") }
                if doc["action"] != nil {
                    throw VisibilityError(.invalidRule, "\(place): 'action' documents (global, reset, repeat) are not supported")
                }
                let meta = try RuleParser.metadata(doc, file: file.name, place: place)
                if doc["correlation"] != nil {
                    guard doc["detection"] == nil else {
                        throw VisibilityError(.invalidRule, "\(meta.reference): has both 'detection' and 'correlation'")
                    }
                    correlations.append(try RuleParser.correlation(doc, meta: meta))
                } else {
                    detections.append(try RuleParser.detection(doc, meta: meta))
                }
            }
        }
        // Ids and names are unique across the set; correlations resolve to detection rules.
        var byKey: [String: Int] = [:]
        var seen: [String: String] = [:]
        for (i, d) in detections.enumerated() {
            for key in [d.metadata.id, d.metadata.name].compactMap({ $0 }) {
                if let other = seen[key] {
                    throw VisibilityError(.invalidRule, "\(d.metadata.reference): id or name \"\(key)\" is already used by \(other)")
                }
                seen[key] = d.metadata.reference
                byKey[key] = i
            }
        }
        for c in correlations {
            for key in [c.metadata.id, c.metadata.name].compactMap({ $0 }) {
                if let other = seen[key] {
                    throw VisibilityError(.invalidRule, "\(c.metadata.reference): id or name \"\(key)\" is already used by \(other)")
                }
                seen[key] = c.metadata.reference
            }
        }
        var references: [[Int]] = []
        var consumed: Set<Int> = []
        var generated: Set<Int> = []
        for c in correlations {
            var indices: [Int] = []
            for ref in c.rules {
                guard let i = byKey[ref] else {
                    let isCorrelation = correlations.contains { $0.metadata.id == ref || $0.metadata.name == ref }
                    throw VisibilityError(.invalidRule, "\(c.metadata.reference): correlation.rules: "
                        + (isCorrelation ? "\"\(ref)\" is a correlation; correlations of correlations are not supported"
                                         : "no detection rule has the name or id \"\(ref)\""))
                }
                indices.append(i)
            }
            for (alias, mapping) in c.aliases {
                for ref in mapping.keys where !c.rules.contains(ref) {
                    throw VisibilityError(.invalidRule, "\(c.metadata.reference): correlation.aliases.\(alias): \"\(ref)\" is not one of the correlation's rules")
                }
            }
            references.append(indices)
            if c.generate { generated.formUnion(indices) } else { consumed.formUnion(indices) }
        }
        let generating = Set(detections.indices).subtracting(consumed.subtracting(generated))
        return SigmaRuleSet(detections: detections, correlations: correlations, references: references, generating: generating)
    }

    private init(detections: [SigmaDetectionRule], correlations: [SigmaCorrelationRule], references: [[Int]], generating: Set<Int>) {
        self.detections = detections; self.correlations = correlations; self.references = references; self.generating = generating
    }

    /// Every rule's metadata, detections first.
    public var allMetadata: [RuleMetadata] { detections.map(\.metadata) + correlations.map(\.metadata) }
}

/// Turns ``RuleNode`` documents into rules, checking each key.
enum RuleParser {
    static let modifiers: Set<String> = ["contains", "startswith", "endswith", "all", "re", "i", "m", "s", "cidr",
                                          "gt", "gte", "lt", "lte", "exists", "cased"]

    static func metadata(_ doc: RuleNode, file: String, place: String) throws(VisibilityError) -> RuleMetadata {
        guard let titleNode = doc["title"] else { throw VisibilityError(.invalidRule, "\(place): 'title' is missing") }
        guard case .string(let title) = titleNode, !title.trimmingCharacters(in: .whitespaces).isEmpty, title.count <= 256 else {
            throw VisibilityError(.invalidRule, "\(place): 'title' must be text of 1 to 256 characters")
        }
        var meta = RuleMetadata(file: file, id: nil, name: nil, title: title, status: nil, level: .medium, tags: [], description: nil)
        func text(_ key: String, max: Int = 256) throws(VisibilityError) -> String? {
            guard let node = doc[key] else { return nil }
            guard case .string(let s) = node, !s.isEmpty, s.count <= max else {
                throw VisibilityError(.invalidRule, "\(meta.reference): '\(key)' must be text of 1 to \(max) characters, not \(node.kind)")
            }
            return s
        }
        meta.id = try text("id", max: 128)
        meta.name = try text("name", max: 128)
        meta.description = try text("description", max: 4096)
        if let s = try text("status") {
            guard let status = SigmaStatus(rawValue: s) else {
                throw VisibilityError(.invalidRule, "\(meta.reference): status \"\(s)\" is not one of \(SigmaStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            meta.status = status
        }
        if let s = try text("level") {
            guard let level = SigmaLevel(rawValue: s) else {
                throw VisibilityError(.invalidRule, "\(meta.reference): level \"\(s)\" is not one of \(SigmaLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            meta.level = level
        }
        if let tags = doc["tags"] {
            guard case .list(let items) = tags, items.count <= RuleLimits.maxValues else {
                throw VisibilityError(.invalidRule, "\(meta.reference): 'tags' must be a list of at most \(RuleLimits.maxValues) tags")
            }
            for item in items {
                guard case .string(let tag) = item, tag.count <= 128,
                      let dot = tag.firstIndex(of: "."), dot != tag.startIndex, tag.index(after: dot) != tag.endIndex,
                      !tag.contains(where: { $0.isWhitespace || $0.isUppercase })
                else {
                    throw VisibilityError(.invalidRule, "\(meta.reference): tag \(item.string.map { "\"\($0)\"" } ?? item.kind) must be lower-case 'namespace.name'")
                }
                meta.tags.append(tag)
            }
        }
        return meta
    }

    // MARK: Detection rules

    static func detection(_ doc: RuleNode, meta: RuleMetadata) throws(VisibilityError) -> SigmaDetectionRule {
        let ref = meta.reference
        guard let ls = doc["logsource"] else { throw VisibilityError(.invalidRule, "\(ref): 'logsource' is missing") }
        guard case .map(let lsPairs) = ls else { throw VisibilityError(.invalidRule, "\(ref): 'logsource' must be a map") }
        var source = LogSource(product: "", category: nil, service: nil, classUID: nil)
        for (key, value) in lsPairs {
            guard case .string(let s) = value else { throw VisibilityError(.invalidRule, "\(ref): logsource.\(key) must be text") }
            switch key {
            case "product": source.product = s
            case "category": source.category = s
            case "service": source.service = s
            case "definition": break
            default: throw VisibilityError(.invalidRule, "\(ref): logsource.\(key) is not a logsource key (product, category, service, definition)")
            }
        }
        guard source.product == LogSourceCatalog.product else {
            throw VisibilityError(.invalidRule, "\(ref): logsource.product must be \"\(LogSourceCatalog.product)\", not \"\(source.product)\"")
        }
        if let category = source.category {
            guard let cls = LogSourceCatalog.categories[category] else {
                throw VisibilityError(.invalidRule, "\(ref): logsource.category \"\(category)\" is not one of "
                    + LogSourceCatalog.categories.keys.sorted().joined(separator: ", "))
            }
            source.classUID = cls
        }

        guard let det = doc["detection"] else { throw VisibilityError(.invalidRule, "\(ref): 'detection' is missing") }
        guard case .map(let detPairs) = det else { throw VisibilityError(.invalidRule, "\(ref): 'detection' must be a map") }
        var searches: [String: SigmaDetectionRule.Search] = [:]
        var names: [String] = []
        var conditionNode: RuleNode?
        for (key, value) in detPairs {
            if key == "condition" { conditionNode = value; continue }
            if key == "timeframe" { throw VisibilityError(.invalidRule, "\(ref): detection.timeframe is deprecated; use a correlation rule") }
            guard names.count < RuleLimits.maxValues else {
                throw VisibilityError(.invalidRule, "\(ref): more than \(RuleLimits.maxValues) search identifiers")
            }
            guard key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }),
                  !["and", "or", "not", "of", "them", "all", "1"].contains(key) else {
                throw VisibilityError(.invalidRule, "\(ref): \"\(key)\" cannot name a search identifier")
            }
            searches[key] = try search(value, place: "\(ref): detection.\(key)")
            names.append(key)
        }
        guard let conditionNode else { throw VisibilityError(.invalidRule, "\(ref): detection.condition is missing") }
        guard !names.isEmpty else { throw VisibilityError(.invalidRule, "\(ref): detection has no search identifier") }
        var conditions: [SigmaCondition] = []
        let texts: [RuleNode]
        if case .list(let list) = conditionNode { texts = list } else { texts = [conditionNode] }
        guard !texts.isEmpty, texts.count <= 16 else { throw VisibilityError(.invalidRule, "\(ref): detection.condition must hold 1 to 16 conditions") }
        for t in texts {
            guard case .string(let s) = t else { throw VisibilityError(.invalidRule, "\(ref): detection.condition must be text, not \(t.kind)") }
            do throws(VisibilityError) { conditions.append(try SigmaCondition.parse(s, identifiers: names)) } catch {
                throw VisibilityError(.invalidRule, "\(ref): detection.\(error.message)")
            }
        }
        return SigmaDetectionRule(metadata: meta, logsource: source, searches: searches,
                                  condition: conditions.count == 1 ? conditions[0] : .or(conditions))
    }

    static func search(_ node: RuleNode, place: String) throws(VisibilityError) -> SigmaDetectionRule.Search {
        switch node {
        case .map(let pairs):
            return .all(try fields(pairs, place: place))
        case .list(let items):
            guard !items.isEmpty, items.count <= RuleLimits.maxValues else {
                throw VisibilityError(.invalidRule, "\(place): a list of 1 to \(RuleLimits.maxValues) maps")
            }
            var maps: [[FieldMatcher]] = []
            for item in items {
                guard case .map(let pairs) = item else {
                    throw VisibilityError(.invalidRule, "\(place): keyword (full-text) searches are not supported; name a field, e.g. message|contains")
                }
                maps.append(try fields(pairs, place: place))
            }
            return .any(maps)
        default:
            throw VisibilityError(.invalidRule, "\(place): a search identifier must be a map or a list of maps, not \(node.kind)")
        }
    }

    static func fields(_ pairs: [(key: String, value: RuleNode)], place: String) throws(VisibilityError) -> [FieldMatcher] {
        guard !pairs.isEmpty else { throw VisibilityError(.invalidRule, "\(place): an empty map") }
        var out: [FieldMatcher] = []
        for (key, value) in pairs {
            do throws(VisibilityError) { out.append(try field(key, value)) } catch {
                throw VisibilityError(.invalidRule, "\(place).\(key): \(error.message)")
            }
        }
        return out
    }

    static func field(_ key: String, _ value: RuleNode) throws(VisibilityError) -> FieldMatcher {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let path = try FieldPath(parts[0])
        let mods = Array(parts.dropFirst())
        for m in mods where !modifiers.contains(m) {
            throw VisibilityError(.invalidRule, "unknown or unsupported modifier \"\(m)\" (supported: \(modifiers.sorted().joined(separator: ", ")))")
        }
        guard Set(mods).count == mods.count else { throw VisibilityError(.invalidRule, "a modifier is repeated") }
        let kinds = mods.filter { ["contains", "startswith", "endswith", "re", "cidr", "gt", "gte", "lt", "lte", "exists"].contains($0) }
        guard kinds.count <= 1 else { throw VisibilityError(.invalidRule, "modifiers \(kinds.joined(separator: " and ")) cannot be combined") }
        let kind = kinds.first
        let reFlags = mods.filter { ["i", "m", "s"].contains($0) }
        guard reFlags.isEmpty || kind == "re" else { throw VisibilityError(.invalidRule, "i, m and s apply only with re") }
        let cased = mods.contains("cased")
        guard !cased || kind == nil || ["contains", "startswith", "endswith"].contains(kind ?? "") else {
            throw VisibilityError(.invalidRule, "cased applies only to string matching")
        }
        let values: [RuleNode]
        if case .list(let list) = value { values = list } else { values = [value] }
        guard !values.isEmpty, values.count <= RuleLimits.maxValues else {
            throw VisibilityError(.invalidRule, "needs 1 to \(RuleLimits.maxValues) values")
        }
        var patterns: [ValuePattern] = []
        for v in values {
            patterns.append(try pattern(v, kind: kind, cased: cased, reFlags: reFlags))
        }
        return FieldMatcher(field: path, patterns: patterns, requireAll: mods.contains("all"))
    }

    static func pattern(_ v: RuleNode, kind: String?, cased: Bool, reFlags: [String]) throws(VisibilityError) -> ValuePattern {
        func text() throws(VisibilityError) -> String {
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .double(let d): return String(d)
            default: throw VisibilityError(.invalidRule, "\(kind ?? "the value") needs text, not \(v.kind)")
            }
        }
        switch kind {
        case "exists":
            guard case .bool(let b) = v else { throw VisibilityError(.invalidRule, "exists needs true or false") }
            return .exists(b)
        case "gt", "gte", "lt", "lte":
            let bound: Double
            switch v {
            case .int(let i): bound = Double(i)
            case .double(let d): bound = d
            default: throw VisibilityError(.invalidRule, "\(kind ?? "") needs a number, not \(v.kind)")
            }
            return .compare(ValuePattern.Comparison(rawValue: kind ?? "") ?? .gte, bound)
        case "cidr":
            let s = try text()
            guard let net = CIDR(s) else { throw VisibilityError(.invalidRule, "\"\(s)\" is not a CIDR block") }
            return .cidr(net)
        case "re":
            return .regex(try GuardedRegex(try text(), caseInsensitive: reFlags.contains("i"), multiline: reFlags.contains("m"),
                                           dotAll: reFlags.contains("s")))
        case "contains":
            return .wildcard(WildcardPattern(sigma: try text(), cased: cased, prefixAny: true, suffixAny: true))
        case "startswith":
            return .wildcard(WildcardPattern(sigma: try text(), cased: cased, suffixAny: true))
        case "endswith":
            return .wildcard(WildcardPattern(sigma: try text(), cased: cased, prefixAny: true))
        default:
            switch v {
            case .null: return .null
            case .string(let s):
                guard s.count <= 4096 else { throw VisibilityError(.invalidRule, "a value longer than 4096 characters") }
                return .wildcard(WildcardPattern(sigma: s, cased: cased))
            case .int(let i): return .scalar(number: Double(i), text: String(i))
            case .double(let d): return .scalar(number: d, text: String(d))
            case .bool(let b): return .scalar(number: nil, text: b ? "true" : "false")
            case .list, .map: throw VisibilityError(.invalidRule, "a value must be a scalar, not \(v.kind)")
            }
        }
    }

    // MARK: Correlation rules

    static func correlation(_ doc: RuleNode, meta: RuleMetadata) throws(VisibilityError) -> SigmaCorrelationRule {
        let ref = meta.reference
        guard let node = doc["correlation"], case .map(let pairs) = node else {
            throw VisibilityError(.invalidRule, "\(ref): 'correlation' must be a map")
        }
        let known: Set<String> = ["type", "rules", "group-by", "timespan", "condition", "aliases", "generate"]
        for (key, _) in pairs where !known.contains(key) {
            throw VisibilityError(.invalidRule, "\(ref): correlation.\(key) is not a correlation key (\(known.sorted().joined(separator: ", ")))")
        }
        guard let typeNode = node["type"], case .string(let typeText) = typeNode else {
            throw VisibilityError(.invalidRule, "\(ref): correlation.type is missing")
        }
        guard let kind = SigmaCorrelationRule.Kind(rawValue: typeText) else {
            throw VisibilityError(.invalidRule, "\(ref): correlation.type \"\(typeText)\" is not supported (supported: "
                + SigmaCorrelationRule.Kind.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        // rules
        var rules: [String] = []
        switch node["rules"] {
        case .string(let s)?: rules = [s]
        case .list(let items)?:
            for item in items {
                guard case .string(let s) = item, !s.isEmpty else { throw VisibilityError(.invalidRule, "\(ref): correlation.rules must be names or ids") }
                rules.append(s)
            }
        default: throw VisibilityError(.invalidRule, "\(ref): correlation.rules is missing")
        }
        guard !rules.isEmpty, rules.count <= RuleLimits.maxCorrelationRefs, Set(rules).count == rules.count else {
            throw VisibilityError(.invalidRule, "\(ref): correlation.rules must name 1 to \(RuleLimits.maxCorrelationRefs) different rules")
        }
        if kind == .temporal || kind == .temporalOrdered, rules.count < 2 {
            throw VisibilityError(.invalidRule, "\(ref): a \(kind.rawValue) correlation needs at least two rules")
        }
        // aliases
        var aliases: [String: [String: FieldPath]] = [:]
        if let a = node["aliases"] {
            guard case .map(let aliasPairs) = a else { throw VisibilityError(.invalidRule, "\(ref): correlation.aliases must be a map") }
            for (alias, mapping) in aliasPairs {
                guard case .map(let mp) = mapping else { throw VisibilityError(.invalidRule, "\(ref): correlation.aliases.\(alias) must map rules to fields") }
                var fields: [String: FieldPath] = [:]
                for (rule, field) in mp {
                    guard case .string(let f) = field else { throw VisibilityError(.invalidRule, "\(ref): correlation.aliases.\(alias).\(rule) must be a field name") }
                    do throws(VisibilityError) { fields[rule] = try FieldPath(f) } catch { throw VisibilityError(.invalidRule, "\(ref): correlation.aliases.\(alias).\(rule): \(error.message)") }
                }
                aliases[alias] = fields
            }
        }
        // group-by
        var groupBy: [String] = []
        switch node["group-by"] {
        case nil: break
        case .string(let s)?: groupBy = [s]
        case .list(let items)?:
            for item in items {
                guard case .string(let s) = item else { throw VisibilityError(.invalidRule, "\(ref): correlation.group-by must list field names") }
                groupBy.append(s)
            }
        default: throw VisibilityError(.invalidRule, "\(ref): correlation.group-by must list field names")
        }
        guard !groupBy.isEmpty else { throw VisibilityError(.invalidRule, "\(ref): correlation.group-by is missing (a \(kind.rawValue) correlation needs it)") }
        guard groupBy.count <= RuleLimits.maxCorrelationRefs else { throw VisibilityError(.invalidRule, "\(ref): too many group-by fields") }
        for g in groupBy where aliases[g] == nil {
            do throws(VisibilityError) { _ = try FieldPath(g) } catch { throw VisibilityError(.invalidRule, "\(ref): correlation.group-by: \(error.message)") }
        }
        // timespan
        guard let ts = node["timespan"] else { throw VisibilityError(.invalidRule, "\(ref): correlation.timespan is missing") }
        let timespan = try parseTimespan(ts, ref: ref)
        // condition
        var threshold: SigmaCorrelationRule.Threshold?
        var valueField: FieldPath?
        if let c = node["condition"] {
            guard case .map(let cp) = c else { throw VisibilityError(.invalidRule, "\(ref): correlation.condition must be a map") }
            for (key, value) in cp {
                if key == "field" {
                    guard case .string(let f) = value else { throw VisibilityError(.invalidRule, "\(ref): correlation.condition.field must be a field name") }
                    do throws(VisibilityError) { valueField = try FieldPath(f) } catch { throw VisibilityError(.invalidRule, "\(ref): correlation.condition.field: \(error.message)") }
                    continue
                }
                guard let op = SigmaCorrelationRule.Threshold.Operator(rawValue: key) else {
                    throw VisibilityError(.invalidRule, "\(ref): correlation.condition.\(key) is not one of gt, gte, lt, lte, eq, neq, field")
                }
                guard threshold == nil else { throw VisibilityError(.invalidRule, "\(ref): correlation.condition has more than one comparison") }
                guard case .int(let n) = value, n >= 0, n <= 1_000_000 else {
                    throw VisibilityError(.invalidRule, "\(ref): correlation.condition.\(key) needs a whole number from 0 to 1000000")
                }
                threshold = .init(op: op, value: Int(n))
            }
        }
        switch kind {
        case .eventCount:
            guard threshold != nil else { throw VisibilityError(.invalidRule, "\(ref): an event_count correlation needs condition with gt, gte, lt, lte, eq or neq") }
            guard valueField == nil else { throw VisibilityError(.invalidRule, "\(ref): condition.field applies only to value_count") }
        case .valueCount:
            guard threshold != nil else { throw VisibilityError(.invalidRule, "\(ref): a value_count correlation needs condition with gt, gte, lt, lte, eq or neq") }
            guard valueField != nil else { throw VisibilityError(.invalidRule, "\(ref): a value_count correlation needs condition.field") }
        case .temporal, .temporalOrdered:
            guard valueField == nil else { throw VisibilityError(.invalidRule, "\(ref): condition.field applies only to value_count") }
        }
        var generate = false
        if let g = node["generate"] {
            guard case .bool(let b) = g else { throw VisibilityError(.invalidRule, "\(ref): correlation.generate must be true or false") }
            generate = b
        }
        return SigmaCorrelationRule(metadata: meta, kind: kind, rules: rules, groupBy: groupBy, aliases: aliases, timespan: timespan,
                                    threshold: threshold, valueField: valueField, generate: generate)
    }

    /// `30s`, `10m`, `1h`, `7d`, `2w`, from 1 second to ``RuleLimits/maxTimespan``.
    static func parseTimespan(_ node: RuleNode, ref: String) throws(VisibilityError) -> TimeInterval {
        guard case .string(let s) = node, let unit = s.last, let n = Int(s.dropLast()), n > 0 else {
            throw VisibilityError(.invalidRule, "\(ref): correlation.timespan must look like 30s, 10m, 1h, 7d or 2w")
        }
        let seconds: Double
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86_400
        case "w": seconds = 7 * 86_400
        default: throw VisibilityError(.invalidRule, "\(ref): correlation.timespan unit must be s, m, h, d or w")
        }
        let total = Double(n) * seconds
        guard total <= RuleLimits.maxTimespan else {
            throw VisibilityError(.invalidRule, "\(ref): correlation.timespan is longer than \(Int(RuleLimits.maxTimespan / 86_400)) days")
        }
        return total
    }
}

extension SigmaRuleSet {
    /// Every field the rules read: search fields, correlation `group-by`
    /// fields (and their aliases) and `value_count` fields (for ``EventProjection``).
    public var fieldPaths: [FieldPath] {
        var out: [FieldPath] = []
        for rule in detections {
            for search in rule.searches.values {
                switch search {
                case .all(let fields): out.append(contentsOf: fields.map(\.field))
                case .any(let maps): for m in maps { out.append(contentsOf: m.map(\.field)) }
                }
            }
        }
        for c in correlations {
            for g in c.groupBy { if let p = try? FieldPath(g) { out.append(p) } }
            for alias in c.aliases.values { out.append(contentsOf: alias.values) }
            if let v = c.valueField { out.append(v) }
        }
        return out
    }
}
