import Foundation
import Synchronization
import MenshenCedar

/// The decision point: an immutable snapshot of validated policies. Build a
/// new one on every policy change and swap it atomically; a set that does
/// not parse or validate is refused and the previous snapshot stays.
///
/// Fail-closed rules beyond Cedar's own (which skips erroring policies):
/// - if a **forbid** policy errors, the request is denied (`policy_error`),
///   because skipping it would turn a fault into an allow;
/// - a request that cannot be turned into Cedar input is denied (`invalid_request`).
public struct PolicyDecisionPoint: Sendable {
    public let policies: PolicySet
    let index: PolicyIndex
    let actionEntities: [Entity]
    /// Document name and first line of each loaded document, for mapping locations back.
    let documents: [(name: String, firstLine: Int)]
    /// The entity sets of recent principals and applications (see ``EntityCache``).
    let entityCache = EntityCache()
    /// How many entity sets are remembered now (diagnostics and tests).
    public var cachedEntitySets: Int { entityCache.table.count }
    /// Decisions remembered by what they depend on (``DecisionMemo``); nil when the set reads `context` as a whole,
    /// `context.time.now` or a part of the context the memo does not know, or memoizing was turned off.
    let memo: DecisionMemo?
    /// How many decisions are remembered now (diagnostics and tests).
    public var memoizedDecisions: Int { memo?.table.count ?? 0 }
    /// Whether decisions are remembered (see ``DecisionMemo``).
    public var memoizes: Bool { memo != nil }

    /// Parses and validates named Cedar documents against ``MenshenSchema``.
    ///
    /// - Parameter memoizeDecisions: remember decisions keyed by every input the set can read (``DecisionMemo``);
    ///   off only to compare against evaluation in tests.
    public init(documents named: [(name: String, text: String)], memoizeDecisions: Bool = true) throws(PolicyLoadError) {
        let schema: Schema
        switch Schema.parse(cedar: MenshenSchema.text) {
        case .success(let s): schema = s
        case .failure(let e):
            throw PolicyLoadError(problems: [.init(document: "MenshenSchema", line: e.location?.line, column: e.location?.column,
                                                   message: e.message)])
        }
        // Concatenate so policy ids are unique across documents (policy0, policy1, …),
        // remembering where each document starts to report locations in its own terms.
        var text = ""
        var docs: [(String, Int)] = []
        var line = 1
        for (name, body) in named {
            docs.append((name, line))
            text += body
            if !body.hasSuffix("\n") { text += "\n" }
            line += body.split(separator: "\n", omittingEmptySubsequences: false).count - (body.hasSuffix("\n") ? 1 : 0)
        }
        documents = docs
        let set: PolicySet
        do { set = try CedarParser.parsePolicySet(text) } catch {
            throw PolicyLoadError(problems: [Self.problem(error.message, error.location, docs)])
        }
        let result = Validator(schema: schema).validate(set)
        guard result.passed else {
            throw PolicyLoadError(problems: result.errors.map { Self.problem("policy \($0.policyID): \($0.message)", $0.location, docs) })
        }
        let annotationProblems = Self.unknownObligations(in: set).map { Self.problem($0.1, $0.0, docs) }
        guard annotationProblems.isEmpty else { throw PolicyLoadError(problems: annotationProblems) }
        policies = set
        index = PolicyIndex(set)
        actionEntities = schema.actionEntities
        memo = memoizeDecisions ? DecisionMemo.Projection(ContextReads(set)).map(DecisionMemo.init) : nil
    }

    /// `@obligation` and `@alert` annotations that do not parse: a typo there
    /// would silently drop a step-up or an alert, so the set is refused.
    static func unknownObligations(in set: PolicySet) -> [(SourceLocation?, String)] {
        var out: [(SourceLocation?, String)] = []
        for p in set.policies {
            for a in p.annotations where a.key == "obligation" {
                for part in a.value.split(separator: ",", omittingEmptySubsequences: false) {
                    switch Obligation(parsing: part.trimmingCharacters(in: .whitespaces)) {
                    case nil:
                        out.append((a.location ?? p.location, "policy \(displayID(p)): unknown obligation '\(part)' (use read_only or step_up:loa=N;max_age=SECONDS, N 1–4, SECONDS 0–86400)"))
                    case .stepUp(nil, nil):
                        // Nothing to prove: it would never prompt.
                        out.append((a.location ?? p.location, "policy \(displayID(p)): step_up needs loa=N, max_age=SECONDS or both (step_up:loa=3;max_age=900)"))
                    case .readOnly where p.effect == .forbid:
                        // Only the permits that allow a request carry its obligations: on a forbid it would do nothing.
                        out.append((a.location ?? p.location, "policy \(displayID(p)): read_only has no effect on a forbid; put it on the permit that grants the access"))
                    default:
                        break
                    }
                }
            }
            if let alert = p.annotations["alert"], AlertSeverity(rawValue: alert) == nil {
                out.append((p.location, "policy \(displayID(p)): alert must be low, medium or high, not '\(alert)'"))
            }
            // A misspelt key would drop the obligation as silently as a misspelt value: refused too. Other keys
            // (descriptions, owners, @scenario) are free.
            for a in p.annotations where a.key != "obligation" && a.key != "alert" {
                if let meant = nearMiss(a.key) {
                    out.append((a.location ?? p.location, "policy \(displayID(p)): unknown annotation @\(a.key) (did you mean @\(meant)?)"))
                }
            }
        }
        return out
    }

    /// `obligation` or `alert` when `key` looks like a misspelling of it: the same letters in another case, a plural,
    /// or at most two edits away.
    static func nearMiss(_ key: String) -> String? {
        let k = key.lowercased()
        for meant in ["obligation", "alert"] {
            if k == meant || k == meant + "s" || editDistance(k, meant) <= 2 { return meant }
        }
        return nil
    }

    /// Levenshtein distance (annotation keys are short).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count < 64, y.count < 64 else { return Int.max }
        var previous = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var current = [i] + Array(repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where !y.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return x.isEmpty ? y.count : previous[y.count]
    }

    static func problem(_ message: String, _ location: SourceLocation?, _ docs: [(String, Int)]) -> PolicyLoadError.Problem {
        guard let location else { return .init(document: docs.first?.0 ?? "policies", line: nil, column: nil, message: message) }
        let doc = docs.last(where: { $0.1 <= location.line }) ?? (docs.first?.0 ?? "policies", 1)
        return .init(document: doc.0, line: location.line - doc.1 + 1, column: location.column, message: message)
    }

    /// The operator-facing id of a policy: its `@id` annotation, else the Cedar id.
    public static func displayID(_ p: Policy) -> String { p.annotations["id"] ?? p.id }

    // MARK: Deciding

    /// Decides one request. Never throws: every failure is a deny with a reason. A request whose inputs, as far as
    /// the policies can read them, were decided before gets that decision (``DecisionMemo``).
    public func decide(_ request: AccessRequest) -> AccessDecision {
        guard let memo, let key = memo.projection.key(request) else { return evaluate(request) }
        if let known = memo.table[key] { return known }
        let decision = evaluate(request)
        memo.table.remember(decision, for: key)
        return decision
    }

    /// Evaluates one request against the policies.
    func evaluate(_ request: AccessRequest) -> AccessDecision {
        guard let input = CedarInput(request, actions: actionEntities, cache: entityCache) else {
            return AccessDecision(effect: .deny, reasons: [.invalidRequest], determiningPolicies: [], obligations: [], errors: [:])
        }
        let response = Authorizer.isAuthorized(input.request, index: index, entities: input.entities)
        var errors: [String: String] = [:]
        var forbidErrored = false
        for e in response.errors {
            let policy = policies.policy(id: e.policyID)
            errors[policy.map(Self.displayID) ?? e.policyID] = e.error.message
            if policy?.effect == .forbid { forbidErrored = true }
        }
        let determining = response.determiningPolicies
        let ids = determining.map(Self.displayID)
        var alerts = determining.compactMap { $0.annotations["alert"].flatMap(AlertSeverity.init(rawValue:)) }

        if forbidErrored {
            return AccessDecision(effect: .deny, reasons: [.policyError], determiningPolicies: ids,
                                  obligations: Self.alertObligation(alerts), errors: errors)
        }
        if response.decision == .allow {
            let obligations = determining.flatMap { Self.obligations(of: $0) }
            if obligations.contains(.readOnly) && request.action != "read" {
                return AccessDecision(effect: .deny, reasons: [.readOnly], determiningPolicies: ids,
                                      obligations: [.readOnly] + Self.alertObligation(alerts), errors: errors)
            }
            return AccessDecision(effect: .allow, reasons: [.permitted], determiningPolicies: ids,
                                  obligations: Self.unique(obligations.filter { if case .stepUp = $0 { false } else { true } })
                                      + Self.alertObligation(alerts),
                                  errors: errors)
        }
        // Denied. Would proving a stronger or fresher factor change that? Ask the
        // policies that name a step-up requirement, then re-decide as if it were met.
        if let stepUp = stepUpRequirement(input: input, request: request) {
            alerts += stepUp.alerts
            return AccessDecision(effect: .stepUp, reasons: [.stepUpRequired], determiningPolicies: stepUp.policies,
                                  obligations: [.stepUp(minimumLoA: stepUp.loa, maxAgeSeconds: stepUp.maxAge)] + Self.alertObligation(alerts),
                                  errors: errors)
        }
        var reasons: [ReasonCode] = determining.isEmpty ? [.noMatchingPermit] : [.forbidden]
        if !errors.isEmpty { reasons.append(.policyError) }
        return AccessDecision(effect: .deny, reasons: reasons, determiningPolicies: ids, obligations: Self.alertObligation(alerts),
                              errors: errors)
    }

    struct StepUp { var loa: Int?; var maxAge: Int?; var policies: [String]; var alerts: [AlertSeverity] }

    /// The weakest step-up that would allow the request. Every policy whose scope matches and that names a step-up
    /// (`@obligation("step_up:…")`, on a permit or a forbid) offers one requirement; they are tried from the lowest
    /// LoA up, each as if it were proven (that LoA, a factor proven just now; the highest covers all of them
    /// together). The first that turns the decision into an allow is asked for: a policy for restricted applications asking for LoA 4
    /// does not make an internal application, whose own policy asks for LoA 2, demand LoA 4. Its `max_age` is the
    /// tightest of the offered requirements at or below that LoA that name one. Nil when no step-up would help.
    func stepUpRequirement(input: CedarInput, request: AccessRequest) -> StepUp? {
        var offered: [(loa: Int?, maxAge: Int?)] = []
        let evaluator = Evaluator(request: input.request, entities: input.entities)
        for ref in index.candidates(for: input.request, entities: input.entities) where (try? evaluator.scopeMatches(ref.policy)) == true {
            for case .stepUp(let l, let a) in Self.obligations(of: ref.policy) where l != nil || a != nil {
                offered.append((l, a))
            }
        }
        guard !offered.isEmpty else { return nil }
        let levels = Set(offered.map { $0.loa ?? 0 }).sorted()
        for level in levels {
            let effective = max(request.session.levelOfAssurance, level)
            guard let allowed = hypotheticalAllow(request, loa: effective) else { continue }
            var maxAge = offered.filter { ($0.loa ?? 0) <= level }.compactMap(\.maxAge).min()
            // A fresh factor is what makes the difference (the policy's condition on the factor's age is stricter than
            // any max_age offered, or none was offered): ask for one younger than the session's, or the step-up page
            // would find the stated requirement met, send the user back, and be asked again.
            if hypotheticalAllow(request, loa: effective, factorAge: request.session.factorAgeSeconds) == nil,
               (maxAge ?? Int.max) >= request.session.factorAgeSeconds {
                maxAge = 0
            }
            return StepUp(loa: level == 0 ? nil : level, maxAge: maxAge, policies: allowed.map(Self.displayID),
                          alerts: allowed.compactMap { $0.annotations["alert"].flatMap(AlertSeverity.init(rawValue:)) })
        }
        return nil
    }

    /// The determining policies if the request were allowed with `loa` and a factor proven `factorAge` seconds ago
    /// (default: just now); nil if it would not be.
    func hypotheticalAllow(_ request: AccessRequest, loa: Int, factorAge: Int = 0) -> [Policy]? {
        var proven = request
        proven.session.levelOfAssurance = loa
        proven.session.factorAgeSeconds = factorAge
        guard let hypothetical = CedarInput(proven, actions: actionEntities, cache: entityCache) else { return nil }
        let r = Authorizer.isAuthorized(hypothetical.request, index: index, entities: hypothetical.entities)
        guard r.decision == .allow, !r.errors.contains(where: { policies.policy(id: $0.policyID)?.effect == .forbid }) else { return nil }
        return r.determiningPolicies
    }

    static func alertObligation(_ alerts: [AlertSeverity]) -> [Obligation] {
        alerts.max().map { [.alert($0)] } ?? []
    }

    static func unique(_ xs: [Obligation]) -> [Obligation] {
        var seen = Set<Obligation>()
        return xs.filter { seen.insert($0).inserted }
    }

    /// Obligations of one policy, from `@obligation("read_only")`,
    /// `@obligation("step_up:loa=3;max_age=900")` or a comma-separated list of them.
    public static func obligations(of policy: Policy) -> [Obligation] {
        guard let text = policy.annotations["obligation"] else { return [] }
        return text.split(separator: ",").compactMap { Obligation(parsing: String($0).trimmingCharacters(in: .whitespaces)) }
    }
}

extension Obligation {
    /// The longest `max_age` a step-up may name: the portal's step-up page accepts 0…86,400 s (a day).
    public static let maxStepUpAgeSeconds = 86_400

    /// Parses one obligation; nil for anything unknown (refused at load time by ``PolicyDecisionPoint/unknownObligations(in:)``).
    public init?(parsing text: String) {
        if text == "read_only" { self = .readOnly; return }
        guard text == "step_up" || text.hasPrefix("step_up:") else { return nil }
        var loa: Int?, age: Int?
        for part in text.dropFirst("step_up".count).drop(while: { $0 == ":" }).split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let n = Int(kv[1]), n >= 0 else { return nil }
            switch kv[0] {
            case "loa" where (1...4).contains(n): loa = n
            case "max_age" where n <= Obligation.maxStepUpAgeSeconds: age = n
            default: return nil
            }
        }
        self = .stepUp(minimumLoA: loa, maxAgeSeconds: age)
    }
}

/// The Cedar entities and request for one access request.
struct CedarInput {
    var request: Request
    var entities: Entities

    init?(_ r: AccessRequest, actions: [Entity], cache: EntityCache? = nil) {
        guard let ip = IPAddr(parsing: r.context.sourceIP),
              let (hour, weekday) = LocalTime.hourAndWeekday(r.context.time, zoneIdentifier: r.context.timeZone)
        else { return nil }
        let user = EntityUID(type: Name(basename: "User"), id: r.principal.id)
        let app = EntityUID(type: Name(basename: "Application"), id: r.resource.applicationID)
        let action = EntityUID(type: Name(basename: "Action"), id: r.action)
        let entities: Entities
        if let cache {
            let key = EntityCache.Key(principal: r.principal, resource: r.resource)
            if let known = cache.table[key] {
                entities = known
            } else {
                guard let built = Self.entities(r, actions: actions, user: user, app: app) else { return nil }
                cache.table.remember(built, for: key)
                entities = built
            }
        } else {
            guard let built = Self.entities(r, actions: actions, user: user, app: app) else { return nil }
            entities = built
        }
        let millis = Int64((r.context.time.timeIntervalSince1970 * 1000).rounded())
        let device = r.device
        let context: [String: Value] = [
            "session": .record([
                "loa": .long(Int64(r.session.levelOfAssurance)),
                "amr": .set(Set(r.session.amr.map(Value.string))),
                "factor_age_seconds": .long(Int64(r.session.factorAgeSeconds)),
                "age_seconds": .long(Int64(r.session.ageSeconds)),
            ]),
            "device": device.map(Self.deviceRecord) ?? Self.unknownDevice,
            "time": .record([
                "now": .ext(.datetime(CedarDatetime(epochMilliseconds: millis))),
                "hour": .long(Int64(hour)),
                "weekday": .long(Int64(weekday)),
            ]),
            "network": .record(["ip": .ext(.ipaddr(ip)), "zone": .string(r.context.networkZone), "country": .string(r.context.country)]),
            "request": .record(["method": .string(r.context.method.uppercased()), "path": .string(r.context.path)]),
            "risk": .record(["score": .long(Int64(r.context.riskScore))]),
            "grant": r.context.grantActive ? Self.grantActive : Self.grantInactive,
        ]
        request = Request(principal: user, action: action, resource: app, context: context)
        self.entities = entities
    }

    static func deviceRecord(_ device: AccessRequest.Device?) -> Value {
        .record([
            "known": .bool(device != nil),
            "enrolled": .bool(device?.enrolled ?? false),
            "managed": .bool(device?.managed ?? false),
            "compliant": .bool(device?.compliant ?? false),
            "hardware_bound": .bool(device?.hardwareBound ?? false),
            "external": .bool(device?.external ?? true),
            "posture_age_seconds": .long(Int64(device?.postureAgeSeconds ?? Int(Int32.max))),
            "max_vulnerability_severity": .long(Int64(device?.maxVulnerabilitySeverity ?? 4)),
            "owned_by_principal": .bool(device?.ownedByPrincipal ?? false),
        ])
    }

    /// Built once: most requests come without a device certificate, and grants are on or off.
    static let unknownDevice = deviceRecord(nil)
    static let grantActive = Value.record(["active": .bool(true)])
    static let grantInactive = Value.record(["active": .bool(false)])

    /// The entities of a request: the schema's actions, the principal with its groups and roles, the application.
    /// Nil when they do not form a valid entity set (a duplicate, e.g. a group listed twice).
    static func entities(_ r: AccessRequest, actions: [Entity], user: EntityUID, app: EntityUID) -> Entities? {
        var list: [Entity] = actions
        var parents = Set<EntityUID>()
        for g in r.principal.groups {
            let uid = EntityUID(type: Name(basename: "Group"), id: g)
            parents.insert(uid)
            list.append(Entity(uid: uid))
        }
        for (role, tier) in r.principal.roles {
            let uid = EntityUID(type: Name(basename: "Role"), id: role)
            parents.insert(uid)
            list.append(Entity(uid: uid, attributes: ["tier": .string(tier)]))
        }
        list.append(Entity(uid: user, attributes: ["kind": .string(r.principal.kind), "disabled": .bool(r.principal.disabled)],
                           parents: parents))
        list.append(Entity(uid: app, attributes: ["classification": .string(r.resource.classification),
                                                  "scenario": .string(r.resource.scenario)]))
        return try? Entities(list)
    }
}

/// The entity sets (principal with groups and roles, application, actions) of recent requests, so that
/// a session's next requests do not build the entities and their ancestor closure again. An entity set
/// depends only on the fields in ``Key``, all of which are compared, so a change to any of them (a
/// group removed, a role's tier, the user disabled, the application's classification) is a new key.
/// One cache per ``PolicyDecisionPoint``: a policy or schema change starts with an empty one.
final class EntityCache: Sendable {
    struct Key: Hashable, Sendable {
        let principal: AccessRequest.Principal
        let resource: AccessRequest.Resource
    }

    let table = BoundedTable<Key, Entities>(capacity: 10_000)
}

/// Values remembered by key, at most `capacity` of them: emptied when full (no eviction bookkeeping on the request
/// path; a working set that outgrows it is rebuilt from the requests that follow).
final class BoundedTable<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let capacity: Int
    private let entries = Mutex<[Key: Value]>([:])

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: Key) -> Value? { entries.withLock { $0[key] } }

    func remember(_ value: Value, for key: Key) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[key] = value
        }
    }

    /// Number of remembered values (diagnostics and tests).
    var count: Int { entries.withLock { $0.count } }
}

/// Local hour and ISO 8601 weekday of an instant in a time zone, by arithmetic on the zone's
/// offset at that instant (no `Calendar` per request), and time zones looked up once. The offset is
/// remembered from the instant it was asked for until the zone's next transition, so the time zone
/// database (ICU, behind a lock of its own) is asked again only after a transition or for an
/// earlier instant.
public enum LocalTime {
    private struct Known {
        let zone: TimeZone
        var offset = 0
        var from = Date.distantFuture
        var until = Date.distantPast
    }

    private static let zones = Mutex<[String: Known]>([:])

    /// The time zone with this IANA identifier, cached; nil for an unknown identifier.
    public static func zone(_ identifier: String) -> TimeZone? {
        if let known = zones.withLock({ $0[identifier]?.zone }) { return known }
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        zones.withLock { if $0.count < 1000, $0[identifier] == nil { $0[identifier] = Known(zone: zone) } }
        return zone
    }

    /// Hour 0–23 and weekday 1 = Monday … 7 = Sunday at `time`, local to the zone with this IANA
    /// identifier; nil for an unknown identifier.
    public static func hourAndWeekday(_ time: Date, zoneIdentifier: String) -> (hour: Int, weekday: Int)? {
        let offset: Int? = zones.withLock { z in
            if let k = z[zoneIdentifier], k.from <= time, time < k.until { return k.offset }
            guard let zone = z[zoneIdentifier]?.zone ?? TimeZone(identifier: zoneIdentifier) else { return nil }
            let offset = zone.secondsFromGMT(for: time)
            if z.count < 1000 || z[zoneIdentifier] != nil {
                z[zoneIdentifier] = Known(zone: zone, offset: offset, from: time,
                                          until: zone.nextDaylightSavingTimeTransition(after: time) ?? .distantFuture)
            }
            return offset
        }
        return offset.map { local(Int64(time.timeIntervalSince1970.rounded(.down)) + Int64($0)) }
    }

    /// Hour 0–23 and weekday 1 = Monday … 7 = Sunday, local to `zone`.
    public static func hourAndWeekday(_ time: Date, in zone: TimeZone) -> (hour: Int, weekday: Int) {
        local(Int64(time.timeIntervalSince1970.rounded(.down)) + Int64(zone.secondsFromGMT(for: time)))
    }

    /// Hour and weekday of a count of local seconds since 1970-01-01T00:00 local time.
    static func local(_ seconds: Int64) -> (hour: Int, weekday: Int) {
        let (days, secondOfDay) = floorDivMod(seconds, 86_400)
        // 1970-01-01 was a Thursday (ISO weekday 4).
        let weekday = Int(floorDivMod(days + 3, 7).1) + 1
        return (Int(secondOfDay / 3600), weekday)
    }

    static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
