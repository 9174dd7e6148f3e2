import ArgumentParser
import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import MenshenVisibility
import Synchronization

/// `menshen store bench`: events per second through the audit pipeline as the
/// server runs it, on a throwaway SQLite file (and PostgreSQL when given):
///
/// 1. **decisions** — gateway decisions (real Cedar decisions of a realistic
///    policy set, a share of them raising `@alert` findings) handed to
///    ``DecisionLog`` and flushed: OCSF building and encoding, the hash chain
///    and the store, in the log's batches;
/// 2. **sign-ins** — identity events through ``IdentityEvents``, one store
///    write each as the portal does, 16 users at a time, including
///    password-spraying bursts;
/// 3. **detections** — the log read back in order, every event parsed and run
///    through the built-in ``DetectionEngine`` (Sigma rules, correlations,
///    behaviour detectors);
/// 4. **pipeline** — as the server runs it: as many decisions and sign-ins
///    again, written while a detection loop follows the log, timed until the
///    detections have read the last event written.
///
/// It prints each stage's events/s and CPU per event, their sum, and the
/// pipeline's events/s (the headline figure). Build with -c release for
/// meaningful numbers.
struct EventBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Events/s through decision audit, hash chain, store and detections (on a throwaway database).",
        discussion: """
            Uses a new SQLite file in a temporary directory (removed afterwards) and, with --postgres-url, a \
            PostgreSQL database that must be empty or hold only a Menshen schema (its events are not removed). \
            Not part of the tests: run it by hand on an idle machine (scripts/bench-events) and record the figures \
            in docs/benchmarks.md.
            """
    )

    @Option(name: .long, help: "Events to write (about 95% gateway decisions, 5% sign-ins).")
    var events: Int = 100_000

    @Option(name: .long, help: ArgumentHelp("Also run on this PostgreSQL database.", valueName: "url"))
    var postgresURL: String?

    @Flag(name: .long, help: "One JSON object per backend instead of the table.")
    var json = false

    func validate() throws {
        guard (1_000...10_000_000).contains(events) else { throw ValidationError("--events must be between 1000 and 10000000") }
    }

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var results: [Result] = []
        do {
            let sqlite = try SQLiteStore(path: dir.appendingPathComponent("bench.sqlite").path)
            results.append(try await Self.measure(store: sqlite, backend: "sqlite", events: events, progress: !json))
            try await sqlite.close()
            if let postgresURL {
                let pg = try await PostgresStore(url: try PostgresURL(postgresURL))
                do { results.append(try await Self.measure(store: pg, backend: "postgres", events: events, progress: !json)) } catch {
                    try? await pg.close()
                    throw error
                }
                try await pg.close()
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
        if json {
            for r in results { print(r.json) }
        } else {
            print("| backend | stage | events | seconds | events/s | CPU s | CPU µs/event |")
            print("|---|---|---|---|---|---|---|")
            for r in results {
                for s in r.stages + [r.sequential] {
                    print("| \(r.backend) | \(s.name) | \(s.events) | \(String(format: "%.2f", s.seconds)) | \(Self.grouped(s.rate)) | "
                          + "\(String(format: "%.2f", s.cpuSeconds)) | \(Int(s.cpuMicrosPerEvent.rounded())) |")
                }
                let p = r.pipeline
                print("| \(r.backend) | **\(p.name)** | \(p.events) | \(String(format: "%.2f", p.seconds)) | **\(Self.grouped(p.rate))** | "
                      + "\(String(format: "%.2f", p.cpuSeconds)) | \(Int(p.cpuMicrosPerEvent.rounded())) |")
            }
            for r in results { print("\(r.backend): \(r.findings) findings (\(r.findingKinds)); chain intact: \(r.chainIntact)") }
        }
    }

    struct Stage {
        var name: String; var events: Int; var seconds: Double
        /// Process CPU time (user + system, every thread) over the stage: on a shared machine, what the work cost.
        var cpuSeconds: Double
        var rate: Double { Double(events) / max(seconds, 1e-9) }
        var cpuMicrosPerEvent: Double { cpuSeconds * 1e6 / Double(max(events, 1)) }
    }

    /// CPU seconds this process has used so far.
    static func cpuNow() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    struct Result {
        var backend: String
        var stages: [Stage]
        /// The stages' totals (events written; the stages' wall and CPU time summed).
        var sequential: Stage
        /// Writers and detections at once, as in the server.
        var pipeline: Stage
        var findings: Int
        var findingKinds: String
        var chainIntact: Bool
        var json: String {
            let stageJSON = (stages + [sequential, pipeline]).map {
                #"{"stage":"\#($0.name)","events":\#($0.events),"seconds":\#($0.seconds),"cpu_seconds":\#($0.cpuSeconds),"events_per_s":\#(Int($0.rate))}"#
            }
            return #"{"backend":"\#(backend)","events":\#(pipeline.events),"seconds":\#(pipeline.seconds),"cpu_seconds":\#(pipeline.cpuSeconds),"events_per_s":\#(Int(pipeline.rate)),"findings":\#(findings),"chain_intact":\#(chainIntact),"stages":[\#(stageJSON.joined(separator: ","))]}"#
        }
    }

    /// Events the detection pass has read so far, for its watchdog.
    final class Progress: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Tells the pipeline's detections that the writers are done.
    final class DoneSignal: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    static func grouped(_ v: Double) -> String {
        let n = Int(v.rounded())
        var s = String(n), out = ""
        while s.count > 3 { out = "," + s.suffix(3) + out; s = String(s.dropLast(3)) }
        return s + out
    }

    /// Advances 1 ms per reading, so event times spread like a busy gateway's.
    final class SteppingClock: WallClock {
        private let millis = Atomic<Int64>(1_795_000_000_000)
        func now() -> Date { Date(timeIntervalSince1970: Double(millis.add(1, ordering: .relaxed).newValue) / 1000) }
    }

    static let policies = """
        @id("staff-everyday") permit (principal in Group::"staff", action, resource) when { context.session.loa >= 1 };
        @id("payments-watched") @alert("high")
        permit (principal in Group::"staff", action == Action::"export", resource == Application::"payments");
        @id("no-exports-without-mfa") forbid (principal, action == Action::"export", resource) when { context.session.loa < 2 };
        @id("vendors-off-restricted") forbid (principal in Group::"vendors", action, resource)
          when { resource.classification == "restricted" };
        @id("high-risk-sessions-never") forbid (principal, action, resource) when { context.risk.score >= 80 };
        """

    /// Sign-ins in flight at once, as at a portal (the store commits waiting ones together). At the target rate
    /// (1,000 sign-ins/s: 5% of 20,000 events/s), with a commit that may wait behind a batch of 2,000 decisions
    /// (tens of milliseconds), about fifty are in flight at any time (Little's law); 16 (before 2026-11-27) made
    /// the sign-ins' latency, not the pipeline, set the figure.
    static let signInConcurrency = 64

    static func measure(store: any MenshenStore, backend: String, events: Int, progress: Bool) async throws -> Result {
        let clock = SteppingClock()
        let random = SystemRandomSource()
        let pdp = try PolicyDecisionPoint(documents: [(name: "bench.cedar", text: policies)])
        let signIns = max(100, events / 20)
        let decisionsWanted = events - signIns
        func say(_ s: String) { if progress { FileHandle.standardError.write(Data("==> \(backend): \(s)\n".utf8)) } }
        let log = DecisionLog(store: store, clock: clock, random: random, capacity: 20_000)
        let identity = IdentityEvents(store: store, clock: clock, random: random)

        // Stage by stage: where the CPU goes.
        // 1. Gateway decisions through the decision log, in chunks as its flush timer would take them.
        say("\(decisionsWanted) gateway decisions")
        var decisionEvents = 0
        var seconds = 0.0, cpu = 0.0
        var n = 0
        while n < decisionsWanted {
            let chunk = min(10_000, decisionsWanted - n)
            let (trails, eventCount) = trailsFor(n..<(n + chunk), pdp: pdp, clock: clock)
            let start = ContinuousClock.now, cpuStart = cpuNow()
            for t in trails { log.record(t) }
            await log.flush()
            seconds += (ContinuousClock.now - start).seconds
            cpu += cpuNow() - cpuStart
            decisionEvents += eventCount
            n += chunk
        }
        guard log.droppedCount == 0 else { throw BenchError("the decision log dropped \(log.droppedCount) decisions") }
        var stages = [Stage(name: "decisions (audit+chain+store)", events: decisionEvents, seconds: seconds, cpuSeconds: cpu)]

        // 2. Sign-ins, one write each, several users at once; every 50th burst is password spraying from one address.
        say("\(signIns) sign-in events")
        var start = ContinuousClock.now, cpuStart = cpuNow()
        try await signInEvents(0..<signIns, identity: identity)
        stages.append(Stage(name: "sign-ins (\(signInConcurrency) at a time, one write each)", events: signIns,
                            seconds: (ContinuousClock.now - start).seconds, cpuSeconds: cpuNow() - cpuStart))

        // 3. Detections over the whole log, read back in order.
        say("detections over the log")
        var engine = try DetectionEngine.builtIn()
        start = ContinuousClock.now
        cpuStart = cpuNow()
        let logged = Int(try await store.lastEvent()?.sequence ?? 0)
        let pass = try await detect(store: store, after: 0, previous: genesisEventHash, until: logged, engine: &engine, writersDone: nil)
        var findings = pass.findings
        for f in engine.advance(to: clock.now().addingTimeInterval(3600)) { findings[f.title, default: 0] += 1 }
        stages.append(Stage(name: "detections (read+parse+rules+chain check)", events: pass.read, seconds: (ContinuousClock.now - start).seconds,
                            cpuSeconds: cpuNow() - cpuStart))
        let sequential = Stage(name: "stages one after another", events: decisionEvents + signIns,
                               seconds: stages.map(\.seconds).reduce(0, +), cpuSeconds: stages.map(\.cpuSeconds).reduce(0, +))

        // 4. The pipeline as the server runs it: decisions and sign-ins written while the detection service
        // follows the log; timed until the detections have read the last event written.
        var trailChunks: [[DecisionTrail]] = []
        var pipelineDecisionEvents = 0
        n = 0
        while n < decisionsWanted {
            // As the log's timer takes them at the target rate: 20,000 decisions/s, a flush every 250 ms.
            let chunk = min(5_000, decisionsWanted - n)
            let (trails, eventCount) = trailsFor((decisionsWanted + n)..<(decisionsWanted + n + chunk), pdp: pdp, clock: clock)
            trailChunks.append(trails)
            pipelineDecisionEvents += eventCount
            n += chunk
        }
        let expected = pipelineDecisionEvents + signIns
        guard let head = try await store.lastEvent() else { throw BenchError("the log is empty after the stages") }
        let pipelineEngine = try DetectionEngine.builtIn()
        let chunksToWrite = trailChunks
        let writersDone = DoneSignal()
        say("pipeline: \(decisionsWanted) decisions and \(signIns) sign-ins written while detections follow the log")
        start = ContinuousClock.now
        cpuStart = cpuNow()
        let pipelinePass = try await withThrowingTaskGroup(of: DetectPass?.self) { group in
            group.addTask {
                // As the log's run loop under load: the next chunk is built while the last batch is written.
                for trails in chunksToWrite {
                    for t in trails { log.record(t) }
                    await log.flush(waitForLastWrite: log.pendingCount < DecisionLog.batchSize)
                }
                await log.flush()
                return nil
            }
            group.addTask {
                try await signInEvents(signIns..<(2 * signIns), identity: identity)
                return nil
            }
            var result: DetectPass?
            var finished = 0
            group.addTask { [pipelineEngine] in
                var engine = pipelineEngine
                return try await detect(store: store, after: head.sequence, previous: head.hash, until: expected, engine: &engine,
                                        writersDone: writersDone)
            }
            while let r = try await group.next() {
                if let r { result = r } else {
                    finished += 1
                    if finished == 2 { writersDone.set() }
                }
            }
            return result
        }
        guard let pipelinePass, pipelinePass.read == expected else {
            throw BenchError("the pipeline's detections read \(pipelinePass?.read ?? 0) of \(expected) events")
        }
        let pipeline = Stage(name: "pipeline (written and detected concurrently)", events: expected,
                             seconds: (ContinuousClock.now - start).seconds, cpuSeconds: cpuNow() - cpuStart)
        let kinds = findings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return Result(backend: backend, stages: stages, sequential: sequential, pipeline: pipeline, findings: findings.values.reduce(0, +),
                      findingKinds: kinds, chainIntact: pass.chainIntact && pipelinePass.chainIntact)
    }

    /// Gateway decisions `range` (real Cedar decisions, made before any timing) and the events they log.
    static func trailsFor(_ range: Range<Int>, pdp: PolicyDecisionPoint, clock: SteppingClock) -> ([DecisionTrail], Int) {
        let apps = [("wiki", "internal"), ("payments", "confidential"), ("core-banking", "restricted"), ("reports", "confidential")]
        let methods = ["GET", "GET", "GET", "POST", "GET", "PUT", "DELETE", "GET"]
        var trails: [DecisionTrail] = []
        trails.reserveCapacity(range.count)
        var events = 0
        for i in range {
            let (app, classification) = apps[i % apps.count]
            let user = "user\(i % 400)"
            let method = methods[i % methods.count]
            let export = i % 97 == 0
            let access = AccessRequest(
                principal: .init(id: user, groups: i % 23 == 0 ? ["vendors"] : ["staff", "branch-\(i % 12)"]),
                session: .init(levelOfAssurance: 1 + i % 3, amr: i % 3 == 0 ? ["pwd"] : ["pwd", "otp"], factorAgeSeconds: i % 3600,
                               ageSeconds: i % 7200),
                device: i % 31 == 0 ? nil : .init(enrolled: true, managed: i % 11 != 0, compliant: i % 13 != 0, hardwareBound: i % 2 == 0,
                                                  external: false, postureAgeSeconds: i % 900, maxVulnerabilitySeverity: i % 4),
                context: .init(time: clock.now(), sourceIP: "10.1.\(i % 400 / 200).\(i % 200 + 1)", networkZone: i % 5 == 0 ? "branch" : "corporate",
                               method: method, path: "/\(app)/api/accounts/\(i % 1000)?page=\(i % 9)", riskScore: i % 50 == 0 ? 85 : i % 40),
                resource: .init(applicationID: app, classification: classification), isExport: export)
            let decision = pdp.decide(access)
            var trail = DecisionTrail(requestID: String(i, radix: 16), time: access.context.time, mode: .proxy, method: method,
                                      host: "gw.bank.example", path: access.context.path, sourceIP: access.context.sourceIP)
            trail.outcome = decision.effect == .allow ? .allow : decision.effect == .deny ? .deny : .stepUp
            trail.application = app
            trail.user = user
            trail.sessionHash = SecretHash.sha256Hex(bytes: Array("session-\(i % 400)".utf8))
            trail.policyGeneration = 7
            trail.access = access
            trail.decision = decision
            trails.append(trail)
            events += decision.obligations.contains { if case .alert = $0 { true } else { false } } ? 2 : 1
        }
        return (trails, events)
    }

    /// Sign-ins `range` through ``IdentityEvents`` from ``signInConcurrency`` users at once; every 50th burst of
    /// forty is password spraying from one address.
    static func signInEvents(_ range: Range<Int>, identity: IdentityEvents) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<signInConcurrency {
                group.addTask {
                    for i in stride(from: range.lowerBound + worker, to: range.upperBound, by: signInConcurrency) {
                        let spraying = (i / 40) % 50 == 49
                        let user = "user\(i % 400)"
                        let ok = !spraying && i % 9 != 0
                        try await identity.authentication(.logon, user: UserID(user), userName: user, success: ok,
                                                           detail: ok ? "password and one-time code" : "wrong password",
                                                           source: spraying ? "203.0.113.77" : "10.1.\(i % 400 / 200).\(i % 200 + 1)",
                                                           factors: ok ? ["pwd", "otp"] : ["pwd"], loa: ok ? 2 : nil)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    struct DetectPass: Sendable {
        var read = 0
        var unreadable = 0
        var findings: [String: Int] = [:]
        var chainIntact = true
    }

    /// Reads the log after `after` as the detection service does, with its ``EventTail`` settings: the tail reads
    /// each page of ``detectionPage`` events one page ahead, on another core, while the page before is parsed and run
    /// through the engine; when a page is not full (the log is caught up) it waits for the store's next commit, at most
    /// ``detectionIdle``. The service
    /// does not check the chain; this pass does, in the read-ahead stage (each record's hash and links within the
    /// page) and here (the link between pages). Stops once `until` events were read; gives up when the writers are
    /// done and nothing new was read for ``giveUpAfter``.
    static func detect(store: any MenshenStore, after: Int64, previous: String, until: Int, engine: inout DetectionEngine,
                       writersDone: DoneSignal?) async throws -> DetectPass {
        let projection = engine.projection
        let tail = EventTail(store: store, batchSize: detectionPage, idleInterval: detectionIdle)
        let progress = Progress()
        let follower = Task { [engine] () -> (DetectPass, DetectionEngine) in
            var engine = engine
            var pass = DetectPass()
            var previous = previous
            await tail.follow(after: after, prepare: { page in
                // Within the page: every record's own hash and its link to the one before it.
                EventChain.firstBrokenLink(page, expectedPrevious: page.first?.previousHash ?? genesisEventHash) == nil
            }) { page, intact in
                // Across pages: the first record links to the last one of the page before.
                if !intact || page.first?.previousHash != previous { pass.chainIntact = false }
                previous = page[page.count - 1].hash
                for stored in page {
                    guard let event = try? DetectionEvent(stored, projection: projection) else { pass.unreadable += 1; continue }
                    for f in engine.process(event) { pass.findings[f.title, default: 0] += 1 }
                }
                pass.read += page.count
                progress.value.store(pass.read, ordering: .releasing)
                if pass.read >= until { withUnsafeCurrentTask { $0?.cancel() } }
            }
            return (pass, engine)
        }
        // The follower ends itself when it has read `until` events; this watchdog stops one that stalls.
        let watchdog = Task {
            var lastSeen = 0, lastChange = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                let now = progress.value.load(ordering: .acquiring)
                if now != lastSeen { lastSeen = now; lastChange = .now }
                if writersDone?.isSet ?? true, ContinuousClock.now - lastChange > giveUpAfter { follower.cancel(); return }
            }
        }
        let (pass, finalEngine) = await follower.value
        watchdog.cancel()
        engine = finalEngine
        guard pass.unreadable == 0 else { throw BenchError("\(pass.unreadable) events could not be parsed for detection") }
        return pass
    }

    static let giveUpAfter = Duration.seconds(10)

    /// The detection service's `EventTail` settings (``DetectionService`` defaults): pages of 500 events, and a
    /// pause of 100 ms when the log is caught up.
    static let detectionPage = 500
    static let detectionIdle = Duration.milliseconds(100)

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
