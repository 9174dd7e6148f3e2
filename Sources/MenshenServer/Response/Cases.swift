import Foundation
import MenshenCore
import MenshenStorage
import MenshenVisibility

/// Cases (incidents): detection findings grouped for an analyst, and every
/// change to them recorded as an OCSF Incident Finding (2005).
///
/// **Grouping** (``file(_:)``, called by the detection service for each
/// finding it wrote): a finding joins the open case (new, in progress, on
/// hold) with the same *subject* and the same ATT&CK *tactic* whose latest
/// finding is at most `window` (default 24 h, `response.case_window_seconds`)
/// before it; otherwise it opens a new case. The subject is the finding's user,
/// except when the detection correlates by source address only (spraying,
/// stuffing: the user there is just the last name tried), or names no user:
/// then it is the source address, else the rule. The tactic is the first
/// tactic of the first technique (`none` without one). A case full at
/// ``CaseLimits/maxFindings``, resolved or closed takes no more findings.
/// Two nodes may each open a case for one burst; grouping runs in one
/// detection loop per node, so one node never does.
///
/// **Changes** by operators (``assign(id:owner:actor:)``, ``setStatus(id:status:verdict:reopen:actor:)``,
/// ``addNote(id:text:actor:)``) are checked and stored by the ``CaseStore``
/// (one transaction each), then their event is appended to the log; a store
/// refusal changes nothing and writes no event.
public struct CaseService: Sendable {
    public let store: any MenshenStore
    public let clock: any WallClock
    public let random: any RandomSource
    /// How far back an open case's latest finding may be for a new finding to join it.
    public let window: TimeInterval

    public static let defaultWindow: TimeInterval = 86400

    public init(store: any MenshenStore, clock: any WallClock, random: any RandomSource, window: TimeInterval = CaseService.defaultWindow) {
        self.store = store; self.clock = clock; self.random = random; self.window = window
    }

    /// What happened to a case (the event's `unmapped.case.change`).
    public enum Change: String, Sendable {
        case opened, findingAttached = "finding_attached", ownerSet = "owner_set", ownerCleared = "owner_cleared",
             statusChanged = "status_changed", reopened, noteAdded = "note_added", closed

        /// OCSF activity: 1 Create, 3 Close, 2 Update for the rest.
        public var activityID: Int {
            switch self {
            case .opened: 1
            case .closed: 3
            default: 2
            }
        }
    }

    // MARK: Grouping

    /// `user`, `source` or `rule`, and its value (see the type's comment).
    public static func subject(of f: DetectionFinding) -> (kind: String, value: String) {
        let correlatesByUser = f.groupBy.keys.contains { $0.lowercased().contains("user") }
        if let user = f.user, f.groupBy.isEmpty || correlatesByUser { return ("user", clean(user)) }
        if let ip = f.sourceIP { return ("source", clean(ip)) }
        if let user = f.user { return ("user", clean(user)) }
        return ("rule", clean(f.ruleID))
    }

    /// The tactic a finding is grouped under: its first technique's first tactic id, or `none`.
    public static func tactic(of f: DetectionFinding) -> String { f.techniques.first?.tactics.first?.uid ?? "none" }

    /// `user:amy/TA0006`.
    public static func groupKey(of f: DetectionFinding) -> String {
        let s = subject(of: f)
        return "\(s.kind):\(s.value)/\(tactic(of: f))"
    }

    /// Values from events are untrusted: control characters become `?`, and the length is capped so that keys and titles stay in their limits.
    static func clean(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars.prefix(100) { out.unicodeScalars.append(u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) ? "?" : u) }
        return out.trimmingCharacters(in: .whitespaces).isEmpty ? "?" : out
    }

    /// Attaches the finding to its open case or opens one, and returns the case with its event; nil when the
    /// finding was attached already (a replay after a restart).
    public func file(_ f: DetectionFinding) async throws -> (CaseRecord, NewEvent)? {
        let key = Self.groupKey(of: f), now = clock.now()
        if let open = try await store.openCase(groupKey: key, since: f.lastTime.addingTimeInterval(-window)) {
            if open.findingUIDs.contains(f.uid) { return nil }
            do {
                let r = try await store.attachFinding(caseID: open.id, findingUID: f.uid, severityID: f.severityID, findingTime: f.lastTime, at: now)
                return (r, try CaseEvents.event(r, change: .findingAttached, actor: "menshen detections", findingUID: f.uid,
                                                id: random.uuid(), at: now))
            } catch let e as StoreError where e.code == .conflict {
                // Closed meanwhile, or full: a new case below.
            }
        }
        let s = Self.subject(of: f)
        var title = ""
        title.unicodeScalars.append(contentsOf: "\(f.title) — \(s.kind) \(s.value)".unicodeScalars.prefix(CaseLimits.maxTitleLength))
        let r = CaseRecord(id: random.uuid().uuidString.lowercased(), title: title, severityID: f.severityID, groupKey: key,
                           findingUIDs: [f.uid], createdAt: now, lastFindingAt: f.lastTime)
        try await store.createCase(r)
        return (r, try CaseEvents.event(r, change: .opened, actor: "menshen detections", findingUID: f.uid, id: random.uuid(), at: now))
    }

    // MARK: Operators' changes

    /// Sets the owner (nil: unassigned) and writes the event.
    @discardableResult
    public func assign(id: String, owner: String?, actor: String) async throws -> CaseRecord {
        try CaseLimits.validateID(id)
        try AttestationLimits.validateName(actor, "the actor")
        let now = clock.now()
        let r = try await store.assignCase(id: id, owner: owner, at: now)
        try await write(CaseEvents.event(r, change: owner == nil ? .ownerCleared : .ownerSet, actor: actor, id: random.uuid(), at: now))
        return r
    }

    /// Changes the status (closing needs a verdict; a closed case changes only with `reopen`) and writes the event.
    @discardableResult
    public func setStatus(id: String, status: CaseStatus, verdict: CaseVerdict?, reopen: Bool, actor: String) async throws -> CaseRecord {
        try CaseLimits.validateID(id)
        try AttestationLimits.validateName(actor, "the actor")
        let now = clock.now()
        let r = try await store.setCaseStatus(id: id, status: status, verdict: verdict, reopen: reopen, at: now)
        let change: Change = status == .closed ? .closed : reopen ? .reopened : .statusChanged
        try await write(CaseEvents.event(r, change: change, actor: actor, id: random.uuid(), at: now))
        return r
    }

    /// Appends a note (CRLF becomes LF) and writes the event.
    @discardableResult
    public func addNote(id: String, text: String, actor: String) async throws -> CaseRecord {
        try CaseLimits.validateID(id)
        let now = clock.now()
        let note = CaseNote(author: actor, time: now, text: text.replacingOccurrences(of: "\r\n", with: "\n"))
        let r = try await store.addCaseNote(id: id, note: note)
        try await write(CaseEvents.event(r, change: .noteAdded, actor: actor, note: note, id: random.uuid(), at: now))
        return r
    }

    private func write(_ event: NewEvent) async throws {
        _ = try await store.appendEvents([event], hasher: EventChain.hasher)
    }
}

/// The OCSF 1.8.0 Incident Finding (2005) of a case change: activity 1 Create
/// (opened), 2 Update (finding attached, owner, status, note, reopened), 3
/// Close; `type_uid` 200500 + activity. `finding_info_list` holds the uids of
/// the case's Detection Findings (2004), `status_id` and `verdict_id` the
/// case's (same numbers as the store), `assignee` the owner (OCSF requires
/// `assignee` or `assignee_group`: `assignee_group` is always ``queueName``), `desc` the
/// title, `comment` a new note's text; `metadata.correlation_uid` is the case
/// id (every event of one case shares it) and `unmapped.case` says what
/// changed and who changed it. Marked with ``ResponseEvents/logName`` so
/// detections skip it.
public enum CaseEvents {
    /// The `assignee_group` of every case event: the queue cases wait in until someone owns them.
    public static let queueName = "Menshen case queue"

    public static func event(_ r: CaseRecord, change: CaseService.Change, actor: String, findingUID: String? = nil, note: CaseNote? = nil,
                             id: UUID, at time: Date) throws -> NewEvent {
        let activity = change.activityID
        var detail: [String: Any] = ["uid": r.id, "change": change.rawValue, "actor": actor, "group": r.groupKey,
                                     "findings": r.findingUIDs.count, "notes": r.notes.count]
        if let findingUID { detail["finding_uid"] = findingUID }
        var event: [String: Any] = [
            "class_uid": 2005, "category_uid": 2, "activity_id": activity, "type_uid": 200_500 + activity,
            "severity_id": r.severityID, "time": StoreCoding.millis(time),
            "status_id": r.status.rawValue, "status": r.status.caption,
            "finding_info_list": r.findingUIDs.map { ["uid": $0] },
            "desc": r.title,
            "message": message(r, change: change, actor: actor, findingUID: findingUID),
            "metadata": ["version": MenshenVisibility.ocsfVersion, "log_name": ResponseEvents.logName, "correlation_uid": r.id,
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": ResponseEvents.productVersion]],
        ]
        // OCSF requires an assignee or an assignee group: every case is in Menshen's case queue, and owned cases name their owner too.
        event["assignee_group"] = ["name": queueName]
        if let owner = r.owner { event["assignee"] = ["name": owner] }
        if let v = r.verdict { event["verdict_id"] = v.rawValue; event["verdict"] = v.caption }
        if let note {
            event["comment"] = note.text
            detail["note"] = ["author": note.author, "time": StoreCoding.millis(note.time)] as [String: Any]
        }
        event["unmapped"] = ["case": detail]
        return NewEvent(id: id, time: time, classUID: 2005, severityID: r.severityID, userID: nil, payloadJSON: try EventJSON.encode(event))
    }

    static func message(_ r: CaseRecord, change: CaseService.Change, actor: String, findingUID: String?) -> String {
        let what = switch change {
        case .opened: "opened with finding \(findingUID ?? "?")"
        case .findingAttached: "finding \(findingUID ?? "?") attached (\(r.findingUIDs.count) findings)"
        case .ownerSet: "assigned to \(r.owner ?? "?")"
        case .ownerCleared: "unassigned"
        case .statusChanged: "status \(r.status.name)\(r.verdict.map { ", verdict \($0.name)" } ?? "")"
        case .reopened: "reopened as \(r.status.name)"
        case .noteAdded: "note added"
        case .closed: "closed, verdict \(r.verdict?.name ?? "?")"
        }
        return "case \(r.id) \(what) by \(actor): \(r.title)"
    }
}
