import Foundation

/// Where a playbook step that waits for an operator stands.
public enum ApprovalState: String, Sendable, CaseIterable {
    /// Waiting for `menshen playbook approve` or `reject`, until it expires.
    case pending
    /// Approved by an operator; the detection service carries it out next.
    case approved
    case rejected
    /// Nobody decided in time; nothing was done.
    case expired
    /// Approved and carried out (its outcome is in the event log).
    case done
}

/// A playbook step held for approval (`approval: required`): what it will do,
/// fixed when the finding came (the users it acts on, the ticket it sends), so
/// an approval approves exactly what the operator was shown.
public struct PlaybookApprovalRecord: Sendable, Equatable {
    /// The run id the operator names (a lowercase UUID).
    public var id: String
    public var playbook: String
    /// The action's name (`revoke_sessions`, …).
    public var action: String
    public var findingUID: String
    /// One line for the operator: the finding and what the step would do.
    public var summary: String
    /// What to carry out, as text the detection service wrote (opaque to the store), at most
    /// ``PlaybookApprovalLimits/maxStepBytes``.
    public var step: String
    public var state: ApprovalState
    public var createdAt: Date
    public var expiresAt: Date
    /// The operator who approved or rejected it.
    public var decidedBy: String?
    public var decidedAt: Date?

    public init(id: String, playbook: String, action: String, findingUID: String, summary: String, step: String, state: ApprovalState = .pending,
                createdAt: Date, expiresAt: Date, decidedBy: String? = nil, decidedAt: Date? = nil) {
        self.id = id; self.playbook = playbook; self.action = action; self.findingUID = findingUID; self.summary = summary; self.step = step
        self.state = state; self.createdAt = createdAt; self.expiresAt = expiresAt; self.decidedBy = decidedBy; self.decidedAt = decidedAt
    }
}

/// Limits on held steps, the same on every backend.
public enum PlaybookApprovalLimits {
    public static let maxStepBytes = 128 * 1024
    public static let maxTextLength = 1024

    /// Throws `invalidInput` for a record beyond the limits.
    public static func validate(_ r: PlaybookApprovalRecord) throws {
        guard !r.id.isEmpty, r.id.utf8.count <= 64, r.id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D })
        else { throw StoreError(.invalidInput, "approval id must be 1–64 characters of a-z 0-9 -") }
        guard r.step.utf8.count <= maxStepBytes else { throw StoreError(.invalidInput, "approval step of \(r.step.utf8.count) bytes; at most \(maxStepBytes)") }
        for (name, text) in [("playbook", r.playbook), ("action", r.action), ("finding uid", r.findingUID), ("summary", r.summary),
                             ("decided by", r.decidedBy ?? "")] where text.utf8.count > maxTextLength {
            throw StoreError(.invalidInput, "approval \(name) longer than \(maxTextLength) bytes")
        }
    }
}

/// Playbook steps held for an operator's approval (`menshen playbook pending|approve|reject`).
/// Every change of state is conditional, so two operators (or an operator and the expiry) never
/// both win: exactly one transition out of `pending` succeeds.
public protocol PlaybookApprovalStore: Sendable {
    /// Stores a new held step. Throws `conflict` for an existing id, `invalidInput` beyond the limits.
    func createApproval(_ record: PlaybookApprovalRecord) async throws
    func approval(id: String) async throws -> PlaybookApprovalRecord?
    /// Held steps in any of `states`, oldest first, at most `limit`.
    func approvals(in states: [ApprovalState], limit: Int) async throws -> [PlaybookApprovalRecord]
    /// Moves `id` from `from` to `to`, stamping who and when; false (and nothing changed) when it is not in `from`.
    func transitionApproval(id: String, from: ApprovalState, to: ApprovalState, by: String?, at: Date) async throws -> Bool
}
