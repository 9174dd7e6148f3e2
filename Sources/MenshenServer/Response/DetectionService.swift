import Foundation
import Logging
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage
import MenshenVisibility
import ServiceLifecycle

/// Detection and automated response, wired into the running server: follows
/// the event log with ``EventTail``, feeds each event to the
/// ``DetectionEngine`` (the built-in ATT&CK-mapped detections), writes every
/// finding as an OCSF Detection Finding (2004) with its technique and the
/// uids of its evidence events, and carries out the playbooks that match it
/// (``PlaybookState``), each action recorded as an OCSF Remediation Activity
/// (7001; see ``ResponseEvents``). Each finding is filed into a case
/// (``CaseService``: same subject and ATT&CK tactic within the case window),
/// each case change an OCSF Incident Finding (2005).
///
/// - Its own events (marked with ``ResponseEvents/logName``) are skipped, so
///   findings and actions never loop back into detections.
/// - Session revocation, account disabling, device quarantine and logging happen in line, right
///   after the finding is written: the event-to-action latency is the tail's
///   poll interval plus a few store writes. Webhooks go to ``WebhookSender``
///   and never hold detection up.
/// - A batch whose finding or action events cannot be written is still
///   consumed (the engine's windows have moved on; taking the batch again
///   would count its events twice): the failure is logged.
/// - The playbooks file is read again every `reloadInterval`; a change that
///   does not load is refused with its message and the running set stays.
public struct DetectionService: Service {
    let store: any MenshenStore
    let playbooks: PlaybookState
    let clock: any WallClock
    let random: any RandomSource
    let logger: Logger
    let reloadInterval: Duration
    let tail: EventTail
    let webhookBackoff: Duration
    let startAfter: Int64?
    let approvalTimeout: Duration
    let approvalPoll: Duration
    let caseWindow: TimeInterval
    /// The consumer cursor detections keep in the store (``ConsumerCursorStore``).
    public static let cursorName = "detections"
    /// Longest time between two saves of the cursor while events flow (see the follower in ``run()``).
    static let cursorSaveInterval: Duration = .seconds(1)

    /// - Parameters:
    ///   - startAfter: the sequence to read after; nil (the server's choice): after the saved cursor ``cursorName``, or the
    ///     head of the log when none was saved yet.
    ///   - pollInterval: how long the tail waits when the log has nothing new (the bulk of the event-to-action latency).
    public init(store: any MenshenStore, playbooks: PlaybookState, clock: any WallClock, random: any RandomSource = SystemRandomSource(),
                logger: Logger, reloadInterval: Duration, pollInterval: Duration = .milliseconds(100),
                webhookBackoff: Duration = .milliseconds(500), startAfter: Int64? = nil,
                approvalTimeout: Duration = .seconds(3600), approvalPoll: Duration = .seconds(1),
                caseWindow: Duration = .seconds(Int64(CaseService.defaultWindow))) {
        self.caseWindow = TimeInterval(caseWindow.components.seconds)
        self.approvalTimeout = approvalTimeout; self.approvalPoll = approvalPoll
        self.store = store; self.playbooks = playbooks; self.clock = clock; self.random = random; self.logger = logger
        self.reloadInterval = reloadInterval
        self.tail = EventTail(store: store, idleInterval: pollInterval)
        self.webhookBackoff = webhookBackoff
        self.startAfter = startAfter
    }

    public func run() async throws {
        // Where to start: the given sequence, else the saved consumer cursor (so events written while the
        // server was down are still looked at), else the head of the log on the very first start.
        // Correlation windows and baselines start empty after a restart.
        let start: Int64
        if let startAfter {
            start = startAfter
        } else if let saved = try await store.cursor(named: Self.cursorName) {
            start = saved
        } else {
            start = try await store.lastEvent()?.sequence ?? 0
            // Remember the start at once: a stop before the first batch must not move it to a later head.
            try await store.saveCursor(named: Self.cursorName, sequence: start, at: clock.now())
        }
        let store = self.store, clock = self.clock
        let initialEngine = try DetectionEngine.builtIn()
        let responder = Responder(store: store, clock: clock, random: random, logger: logger,
                                  approvalTimeout: TimeInterval(approvalTimeout.components.seconds),
                                  cases: CaseService(store: store, clock: clock, random: random, window: caseWindow))
        let approvalPoll = self.approvalPoll
        let sender = WebhookSender(logger: logger, initialBackoff: webhookBackoff) { ticket, outcome in
            await responder.record(ticket.step, finding: ticket.finding, outcome: outcome)
        }
        var names: [String: [String]] = [:]
        for m in initialEngine.rules.allMetadata + initialEngine.detectors.map(\.metadata) {
            names[m.key] = [m.id, m.name, m.title].compactMap { $0 }
        }
        let ruleNames = names
        logger.info("detections started", metadata: [
            "after_sequence": "\(start)", "rules": "\(names.count)", "playbooks": "\(playbooks.set.playbooks.count)",
            "playbooks_source": "\(playbooks.set.source)"])
        let playbooks = self.playbooks, logger = self.logger, reloadInterval = self.reloadInterval, tail = self.tail
        // The webhooks are delivered outside the group below and closed only once it has ended: a batch carried out whole
        // after a stop (see the follower) still queues its tickets, and each gets its outcome written.
        let delivering = Task { await sender.run() }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Steps held for approval: carry out the approved ones, expire the ones nobody decided in time.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: approvalPoll)
                        if Task.isCancelled { break }
                        await responder.runApprovals(sender: sender)
                    }
                }
                group.addTask {
                    var lastRefusal = ""
                    while !Task.isCancelled {
                        try? await Task.sleep(for: reloadInterval)
                        if Task.isCancelled { break }
                        switch playbooks.reloadIfChanged() {
                        case .unchanged: break
                        case .reloaded(let n):
                            lastRefusal = ""
                            logger.notice("playbooks reloaded", metadata: ["playbooks": "\(n)"])
                        case .refused(let why):
                            if why != lastRefusal {
                                logger.error("playbooks change refused; the running playbooks stay", metadata: ["problem": "\(why)"])
                                lastRefusal = why
                            }
                        }
                    }
                }
                group.addTask {
                    let state = BatchState(engine: initialEngine)
                    // The cursor is saved at most once per `cursorSaveInterval` while events flow (and after any batch with
                    // findings, whose responses must not run twice after a restart, and at the end): each save is a
                    // transaction with an fsync, and a commit that moves the database's generation makes the gateway's next
                    // request read it again. A restart after a crash looks at up to that interval's events again (at least
                    // once, as before).
                    let cursor = CursorSaver(store: store, clock: clock, logger: logger)
                    let saver = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: Self.cursorSaveInterval)
                            if Task.isCancelled { break }
                            await cursor.saveIfBehind()
                        }
                    }
                    await tail.follow(after: start, onError: { error in
                        logger.warning("reading the event log for detections failed; retrying", metadata: ["error": "\(error)"])
                    }) { batch in
                        // A batch is carried out whole even when the service is stopped meanwhile (a shutdown, the lease
                        // moving to another node): in a cancelled task the store's calls fail, and the cursor would pass
                        // findings and playbook steps that were never written or carried out. An unstructured task is not
                        // cancelled with this one; the tail stops after the batch.
                        await Task {
                            await Self.handle(batch, state: state, responder: responder, playbooks: playbooks, ruleNames: ruleNames,
                                              sender: sender, cursor: cursor, store: store, clock: clock, logger: logger)
                        }.value
                    }
                    saver.cancel()
                    await saver.value
                    await cursor.saveIfBehind()
                }
                await group.next()
                group.cancelAll()
            }
        }
        sender.close()
        await delivering.value
    }
}

/// The detection engine and the evidence of recent events, carried from batch to batch. Invariant: used by one batch
/// at a time — each batch's task is awaited before the next one starts — so no two tasks ever touch it at once.
final class BatchState: @unchecked Sendable {
    var engine: DetectionEngine
    var memory = EvidenceMemory()
    init(engine: DetectionEngine) { self.engine = engine }
}

extension DetectionService {
    /// One batch of the log: each event through the engine, the findings written and answered by the playbooks, the
    /// risk they raise stored, and the cursor noted (saved at once after findings).
    static func handle(_ batch: [StoredEvent], state: BatchState, responder: Responder, playbooks: PlaybookState,
                       ruleNames: [String: [String]], sender: WebhookSender, cursor: CursorSaver,
                       store: any MenshenStore, clock: any WallClock, logger: Logger) async {
        var findings: [DetectionFinding] = []
        for stored in batch {
            guard let event = try? DetectionEvent(stored, projection: state.engine.projection) else { continue }   // unreadable: nothing to detect on
            if event["metadata.log_name"]?.stringValue == ResponseEvents.logName { continue }
            state.memory.remember(event)
            findings.append(contentsOf: state.engine.process(event))
        }
        if !findings.isEmpty {
            // The accounts a finding's evidence names (a spray's targets) share its risk, not only the finding's user.
            for f in findings {
                var named: Set<String> = []
                for id in f.evidence { if let u = state.memory.user(of: id), u != f.user { named.insert(u) } }
                for u in named.sorted().prefix(PlaybookLimits.maxTargetUsers) {
                    state.engine.addRisk(user: u, source: f.ruleID, reason: "named in the evidence of \(f.title)",
                                         points: RiskScore.points(for: f.level), time: f.lastTime)
                }
            }
            let raises = await responder.respond(to: findings, playbooks: playbooks.set, ruleNames: ruleNames, memory: state.memory, sender: sender)
            for r in raises {
                if let until = r.until {
                    state.engine.requireStepUp(user: r.user, source: r.source, reason: r.reason, since: r.time, until: until)
                } else {
                    state.engine.addRisk(user: r.user, source: r.source, reason: r.reason, points: Double(r.points), time: r.time)
                }
            }
        }
        await saveRisk(of: state.engine.takeRiskChanges(), engine: state.engine, store: store, clock: clock, logger: logger)
        // Best effort: a cursor that cannot be saved only means this batch is looked at again after a restart.
        if let last = batch.last {
            await cursor.note(last.sequence)
            if !findings.isEmpty { await cursor.saveIfBehind() }
        }
    }
}

extension DetectionService {
    /// Writes the changed users' risk contributions to the store, where every gateway node reads them with the
    /// session's facts (``RiskScoreStore``), merged with what is stored (so contributions from before a restart,
    /// or from another node, stay until they decay). Names that are not existing users (a spray's made-up names)
    /// are skipped. A stored record that does not read is replaced.
    static func saveRisk(of users: [String], engine: DetectionEngine, store: any MenshenStore, clock: any WallClock, logger: Logger) async {
        for name in users where IdentifierSyntax.isValid(name) {
            do {
                let stored = (try? await store.riskScore(of: UserID(name))).flatMap { try? RiskScore.decode($0.contributions) } ?? []
                let text = try RiskScore.encode(RiskScore.merge(stored, engine.riskContributions(for: name), at: clock.now()))
                try await store.saveRiskScore(RiskScoreRecord(userID: UserID(name), contributions: text, updatedAt: clock.now()))
            } catch let error as StoreError where error.code == .notFound {
                continue
            } catch {
                logger.warning("could not save a user's risk score", metadata: ["user": "\(name)", "error": "\(error)"])
            }
        }
    }
}

/// Remembers which user each recent event named, so an action can reach the
/// users in a finding's evidence (bounded: the oldest are forgotten first).
struct EvidenceMemory: Sendable {
    static let capacity = 50_000
    private var users: [String: String] = [:]
    private var order: [String] = []
    private var head = 0

    mutating func remember(_ event: DetectionEvent) {
        guard let user = event.userName, users[event.id] == nil else { return }
        users[event.id] = user
        order.append(event.id)
        if order.count - head > Self.capacity {
            users[order[head]] = nil
            head += 1
            if head > Self.capacity { order.removeFirst(head); head = 0 }
        }
    }

    func user(of eventID: String) -> String? { users[eventID] }
}

/// Writes findings and performs playbook actions (the I/O half of a playbook run).
struct Responder: Sendable {
    let store: any MenshenStore
    let clock: any WallClock
    let random: any RandomSource
    let logger: Logger
    /// How long a step held for approval waits (`response.approval_timeout_seconds`).
    var approvalTimeout: TimeInterval = 3600
    /// Groups each written finding into a case (OCSF 2005 events); nil: no cases.
    var cases: CaseService? = nil

    /// A `raise_risk` step's points for one user; the detection loop adds them to the engine's ledger.
    /// With `until`: a `require_step_up` step's requirement (0 points) from `time` to `until`.
    struct RiskRaise: Sendable {
        var user: String, source: String, reason: String, points: Int, time: Date
        var until: Date? = nil
    }

    /// Writes the findings, carries out the matching playbooks' steps, and returns the risk the
    /// `raise_risk` steps add (the caller owns the engine).
    @discardableResult
    func respond(to findings: [DetectionFinding], playbooks: PlaybookSet, ruleNames: [String: [String]], memory: EvidenceMemory,
                 sender: WebhookSender) async -> [RiskRaise] {
        var raises: [RiskRaise] = []
        var written: [(DetectionFinding, UUID)] = []
        var findingEvents: [NewEvent] = []
        for f in findings {
            do {
                let id = random.uuid()
                findingEvents.append(try ResponseEvents.finding(f, id: id, writtenAt: clock.now()))
                written.append((f, id))
            } catch {
                logger.error("a finding could not be encoded", metadata: ["rule": "\(f.ruleID)", "error": "\(error)"])
            }
        }
        let findingsWritten = await append(findingEvents, what: "findings")
        var actionEvents: [NewEvent] = []
        for (f, eventID) in written {
            for step in playbooks.plan(for: f, ruleNames: ruleNames[f.ruleID] ?? []) {
                let outcome: ResponseEvents.Outcome
                if step.needsApproval && !step.dryRun {
                    outcome = await hold(step, finding: f, findingEventID: eventID, memory: memory)
                    if let e = try? ResponseEvents.action(step, finding: f, outcome: outcome, id: random.uuid(), at: clock.now()) {
                        actionEvents.append(e)
                    }
                    continue
                }
                if step.dryRun {
                    // Nothing is done: the event says what the step would have acted on.
                    outcome = await dryRun(step, finding: f, memory: memory)
                    if let e = try? ResponseEvents.action(step, finding: f, outcome: outcome, id: random.uuid(), at: clock.now()) {
                        actionEvents.append(e)
                    }
                    continue
                }
                switch step.action {
                case .requireStepUp(let seconds, let who):
                    let targets = await users(who, finding: f, memory: memory)
                    let now = clock.now(), until = now.addingTimeInterval(TimeInterval(seconds))
                    for u in targets {
                        raises.append(.init(user: u.rawValue, source: "step-up:\(step.playbook)",
                                            reason: "step-up required by playbook \(step.playbook) for \(f.title)", points: 0, time: now, until: until))
                    }
                    outcome = targets.isEmpty ? .init(success: true, detail: "no known user to act on")
                        : .init(success: true, detail: "\(targets.count) user(s) must authenticate again for \(seconds) s",
                                users: targets.map(\.rawValue), facts: ["for_seconds": .number(seconds), "until": .number(Int(StoreCoding.millis(until)))])
                case .revokeSessions(let who):
                    outcome = await revokeSessions(of: await users(who, finding: f, memory: memory), finding: f, playbook: step.playbook)
                case .disableUser(let who):
                    outcome = await disable(await users(who, finding: f, memory: memory), finding: f, playbook: step.playbook)
                case .quarantineDevice:
                    outcome = await quarantine(device: f.device, finding: f, playbook: step.playbook)
                case .raiseRisk(let points, let who):
                    let targets = await users(who, finding: f, memory: memory)
                    for u in targets {
                        raises.append(.init(user: u.rawValue, source: "playbook:\(step.playbook)",
                                            reason: "raised by playbook \(step.playbook) for \(f.title)", points: points, time: clock.now()))
                    }
                    outcome = targets.isEmpty ? .init(success: true, detail: "no known user to act on")
                        : .init(success: true, detail: "risk of \(targets.count) user(s) raised by \(points) point(s)",
                                users: targets.map(\.rawValue), facts: ["points": .number(points)])
                case .log:
                    logger.notice("detection finding", metadata: [
                        "playbook": "\(step.playbook)", "rule": "\(f.ruleID)", "title": "\(f.title)", "severity": "\(f.level.rawValue)",
                        "techniques": "\(f.techniques.map(\.uid).joined(separator: ","))", "user": "\(f.user ?? "-")",
                        "source_ip": "\(f.sourceIP ?? "-")", "finding": "\(f.uid)", "message": "\(f.message)"])
                    outcome = .init(success: true, detail: "finding written to the server log")
                case .webhook(let target):
                    do {
                        let body = try ResponseEvents.ticket(f, playbook: step.playbook, findingEventID: eventID)
                        await sender.enqueue(.init(target: target, body: body, step: step, finding: f))
                        continue   // its audit event is written when the delivery ends
                    } catch {
                        outcome = .init(success: false, detail: "the ticket could not be encoded: \(error)")
                    }
                }
                if let e = try? ResponseEvents.action(step, finding: f, outcome: outcome, id: random.uuid(), at: clock.now()) {
                    actionEvents.append(e)
                }
            }
        }
        await append(actionEvents, what: "playbook actions")
        if findingsWritten, let cases {
            // Each finding joins its case (or opens one) once the actions ran (containment first); a failure loses the grouping, never the finding.
            var caseEvents: [NewEvent] = []
            for (f, _) in written {
                do {
                    if let (_, event) = try await cases.file(f) { caseEvents.append(event) }
                } catch {
                    logger.error("a finding could not be filed into a case", metadata: ["finding": "\(f.uid)", "error": "\(error)"])
                }
            }
            await append(caseEvents, what: "case changes")
        }
        return raises
    }

    /// What a step of a dry-run playbook would do, without doing it.
    private func dryRun(_ step: PlaybookStep, finding f: DetectionFinding, memory: EvidenceMemory) async -> ResponseEvents.Outcome {
        func on(_ who: PlaybookAction.Users, _ what: String) async -> ResponseEvents.Outcome {
            let targets = await users(who, finding: f, memory: memory)
            return .init(success: true, detail: "dry run: would \(what) for \(targets.count) user(s); nothing was done",
                         users: targets.map(\.rawValue), facts: ["dry_run": true])
        }
        switch step.action {
        case .revokeSessions(let who): return await on(who, "revoke the sessions")
        case .disableUser(let who): return await on(who, "disable the account")
        case .raiseRisk(let points, let who): return await on(who, "raise the risk score by \(points)")
        case .requireStepUp(let seconds, let who): return await on(who, "require a step-up for \(seconds) s")
        case .quarantineDevice:
            guard let id = f.device else {
                return .init(success: true, detail: "dry run: the finding names no device, so the step would be skipped; nothing was done",
                             facts: ["dry_run": true])
            }
            var owner: [String] = []
            let what: String
            do {
                let d = try await DeviceLifecycle(store: store, clock: clock, random: random).device(id)
                owner = d.ownerID.map { [$0.rawValue] } ?? []
                what = switch d.state {
                case .active: "would quarantine device \(id) and end the sessions of its owner \(d.ownerID?.rawValue ?? "(none)")"
                case .quarantined: "device \(id) is already quarantined, so the step would change nothing"
                case .retired: "device \(id) is retired, so the step would fail"
                }
            } catch let error as StoreError where error.code == .notFound || error.code == .invalidInput {
                what = "would quarantine device \(id), which is not in the inventory, so the step would fail"
            } catch {
                what = "would quarantine device \(id) (it could not be read: \(error))"
            }
            return .init(success: true, detail: "dry run: \(what); nothing was done", users: owner,
                         facts: ["dry_run": true, "device": .string(String(id.prefix(128)))])
        case .webhook(let target):
            return .init(success: true, detail: "dry run: would post a ticket to \(target.host); nothing was sent",
                         facts: ["dry_run": true, "host": .string(target.host)])
        case .log:
            return .init(success: true, detail: "dry run: would write the finding to the server log; nothing was written", facts: ["dry_run": true])
        }
    }

    /// Records the audit event of one action performed elsewhere (a webhook delivery).
    func record(_ step: PlaybookStep, finding: DetectionFinding, outcome: ResponseEvents.Outcome) async {
        guard let e = try? ResponseEvents.action(step, finding: finding, outcome: outcome, id: random.uuid(), at: clock.now()) else { return }
        await append([e], what: "a webhook outcome")
    }

    /// Appends with up to three attempts; false when they all failed (logged).
    @discardableResult
    func append(_ events: [NewEvent], what: String) async -> Bool {
        guard !events.isEmpty else { return true }
        for attempt in 1...3 {
            do {
                _ = try await store.appendEvents(events, hasher: EventChain.hasher)
                return true
            } catch {
                if attempt == 3 {
                    logger.error("writing \(what) to the event log failed", metadata: ["events": "\(events.count)", "error": "\(error)"])
                } else {
                    try? await Task.sleep(for: .milliseconds(100 * attempt))
                }
            }
        }
        return false
    }

    /// The existing users an action acts on.
    func users(_ who: PlaybookAction.Users, finding: DetectionFinding, memory: EvidenceMemory) async -> [UserID] {
        var names: [String] = []
        switch who {
        case .finding: names = finding.user.map { [$0] } ?? []
        case .evidence:
            for id in finding.evidence { if let u = memory.user(of: id), !names.contains(u) { names.append(u) } }
            if names.isEmpty, let u = finding.user { names = [u] }
        }
        var out: [UserID] = []
        for name in names where IdentifierSyntax.isValid(name) && out.count < PlaybookLimits.maxTargetUsers {
            if (try? await store.user(UserID(name))) != nil { out.append(UserID(name)) }
        }
        return out
    }

    func revokeSessions(of users: [UserID], finding: DetectionFinding, playbook: String) async -> ResponseEvents.Outcome {
        guard !users.isEmpty else { return .init(success: true, detail: "no known user to act on", facts: ["sessions_revoked": 0]) }
        var revoked = 0
        var failed: [String] = []
        for u in users {
            do {
                revoked += try await store.revokeSessions(of: u, at: clock.now(), reason: "playbook \(playbook): finding \(finding.uid)")
            } catch {
                failed.append(u.rawValue)
            }
        }
        let detail = failed.isEmpty ? "\(revoked) session(s) of \(users.count) user(s) revoked"
            : "\(revoked) session(s) revoked; failed for \(failed.joined(separator: ", "))"
        return .init(success: failed.isEmpty, detail: detail, users: users.map(\.rawValue), facts: ["sessions_revoked": .number(revoked)])
    }

    /// A `quarantine_device` step's outcome when the finding names no device: skipped (status 99 "Skipped"), nothing done.
    static let noDevice = ResponseEvents.Outcome(success: true, detail: "the finding names no device", facts: ["skipped": true],
                                                 status: (99, "Skipped"))

    /// Quarantines the finding's device as `menshen device quarantine` does (``DeviceLifecycle``, the playbook as actor,
    /// the playbook, finding title and uid as the reason kept on the device). The outcome names the device and its owner:
    /// quarantined (with the owner's sessions ended), already quarantined (nothing changed), or why it failed.
    func quarantine(device id: String?, finding: DetectionFinding, playbook: String) async -> ResponseEvents.Outcome {
        guard let id else { return Self.noDevice }
        let reason = String("playbook \(playbook): \(finding.title) (finding \(finding.uid))".prefix(DeviceLifecycle.maxReasonLength))
        var facts: [String: EventJSON.Value] = ["device": .string(String(id.prefix(128)))]
        do {
            switch try await DeviceLifecycle(store: store, clock: clock, random: random).quarantine(id, reason: reason, by: .playbook(playbook)) {
            case .quarantined(let d, let revoked):
                facts["sessions_revoked"] = .number(revoked)
                return .init(success: true, detail: "device \(id) quarantined; \(revoked) session(s) of its owner \(d.ownerID?.rawValue ?? "(none)") ended",
                             users: d.ownerID.map { [$0.rawValue] } ?? [], facts: facts)
            case .alreadyQuarantined(let d):
                facts["already_quarantined"] = true
                return .init(success: true, detail: "device \(id) was already quarantined; nothing was changed",
                             users: d.ownerID.map { [$0.rawValue] } ?? [], facts: facts)
            }
        } catch let error as StoreError where error.code == .notFound {
            return .init(success: false, detail: "no device \(id.prefix(128)) in the inventory; nothing was done", facts: facts)
        } catch {
            return .init(success: false, detail: "\(error)", facts: facts)
        }
    }

    func disable(_ users: [UserID], finding: DetectionFinding, playbook: String) async -> ResponseEvents.Outcome {
        guard !users.isEmpty else { return .init(success: true, detail: "no known user to act on") }
        var done: [String] = []
        var failed: [String] = []
        var revoked = 0
        for id in users {
            do {
                guard var u = try await store.user(id) else { continue }
                if !u.disabled {
                    u.disabled = true; u.updatedAt = clock.now()
                    try await store.updateUser(u)
                    // The same Account Change (3001, Disable) `menshen user disable` writes, naming the playbook as the actor.
                    try await IdentityEvents(store: store, clock: clock, random: random)
                        .accountChange(.disable, user: id, actor: "playbook \(playbook)", detail: "account disabled for finding \(finding.uid)")
                }
                revoked += try await store.revokeSessions(of: id, at: clock.now(), reason: "playbook \(playbook): account disabled for finding \(finding.uid)")
                done.append(id.rawValue)
            } catch {
                failed.append(id.rawValue)
            }
        }
        let detail = failed.isEmpty ? "\(done.count) account(s) disabled, \(revoked) session(s) ended"
            : "\(done.count) account(s) disabled; failed for \(failed.joined(separator: ", "))"
        return .init(success: failed.isEmpty, detail: detail, users: users.map(\.rawValue), facts: ["sessions_revoked": .number(revoked)])
    }
}

/// The detections cursor: the last sequence looked at, saved by one write at a time, never going back to an older
/// sequence (that would replay findings' responses after a restart).
actor CursorSaver {
    let store: any MenshenStore
    let clock: any WallClock
    let logger: Logger
    private var processed: Int64?
    private var saved: Int64?
    /// The write under way and the sequence it writes. It runs in a task of its own: a caller's cancellation (shutdown)
    /// must not interrupt it — the store refuses or interrupts a cancelled task's write — nor stop a later caller from
    /// waiting for it. Whichever caller sees it finish first records it and clears it (every waiter resumes then, and
    /// one still finding the finished write here would spin on it without letting the actor go).
    private var inFlight: (write: Task<String?, Never>, sequence: Int64)?

    init(store: any MenshenStore, clock: any WallClock, logger: Logger) {
        self.store = store; self.clock = clock; self.logger = logger
    }

    func note(_ sequence: Int64) { processed = max(processed ?? sequence, sequence) }

    /// Returns once the newest sequence looked at when called is saved (waiting for a write under way first), or a write
    /// failed. Best effort: a cursor that cannot be saved only means these events are looked at again after a restart.
    func saveIfBehind() async {
        guard let target = processed else { return }
        while saved.map({ $0 < target }) ?? true {
            let current: (write: Task<String?, Never>, sequence: Int64)
            if let running = inFlight {
                current = running
            } else {
                let newest = processed ?? target   // (never nil once there is a target; it may have grown since)
                let (store, clock) = (self.store, self.clock)
                // The write's error, as text; nil when it was saved.
                current = (Task<String?, Never> {
                    do {
                        try await store.saveCursor(named: DetectionService.cursorName, sequence: newest, at: clock.now())
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }, newest)
                inFlight = current
            }
            let failure = await current.write.value
            if inFlight?.write == current.write {
                inFlight = nil
                if let failure {
                    logger.warning("could not save the detections cursor", metadata: ["sequence": "\(current.sequence)", "error": "\(failure)"])
                } else {
                    saved = max(saved ?? current.sequence, current.sequence)
                }
            }
            if failure != nil { return }
        }
    }
}
