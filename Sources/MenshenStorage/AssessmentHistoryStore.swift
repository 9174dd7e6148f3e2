import Foundation
import MenshenCore

/// One stored maturity assessment: the document as JSON text (opaque to the
/// store; MenshenAssessment's `Assessment`) with the few fields that order and
/// summarise it, and the SHA-256 of the text so a reader can tell whether the
/// row was altered since.
public struct AssessmentHistoryRecord: Sendable, Equatable {
    /// The assessment's id (1–64 characters of a-z 0-9 -).
    public var id: String
    public var generatedAt: Date
    public var windowStart: Date
    public var windowEnd: Date
    /// The overall level, 0 (below Level I) to 4.
    public var overallLevel: Int
    /// The assessment as JSON text, at most ``AssessmentHistoryLimits/maxDocumentBytes``.
    public var json: String
    /// Lower-case hex SHA-256 of `json`'s UTF-8 bytes, as stored.
    public var sha256: String

    /// A record for `json`; the hash is computed here.
    public init(id: String, generatedAt: Date, windowStart: Date, windowEnd: Date, overallLevel: Int, json: String) {
        self.init(id: id, generatedAt: generatedAt, windowStart: windowStart, windowEnd: windowEnd, overallLevel: overallLevel,
                  json: json, sha256: SecretHash.sha256Hex(json))
    }

    /// A record as read back, with the hash that was stored (which may no longer match `json` if the row was edited).
    public init(id: String, generatedAt: Date, windowStart: Date, windowEnd: Date, overallLevel: Int, json: String, sha256: String) {
        self.id = id; self.generatedAt = generatedAt; self.windowStart = windowStart; self.windowEnd = windowEnd
        self.overallLevel = overallLevel; self.json = json; self.sha256 = sha256
    }

    /// Whether the stored hash is the hash of the stored text.
    public var isIntact: Bool { SecretHash.sha256Hex(json) == sha256 }
}

/// Limits on stored assessments, the same on every backend.
public enum AssessmentHistoryLimits {
    public static let maxDocumentBytes = 16 * 1024 * 1024
    /// Most rows one list call returns.
    public static let maxList = 1000

    /// Throws `invalidInput` for a record beyond the limits.
    public static func validate(_ r: AssessmentHistoryRecord) throws {
        guard !r.id.isEmpty, r.id.utf8.count <= 64, r.id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D })
        else { throw StoreError(.invalidInput, "assessment id must be 1–64 characters of a-z 0-9 -") }
        guard (0...4).contains(r.overallLevel) else { throw StoreError(.invalidInput, "overall level \(r.overallLevel) is not 0–4") }
        guard r.windowStart <= r.windowEnd else { throw StoreError(.invalidInput, "the assessment window ends before it starts") }
        guard r.json.utf8.count <= maxDocumentBytes else {
            throw StoreError(.invalidInput, "assessment document of \(r.json.utf8.count) bytes; at most \(maxDocumentBytes)")
        }
        guard r.isIntact else { throw StoreError(.invalidInput, "assessment \(r.id): the SHA-256 does not match the document") }
    }
}

/// Every assessment Menshen produced (`menshen assess`), kept so a report can
/// show the change since the previous one. Append-only: the SQL backends'
/// triggers refuse updates and deletions.
public protocol AssessmentHistoryStore: Sendable {
    /// Stores an assessment. Throws `conflict` for an existing id and `invalidInput` beyond
    /// ``AssessmentHistoryLimits`` (including a hash that does not match the text); nothing is stored then.
    func saveAssessment(_ record: AssessmentHistoryRecord) async throws
    /// The newest assessment (by generation time, then by order of saving), if any.
    func latestAssessment() async throws -> AssessmentHistoryRecord?
    /// Assessments newest first (as ``latestAssessment()``), at most `limit` (capped at ``AssessmentHistoryLimits/maxList``).
    func assessments(limit: Int) async throws -> [AssessmentHistoryRecord]
    func assessment(id: String) async throws -> AssessmentHistoryRecord?
}
