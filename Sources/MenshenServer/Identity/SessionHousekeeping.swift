import Foundation
import Logging
import MenshenCore
import MenshenStorage
import ServiceLifecycle

/// Keeps the store's session and ceremony tables bounded: without it every sign-in left a session row for ever, and
/// every sign-in or enrolment ceremony that was started and abandoned (a username-less passkey ceremony needs no
/// account) a flow-state row.
///
/// At start and every `interval` (an hour in `menshen serve`): flow states that expired are deleted; sessions whose
/// absolute lifetime ended more than `keepEnded` ago (`identity.session.keep_ended_days`; revoked ones too) are deleted
/// in transactions of at most `batch` rows, with a pause between them, so a first clean-up of a large table never holds
/// the store's writer (and the decision audit behind it) for long. Every node runs it; the deletes are idempotent.
/// Deleting a session is an access change (the gateway forgets nothing it needs: the session has ended).
public struct SessionHousekeeping: Service {
    public let store: any MenshenStore
    public let clock: any WallClock
    public let keepEnded: TimeInterval
    public let interval: Duration
    public let batch: Int
    public let pause: Duration
    public let logger: Logger

    public init(store: any MenshenStore, clock: any WallClock, keepEndedDays: Int, logger: Logger,
                interval: Duration = .seconds(3_600), batch: Int = 1_000, pause: Duration = .milliseconds(50)) {
        self.store = store; self.clock = clock; self.keepEnded = TimeInterval(max(0, keepEndedDays)) * 86_400
        self.interval = interval; self.batch = max(1, batch); self.pause = pause; self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await self.runOnce()
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// What one run deleted.
    public struct Outcome: Sendable, Equatable {
        public var sessions = 0
        public var flowStates = 0
        /// Transactions the sessions took.
        public var batches = 0
        /// Whether the run stopped on a store error (what it deleted before stays deleted).
        public var failed = false
        public init(sessions: Int = 0, flowStates: Int = 0, batches: Int = 0, failed: Bool = false) {
            self.sessions = sessions; self.flowStates = flowStates; self.batches = batches; self.failed = failed
        }
    }

    /// One clean-up. Errors are logged, not thrown: the next run tries again.
    public func runOnce() async -> Outcome {
        var outcome = Outcome()
        let now = clock.now()
        do {
            outcome.flowStates = try await store.deleteFlowStates(expiredBefore: now)
            let cutoff = now.addingTimeInterval(-keepEnded)
            while !Task.isCancelled {
                let deleted = try await store.deleteSessions(expiredBefore: cutoff, limit: batch)
                outcome.sessions += deleted
                if deleted > 0 { outcome.batches += 1 }
                guard deleted == batch else { break }
                try? await Task.sleep(for: pause)
            }
        } catch {
            outcome.failed = true
            logger.error("session housekeeping failed; the next run tries again", metadata: ["error": "\(error)"])
        }
        if outcome.sessions > 0 || outcome.flowStates > 0 {
            logger.notice("ended sessions and expired ceremony state deleted", metadata: [
                "sessions": "\(outcome.sessions)", "flow_states": "\(outcome.flowStates)", "batches": "\(outcome.batches)"])
        }
        return outcome
    }
}
