import Foundation
import MenshenCore

/// A user's risk as the detection service last recorded it: the raw
/// contributions (findings, behaviour signals, playbook `raise_risk` steps),
/// each with its time, so that a reader computes the score *at its own time*
/// (each contribution decays; see MenshenVisibility's `RiskScore`) without the
/// writer having to rewrite rows as they age.
///
/// The store treats ``contributions`` as opaque text (MenshenVisibility writes
/// and reads it, with its own limits); it only bounds its length.
public struct RiskScoreRecord: Sendable, Equatable {
    public var userID: UserID
    /// The contributions as text, at most ``RiskScoreLimits/maxContributionBytes``.
    public var contributions: String
    public var updatedAt: Date

    public init(userID: UserID, contributions: String, updatedAt: Date) {
        self.userID = userID; self.contributions = contributions; self.updatedAt = updatedAt
    }
}

/// Limits on stored risk records, the same on every backend.
public enum RiskScoreLimits {
    /// Longest contributions text accepted, in bytes.
    public static let maxContributionBytes = 32 * 1024

    /// Throws `invalidInput` for a record beyond the limits.
    public static func validate(_ record: RiskScoreRecord) throws {
        guard record.contributions.utf8.count <= maxContributionBytes else {
            throw StoreError(.invalidInput, "risk contributions of \(record.contributions.utf8.count) bytes; at most \(maxContributionBytes)")
        }
    }
}

/// Per-user risk for the policy engine (`context.risk.score`): written by the
/// detection service, read by the gateway with the session's other facts.
///
/// A write counts as an access change (``StoreChange/access``): the triggers
/// advance the access generation, so every gateway node's remembered session
/// facts are void at once (SQLite: ``CommittedAccessGeneration``; PostgreSQL:
/// the change feed), and long-lived connections are authorized again. The row
/// goes with its user (`ON DELETE CASCADE`).
public protocol RiskScoreStore: Sendable {
    /// Creates or replaces the user's record. Throws `notFound` for an unknown
    /// user and `invalidInput` beyond ``RiskScoreLimits``; stores nothing then.
    func saveRiskScore(_ record: RiskScoreRecord) async throws
    /// The user's record, or nil when none was ever written.
    func riskScore(of user: UserID) async throws -> RiskScoreRecord?
}
