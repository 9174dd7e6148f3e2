import Foundation

/// One retention prune of the event log: every record up to and including ``throughSequence`` was
/// exported (``exportSHA256`` is the export file's digest) and then deleted (``EventPruneStore/pruneEvents(_:)``). The
/// newest prune is where the log now starts: the first remaining record links to ``throughHash``, and
/// `menshen audit verify` accepts the cut only when a trusted signed checkpoint and an audit event of
/// the prune name that same record.
public struct EventPruneRecord: Sendable, Equatable {
    public var throughSequence: Int64
    public var throughHash: String
    /// Records deleted by this prune.
    public var eventCount: Int64
    public var exportSHA256: String
    public var prunedAt: Date
    public init(throughSequence: Int64, throughHash: String, eventCount: Int64, exportSHA256: String, prunedAt: Date) {
        self.throughSequence = throughSequence; self.throughHash = throughHash; self.eventCount = eventCount
        self.exportSHA256 = exportSHA256; self.prunedAt = prunedAt
    }
}

/// Deleting the oldest part of the append-only event log — the one path that may (the database's
/// triggers refuse every other deletion: only rows at or below a recorded prune may go).
public protocol EventPruneStore: Sendable {
    /// In one transaction: checks that the record at `prune.throughSequence` still exists with
    /// `prune.throughHash` and lies beyond the previous prune, records the prune, and deletes the oldest events
    /// up to it; then deletes the rest up to it in further short transactions (5,000 events each on the SQL backends), so appends
    /// are not held up behind a large prune. Returns how many events were deleted. Throws `conflict` (and deletes
    /// nothing) when the record is gone, has another hash or an earlier prune reached it; `invalidInput` for a bad
    /// record; any error of the first transaction (nothing recorded, nothing deleted). Once the prune is recorded
    /// it is not undone: a failure or cancellation of a later chunk ends the call with the count so far, and the
    /// events left at or below the recorded prune (where the chain checks no longer look) are deleted by the next
    /// prune with its own.
    func pruneEvents(_ prune: EventPruneRecord) async throws -> Int
    /// The newest prune, if the log was ever pruned.
    func lastPrune() async throws -> EventPruneRecord?
}

extension EventPruneRecord {
    /// Checks the fields every backend stores; throws `invalidInput`.
    public func validate() throws {
        guard throughSequence >= 1, eventCount >= 1, throughHash.utf8.count == 64, exportSHA256.utf8.count == 64,
              (throughHash + exportSHA256).utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw StoreError(.invalidInput, "a prune names a positive sequence and count and two SHA-256 hex digests") }
    }
}
