import Foundation

/// Follows the event log in sequence order from a cursor: the one way the
/// consumers of the log (SIEM export, detections and playbooks) read it.
///
/// It reads batches with ``EventStore/events(after:limit:)``: a full batch is
/// followed at once by the next, an empty or short one by a pause of
/// ``idleInterval`` (so a quiet log costs one small query per interval, and
/// an event is seen within about that interval, on every node of a shared
/// PostgreSQL too). The cursor moves past a batch only after the handler
/// returns; when the handler or the store throws, the same batch is tried
/// again after a back-off that doubles up to ``maxBackoff`` — a consumer that
/// fails (a SIEM that is down) loses nothing and never holds up the writers.
public struct EventTail: Sendable {
    public let store: any EventStore
    public let batchSize: Int
    public let idleInterval: Duration
    public let maxBackoff: Duration

    public init(store: any EventStore, batchSize: Int = 500, idleInterval: Duration = .milliseconds(100),
                maxBackoff: Duration = .seconds(30)) {
        self.store = store
        self.batchSize = max(1, batchSize)
        self.idleInterval = idleInterval
        self.maxBackoff = max(idleInterval, maxBackoff)
    }

    /// Hands every event after `cursor` to `handle`, batch by batch and in order, until the calling
    /// task is cancelled; returns the cursor reached (the sequence of the last event handled).
    /// - Parameters:
    ///   - onError: told of each failure before the back-off (to log it or count it).
    ///   - handle: consumes one batch; the cursor moves past it only when this returns.
    @discardableResult
    public func follow(after cursor: Int64, onError: @Sendable (any Error) -> Void = { _ in },
                       _ handle: ([StoredEvent]) async throws -> Void) async -> Int64 {
        var cursor = cursor
        var backoff = idleInterval
        while !Task.isCancelled {
            let batch: [StoredEvent]
            do {
                batch = try await store.events(after: cursor, limit: batchSize)
                if !batch.isEmpty {
                    try await handle(batch)
                    cursor = batch[batch.count - 1].sequence
                }
                backoff = idleInterval
            } catch {
                if Task.isCancelled { break }
                onError(error)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, maxBackoff)
                continue
            }
            if batch.count < batchSize {
                try? await Task.sleep(for: idleInterval)
            }
        }
        return cursor
    }
}
