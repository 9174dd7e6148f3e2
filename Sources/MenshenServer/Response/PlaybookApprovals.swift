import Foundation
import Logging
import MenshenCore
import MenshenStorage
import MenshenVisibility

/// A playbook step held for an operator (`approval: required`), as stored in
/// ``PlaybookApprovalRecord/step``: the action with its targets fixed when the
/// finding came (the users it acts on, the ticket it posts, the device it
/// quarantines), and the finding's
/// identity for the audit events. JSON written with `EventJSON` and read back
/// with the bounded event reader; anything else is refused.
struct HeldStep: Sendable {
    var playbook: String
    var action: PlaybookAction
    /// The users the step acts on (ids), fixed when it was held.
    var users: [String]
    /// A webhook step's ticket body.
    var ticket: String?
    /// A `quarantine_device` step's device (the finding's), fixed when it was held.
    var device: String?
    var findingUID: String
    var rule: String
    var title: String
    var level: SigmaLevel

    func encode() throws -> String {
        var a: [String: Any] = ["kind": action.kind]
        switch action {
        case .raiseRisk(let points, _): a["points"] = points
        case .requireStepUp(let seconds, _): a["seconds"] = seconds
        case .webhook(let t): a["url"] = t.url; a["timeout_seconds"] = t.timeoutSeconds; a["retries"] = t.retries
        case .quarantineDevice: a["device"] = device ?? ""
        case .revokeSessions, .disableUser, .log: break
        }
        var o: [String: Any] = ["playbook": playbook, "action": a, "users": users, "finding_uid": findingUID, "rule": rule,
                                "title": title, "level": level.rawValue]
        if let ticket { o["ticket"] = ticket }
        return try EventJSON.encode(o)
    }

    static func decode(_ text: String) throws -> HeldStep {
        struct Bad: Error, CustomStringConvertible { let description: String }
        let v = try EventValue.parse(text)
        guard let playbook = v["playbook"]?.stringValue, let a = v["action"], let kind = a["kind"]?.stringValue,
              case .array(let list)? = v["users"], let findingUID = v["finding_uid"]?.stringValue, let rule = v["rule"]?.stringValue,
              let title = v["title"]?.stringValue, let level = v["level"]?.stringValue.flatMap(SigmaLevel.init(rawValue:))
        else { throw Bad(description: "a held step is not what the detection service writes") }
        let users = list.compactMap(\.stringValue)
        let action: PlaybookAction
        var device: String?
        switch kind {
        case "revoke_sessions": action = .revokeSessions(.finding)
        case "disable_user": action = .disableUser(.finding)
        case "raise_risk":
            guard let p = a["points"]?.intValue, (1...100).contains(p) else { throw Bad(description: "a held raise_risk has no points") }
            action = .raiseRisk(points: Int(p), .finding)
        case "require_step_up":
            guard let sec = a["seconds"]?.intValue, (60...86_400).contains(sec) else { throw Bad(description: "a held require_step_up has no period") }
            action = .requireStepUp(seconds: Int(sec), .finding)
        case "quarantine_device":
            guard let d = a["device"]?.stringValue, !d.isEmpty else { throw Bad(description: "a held quarantine_device names no device") }
            action = .quarantineDevice; device = d
        case "webhook":
            guard let url = a["url"]?.stringValue, let t = a["timeout_seconds"]?.intValue, let r = a["retries"]?.intValue,
                  v["ticket"]?.stringValue != nil else { throw Bad(description: "a held webhook has no target or ticket") }
            action = .webhook(try WebhookTarget(url: url, timeoutSeconds: Int(t), retries: Int(r)))
        default: throw Bad(description: "a held step's action \"\(kind.prefix(40))\" is unknown")
        }
        return HeldStep(playbook: playbook, action: action, users: users, ticket: v["ticket"]?.stringValue,
                        device: device, findingUID: findingUID,
                        rule: rule, title: title, level: level)
    }

    /// A finding carrying what the audit events of the step name (uid, rule, title, level).
    var finding: DetectionFinding {
        var f = DetectionFinding(metadata: RuleMetadata(file: "held", id: rule, name: nil, title: title, status: nil, level: level, tags: [],
                                                        description: nil),
                                 user: users.count == 1 ? users[0] : nil, sourceIP: nil, evidence: [], firstTime: Date(), lastTime: Date(), message: title)
        f.uid = findingUID
        return f
    }
}

extension Responder {
    /// Holds a step for approval: fixes its targets, stores it as pending, and says so (the pending event).
    func hold(_ step: PlaybookStep, finding f: DetectionFinding, findingEventID: UUID, memory: EvidenceMemory) async -> ResponseEvents.Outcome {
        var users: [String] = []
        var ticket: String?
        var device: String?
        var what: String
        switch step.action {
        case .revokeSessions(let who): users = await self.users(who, finding: f, memory: memory).map(\.rawValue); what = "revoke the sessions"
        case .disableUser(let who): users = await self.users(who, finding: f, memory: memory).map(\.rawValue); what = "disable the account"
        case .raiseRisk(let points, let who):
            users = await self.users(who, finding: f, memory: memory).map(\.rawValue); what = "raise the risk score by \(points)"
        case .requireStepUp(let seconds, let who):
            users = await self.users(who, finding: f, memory: memory).map(\.rawValue); what = "require a step-up for \(seconds) s"
        case .quarantineDevice:
            // Nothing to approve: the step would be skipped.
            guard let id = f.device else { return Self.noDevice }
            device = id; what = "quarantine device \(id.prefix(128))"
            if let owner = (try? await DeviceLifecycle(store: store, clock: clock, random: random).device(id))?.ownerID { users = [owner.rawValue] }
        case .webhook(let target):
            ticket = try? ResponseEvents.ticket(f, playbook: step.playbook, findingEventID: findingEventID); what = "post a ticket to \(target.host)"
        case .log: what = "log"
        }
        let run = random.uuid().uuidString.lowercased()
        let now = clock.now(), expires = now.addingTimeInterval(approvalTimeout)
        let held = HeldStep(playbook: step.playbook, action: step.action, users: users, ticket: ticket, device: device, findingUID: f.uid, rule: f.ruleID,
                            title: f.title, level: f.level)
        let who = users.isEmpty ? "" : " for \(users.prefix(10).joined(separator: ", "))\(users.count > 10 ? " and \(users.count - 10) more" : "")"
        let summary = String("\(f.title): would \(what)\(who)".prefix(PlaybookApprovalLimits.maxTextLength))
        do {
            try await store.createApproval(PlaybookApprovalRecord(id: run, playbook: step.playbook, action: step.action.kind, findingUID: f.uid,
                                                                  summary: summary, step: try held.encode(), createdAt: now, expiresAt: expires))
        } catch {
            return .init(success: false, detail: "the step could not be held for approval, so nothing was done: \(error)", users: users)
        }
        return .init(success: true, detail: "waiting for approval (menshen playbook approve \(run)) until \(StoreCoding.millis(expires)) ms; would \(what)",
                     users: users,
                     facts: ["approval": ["run": .string(run), "state": "pending", "expires_at": .number(Int(StoreCoding.millis(expires)))]],
                     status: (99, "Pending approval"))
    }

    /// Carries out approved steps (each claimed once: approved → done) and expires pending ones past their time.
    func runApprovals(sender: WebhookSender) async {
        do {
            for record in try await store.approvals(in: [.approved], limit: 100) {
                guard try await store.transitionApproval(id: record.id, from: .approved, to: .done, by: nil, at: clock.now()) else { continue }
                await carryOut(record, sender: sender)
            }
            let now = clock.now()
            for record in try await store.approvals(in: [.pending], limit: 1000) where record.expiresAt <= now {
                guard try await store.transitionApproval(id: record.id, from: .pending, to: .expired, by: nil, at: now) else { continue }
                let held = try? HeldStep.decode(record.step)
                let step = PlaybookStep(playbook: record.playbook, action: held?.action ?? .log)
                let finding = held?.finding ?? HeldStep(playbook: record.playbook, action: .log, users: [], findingUID: record.findingUID,
                                                        rule: "", title: record.summary, level: .informational).finding
                let outcome = ResponseEvents.Outcome(
                    success: false, detail: "nobody approved the step before \(StoreCoding.millis(record.expiresAt)) ms; it expired and nothing was done",
                    users: held?.users ?? [], facts: ["approval": ["run": .string(record.id), "state": "expired"]])
                if let e = try? ResponseEvents.action(step, finding: finding, outcome: outcome, id: random.uuid(), at: now) {
                    await append([e], what: "an expired approval")
                }
            }
        } catch {
            logger.warning("reading the steps held for approval failed; retrying", metadata: ["error": "\(error)"])
        }
    }

    /// Performs one approved step on the users fixed when it was held, and records it.
    func carryOut(_ record: PlaybookApprovalRecord, sender: WebhookSender) async {
        let approval: EventJSON.Value = ["run": .string(record.id), "state": "approved", "by": .string(record.decidedBy ?? "")]
        guard let held = try? HeldStep.decode(record.step) else {
            logger.error("an approved step cannot be read; nothing was done", metadata: ["run": "\(record.id)"])
            return
        }
        let step = PlaybookStep(playbook: held.playbook, action: held.action)
        let finding = held.finding
        var targets: [UserID] = []
        for name in held.users where IdentifierSyntax.isValid(name) {
            if (try? await store.user(UserID(name))) != nil { targets.append(UserID(name)) }
        }
        var outcome: ResponseEvents.Outcome
        switch held.action {
        case .revokeSessions: outcome = await revokeSessions(of: targets, finding: finding, playbook: held.playbook)
        case .disableUser: outcome = await disable(targets, finding: finding, playbook: held.playbook)
        case .quarantineDevice: outcome = await quarantine(device: held.device, finding: finding, playbook: held.playbook)
        case .raiseRisk(let points, _):
            let now = clock.now()
            outcome = await addStored(targets, .init(source: "playbook:\(held.playbook)", reason: "raised by playbook \(held.playbook) for \(held.title)",
                                                     points: Double(points), time: now),
                                      detail: "risk of \(targets.count) user(s) raised by \(points) point(s)")
        case .requireStepUp(let seconds, _):
            let now = clock.now()
            outcome = await addStored(targets, .init(source: "step-up:\(held.playbook)", reason: "step-up required by playbook \(held.playbook) for \(held.title)",
                                                     points: 0, time: now, until: now.addingTimeInterval(TimeInterval(seconds))),
                                      detail: "\(targets.count) user(s) must authenticate again for \(seconds) s")
        case .webhook(let target):
            // Its event is written when the delivery ends (as for an unheld webhook).
            await sender.enqueue(.init(target: target, body: held.ticket ?? "{}", step: step, finding: finding))
            return
        case .log:
            outcome = .init(success: true, detail: "finding written to the server log")
        }
        outcome.facts["approval"] = approval
        outcome.detail = "approved by \(record.decidedBy ?? "?"): " + outcome.detail
        if let e = try? ResponseEvents.action(step, finding: finding, outcome: outcome, id: random.uuid(), at: clock.now()) {
            await append([e], what: "an approved step")
        }
    }

    /// Adds a contribution to users' stored risk (merged with what is stored; the detection engine's next
    /// write for them merges it in turn).
    private func addStored(_ users: [UserID], _ c: RiskScore.Contribution, detail: String) async -> ResponseEvents.Outcome {
        var failed: [String] = []
        for u in users {
            do {
                let stored = (try? await store.riskScore(of: u)).flatMap { try? RiskScore.decode($0.contributions) } ?? []
                let text = try RiskScore.encode(RiskScore.merge(stored, [c], at: clock.now()))
                try await store.saveRiskScore(RiskScoreRecord(userID: u, contributions: text, updatedAt: clock.now()))
            } catch {
                failed.append(u.rawValue)
            }
        }
        return .init(success: failed.isEmpty, detail: failed.isEmpty ? detail : detail + "; failed for \(failed.joined(separator: ", "))",
                     users: users.map(\.rawValue))
    }
}
