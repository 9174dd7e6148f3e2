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

    @Test("two stages: every batch comes with what prepare made of it; a failed prepare or handler loses nothing",
          arguments: Backend.available)
    func prepared(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do { try await Self.prepared(f.store) } catch {
            await f.cleanup()
            throw error
        }
        await f.cleanup()
    }

    static func prepared(_ store: any MenshenStore) async throws {
        _ = try await store.appendEvents((1...47).map(Self.event), hasher: EventChain.hasher)
        let seen = Mutex<[Int64]>([])
        let prepareFailures = Mutex(0)
        let handleFailures = Mutex(0)
        let errors = Mutex(0)
        let tail = EventTail(store: store, batchSize: 8, idleInterval: .milliseconds(5), maxBackoff: .milliseconds(20))
        let follower = Task {
            await tail.follow(after: 0, onError: { _ in errors.withLock { $0 += 1 } }, prepare: { batch in
                // The batch after 24 fails to prepare once (read ahead while 17…24 is handled).
                if batch.first?.sequence == 25, prepareFailures.withLock({ $0 += 1; return $0 == 1 }) { throw CancellationError() }
                return batch.map { $0.sequence * 10 }
            }) { batch, prepared in
                #expect(prepared == batch.map { $0.sequence * 10 })
                // The batch after 32 fails once in the handler, while the one after it was already read ahead.
                if batch.first?.sequence == 33, handleFailures.withLock({ $0 += 1; return $0 == 1 }) { throw CancellationError() }
                seen.withLock { $0 += batch.map(\.sequence) }
            }
        }
        try await waitUntil { seen.withLock { $0.count } == 47 }
        follower.cancel()
        let reached = await follower.value
        #expect(seen.withLock { $0 } == Array(1...47))
        #expect(reached == 47)
        #expect(errors.withLock { $0 } == 2)
    }

    /// With a store that signals its appends, a follower that has caught up sees the next commit at once: the idle
    /// interval here is ten minutes, so without the signal the appended events would not be seen before the wait
    /// below gives up.
    @Test("a caught-up follower wakes at the next commit", arguments: [Backend.memory, .sqlite])
    func wakesAtCommit(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do { try await Self.wakesAtCommit(f.store) } catch {
            await f.cleanup()
            throw error
        }
        await f.cleanup()
    }

    static func wakesAtCommit(_ store: any MenshenStore) async throws {
        #expect(store is any EventAppendSignal)
        _ = try await store.appendEvents((1...3).map(Self.event), hasher: EventChain.hasher)
        let seen = Mutex<[Int64]>([])
        let tail = EventTail(store: store, batchSize: 100, idleInterval: .seconds(600))
        let follower = Task {
            await tail.follow(after: 0) { batch in seen.withLock { $0 += batch.map(\.sequence) } }
        }
        try await waitUntil(within: .seconds(60)) { seen.withLock { $0.count } == 3 }
        for round in 0..<3 {
            // Let the follower go idle, then append: it must see the events long before its interval is over.
            try await Task.sleep(for: .milliseconds(50))
            _ = try await store.appendEvents((4 + 2 * round...5 + 2 * round).map(Self.event), hasher: EventChain.hasher)
            try await waitUntil(within: .seconds(60)) { seen.withLock { $0.count } == 5 + 2 * round }
        }
        follower.cancel()
        _ = await follower.value
        #expect(seen.withLock { $0 } == Array(1...9))
    }

    static func waitUntil(within limit: Duration = .seconds(120), _ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit   // generous: a loaded parallel run, not a timing claim
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// ``AppendNotifier``: the wait behind ``EventAppendSignal``.
@Suite struct AppendNotifierTests {
    @Test func aSignalWakesEveryWaiter() async throws {
        let notifier = AppendNotifier()
        let start = notifier.generation
        final class Woken: Sendable { let count = Mutex(0) }
        let woken = Woken()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    await notifier.wait(after: start, timeout: .seconds(600))
                    woken.count.withLock { $0 += 1 }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            #expect(woken.count.withLock { $0 } == 0)
            notifier.signal()
            try await group.waitForAll()
        }
        #expect(woken.count.withLock { $0 } == 5)
        #expect(notifier.generation == start + 1)
    }

    @Test func aPassedGenerationReturnsAtOnce() async {
        let notifier = AppendNotifier()
        let before = notifier.generation
        notifier.signal()
        let t0 = ContinuousClock.now
        await notifier.wait(after: before, timeout: .seconds(600))
        #expect(ContinuousClock.now - t0 < .seconds(60))
    }

    @Test func theTimeoutEndsTheWait() async {
        let notifier = AppendNotifier()
        let t0 = ContinuousClock.now
        await notifier.wait(after: notifier.generation, timeout: .milliseconds(200))
        #expect(ContinuousClock.now - t0 >= .milliseconds(200))
    }

    @Test func cancellingEndsTheWait() async {
        let notifier = AppendNotifier()
        let waiter = Task { await notifier.wait(after: notifier.generation, timeout: .seconds(600)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        let t0 = ContinuousClock.now
        await waiter.value
        #expect(ContinuousClock.now - t0 < .seconds(60))
        // Cancelled before it even started waiting: it does not wait either.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await notifier.wait(after: notifier.generation, timeout: .seconds(600))
        }
        await early.value
    }
}
