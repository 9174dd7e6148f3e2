import Dispatch
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
    /// Takes one decision to be written; false when it was not taken (the log is full).
    @discardableResult func record(_ trail: DecisionTrail) -> Bool
    /// Whether access may be granted now. A recorder that fails closed (``DecisionLog`` with
    /// ``DecisionLog/WhenUnwritten/refuse``) says no while its decisions are not being written.
    var admitsAccess: Bool { get }
    /// Whether an access whose decision was not taken (``record(_:)`` false) must be refused.
    var failsClosed: Bool { get }
}

extension DecisionRecorder {
    public var admitsAccess: Bool { true }
    public var failsClosed: Bool { false }
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
/// **When the store does not take the events** (`audit.when_unwritten`): a batch whose write fails is written again
/// at the next flush, before anything newer (later batches wait behind it, merged up to ``batchSize``). At most
/// ``capacity`` decisions wait, counting those being written and those to be written again. With
/// ``WhenUnwritten/refuse`` (the default) a failed batch is kept until the store takes it (or the process stops),
/// and ``admitsAccess`` is false — the gate refuses access — while that bound is reached, or while decisions wait and
/// the store has taken no write for `grace`: the audit fails closed, no access is granted that the log may never
/// hold. With ``WhenUnwritten/admit`` access goes on, a failed batch is dropped after ``maxAttempts`` writes, and
/// decisions over the bound are shed. Either way: a batch the store calls invalid is dropped at once (it can never be
/// written); a batch written again after a failure that the store finds already stored (`conflict`: the failed
/// write had committed, e.g. a connection lost at commit) counts as written; a crash loses the decisions not yet
/// written (at most one flush interval's under normal load); what is dropped is counted (``droppedCount``) and
/// logged as an error.
public final class DecisionLog: DecisionRecorder, Service {
    public static let defaultCapacity = 50_000
    public static let batchSize = 2_000
    /// Writes of one batch before it is dropped, with ``WhenUnwritten/admit``.
    public static let maxAttempts = 3
    public static let defaultGrace: Duration = .seconds(5)

    /// What the gate does while decisions are not being written (`audit.when_unwritten`).
    public enum WhenUnwritten: String, Sendable, CaseIterable {
        /// Access is refused (503) while the log is full or the store has taken no write for the grace period.
        case refuse
        /// Access goes on; decisions over the bound are shed and counted.
        case admit
    }

    /// Most decisions waiting to be written (pending, being written, or to be written again).
    public let capacity: Int
    public let whenUnwritten: WhenUnwritten
    /// How long decisions may wait on a store that takes no write before access is refused (``WhenUnwritten/refuse``).
    public let grace: Duration

    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource
    let logger: Logger
    let flushInterval: Duration
    private let pending = Mutex<(items: [DecisionTrail], dropped: Int)>(([], 0))
    private let written = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    /// Decisions taken and neither written nor dropped yet; only raised under `pending`'s lock.
    private let unwritten = Atomic<Int>(0)
    /// Monotonic nanoseconds of the last write the store took, or of the decision that ended a time with nothing to write.
    private let progressAt = Atomic<UInt64>(0)
    private let graceNanos: UInt64
    /// Batches whose write failed, oldest first: written again before anything newer.
    private let failed = Mutex<[Batch]>([])

    struct Batch: Sendable {
        var events: [NewEvent]
        var decisions: Int
        /// Writes tried (a batch kept behind a failed one was not tried).
        var attempts = 0
    }

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource = SystemRandomSource(),
                logger: Logger = Logger(label: "menshen.decisions"), flushInterval: Duration = .milliseconds(250),
                capacity: Int = DecisionLog.defaultCapacity, whenUnwritten: WhenUnwritten = .refuse,
                grace: Duration = DecisionLog.defaultGrace) {
        self.capacity = max(1, capacity)
        self.store = store; self.clock = clock; self.random = random; self.logger = logger; self.flushInterval = flushInterval
        self.whenUnwritten = whenUnwritten
        self.grace = grace
        graceNanos = Self.nanos(grace)
    }

    static func nanos(_ d: Duration) -> UInt64 {
        let (s, atto) = d.components
        return UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, atto / 1_000_000_000))
    }

    static func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    @discardableResult
    public func record(_ trail: DecisionTrail) -> Bool {
        var t = trail
        // Bounded by size as well as count: whatever a client sends is cut here.
        t.path = Self.cut(t.path, 2048); t.host = Self.cut(t.host, 255); t.method = Self.cut(t.method, 32)
        t.detail = Self.cut(t.detail, 1024)
        return pending.withLock { p in
            let waiting = unwritten.load(ordering: .sequentiallyConsistent)
            if waiting >= capacity {
                p.dropped += 1   // the newest is shed: what is already queued stays in order
                return false
            }
            // The wait for the store starts now if nothing was waiting (stored before the count rises, so a reader
            // that sees this decision waiting also sees when its wait began).
            if waiting == 0 { progressAt.store(Self.monotonicNanos(), ordering: .sequentiallyConsistent) }
            unwritten.add(1, ordering: .sequentiallyConsistent)
            p.items.append(t)
            return true
        }
    }

    /// False, with ``WhenUnwritten/refuse``, while ``capacity`` decisions wait, or while decisions wait and the store
    /// has taken no write for ``grace``. Two atomic loads and a clock read: it runs for every allowed request.
    public var admitsAccess: Bool {
        guard whenUnwritten == .refuse else { return true }
        let waiting = unwritten.load(ordering: .sequentiallyConsistent)
        if waiting == 0 { return true }
        if waiting >= capacity { return false }
        let since = progressAt.load(ordering: .sequentiallyConsistent)
        let now = Self.monotonicNanos()
        return now < since || now - since <= graceNanos
    }

    public var failsClosed: Bool { whenUnwritten == .refuse }

    /// Decisions waiting to be written (not yet taken by a flush).
    public var pendingCount: Int { pending.withLock { $0.items.count } }

    /// Decisions taken and not yet written or dropped: pending, being written, or to be written again.
    public var unwrittenCount: Int { unwritten.load(ordering: .relaxed) }

    /// Decisions not written: shed when the buffer was full, in a batch the store called invalid, refused ``maxAttempts``
    /// times (``WhenUnwritten/admit``), or still refused at shutdown.
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Decisions written to the store so far.
    public var writtenCount: Int { written.load(ordering: .relaxed) }

    /// Writes everything pending now (also called on shutdown); returns when it is written.
    public func flush() async {
        await flush(waitForLastWrite: true)
    }

    /// The write of the previous flush that may still be under way (see ``flush(waitForLastWrite:)``); true when the
    /// chain of writes may go on after it.
    private let writeInFlight = Mutex<Task<Bool, Never>?>(nil)
    /// One flush at a time: two would split the queue and write their parts side by side, out of order.
    private let flushing = FlushLock()

    /// Writes the batches that failed before, then takes everything pending and writes it in batches of
    /// ``batchSize``: batch k+1's events are built while batch k is written (the build is CPU, the write mostly the
    /// store's), each write after the one before it, so the log keeps the decisions' order. A batch is written only
    /// if the chain before it went on; otherwise it joins the batches to be written again, in order. Without
    /// `waitForLastWrite` it returns as soon as its last batch is handed to the store: the caller (the run loop under
    /// load) then builds the next batch while that one is written, and at most one write is ever left behind.
    /// `final` (at shutdown): batches the store does not take are dropped at once. Calls are served one at a time.
    public func flush(waitForLastWrite: Bool, final: Bool = false) async {
        await flushing.lock()
        defer { flushing.unlock() }
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
        // The first new batch is built while the previous flush's last write may still be under way; that write ends
        // before the batches to write again are taken, so a failure of it is among them, ahead of the new ones. Each
        // further batch is built while the one before it is written.
        let chunks = stride(from: 0, to: taken.count, by: Self.batchSize).map { taken[$0..<min($0 + Self.batchSize, taken.count)] }
        let first = chunks.first.map { Batch(events: $0.flatMap(events(for:)), decisions: $0.count) }
        if let inFlight = writeInFlight.withLock({ w in defer { w = nil }; return w }) { _ = await inFlight.value }
        var previous: Task<Bool, Never>?
        var beforeLast: Task<Bool, Never>?
        func write(_ batch: Batch) {
            let prior = previous
            beforeLast = prior
            previous = Task { [self] in
                // Behind a batch kept to be written again nothing newer is written: it waits, in order.
                if let prior, await prior.value == false { return keepForRetry(batch, attempted: false, final: final) }
                do {
                    _ = try await store.appendEvents(batch.events, hasher: EventChain.hasher)
                    wrote(batch)
                    return true
                } catch let error as StoreError where error.code == .conflict && batch.attempts > 0 {
                    // Written again after a failure, and already stored: the failed write had committed.
                    logger.notice("decision events already stored by a write reported as failed", metadata: ["decisions": "\(batch.decisions)"])
                    wrote(batch)
                    return true
                } catch let error as StoreError where error.code == .invalidInput {
                    drop(batch, why: "the event store refused them as invalid: \(error)")
                    return true
                } catch {
                    logger.error("could not write decision events", metadata: [
                        "error": "\(error)", "decisions": "\(batch.decisions)", "attempt": "\(batch.attempts + 1)"])
                    return keepForRetry(batch, attempted: true, final: final)
                }
            }
        }
        for batch in failed.withLock({ f in defer { f.removeAll() }; return f }) { write(batch) }
        if let first { write(first) }
        for chunk in chunks.dropFirst() { write(Batch(events: chunk.flatMap(events(for:)), decisions: chunk.count)) }
        if waitForLastWrite {
            _ = await previous?.value
        } else {
            // Everything but the last batch written: that one is left to be written while the caller goes on.
            _ = await beforeLast?.value
            writeInFlight.withLock { $0 = previous }
        }
    }

    private func wrote(_ batch: Batch) {
        progressAt.store(Self.monotonicNanos(), ordering: .sequentiallyConsistent)
        written.add(batch.decisions, ordering: .relaxed)
        unwritten.subtract(batch.decisions, ordering: .sequentiallyConsistent)
    }

    private func drop(_ batch: Batch, why: String) {
        dropped.add(batch.decisions, ordering: .relaxed)
        unwritten.subtract(batch.decisions, ordering: .sequentiallyConsistent)
        logger.error("decision events dropped: \(why)", metadata: ["decisions": "\(batch.decisions)", "attempts": "\(batch.attempts)"])
    }

    /// A batch not written: kept to be written again at the next flush (a batch not tried is merged into the one not
    /// tried before it, up to ``batchSize``, so a long outage keeps a few large batches rather than one per flush), or
    /// dropped at shutdown or, with ``WhenUnwritten/admit``, after ``maxAttempts`` writes. Always false: the chain
    /// stops here.
    private func keepForRetry(_ batch: Batch, attempted: Bool, final: Bool) -> Bool {
        var b = batch
        if attempted { b.attempts += 1 }
        if final {
            drop(b, why: "the event store did not take them before shutdown")
        } else if whenUnwritten == .admit && b.attempts >= Self.maxAttempts {
            drop(b, why: "the event store did not take them")
        } else {
            failed.withLock { f in
                // Only batches never tried are merged: a tried one may have been stored by a write reported as failed,
                // and is recognised by its own events when written again.
                if b.attempts == 0, let last = f.last, last.attempts == 0, last.decisions + b.decisions <= Self.batchSize {
                    f[f.count - 1].events += b.events
                    f[f.count - 1].decisions += b.decisions
                } else {
                    f.append(b)
                }
            }
        }
        return false
    }

    /// Whether the last flush left batches to be written again.
    var hasFailedBatches: Bool { failed.withLock { !$0.isEmpty } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Under load a full batch is taken at once (waiting out the interval with a backlog would only let
                // the buffer fill and shed decisions), and built while the one before is still being written. After a
                // failed write the interval is waited out, so a store that refuses is not asked again at once.
                let backlog = self.pendingCount >= Self.batchSize && !self.hasFailedBatches
                if !backlog { try? await Task.sleep(for: self.flushInterval) }
                await self.flush(waitForLastWrite: !backlog)
            }
        }
        await flush()
        if hasFailedBatches { await flush(waitForLastWrite: true, final: true) }
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

/// A lock held across suspension points, waiters served in order (``DecisionLog/flush(waitForLastWrite:final:)``).
final class FlushLock: Sendable {
    private let state = Mutex<(held: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s in
                if !s.held { s.held = true; return true }
                s.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    /// Hands the lock to the first waiter, if any.
    func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.held = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
