import Foundation

/// Follows the event log in sequence order from a cursor: the one way the
/// consumers of the log (SIEM export, detections and playbooks) read it.
///
/// It reads batches with ``EventStore/events(after:limit:)``: a full batch is
/// followed at once by the next (read ahead while the consumer handles the
/// one before, so reading and handling use two cores), an empty or short one
/// by a pause of ``idleInterval`` (so a quiet log costs one small query per
/// interval, and an event is seen within about that interval, on every node
/// of a shared PostgreSQL too). A store that signals its appends
/// (``EventAppendSignal``: SQLite and the in-memory store) ends the pause at
/// its next commit, so an event written by this process is seen moments after
/// it is committed. The cursor moves past a batch only after the handler
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
        await follow(after: cursor, onError: onError, prepare: { _ in () }) { batch, _ in try await handle(batch) }
    }

    /// As ``follow(after:onError:_:)``, in two stages: `prepare` (pure work on a batch: parsing, checking) runs
    /// on the batch after the one being handled — that batch is read and prepared while `handle` works, on
    /// another core — and `handle` gets each batch with what `prepare` made of it, in order.
    ///
    /// Only a full batch is read ahead (a short one means the log is caught up). The read-ahead never moves
    /// the cursor: when `handle` throws, what was read ahead is dropped and the same batch is read again after
    /// the back-off; when `prepare` throws, that batch is read and prepared again, so a consumer sees every
    /// event once, in order, exactly as without read-ahead.
    @discardableResult
    public func follow<Prepared: Sendable>(after cursor: Int64, onError: @Sendable (any Error) -> Void = { _ in },
                                           prepare: @escaping @Sendable ([StoredEvent]) throws -> Prepared,
                                           _ handle: ([StoredEvent], Prepared) async throws -> Void) async -> Int64 {
        let store = self.store, batchSize = self.batchSize
        let signal = store as? any EventAppendSignal
        typealias Read = (batch: [StoredEvent], prepared: Prepared, generation: Int)
        // Notes the store's append generation before reading: a commit after it ends the idle wait at once.
        @Sendable func read(after sequence: Int64) async -> Result<Read, any Error> {
            let generation = signal?.appendGeneration ?? 0
            do {
                let batch = try await store.events(after: sequence, limit: batchSize)
                return .success((batch, try prepare(batch), generation))
            } catch {
                return .failure(error)
            }
        }
        var cursor = cursor
        var backoff = idleInterval
        var ahead: Task<Result<Read, any Error>, Never>?
        var generation = 0
        defer { ahead?.cancel() }
        while !Task.isCancelled {
            let result: Result<Read, any Error>
            if let next = ahead {
                result = await next.value
                ahead = nil
            } else {
                result = await read(after: cursor)
            }
            let batch: [StoredEvent]
            do {
                let prepared: Prepared
                (batch, prepared, generation) = try result.get()
                if let last = batch.last {
                    if batch.count == batchSize {
                        let after = last.sequence
                        ahead = Task { await read(after: after) }
                    }
                    try await handle(batch, prepared)
                    cursor = last.sequence
                }
                backoff = idleInterval
            } catch {
                ahead?.cancel()
                ahead = nil
                if Task.isCancelled { break }
                onError(error)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, maxBackoff)
                continue
            }
            if batch.count < batchSize {
                // Caught up: until this store commits more events, or the interval (other writers) is over.
                if let signal { await signal.waitForAppends(after: generation, timeout: idleInterval) } else {
                    try? await Task.sleep(for: idleInterval)
                }
            }
        }
        return cursor
    }
}
