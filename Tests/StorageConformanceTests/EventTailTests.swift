import Foundation
import MenshenStorage
import Synchronization
import Testing

/// ``EventTail``: every event once, in order, through a failing consumer and
/// appends made while following, on every backend.
@Suite struct EventTailTests {
    static func event(_ n: Int) -> NewEvent {
        NewEvent(id: UUID(), time: Date(timeIntervalSince1970: Double(n)), classUID: 3002, severityID: 1,
                 payloadJSON: #"{"class_uid":3002,"n":\#(n)}"#)
    }

    @Test("follows the log in order, retries a failed batch, sees later appends", arguments: Backend.available)
    func follows(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do { try await Self.follows(f.store) } catch {
            await f.cleanup()
            throw error
        }
        await f.cleanup()
    }

    static func follows(_ store: any MenshenStore) async throws {
        _ = try await store.appendEvents((1...25).map(Self.event), hasher: EventChain.hasher)

        let seen = Mutex<[Int64]>([])
        let failures = Mutex(0)
        let errors = Mutex(0)
        let tail = EventTail(store: store, batchSize: 10, idleInterval: .milliseconds(5), maxBackoff: .milliseconds(20))
        let follower = Task {
            await tail.follow(after: 5, onError: { _ in errors.withLock { $0 += 1 } }) { batch in
                // The batch starting after 15 fails twice: it must come back whole, not be skipped.
                if batch.first?.sequence == 16, failures.withLock({ $0 += 1; return $0 <= 2 }) {
                    throw CancellationError()
                }
                seen.withLock { $0 += batch.map(\.sequence) }
            }
        }
        try await waitUntil { seen.withLock { $0.count } == 20 }
        _ = try await store.appendEvents((26...30).map(Self.event), hasher: EventChain.hasher)
        try await waitUntil { seen.withLock { $0.count } == 25 }
        follower.cancel()
        let reached = await follower.value
        #expect(seen.withLock { $0 } == Array(6...30))
        #expect(reached == 30)
        #expect(errors.withLock { $0 } == 2)
    }

    static func waitUntil(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)   // generous: a loaded parallel run, not a timing claim
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
