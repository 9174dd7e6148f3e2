import Foundation
import Synchronization

/// What changed in the store, as far as enforcement cares — never the data
/// itself, only what to check again.
public enum StoreChange: String, Sendable, CaseIterable {
    /// A session was revoked, a user changed or was disabled, a membership or
    /// role assignment changed, a risk score was written: open connections must be authorized again.
    case access
    /// Policies or applications changed: the gateway snapshot must be rebuilt.
    case configuration
    /// A device or its certificates changed (a posture report, quarantine, a certificate revoked or edited):
    /// connections that present a device certificate must be authorized again. Kept apart from ``access`` so
    /// that the posture reports of a fleet (one per device every few minutes) neither empty what the gateway
    /// remembers about sessions nor re-check connections that carry no device.
    case device
}

/// Counters the database advances itself (triggers) on every committed
/// change of each kind, whoever the writer is: this process, another node,
/// the command line, or an administrator's SQL.
public struct ChangeGenerations: Sendable, Equatable {
    public var access: Int64
    public var configuration: Int64
    public var device: Int64
    public init(access: Int64, configuration: Int64, device: Int64 = 0) {
        self.access = access; self.configuration = configuration; self.device = device
    }

    /// The counter of one kind.
    public subscript(kind: StoreChange) -> Int64 {
        get {
            switch kind {
            case .access: access
            case .configuration: configuration
            case .device: device
            }
        }
        set {
            switch kind {
            case .access: access = newValue
            case .configuration: configuration = newValue
            case .device: device = newValue
            }
        }
    }

    /// The kinds whose counter moved since `before`.
    public func changes(since before: ChangeGenerations) -> [StoreChange] {
        StoreChange.allCases.filter { self[$0] != before[$0] }
    }
}

/// Tells the gateway what changed. PostgreSQL delivers changes from every
/// node through LISTEN/NOTIFY (sent by the same triggers, at commit);
/// SQLite and the in-memory store poll ``ChangeGenerations``.
public protocol ChangeFeed: Sendable {
    func changeGenerations() async throws -> ChangeGenerations
    /// Changes from now on, until the consumer stops iterating or the store closes.
    /// After a gap (reconnection) every kind is reported, since changes may have been missed.
    func changes() -> AsyncStream<StoreChange>
}

/// The access and device counters committed at one moment (see ``CommittedAccessGeneration``).
public struct CommittedGenerations: Sendable, Equatable {
    public var access: Int64
    public var device: Int64
    public init(access: Int64, device: Int64) { self.access = access; self.device = device }
}

/// A store that can say, at once and without waiting on the network, which
/// access and device generations are committed right now (the counters the
/// triggers advance on every revocation, user change, membership or role
/// change, risk score — and, apart, on every device, posture or certificate
/// change —, whoever the writer is). The gateway reuses what it read about a
/// session only while the access number has not moved, and what it read about
/// a device certificate only while neither has, so a revocation committed by
/// any process is seen by the very next request.
///
/// SQLite answers with one indexed read on the local file; the in-memory store
/// from its counters. PostgreSQL does not conform: a network round trip per
/// request would cost what the cache saves, so there the gateway reads the
/// session on every request.
public protocol CommittedAccessGeneration: Sendable {
    /// The committed generations, or nil when they cannot be read now (the
    /// caller then reads the store as if nothing were cached).
    func committedGenerations() -> CommittedGenerations?

    /// Whom the access changes committed after `generation` concerned, up to the committed generation now, read
    /// in one snapshot; nil when the store does not keep them or cannot be read now. Lets the gateway keep what it
    /// remembers about a session through changes to other users' access (a fleet's sign-outs, a directory sync, the
    /// detections' risk scores), instead of reading every session again after each. Like
    /// ``committedGenerations()``, it must not wait on the network or on a busy pool: it is called on event loops.
    func accessChanges(after generation: Int64) -> AccessChanges?
}

extension CommittedAccessGeneration {
    /// The committed access generation (``committedGenerations()``'s `access`).
    public func committedAccessGeneration() -> Int64? { committedGenerations()?.access }

    /// Not kept by this store: nil (every access change then concerns everyone).
    public func accessChanges(after generation: Int64) -> AccessChanges? { nil }
}

/// Whose access the committed access changes after one generation concerned (``CommittedAccessGeneration/accessChanges(after:)``).
public struct AccessChanges: Sendable, Equatable {
    /// One access change: the generation it advanced the counter to, and the user it concerned — nil for a change
    /// that may concern anyone (a role edited or deleted, a group deleted, a row that changed owner).
    public struct Change: Sendable, Equatable {
        public var generation: Int64
        public var userID: String?
        public init(generation: Int64, userID: String?) { self.generation = generation; self.userID = userID }
    }

    /// The generation the changes start after.
    public var after: Int64
    /// The committed access generation they run up to.
    public var through: Int64
    /// The changes in (`after`, `through`], in order of generation — every one of them when ``complete``.
    public var changes: [Change]
    /// Whether ``changes`` lists every generation in (`after`, `through`]. False when the store no longer keeps the
    /// oldest of them (it keeps the last ``kept``), there are more than it answers with at once, or some were counted
    /// before the store began to keep them: the caller then knows nothing of whom they concerned.
    public var complete: Bool

    public init(after: Int64, through: Int64, changes: [Change], complete: Bool) {
        self.after = after; self.through = through; self.changes = changes; self.complete = complete
    }

    /// How many of the latest access changes a store keeps, and answers with at most at once.
    public static let kept = 4_096
}

extension ChangeFeed {
    /// A change stream that reads ``changeGenerations()`` every `interval`.
    public func pollingChanges(every interval: Duration) -> AsyncStream<StoreChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreChange.self, bufferingPolicy: .unbounded)   // a burst of one kind must not push out another
        let task = Task {
            var last: ChangeGenerations?
            while !Task.isCancelled {
                if let now = try? await changeGenerations() {
                    if let before = last { for change in now.changes(since: before) { continuation.yield(change) } }
                    last = now
                }
                try? await Task.sleep(for: interval)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}

/// A change stream merged for a consumer slower than the feed: whatever arrives while the consumer works on one batch
/// becomes one next batch (each kind once), so a burst of commits — a playbook revoking users one by one, the detection
/// service's risk writes, PostgreSQL's NOTIFY and its backstop poll reporting the same commit — costs one more sweep,
/// not one per change, and a revocation never waits behind a queue of sweeps.
public final class CoalescedChanges: Sendable {
    private let pending = Mutex<Set<StoreChange>>([])
    private let wake: AsyncStream<Void>.Continuation
    private let signal: AsyncStream<Void>
    private let pump = Mutex<Task<Void, Never>?>(nil)

    /// Starts reading `source`; ``cancel()`` (or the end of `source`) ends ``batches()``.
    public init(_ source: AsyncStream<StoreChange>) {
        (signal, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let task = Task { [self] in
            for await change in source {
                pending.withLock { _ = $0.insert(change) }
                wake.yield()
            }
            wake.finish()
        }
        pump.withLock { $0 = task }
    }

    /// The merged batches, in order; never an empty one.
    public func batches() -> AsyncCompactMapSequence<AsyncStream<Void>, Set<StoreChange>> {
        signal.compactMap { [self] _ in
            let batch = pending.withLock { p in defer { p = [] }; return p }
            return batch.isEmpty ? nil : batch
        }
    }

    /// Stops reading the source.
    public func cancel() {
        pump.withLock { $0?.cancel() }
        wake.finish()
    }
}
