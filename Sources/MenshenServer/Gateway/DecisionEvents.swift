import Foundation
import Logging
import MenshenCore
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenStorage
import ServiceLifecycle
import Synchronization

/// How a decision was asked for.
public enum DecisionMode: Sendable, Equatable, CustomStringConvertible {
    /// A request through the reverse proxy.
    case proxy
    /// A forward-auth call (`nginx`, `traefik`, `envoy`; `untrusted`/`invalid` when refused before deciding).
    case forwardAuth(String)
    /// A periodic or event-driven re-evaluation of a long-lived connection.
    case reevaluation

    public var description: String {
        switch self {
        case .proxy: "proxy"
        case .forwardAuth(let c): "forward-auth:\(c)"
        case .reevaluation: "reevaluation"
        }
    }
}

/// Everything one decision was made from and what came of it: the record
/// the audit trail keeps (the guideline's Advanced stage asks that logs
/// carry the attributes decided on).
public struct DecisionTrail: Sendable {
    public enum Outcome: String, Sendable { case allow, deny, stepUp = "step_up", signIn = "sign_in", noRoute = "no_route", refused, error }

    public var requestID: String
    public var time: Date
    public var mode: DecisionMode
    public var method: String
    public var host: String
    public var path: String
    public var sourceIP: String
    public var outcome: Outcome = .error
    public var detail: String = ""
    public var application: String?
    public var user: String?
    public var sessionHash: String?
    public var policyGeneration: Int?
    public var access: AccessRequest?
    public var decision: AccessDecision?

    public init(requestID: String, time: Date, mode: DecisionMode, method: String, host: String, path: String, sourceIP: String,
                outcome: Outcome = .error, detail: String = "") {
        self.requestID = requestID; self.time = time; self.mode = mode; self.method = method; self.host = host
        self.path = path; self.sourceIP = sourceIP; self.outcome = outcome; self.detail = detail
    }

    /// The highest `@alert` severity among the determining policies, if any.
    public var alert: AlertSeverity? {
        decision?.obligations.compactMap { if case .alert(let s) = $0 { s } else { nil } }.max()
    }
}

/// Receives decisions. Must not block: called on the request path.
public protocol DecisionRecorder: Sendable {
    func record(_ trail: DecisionTrail)
}

/// Turns decisions into OCSF 1.8.0 events and appends them to the
/// tamper-evident event log in batches (one store write per batch, not per
/// request):
///
/// - every decision → Web Resources Activity (6001) with the
///   `security_control` profile: `action_id` 1 Allowed / 2 Denied,
///   `disposition_id`, the application as `web_resources`, `http_request`,
///   `src_endpoint`, `actor.user`/`actor.session`, and in `unmapped.decision`
///   every attribute the decision was made from (LoA, amr, factor age,
///   device, network zone, risk, classification, scenario) with the effect,
///   reasons, determining policies, obligations and policy generation;
/// - a decision whose determining policy carries `@alert` → also a
///   Detection Finding (2004) with that severity, `is_alert`, and the
///   decision's event uid as evidence.
///
/// The buffer is bounded (``capacity`` decisions, each cut to a fixed size):
/// when the store cannot keep up, new decisions are shed, counted
/// (``droppedCount``) and logged as an error, rather than growing without
/// bound or stalling the data path.
public final class DecisionLog: DecisionRecorder, Service {
    public static let defaultCapacity = 50_000
    public static let batchSize = 500
    /// Most decisions waiting to be written.
    public let capacity: Int

    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource
    let logger: Logger
    let flushInterval: Duration
    private let pending = Mutex<(items: [DecisionTrail], dropped: Int)>(([], 0))
    private let written = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource = SystemRandomSource(),
                logger: Logger = Logger(label: "menshen.decisions"), flushInterval: Duration = .milliseconds(250),
                capacity: Int = DecisionLog.defaultCapacity) {
        self.capacity = max(1, capacity)
        self.store = store; self.clock = clock; self.random = random; self.logger = logger; self.flushInterval = flushInterval
    }

    public func record(_ trail: DecisionTrail) {
        var t = trail
        // Bounded by size as well as count: whatever a client sends is cut here.
        t.path = String(t.path.prefix(2048)); t.host = String(t.host.prefix(255)); t.method = String(t.method.prefix(32))
        t.detail = String(t.detail.prefix(1024))
        pending.withLock { p in
            if p.items.count >= capacity {
                p.dropped += 1   // the newest is shed: what is already queued stays in order
                return
            }
            p.items.append(t)
        }
    }

    /// Decisions not written: shed when the buffer was full, or in a batch the store refused.
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Decisions written to the store so far.
    public var writtenCount: Int { written.load(ordering: .relaxed) }

    /// Writes everything pending now (also called on shutdown).
    public func flush() async {
        // Take the whole queue at once (O(1) under the lock), then write it in batches.
        let (taken, shed): ([DecisionTrail], Int) = pending.withLock { p in
            var out: [DecisionTrail] = []
            swap(&out, &p.items)
            defer { p.dropped = 0 }
            return (out, p.dropped)
        }
        if shed > 0 {
            dropped.add(shed, ordering: .relaxed)
            logger.error("decision events dropped: the event store did not keep up", metadata: ["dropped": "\(shed)"])
        }
        var start = 0
        while start < taken.count {
            let batch = taken[start..<min(start + Self.batchSize, taken.count)]
            start += batch.count
            do {
                _ = try await store.appendEvents(batch.flatMap(events(for:)), hasher: EventChain.hasher)
                written.add(batch.count, ordering: .relaxed)
            } catch {
                dropped.add(batch.count, ordering: .relaxed)
                logger.error("could not write decision events; they are lost", metadata: ["error": "\(error)", "decisions": "\(batch.count)"])
            }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.flushInterval)
                await self.flush()
            }
        }
        await flush()
    }

    // MARK: OCSF

    func events(for t: DecisionTrail) -> [NewEvent] {
        let allowed = t.outcome == .allow
        let activity: Int = switch t.method.uppercased() {
        case "GET", "HEAD", "OPTIONS": t.access?.isExport == true ? 7 : 2
        case "POST": 1
        case "PUT", "PATCH": 3
        case "DELETE": 4
        default: 99
        }
        let alert = t.alert
        let severity = alert.map(Self.severityID) ?? (allowed ? 1 : 2)
        let uid = random.uuid()
        let source: JSON = t.sourceIP.isEmpty ? ["name": "unknown"] : ["ip": .string(t.sourceIP)]
        var event: [String: JSON] = [
            "class_uid": 6001, "category_uid": 6, "activity_id": .number(activity), "type_uid": .number(6001 * 100 + activity),
            "severity_id": .number(severity), "time": .int(StoreCoding.millis(t.time)),
            "metadata": Self.metadata(uid: uid, profiles: ["security_control"]),
            "action_id": allowed ? 1 : 2,
            "disposition_id": .number(Self.disposition(t.outcome)),
            "status_id": allowed ? 1 : 2,
            "status_detail": .string(t.detail.isEmpty ? t.outcome.rawValue : "\(t.outcome.rawValue): \(t.detail)"),
            "web_resources": [Self.resource(t)],
            "http_request": ["http_method": .string(String(t.method.prefix(32))), "uid": .string(t.requestID),
                             "url": ["hostname": .string(String(t.host.prefix(255))), "path": .string(String(t.path.prefix(2048)))]],
            "src_endpoint": source,
            "message": .string("\(t.outcome.rawValue) \(t.method) \(t.host)\(t.path)"),
            "unmapped": ["decision": Self.decisionObject(t)],
        ]
        if alert != nil { event["is_alert"] = true }
        if let user = t.user {
            var actor: [String: JSON] = ["user": ["uid": .string(user), "name": .string(user)]]
            if let h = t.sessionHash { actor["session"] = ["uid": .string(String(h.prefix(16)))] }
            event["actor"] = .object(actor)
            event["metadata"] = Self.metadata(uid: uid, profiles: ["security_control", "host"])   // `actor` belongs to the host profile
        }
        var out = [Self.newEvent(.object(event), classUID: 6001, id: uid, time: t.time, user: t.user, severity: severity)]
        if let alert {
            let findingID = random.uuid()
            let policies = t.decision?.determiningPolicies ?? []
            let finding: JSON = [
                "class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200_401,
                "severity_id": .number(Self.severityID(alert)), "time": .int(StoreCoding.millis(t.time)),
                "metadata": Self.metadata(uid: findingID, profiles: []),
                "is_alert": true, "status_id": 1, "status": "New",
                "finding_info": ["uid": .string(findingID.uuidString.lowercased()),
                                 "title": .string("Access alert (\(alert.rawValue)): \(t.user ?? "unknown user") \(t.outcome.rawValue) on \(t.application ?? t.host)"),
                                 "types": ["Access policy alert"], "analytic": ["name": .string(policies.joined(separator: ",")), "type_id": 1, "type": "Rule"],
                                 "related_events": [["uid": .string(uid.uuidString.lowercased()), "type_uid": .number(6001 * 100 + activity)]]],
                "resources": [["uid": .string(t.application ?? ""), "type": "Application"]],
                "evidences": [["src_endpoint": source,
                               "actor": ["user": ["uid": .string(t.user ?? ""), "name": .string(t.user ?? "")]]]],
                "message": .string("@alert(\"\(alert.rawValue)\") on policy \(policies.joined(separator: ", ")): request \(t.requestID)"),
            ]
            out.append(Self.newEvent(finding, classUID: 2004, id: findingID, time: t.time, user: t.user, severity: Self.severityID(alert)))
        }
        return out
    }

    static func severityID(_ a: AlertSeverity) -> Int { switch a { case .low: 2; case .medium: 3; case .high: 4 } }

    static func disposition(_ o: DecisionTrail.Outcome) -> Int {
        switch o {
        case .allow: 1            // Allowed
        case .stepUp, .signIn: 23 // Challenge
        case .deny, .noRoute, .refused: 2   // Blocked
        case .error: 27                    // Error
        }
    }

    typealias JSON = EventJSON.Value

    static func metadata(uid: UUID, profiles: [String]) -> JSON {
        var m: [String: JSON] = ["version": .string(IdentityEvents.ocsfVersion), "uid": .string(uid.uuidString.lowercased()),
                                 "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": .string(IdentityEvents.productVersion)]]
        if !profiles.isEmpty { m["profiles"] = .strings(profiles) }
        return .object(m)
    }

    static func resource(_ t: DecisionTrail) -> JSON {
        var r: [String: JSON] = ["uid": .string(t.application ?? ""), "type": "Application", "name": .string(t.application ?? t.host)]
        if let res = t.access?.resource { r["data"] = ["classification": .string(res.classification), "scenario": .string(res.scenario)] }
        return .object(r)
    }

    static func decisionObject(_ t: DecisionTrail) -> JSON {
        var d: [String: JSON] = ["outcome": .string(t.outcome.rawValue), "mode": .string(t.mode.description), "request_id": .string(t.requestID)]
        if let g = t.policyGeneration { d["policy_generation"] = .number(g) }
        if let decision = t.decision {
            d["effect"] = .string(decision.effect.rawValue)
            d["reasons"] = .strings(decision.reasons.map(\.rawValue))
            d["policies"] = .strings(decision.determiningPolicies)
            d["obligations"] = .strings(decision.obligations.map(\.description))
            if !decision.errors.isEmpty { d["errors"] = .object(decision.errors.mapValues { .string($0) }) }
        }
        if let a = t.access {
            d["principal"] = ["id": .string(a.principal.id), "kind": .string(a.principal.kind), "groups": .strings(a.principal.groups),
                              "roles": .strings(a.principal.roles.keys.sorted())]
            d["session"] = ["loa": .number(a.session.levelOfAssurance), "amr": .strings(a.session.amr),
                            "factor_age_seconds": .number(a.session.factorAgeSeconds), "age_seconds": .number(a.session.ageSeconds)]
            if let dev = a.device {
                d["device"] = ["known": true, "enrolled": .bool(dev.enrolled), "managed": .bool(dev.managed), "compliant": .bool(dev.compliant),
                               "hardware_bound": .bool(dev.hardwareBound), "external": .bool(dev.external),
                               "posture_age_seconds": .number(dev.postureAgeSeconds), "max_vulnerability_severity": .number(dev.maxVulnerabilitySeverity)]
            } else {
                d["device"] = ["known": false]
            }
            d["context"] = ["time_zone": .string(a.context.timeZone), "source_ip": .string(a.context.sourceIP),
                            "network_zone": .string(a.context.networkZone), "country": .string(a.context.country),
                            "risk_score": .number(a.context.riskScore), "grant_active": .bool(a.context.grantActive),
                            "action": .string(a.action)]
            d["resource"] = ["application": .string(a.resource.applicationID), "classification": .string(a.resource.classification),
                             "scenario": .string(a.resource.scenario)]
        }
        return .object(d)
    }

    static func newEvent(_ object: JSON, classUID: Int, id: UUID, time: Date, user: String?, severity: Int) -> NewEvent {
        NewEvent(id: id, time: time, classUID: classUID, severityID: severity,
                 userID: user.map { UserID($0) }, payloadJSON: (try? EventJSON.encode(object)) ?? "{}")
    }
}
