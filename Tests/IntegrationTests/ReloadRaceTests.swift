import Foundation
import MenshenCedar
import MenshenCore
@testable import MenshenServer
import MenshenStorage
import Synchronization
import Testing

/// Two reloads at once — the reload poll and a store notification — must end with the newest sources running.
@Suite("Gateway reloads racing")
struct ReloadRaceTests {
    /// A flag a test sets and a paused task polls.
    final class Flag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
        func wait() async { while !isSet { try? await Task.sleep(for: .milliseconds(5)) } }
    }

    @Test("a reload that read the sources before a policy change and swaps first does not leave that older set running: the other reload looks again")
    func olderReadSwapsFirst() async throws {
        let store = InMemoryStore()
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_000_000))
        _ = try await store.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "v0", at: clock.now())
        let state = GatewayState(try await GatewayLoader(store: store, routesFile: nil, clock: clock).load())

        // The poll: reads v1, then waits (between building and swapping) until the notified reload has read v2.
        let pollAtSwap = Flag(), notifiedHasRead = Flag(), pollSwapped = Flag()
        let poll = GatewayLoader(store: store, routesFile: nil, clock: clock, beforeReplace: {
            pollAtSwap.set()
            await notifiedHasRead.wait()
        })
        // The notified reload: reads v2, then waits until the poll has swapped v1 in (only the first time).
        let first = Mutex(true)
        let notified = GatewayLoader(store: store, routesFile: nil, clock: clock, beforeReplace: {
            guard first.withLock({ f in defer { f = false }; return f }) else { return }
            notifiedHasRead.set()
            await pollSwapped.wait()
        })

        _ = try await store.savePolicy("p", text: "forbid (principal, action, resource);", author: "t", comment: "v1", at: clock.now())
        let polling = Task { let r = await poll.reloadIfChanged(state); pollSwapped.set(); return r }
        await pollAtSwap.wait()
        _ = try await store.savePolicy("p", text: "permit (principal, action == Action::\"read\", resource);", author: "t", comment: "v2",
                                       at: clock.now())
        let notifying = Task { await notified.reloadIfChanged(state) }

        #expect(await polling.value == .reloaded(generation: 2))
        #expect(await notifying.value == .reloaded(generation: 3), "the notified reload gave up after losing the swap")
        let running = state.snapshot.decisionPoint.policies.policies.map(\.effect)
        #expect(running == [.permit], "the older read (v1, a forbid) is still running")
        // Nothing left to load: the running snapshot is built from the store's current sources.
        #expect(await GatewayLoader(store: store, routesFile: nil, clock: clock).reloadIfChanged(state) == .unchanged)
    }
}
