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
    /// The device of the request's client certificate, when it is a known device (``DeviceBinding``): OCSF `device.uid`.
    public var deviceID: String?
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
    public static let batchSize = 2_000
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
        t.path = Self.cut(t.path, 2048); t.host = Self.cut(t.host, 255); t.method = Self.cut(t.method, 32)
        t.detail = Self.cut(t.detail, 1024)
        pending.withLock { p in
            if p.items.count >= capacity {
                p.dropped += 1   // the newest is shed: what is already queued stays in order
                return
            }
            p.items.append(t)
        }
    }

    /// Decisions waiting to be written.
    public var pendingCount: Int { pending.withLock { $0.items.count } }

    /// Decisions not written: shed when the buffer was full, or in a batch the store refused.
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Decisions written to the store so far.
    public var writtenCount: Int { written.load(ordering: .relaxed) }

    /// Writes everything pending now (also called on shutdown); returns when it is written.
    public func flush() async {
        await flush(waitForLastWrite: true)
    }

    /// The write of the previous flush that may still be under way (see ``flush(waitForLastWrite:)``).
    private let writeInFlight = Mutex<Task<Void, Never>?>(nil)

    /// Takes everything pending and writes it in batches of ``batchSize``: batch k+1's events are built while
    /// batch k is written (the build is CPU, the write mostly the store's), each write after the one before it,
    /// so the log keeps the decisions' order. Without `waitForLastWrite` it returns as soon as its last batch is
    /// handed to the store: the caller (the run loop under load) then builds the next batch while that one is
    /// written, and at most one write is ever left behind.
    public func flush(waitForLastWrite: Bool) async {
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
        var previous = writeInFlight.withLock { w in defer { w = nil }; return w }
        var beforeLast: Task<Void, Never>?
        var start = 0
        while start < taken.count {
            let batch = taken[start..<min(start + Self.batchSize, taken.count)]
            start += batch.count
            let events = batch.flatMap(events(for:))
            let prior = previous
            beforeLast = prior
            previous = Task { [self] in
                await prior?.value
                do {
                    _ = try await store.appendEvents(events, hasher: EventChain.hasher)
                    written.add(batch.count, ordering: .relaxed)
                } catch {
                    dropped.add(batch.count, ordering: .relaxed)
                    logger.error("could not write decision events; they are lost", metadata: ["error": "\(error)", "decisions": "\(batch.count)"])
                }
            }
        }
        if waitForLastWrite {
            await previous?.value
        } else {
            // Everything but the last batch written: that one is left to be written while the caller goes on.
            await beforeLast?.value
            writeInFlight.withLock { $0 = previous }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Under load a full batch is taken at once (waiting out the interval with a backlog would only let
                // the buffer fill and shed decisions), and built while the one before is still being written.
                let backlog = self.pendingCount >= Self.batchSize
                if !backlog { try? await Task.sleep(for: self.flushInterval) }
                await self.flush(waitForLastWrite: !backlog)
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
        let uid = random.eventID(at: t.time)
        var out = [NewEvent(id: uid, time: t.time, classUID: 6001, severityID: severity, userID: t.user.map { UserID($0) },
                            payloadJSON: Self.activityJSON(t, uid: uid, activity: activity, severity: severity, alert: alert != nil))]
        if let alert {
            let findingID = random.eventID(at: t.time)
            let source: JSON = t.sourceIP.isEmpty ? ["name": "unknown"] : ["ip": .string(t.sourceIP)]
            let policies = t.decision?.determiningPolicies ?? []
            let finding: JSON = [
                "class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200_401,
                "severity_id": .number(Self.severityID(alert)), "time": .int(StoreCoding.millis(t.time)),
                "metadata": Self.metadata(uid: findingID, profiles: []),
                "is_alert": true, "status_id": 1, "status": "New",
                "finding_info": ["uid": .string(UUIDText.lower(findingID)),
                                 "title": .string("Access alert (\(alert.rawValue)): \(t.user ?? "unknown user") \(t.outcome.rawValue) on \(t.application ?? t.host)"),
                                 "types": ["Access policy alert"], "analytic": ["name": .string(policies.joined(separator: ",")), "type_id": 1, "type": "Rule"],
                                 "related_events": [["uid": .string(UUIDText.lower(uid)), "type_uid": .number(6001 * 100 + activity)]]],
                "resources": [["uid": .string(t.application ?? ""), "type": "Application"]],
                "evidences": [["src_endpoint": source,
                               "actor": ["user": ["uid": .string(t.user ?? ""), "name": .string(t.user ?? "")]]]],
                "message": .string("@alert(\"\(alert.rawValue)\") on policy \(policies.joined(separator: ", ")): request \(t.requestID)"),
            ]
            out.append(Self.newEvent(finding, classUID: 2004, id: findingID, time: t.time, user: t.user, severity: Self.severityID(alert)))
        }
        return out
    }

    /// The Web Resources Activity (6001) event of a decision, written member by member in sorted
    /// key order (``EventJSON/ObjectWriter``): this runs once per request.
    public static func activityJSON(_ t: DecisionTrail, uid: UUID, activity: Int, severity: Int, alert: Bool) -> String {
        let allowed = t.outcome == .allow
        let uidText = UUIDText.lower(uid)
        var w = EventJSON.ObjectWriter()
        w.int("action_id", allowed ? 1 : 2)
        w.int("activity_id", activity)
        if let user = t.user {
            w.object("actor") { a in
                if let h = t.sessionHash { a.object("session") { $0.string("uid", Self.cut(h, 16)) } }
                a.object("user") { $0.string("name", user); $0.string("uid", user) }
            }
        }
        w.int("category_uid", 6)
        w.int("class_uid", 6001)
        if let device = t.deviceID {
            w.object("device") { $0.string("type", "Unknown"); $0.int("type_id", 0); $0.string("uid", String(device.prefix(128))) }
        }
        w.int("disposition_id", disposition(t.outcome))
        w.object("http_request") { r in
            r.string("http_method", cut(t.method, 32))
            r.string("uid", t.requestID)
            r.object("url") { $0.string("hostname", cut(t.host, 255)); $0.string("path", cut(t.path, 2048)) }
        }
        if alert { w.bool("is_alert", true) }
        w.string("message", "\(t.outcome.rawValue) \(t.method) \(t.host)\(t.path)")
        w.object("metadata") { m in
            m.object("product") { p in
                p.string("name", "Menshen"); p.string("vendor_name", "Menshen project"); p.string("version", IdentityEvents.productVersion)
            }
            // `actor` and `device` belong to the host profile.
            m.strings("profiles", t.user == nil && t.deviceID == nil ? ["security_control"] : ["security_control", "host"])
            m.string("uid", uidText)
            m.string("version", IdentityEvents.ocsfVersion)
        }
        w.int("severity_id", severity)
        w.object("src_endpoint") { if t.sourceIP.isEmpty { $0.string("name", "unknown") } else { $0.string("ip", t.sourceIP) } }
        w.string("status_detail", t.detail.isEmpty ? t.outcome.rawValue : "\(t.outcome.rawValue): \(t.detail)")
        w.int("status_id", allowed ? 1 : 2)
        w.int("time", StoreCoding.millis(t.time))
        w.int("type_uid", 6001 * 100 + activity)
        w.object("unmapped") { $0.object("decision") { decisionMembers(t, into: &$0) } }
        w.objects("web_resources", count: 1) { _, r in
            if let res = t.access?.resource {
                r.object("data") { $0.string("classification", res.classification); $0.string("scenario", res.scenario) }
            }
            r.string("name", t.application ?? t.host)
            r.string("type", "Application")
            r.string("uid", t.application ?? "")
        }
        return w.finish()
    }

    /// `unmapped.decision`: every attribute the decision was made from, and its result.
    static func decisionMembers(_ t: DecisionTrail, into d: inout EventJSON.ObjectWriter) {
        let a = t.access
        if let a {
            d.object("context") { c in
                c.string("action", a.action)
                c.string("country", a.context.country)
                c.bool("grant_active", a.context.grantActive)
                c.string("network_zone", a.context.networkZone)
                c.int("risk_score", a.context.riskScore)
                c.string("source_ip", a.context.sourceIP)
                c.string("time_zone", a.context.timeZone)
            }
            d.object("device") { v in
                guard let dev = a.device else { return v.bool("known", false) }
                v.bool("compliant", dev.compliant)
                v.bool("enrolled", dev.enrolled)
                v.bool("external", dev.external)
                v.bool("hardware_bound", dev.hardwareBound)
                v.bool("known", true)
                v.bool("managed", dev.managed)
                v.int("max_vulnerability_severity", dev.maxVulnerabilitySeverity)
                v.bool("owned_by_principal", dev.ownedByPrincipal)
                v.int("posture_age_seconds", dev.postureAgeSeconds)
            }
        }
        if let decision = t.decision {
            d.string("effect", decision.effect.rawValue)
            if !decision.errors.isEmpty {
                d.object("errors") { e in
                    for (policy, message) in decision.errors.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                        e.string(policy, message)
                    }
                }
            }
        }
        d.string("mode", t.mode.description)
        if let decision = t.decision { d.strings("obligations", decision.obligations.map(\.description)) }
        d.string("outcome", t.outcome.rawValue)
        if let decision = t.decision { d.strings("policies", decision.determiningPolicies) }
        if let g = t.policyGeneration { d.int("policy_generation", g) }
        if let a {
            d.object("principal") { p in
                p.strings("groups", a.principal.groups)
                p.string("id", a.principal.id)
                p.string("kind", a.principal.kind)
                p.strings("roles", a.principal.roles.keys.sorted())
            }
        }
        if let decision = t.decision { d.strings("reasons", decision.reasons.map(\.rawValue)) }
        d.string("request_id", t.requestID)
        if let a {
            d.object("resource") { r in
                r.string("application", a.resource.applicationID)
                r.string("classification", a.resource.classification)
                r.string("scenario", a.resource.scenario)
            }
            d.object("session") { s in
                s.int("age_seconds", a.session.ageSeconds)
                s.strings("amr", a.session.amr)
                s.int("factor_age_seconds", a.session.factorAgeSeconds)
                s.int("loa", a.session.levelOfAssurance)
            }
        }
    }

    /// The first `n` characters of `s`. A text of at most `n` UTF-8 bytes has at most `n` characters and is
    /// returned as it is, without walking its grapheme clusters (this runs several times per request).
    static func cut(_ s: String, _ n: Int) -> String {
        s.utf8.count <= n ? s : String(s.prefix(n))
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
        var m: [String: JSON] = ["version": .string(IdentityEvents.ocsfVersion), "uid": .string(UUIDText.lower(uid)),
                                 "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": .string(IdentityEvents.productVersion)]]
        if !profiles.isEmpty { m["profiles"] = .strings(profiles) }
        return .object(m)
    }

    static func newEvent(_ object: JSON, classUID: Int, id: UUID, time: Date, user: String?, severity: Int) -> NewEvent {
        NewEvent(id: id, time: time, classUID: classUID, severityID: severity,
                 userID: user.map { UserID($0) }, payloadJSON: (try? EventJSON.encode(object)) ?? "{}")
    }
}
