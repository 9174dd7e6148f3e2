import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import ServiceLifecycle
import Synchronization
import Testing

/// A job that must run on one node at a time (the detections) under a lease in the shared store: two stores on one
/// database stand for two nodes (two SQLite connections to one file, two PostgreSQL pools to one database). The leases
/// last 4 s, asked every 250 ms (a node stops its job 2 s after its last renewal): the bounds below are told apart by
/// a second or more, on a machine that runs nothing else (timed).
@Suite("Jobs on one node at a time (LeasedService; timed: run alone)", .serialized)
struct TimedLeasedServiceTests {
    enum Database: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// Two stores on one fresh database, and its cleanup; nil when PostgreSQL is not available here (a failure under CI).
    static func twoNodes(_ db: Database) async throws -> (any MenshenStore, any MenshenStore, @Sendable () async -> Void)? {
        let dir = try Harness.tempDir()
        var config = MenshenConfiguration.defaults
        config.store.sqlitePath = dir.appendingPathComponent("menshen.sqlite").path
        config.identity.secretsKeyFile = dir.appendingPathComponent("secrets.key").path
        if db == .postgres {
            guard let url = try await Harness.offPool({ try TimedMultiNodeTests.createDatabase() }) else { return nil }
            config.store.driver = .postgres
            config.store.postgresURL = url
        }
        let a = try await StoreFactory.open(config, logger: Logger(label: "test.node-a"))
        let b = try await StoreFactory.open(config, logger: Logger(label: "test.node-b"))
        return (a, b, {
            try? await a.close(); try? await b.close()
            try? FileManager.default.removeItem(at: dir)
        })
    }

    /// Counts the copies of the job that run, on which node, and the most that ever ran at once.
    final class Probe: Sendable {
        let active = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let log = Mutex<[(node: String, event: String, at: ContinuousClock.Instant)]>([])

        func starts(_ node: String) -> Int { log.withLock { $0.filter { $0.node == node && $0.event == "start" }.count } }
        func first(_ event: String, _ node: String) -> ContinuousClock.Instant? { log.withLock { $0.first { $0.node == node && $0.event == event }?.at } }
        var running: Int { active.load(ordering: .sequentiallyConsistent) }
    }

    /// The job: marks itself running until cancelled. `endFirst`: the first copy ends on its own after 100 ms.
    /// `linger`: once cancelled, each copy goes on for that long regardless (as a store call that ignores cancellation).
    struct Job: Service {
        let probe: Probe
        let node: String
        var endFirst = false
        var linger: Duration?

        func run() async throws {
            let now = probe.active.add(1, ordering: .sequentiallyConsistent).newValue
            var most = probe.most.load(ordering: .sequentiallyConsistent)
            while now > most {
                let (exchanged, original) = probe.most.compareExchange(expected: most, desired: now, ordering: .sequentiallyConsistent)
                if exchanged { break }
                most = original
            }
            let first = probe.log.withLock { log in
                log.append((node, "start", .now))
                return log.filter { $0.event == "start" }.count == 1
            }
            defer {
                probe.log.withLock { $0.append((node, "stop", .now)) }
                probe.active.subtract(1, ordering: .sequentiallyConsistent)
            }
            if endFirst && first {
                try? await Task.sleep(for: .milliseconds(100))
                return
            }
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
            probe.log.withLock { $0.append((node, "cancelled", .now)) }
            if let linger { await Self.sleepIgnoringCancellation(linger) }
        }

        static func sleepIgnoringCancellation(_ time: Duration) async {
            let (s, atto) = time.components
            await withCheckedContinuation { c in
                DispatchQueue.global().asyncAfter(deadline: .now() + Double(s) + Double(atto) / 1e18) { c.resume() }
            }
        }
    }

    /// A node's view of the store that can be cut off: its lease calls then fail at once, or never answer — not even to
    /// cancellation, as a database call on a half-open connection may not (they are let go when the view answers again).
    /// Or slow: each call reaches the store after a delay, whether its caller still waits or not (a query once sent).
    /// Counts the lease calls under way at once.
    final class CutOff: LeaseStore {
        enum Mode: Equatable { case answers, fails, hangs, slow(Duration) }
        let inner: any LeaseStore
        private let state = Mutex<(mode: Mode, parked: [CheckedContinuation<Void, Never>])>((.answers, []))
        let calls = Atomic<Int>(0)
        let mostCalls = Atomic<Int>(0)
        let totalCalls = Atomic<Int>(0)
        init(_ inner: any LeaseStore) { self.inner = inner }

        func set(_ mode: Mode) {
            let release = state.withLock { s in
                s.mode = mode
                defer { if mode != .hangs { s.parked = [] } }
                return mode == .hangs ? [] : s.parked
            }
            for c in release { c.resume() }
        }

        /// Runs a lease call through the view's mode, counted.
        private func call<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
            totalCalls.add(1, ordering: .sequentiallyConsistent)
            let now = calls.add(1, ordering: .sequentiallyConsistent).newValue
            defer { calls.subtract(1, ordering: .sequentiallyConsistent) }
            var most = mostCalls.load(ordering: .sequentiallyConsistent)
            while now > most {
                let (exchanged, original) = mostCalls.compareExchange(expected: most, desired: now, ordering: .sequentiallyConsistent)
                if exchanged { break }
                most = original
            }
            if case .slow(let delay) = state.withLock({ $0.mode }) {
                await Job.sleepIgnoringCancellation(delay)
                return try await Task { try await work() }.value   // arrived: carried out even if its caller gave up
            }
            try await gate()
            return try await work()
        }

        private func gate() async throws {
            switch state.withLock({ $0.mode }) {
            case .answers, .slow: return
            case .fails: throw StoreError(.unavailable, "cut off from the database")
            case .hangs:
                await withCheckedContinuation { c in
                    let parked = state.withLock { s in
                        guard s.mode == .hangs else { return false }
                        s.parked.append(c)
                        return true
                    }
                    if !parked { c.resume() }
                }
                throw StoreError(.unavailable, "cut off from the database")
            }
        }
        func acquireLease(named name: String, holder: String, duration: Duration) async throws -> Lease {
            let inner = inner
            return try await call { try await inner.acquireLease(named: name, holder: holder, duration: duration) }
        }
        func releaseLease(named name: String, holder: String) async throws {
            let inner = inner
            try await call { try await inner.releaseLease(named: name, holder: holder) }
        }
        func lease(named name: String) async throws -> Lease? { try await inner.lease(named: name) }
    }

    static func node(_ store: any LeaseStore, _ name: String, probe: Probe, endFirst: Bool = false, linger: Duration? = nil,
                     renewEvery: Duration = .milliseconds(250)) -> LeasedService {
        LeasedService(store: store, name: "job", holder: name, duration: .seconds(4), renewEvery: renewEvery,
                      logger: Logger(label: "test.\(name)")) { Job(probe: probe, node: name, endFirst: endFirst, linger: linger) }
    }

    static func until(_ limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test("the job runs on one node; the other stands by; a node that stops gives the lease up and the other takes over at once",
          arguments: Database.allCases)
    func handOver(_ db: Database) async throws {
        guard let (storeA, storeB, cleanup) = try await Self.twoNodes(db) else { return }
        let probe = Probe()
        let a = Task { try? await Self.node(storeA, "a", probe: probe).run() }
        #expect(await Self.until(.seconds(10)) { probe.starts("a") == 1 })
        let b = Task { try? await Self.node(storeB, "b", probe: probe).run() }
        try await Task.sleep(for: .milliseconds(4500))   // longer than the lease: a keeps renewing it
        #expect(probe.starts("b") == 0 && probe.running == 1, "b stands by while a renews")
        #expect(try await storeB.lease(named: "job")?.holder == "a")

        a.cancel()
        await a.value
        let stopped = ContinuousClock.now
        #expect(probe.running == 0 || probe.starts("b") == 1, "a's job stopped with it")
        #expect(await Self.until(.seconds(10)) { probe.starts("b") == 1 })
        let waited = try #require(probe.first("start", "b")) - stopped
        #expect(waited < .milliseconds(2500), "released, not left to lapse (4 s after a's last renewal): b started after \(waited)")
        #expect(try await storeA.lease(named: "job")?.holder == "b")
        #expect(probe.most.load(ordering: .sequentiallyConsistent) == 1, "never two at once")
        b.cancel()
        await b.value
        #expect(probe.running == 0)
        #expect(try await storeA.lease(named: "job") == nil, "given up at shutdown")
        await cleanup()
    }

    @Test("a node cut off from the store stops its job before its lease lapses; the other takes over only after it lapsed",
          arguments: [CutOff.Mode.fails, .hangs])
    func cutOff(_ mode: CutOff.Mode) async throws {
        guard let (storeA, storeB, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let viewA = CutOff(storeA)
        let a = Task { try? await Self.node(viewA, "a", probe: probe).run() }
        #expect(await Self.until(.seconds(10)) { probe.starts("a") == 1 })
        let b = Task { try? await Self.node(storeB, "b", probe: probe).run() }
        defer { viewA.set(.answers); a.cancel(); b.cancel() }   // a failed expectation must not leave them running
        try await Task.sleep(for: .milliseconds(600))
        let lastRenewal = try #require(try await storeB.lease(named: "job"))
        viewA.set(mode)
        let cut = ContinuousClock.now

        #expect(await Self.until(.seconds(10)) { probe.first("stop", "a") != nil })
        let aStopped = try #require(probe.first("stop", "a")) - cut
        // Half the 4 s lease after its last renewal, which came at most 250 ms before the cut, plus one ask.
        #expect(aStopped < .milliseconds(3000), "a stopped \(aStopped) after it was cut off")
        #expect(await Self.until(.seconds(10)) { probe.starts("b") == 1 })
        let bStarted = try #require(probe.first("start", "b"))
        #expect(bStarted - cut > .milliseconds(3000), "b waited for a's lease to lapse (≥ 3.75 s after the cut): started \(bStarted - cut) after it")
        let taken = try #require(try await storeB.lease(named: "job"))
        #expect(taken.holder == "b" && taken.acquiredAt >= lastRenewal.expiresAt.addingTimeInterval(-0.25),
                "taken once lapsed: \(taken), a's last \(lastRenewal)")
        #expect(probe.most.load(ordering: .sequentiallyConsistent) == 1, "never two at once")

        viewA.set(.answers)
        try await Task.sleep(for: .milliseconds(600))
        #expect(probe.starts("a") == 1 && probe.running == 1, "a reconnected stands by: b holds the lease")
        a.cancel(); b.cancel()
        await a.value; await b.value
        await cleanup()
    }

    @Test("a job that ends on its own gives the lease up and is started again after a pause")
    func restartsEndedJob() async throws {
        guard let (store, other, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let a = Task { try? await Self.node(store, "a", probe: probe, endFirst: true, renewEvery: .seconds(1)).run() }
        defer { a.cancel() }
        #expect(await Self.until(.seconds(10)) { probe.first("stop", "a") != nil })
        // Between the end and the restart (after 1 s, one ask's interval here) the lease is free: another node could take it.
        var sawFree = false
        #expect(try await Self.until(.seconds(10)) {
            if try await other.lease(named: "job") == nil { sawFree = true }
            return probe.starts("a") == 2
        })
        #expect(sawFree, "the lease was given up when the job ended on its own")
        let pause = try #require(probe.log.withLock { $0.last { $0.event == "start" }?.at }) - #require(probe.first("stop", "a"))
        #expect(pause >= .milliseconds(950), "restarted after the pause, not at once: \(pause)")
        #expect(probe.running == 1)
        #expect(try await other.lease(named: "job")?.holder == "a")
        a.cancel()
        await a.value
        #expect(probe.running == 0)
        await cleanup()
    }

    @Test("a stopped job that does not end within the wait: no second copy starts on the node, and the lease is not given up while it runs")
    func lingeringJob() async throws {
        guard let (storeA, other, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let viewA = CutOff(storeA)
        let a = Task { try? await Self.node(viewA, "a", probe: probe, linger: .seconds(3)).run() }
        defer { viewA.set(.answers); a.cancel() }
        #expect(await Self.until(.seconds(10)) { probe.starts("a") == 1 })
        viewA.set(.fails)
        // Stopped 2 s after its last renewal; it goes on for 3 s more, past the 1 s the node waits for it.
        #expect(await Self.until(.seconds(10)) { probe.first("cancelled", "a") != nil })
        viewA.set(.answers)
        try await Task.sleep(for: .milliseconds(1800))
        #expect(probe.starts("a") == 1 && probe.running == 1, "no second copy while the stopped one runs")
        // 2.6 s after the stop, which came 2 s after the last renewal before the cut: without renewals the 4 s lease has lapsed.
        try await Task.sleep(for: .milliseconds(800))
        let kept = try await other.lease(named: "job")
        #expect(kept?.holder == "a" && (kept?.expiresAt ?? .distantPast) > Date().addingTimeInterval(1),
                "the lease is kept renewed, so no other node starts one either: \(String(describing: kept))")
        #expect(await Self.until(.seconds(6)) { probe.starts("a") == 2 }, "started again once the stopped copy ended")
        #expect(probe.most.load(ordering: .sequentiallyConsistent) == 1, "never two at once")

        // Shut down while the copy goes on after its stop: the lease is left to lapse, not given up.
        a.cancel()
        await a.value
        #expect(probe.running == 1)
        #expect(try await other.lease(named: "job")?.holder == "a", "not given up while the stopped copy runs")
        #expect(await Self.until(.seconds(6)) { probe.running == 0 })
        await cleanup()
    }

    @Test("a slow store: one ask at a time, waited for again until it answers; a late ask's lease is given up at shutdown")
    func slowStore() async throws {
        guard let (storeA, other, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let viewA = CutOff(storeA)
        viewA.set(.slow(.milliseconds(700)))   // each ask answers after 700 ms, well past its 250 ms limit
        let a = Task { try? await Self.node(viewA, "a", probe: probe).run() }
        defer { a.cancel() }
        #expect(await Self.until(.seconds(10)) { probe.starts("a") == 1 }, "the slow answers are waited for again, and count")
        try await Task.sleep(for: .seconds(3))
        #expect(probe.starts("a") == 1 && probe.running == 1, "renewed all along (one answer about every 950 ms)")
        #expect(viewA.mostCalls.load(ordering: .sequentiallyConsistent) == 1, "never more than one ask under way")
        a.cancel()
        await a.value
        try await Task.sleep(for: .milliseconds(1600))   // every call sent has arrived
        #expect(try await other.lease(named: "job") == nil, "given up after the ask under way")

        // A node stopped before its first ask answered: that ask takes the lease later, and it is given up all the same.
        let late = Task { try? await Self.node(viewA, "late", probe: probe).run() }
        try await Task.sleep(for: .milliseconds(300))
        late.cancel()
        await late.value
        try await Task.sleep(for: .milliseconds(1600))
        #expect(probe.starts("late") == 0)
        #expect(try await other.lease(named: "job") == nil, "the late ask's lease was given up")
        await cleanup()
    }

    @Test("answers that land while the node sleeps between asks are taken, not thrown away for a fresh ask")
    func answersDuringSleep() async throws {
        guard let (storeA, _, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let viewA = CutOff(storeA)
        // Past the 250 ms an ask is waited for, within the 250 ms the node then sleeps: every answer lands in the sleep.
        viewA.set(.slow(.milliseconds(400)))
        let a = Task { try? await Self.node(viewA, "a", probe: probe).run() }
        defer { a.cancel() }
        #expect(await Self.until(.seconds(5)) { probe.starts("a") == 1 }, "started on an answer that came in during the sleep")
        try await Task.sleep(for: .seconds(3))
        #expect(probe.starts("a") == 1 && probe.running == 1, "kept running: each late answer renews the lease")
        a.cancel()
        await a.value
        await cleanup()
    }

    @Test("answers that come later than the stop deadline: nothing starts on them, the node keeps asking, and starts once the store answers in time")
    func lateAnswers() async throws {
        guard let (storeA, _, cleanup) = try await Self.twoNodes(.sqlite) else { return }
        let probe = Probe()
        let viewA = CutOff(storeA)
        viewA.set(.slow(.milliseconds(2500)))   // past the 2 s after which a renewal no longer counts
        let a = Task { try? await Self.node(viewA, "a", probe: probe).run() }
        defer { viewA.set(.answers); a.cancel() }
        try await Task.sleep(for: .seconds(7))
        #expect(probe.starts("a") == 0, "an answer 2.5 s old is no ground to start on")
        #expect(viewA.totalCalls.load(ordering: .sequentiallyConsistent) >= 2, "the node went on asking after the late answer")
        viewA.set(.answers)
        #expect(await Self.until(.seconds(8)) { probe.starts("a") == 1 }, "started once the store answers in time")
        a.cancel()
        await a.value
        await cleanup()
    }

    @Test("two nodes with the detections on: each attack is found once, not once per node", arguments: Database.allCases)
    func detectionsOnce(_ db: Database) async throws {
        guard let (storeA, storeB, cleanup) = try await Self.twoNodes(db) else { return }
        func node(_ store: any MenshenStore, _ name: String) throws -> LeasedService {
            let playbooks = try PlaybookState(file: "")
            return LeasedService(store: store, name: LeasedService.detectionsLease, holder: name, duration: .seconds(4),
                                 renewEvery: .milliseconds(250), logger: Logger(label: "test.\(name)")) {
                DetectionService(store: store, playbooks: playbooks, clock: SystemClock(), logger: Logger(label: "test.\(name)"),
                                 reloadInterval: .seconds(3600), pollInterval: .milliseconds(50))
            }
        }
        let a = Task { try? await node(storeA, "a").run() }
        let b = Task { try? await node(storeB, "b").run() }
        // The running one saved its starting cursor (the head of the log) before it looks at anything.
        #expect(try await Self.until(.seconds(20)) { try await storeA.cursor(named: DetectionService.cursorName) != nil })
        func spray(_ store: any MenshenStore, from source: String) async throws {
            let identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
            for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "svc-batch", "scanner"] {
                try await identity.authentication(.logon, user: nil, userName: name, success: false, detail: "wrong password",
                                                  source: source, factors: ["pwd"])
            }
        }
        func findings() async throws -> Int {
            try await storeA.events(after: 0, limit: 100_000).filter { $0.event.classUID == 2004 }.count
        }
        try await spray(storeA, from: "198.51.100.23")
        #expect(try await Self.until(.seconds(20)) { try await findings() >= 1 })
        try await Task.sleep(for: .seconds(2))
        #expect(try await findings() == 1, "found once by the node holding the lease")

        // The running node stops; the other takes over from the shared cursor and finds the next attack, once.
        let holder = try #require(try await storeA.lease(named: LeasedService.detectionsLease)?.holder)
        (holder == "a" ? a : b).cancel()
        await (holder == "a" ? a : b).value
        #expect(try await Self.until(.seconds(10)) {
            try await storeA.lease(named: LeasedService.detectionsLease)?.holder == (holder == "a" ? "b" : "a")
        })
        try await spray(storeB, from: "192.0.2.77")
        #expect(try await Self.until(.seconds(20)) { try await findings() >= 2 })
        try await Task.sleep(for: .seconds(2))
        #expect(try await findings() == 2, "the second attack found once, by the node that took over")
        a.cancel(); b.cancel()
        await a.value; await b.value
        await cleanup()
    }
}
