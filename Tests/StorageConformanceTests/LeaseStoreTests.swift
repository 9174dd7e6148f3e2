import Foundation
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// Leases (migration 17) on every backend: which node runs a job that must run on one node only.
@Suite("Leases")
struct LeaseStoreTests {
    @Test("a free lease is taken; another holder is refused while it runs; its holder renews it in the same term", arguments: Backend.available)
    func takeAndRenew(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.lease(named: "detections") == nil)
            let before = Date()
            let a = try await s.acquireLease(named: "detections", holder: "node-a:1:aa", duration: .seconds(30))
            #expect(a.holder == "node-a:1:aa" && a.name == "detections")
            #expect(abs(a.expiresAt.timeIntervalSince(a.acquiredAt) - 30) < 0.01, "\(a)")
            #expect(abs(a.acquiredAt.timeIntervalSince(before)) < 5, "stamped now (the database's clock on PostgreSQL): \(a)")

            let b = try await s.acquireLease(named: "detections", holder: "node-b:2:bb", duration: .seconds(30))
            #expect(b == a, "another holder gets the lease as it stands, unchanged")
            #expect(try await s.lease(named: "detections") == a)

            try await Task.sleep(for: .milliseconds(20))
            let renewed = try await s.acquireLease(named: "detections", holder: "node-a:1:aa", duration: .seconds(60))
            #expect(renewed.holder == "node-a:1:aa" && renewed.acquiredAt == a.acquiredAt, "the same term: \(renewed) after \(a)")
            #expect(renewed.expiresAt > a.expiresAt.addingTimeInterval(29), "renewed for the new duration from now: \(renewed)")

            let other = try await s.acquireLease(named: "export.syslog", holder: "node-b:2:bb", duration: .seconds(5))
            #expect(other.holder == "node-b:2:bb", "names are leased apart")
            #expect(try await s.lease(named: "detections")?.holder == "node-a:1:aa")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("an expired lease goes to the next holder that asks; its old holder then stands refused", arguments: Backend.available)
    func expiry(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            let a = try await s.acquireLease(named: "detections", holder: "a", duration: .seconds(2))
            #expect(try await s.acquireLease(named: "detections", holder: "b", duration: .seconds(2)).holder == "a")
            try await Task.sleep(for: .milliseconds(2200))
            let b = try await s.acquireLease(named: "detections", holder: "b", duration: .seconds(10))
            #expect(b.holder == "b" && b.acquiredAt > a.acquiredAt, "taken once lapsed, a new term: \(b)")
            #expect(try await s.acquireLease(named: "detections", holder: "a", duration: .seconds(10)).holder == "b",
                    "the old holder cannot renew what it lost")

            // Its own lapsed lease, renewed before anyone took it, is a new term.
            let c = try await s.acquireLease(named: "other", holder: "c", duration: .seconds(1))
            try await Task.sleep(for: .milliseconds(1200))
            let again = try await s.acquireLease(named: "other", holder: "c", duration: .seconds(1))
            #expect(again.holder == "c" && again.acquiredAt > c.acquiredAt, "\(again) after \(c)")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("a release frees the lease at once, only by its holder", arguments: Backend.available)
    func release(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            _ = try await s.acquireLease(named: "detections", holder: "a", duration: .seconds(300))
            try await s.releaseLease(named: "detections", holder: "b")
            #expect(try await s.lease(named: "detections")?.holder == "a", "not b's to give up")
            try await s.releaseLease(named: "detections", holder: "a")
            #expect(try await s.lease(named: "detections") == nil)
            #expect(try await s.acquireLease(named: "detections", holder: "b", duration: .seconds(300)).holder == "b")
            try await s.releaseLease(named: "never-taken", holder: "b")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("bad names, holders and durations are refused and change nothing", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            let a = try await s.acquireLease(named: "detections", holder: "a", duration: .seconds(300))
            for bad in ["", String(repeating: "a", count: 65), "has space", "quote'; DROP TABLE leases; --", "名稱"] {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.acquireLease(named: bad, holder: "a", duration: .seconds(5)) }
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.lease(named: bad) }
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.releaseLease(named: bad, holder: "a") }
            }
            for bad in ["", "has space", "tab\there", "new\nline", String(repeating: "h", count: 129), "節點", "nul\u{0}"] {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.acquireLease(named: "detections", holder: bad, duration: .seconds(5)) }
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.releaseLease(named: "detections", holder: bad) }
            }
            for bad: Duration in [.zero, .milliseconds(999), .seconds(-5), .seconds(3601)] {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.acquireLease(named: "detections", holder: "a", duration: bad) }
            }
            #expect(try await s.lease(named: "detections") == a, "nothing changed")
            #expect(try await s.acquireLease(named: "detections", holder: String(repeating: "h", count: 128), duration: .seconds(3600)).holder == "a")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("two connections to one database (two processes' stores) see one holder", arguments: MigrationTests.sqlBackends)
    func twoStores(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        let location = backend == .postgres ? try #require((f.store as? PostgresStore)?.url).passwordless : f.location
        let second = try await MigrationTests.reopen(backend, location, MigrationTests.migrations(backend))
        do {
            // Both ask at once, many times over: exactly one holds it each round.
            for round in 0..<20 {
                let name = "job-\(round)"
                async let x = f.store.acquireLease(named: name, holder: "x", duration: .seconds(60))
                async let y = second.acquireLease(named: name, holder: "y", duration: .seconds(60))
                let (lx, ly) = try await (x, y)
                #expect(lx.holder == ly.holder, "both see the same holder: \(lx) \(ly)")
                #expect(try await f.store.lease(named: name)?.holder == lx.holder)
                // The loser is refused afterwards too (an upsert without its WHERE would hand it over).
                let loser = lx.holder == "x" ? "y" : "x"
                #expect(try await (loser == "x" ? f.store : second).acquireLease(named: name, holder: loser, duration: .seconds(60)).holder == lx.holder)
            }
        } catch { try? await second.close(); await f.cleanup(); throw error }
        try await second.close()
        await f.cleanup()
    }
}
