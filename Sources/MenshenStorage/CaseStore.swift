import Foundation

/// A case's status, with the OCSF 1.8.0 Incident Finding (2005) `status_id`
/// values as raw values, so the stored number, the event and the command line
/// agree. New, in progress and on hold are open: detections may still add
/// findings. Resolved and closed are not.
public enum CaseStatus: Int, Sendable, CaseIterable, Comparable {
    case new = 1, inProgress = 2, onHold = 3, resolved = 4, closed = 5

    /// The command-line spelling (`in_progress`).
    public var name: String {
        switch self {
        case .new: "new"
        case .inProgress: "in_progress"
        case .onHold: "on_hold"
        case .resolved: "resolved"
        case .closed: "closed"
        }
    }

    /// OCSF's caption (`In Progress`), for the event's `status`.
    public var caption: String {
        switch self {
        case .new: "New"
        case .inProgress: "In Progress"
        case .onHold: "On Hold"
        case .resolved: "Resolved"
        case .closed: "Closed"
        }
    }

    public var isOpen: Bool { self == .new || self == .inProgress || self == .onHold }

    public init?(name: String) {
        guard let s = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    public static func < (l: Self, r: Self) -> Bool { l.rawValue < r.rawValue }
    public static var names: String { allCases.map(\.name).joined(separator: ", ") }
}

/// An analyst's verdict on a case, with the OCSF 1.8.0 `verdict_id` values.
public enum CaseVerdict: Int, Sendable, CaseIterable {
    case falsePositive = 1, truePositive = 2, disregard = 3, suspicious = 4, benign = 5, test = 6, insufficientData = 7,
         securityRisk = 8, managedExternally = 9, duplicate = 10

    /// The command-line spelling (`false_positive`).
    public var name: String {
        switch self {
        case .falsePositive: "false_positive"
        case .truePositive: "true_positive"
        case .disregard: "disregard"
        case .suspicious: "suspicious"
        case .benign: "benign"
        case .test: "test"
        case .insufficientData: "insufficient_data"
        case .securityRisk: "security_risk"
        case .managedExternally: "managed_externally"
        case .duplicate: "duplicate"
        }
    }

    /// OCSF's caption (`False Positive`), for the event's `verdict`.
    public var caption: String {
        switch self {
        case .falsePositive: "False Positive"
        case .truePositive: "True Positive"
        case .disregard: "Disregard"
        case .suspicious: "Suspicious"
        case .benign: "Benign"
        case .test: "Test"
        case .insufficientData: "Insufficient Data"
        case .securityRisk: "Security Risk"
        case .managedExternally: "Managed Externally"
        case .duplicate: "Duplicate"
        }
    }

    public init?(name: String) {
        guard let v = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = v
    }

    public static var names: String { allCases.map(\.name).joined(separator: ", ") }
}

/// One note on a case: who wrote it, when, and what. Notes are appended and
/// never edited or deleted (the SQL backends' triggers refuse it).
public struct CaseNote: Sendable, Equatable {
    public var author: String
    public var time: Date
    public var text: String
    public init(author: String, time: Date, text: String) { self.author = author; self.time = time; self.text = text }
}

/// An incident (a case): detection findings grouped for one analyst to work
/// on, with an owner, a status, append-only notes and, once resolved or
/// closed, a verdict.
public struct CaseRecord: Sendable, Equatable {
    /// A lowercase UUID (1–64 characters of a-z 0-9 -).
    public var id: String
    public var title: String
    public var status: CaseStatus
    /// The highest OCSF `severity_id` of its findings.
    public var severityID: Int
    /// The operator working on it; nil: unassigned.
    public var owner: String?
    /// Set when the case is resolved or closed (and cleared when it is reopened).
    public var verdict: CaseVerdict?
    /// What the detection service groups by (`user:amy/TA0006`, `source:198.51.100.23/TA0006`).
    public var groupKey: String
    /// The uids of its Detection Findings (2004), in the order they were attached.
    public var findingUIDs: [String]
    public var notes: [CaseNote]
    public var createdAt: Date
    public var modifiedAt: Date
    /// The time of its latest finding (the grouping window is measured from it).
    public var lastFindingAt: Date

    public init(id: String, title: String, status: CaseStatus = .new, severityID: Int, owner: String? = nil, verdict: CaseVerdict? = nil,
                groupKey: String, findingUIDs: [String], notes: [CaseNote] = [], createdAt: Date, modifiedAt: Date? = nil, lastFindingAt: Date) {
        self.id = id; self.title = title; self.status = status; self.severityID = severityID; self.owner = owner; self.verdict = verdict
        self.groupKey = groupKey; self.findingUIDs = findingUIDs; self.notes = notes; self.createdAt = createdAt
        self.modifiedAt = modifiedAt ?? createdAt; self.lastFindingAt = lastFindingAt
    }
}

/// Limits on cases, the same on every backend. Every refusal is
/// `invalidInput` with a message naming what is wrong, and nothing changes.
public enum CaseLimits {
    /// Title and group key, in Unicode scalars.
    public static let maxTitleLength = 200
    /// A note's text, in Unicode scalars.
    public static let maxNoteLength = 4000
    /// An owner's or a note author's name, in Unicode scalars.
    public static let maxNameLength = 200
    /// Findings one case groups; the detection service opens a new case past it.
    public static let maxFindings = 1000
    /// Notes on one case.
    public static let maxNotes = 1000
    /// A finding uid, in bytes.
    public static let maxFindingUIDBytes = 64
    /// Most rows one list call returns.
    public static let maxList = 10_000

    public static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 64, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D })
        else { throw StoreError(.invalidInput, "case id must be 1–64 characters of a-z 0-9 -") }
    }

    public static func validateFindingUID(_ uid: String) throws {
        guard !uid.isEmpty, uid.utf8.count <= maxFindingUIDBytes, uid.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { throw StoreError(.invalidInput, "a finding uid must be 1–\(maxFindingUIDBytes) printable ASCII characters") }
    }

    public static func validateSeverity(_ id: Int) throws {
        guard (0...6).contains(id) || id == 99 else { throw StoreError(.invalidInput, "severity_id \(id) is not an OCSF severity") }
    }

    /// The higher of two OCSF severities (99 Other ranks below Informational; it says nothing about how bad).
    public static func higherSeverity(_ a: Int, _ b: Int) -> Int {
        func rank(_ s: Int) -> Int { s == 99 ? 0 : s }
        return rank(b) > rank(a) ? b : a
    }

    /// Checks a new case against every limit.
    public static func validate(_ r: CaseRecord) throws {
        try validateID(r.id)
        try AttestationLimits.validateName(r.title, "the case title")
        guard r.title.unicodeScalars.count <= maxTitleLength else {
            throw StoreError(.invalidInput, "the case title is \(r.title.unicodeScalars.count) characters long; at most \(maxTitleLength)")
        }
        try AttestationLimits.validateName(r.groupKey, "the group key")
        if let owner = r.owner { try AttestationLimits.validateName(owner, "the owner") }
        try validateSeverity(r.severityID)
        guard r.status == .new, r.verdict == nil, r.notes.isEmpty else {
            throw StoreError(.invalidInput, "a new case is status new, without verdict or notes")
        }
        guard !r.findingUIDs.isEmpty, r.findingUIDs.count <= maxFindings else {
            throw StoreError(.invalidInput, "a new case groups 1–\(maxFindings) findings")
        }
        guard Set(r.findingUIDs).count == r.findingUIDs.count else { throw StoreError(.invalidInput, "a finding is listed twice") }
        for uid in r.findingUIDs { try validateFindingUID(uid) }
    }

    public static func validateNote(_ note: CaseNote) throws {
        try AttestationLimits.validateName(note.author, "the note's author")
        try AttestationLimits.validateText(note.text, "the note", max: maxNoteLength)
    }

    /// The status rule: any open or resolved case may move to any other status; a closed case
    /// changes only when reopened explicitly (`reopen`, to an open status). Closing needs a verdict, given now or
    /// kept from resolving (`existing`).
    public static func checkTransition(from: CaseStatus, to: CaseStatus, verdict: CaseVerdict?, existing: CaseVerdict?, reopen: Bool, id: String) throws {
        if from == .closed {
            guard reopen else {
                throw StoreError(.conflict, "case \(id) is closed; reopen it first (menshen case status \(id) in_progress --reopen)")
            }
            guard to.isOpen else { throw StoreError(.invalidInput, "a closed case is reopened to new, in_progress or on_hold") }
        } else if reopen {
            throw StoreError(.invalidInput, "case \(id) is \(from.name), not closed; --reopen is only for closed cases")
        }
        if to == .closed, verdict == nil, existing == nil || from == .closed { throw StoreError(.invalidInput, "closing case \(id) needs a verdict (\(CaseVerdict.names))") }
        if to.isOpen, verdict != nil { throw StoreError(.invalidInput, "a verdict is given when a case is resolved or closed, not when it is \(to.name)") }
    }
}

/// Which cases a list returns by owner.
public enum CaseOwnerFilter: Sendable, Equatable {
    case any, unassigned, named(String)

    public func matches(_ owner: String?) -> Bool {
        switch self {
        case .any: true
        case .unassigned: owner == nil
        case .named(let n): owner == n
        }
    }
}

/// Incidents (cases) grouping detection findings (`menshen case …`, the
/// detection service's grouping). Every change is one transaction; notes and
/// attached findings are never edited nor deleted, and cases never deleted
/// (the SQL backends' triggers refuse it). Each change returns the case as it
/// is after it, for the caller's OCSF 2005 event. Unknown cases throw
/// `notFound`; changes to a closed case (other than reopening and notes) throw
/// `conflict`.
public protocol CaseStore: Sendable {
    /// Stores a new case (status new). Throws `conflict` for an existing id, `invalidInput` beyond ``CaseLimits``.
    func createCase(_ record: CaseRecord) async throws
    /// One case with its findings and notes.
    func caseRecord(id: String) async throws -> CaseRecord?
    /// Cases, most recently modified first (then by id), filtered by status and owner, at most `limit` (capped at ``CaseLimits/maxList``).
    func cases(status: CaseStatus?, owner: CaseOwnerFilter, limit: Int) async throws -> [CaseRecord]
    /// The open case (new, in progress, on hold) of `groupKey` whose latest finding is at or after `since`, the latest
    /// such; nil when there is none.
    func openCase(groupKey: String, since: Date) async throws -> CaseRecord?
    /// Attaches a finding to an open case: severity becomes the higher of the two, the latest finding time the later.
    /// A finding already attached changes nothing. Throws `conflict` for a case that is not open or holds
    /// ``CaseLimits/maxFindings`` findings.
    func attachFinding(caseID: String, findingUID: String, severityID: Int, findingTime: Date, at: Date) async throws -> CaseRecord
    /// Sets (or with nil clears) the owner. Throws `conflict` for a closed case.
    func assignCase(id: String, owner: String?, at: Date) async throws -> CaseRecord
    /// Changes the status (and the verdict; see ``CaseLimits/checkTransition(from:to:verdict:existing:reopen:id:)``).
    func setCaseStatus(id: String, status: CaseStatus, verdict: CaseVerdict?, reopen: Bool, at: Date) async throws -> CaseRecord
    /// Appends a note (allowed on any case, closed ones included).
    func addCaseNote(id: String, note: CaseNote) async throws -> CaseRecord
}
