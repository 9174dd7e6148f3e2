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
///    write each as the portal does, including a password-spraying burst;
/// 3. **detections** — the log read back in order, every event parsed and run
///    through the built-in ``DetectionEngine`` (Sigma rules, correlations,
///    behaviour detectors).
///
/// It prints each stage's events/s and the pipeline's (all events over the
/// three stages' total time). Build with -c release for meaningful numbers.
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
                for s in r.stages {
                    print("| \(r.backend) | \(s.name) | \(s.events) | \(String(format: "%.2f", s.seconds)) | \(Self.grouped(s.rate)) | "
                          + "\(String(format: "%.2f", s.cpuSeconds)) | \(Int(s.cpuMicrosPerEvent.rounded())) |")
                }
                print("| \(r.backend) | **pipeline** | \(r.total) | \(String(format: "%.2f", r.seconds)) | **\(Self.grouped(r.rate))** | "
                      + "\(String(format: "%.2f", r.cpuSeconds)) | \(Int((r.cpuSeconds * 1e6 / Double(max(r.total, 1))).rounded())) |")
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
        var findings: Int
        var findingKinds: String
        var chainIntact: Bool
        var total: Int { stages.filter { !$0.name.hasPrefix("detections") }.map(\.events).reduce(0, +) }
        var seconds: Double { stages.map(\.seconds).reduce(0, +) }
        var cpuSeconds: Double { stages.map(\.cpuSeconds).reduce(0, +) }
        var rate: Double { Double(total) / max(seconds, 1e-9) }
        var json: String {
            let stageJSON = stages.map { #"{"stage":"\#($0.name)","events":\#($0.events),"seconds":\#($0.seconds),"cpu_seconds":\#($0.cpuSeconds),"events_per_s":\#(Int($0.rate))}"# }
            return #"{"backend":"\#(backend)","events":\#(total),"seconds":\#(seconds),"cpu_seconds":\#(cpuSeconds),"events_per_s":\#(Int(rate)),"findings":\#(findings),"chain_intact":\#(chainIntact),"stages":[\#(stageJSON.joined(separator: ","))]}"#
        }
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

    static func measure(store: any MenshenStore, backend: String, events: Int, progress: Bool) async throws -> Result {
        let clock = SteppingClock()
        let random = SystemRandomSource()
        let pdp = try PolicyDecisionPoint(documents: [(name: "bench.cedar", text: policies)])
        let signIns = max(100, events / 20)
        let decisionsWanted = events - signIns
        func say(_ s: String) { if progress { FileHandle.standardError.write(Data("==> \(backend): \(s)\n".utf8)) } }

        // 1. Gateway decisions through the decision log, in chunks as its flush timer would take them.
        let log = DecisionLog(store: store, clock: clock, random: random, capacity: 20_000)
        let apps = [("wiki", "internal"), ("payments", "confidential"), ("core-banking", "restricted"), ("reports", "confidential")]
        let methods = ["GET", "GET", "GET", "POST", "GET", "PUT", "DELETE", "GET"]
        let sessionHashes = (0..<400).map { SecretHash.sha256Hex(bytes: Array("session-\($0)".utf8)) }
        var trails: [DecisionTrail] = []
        trails.reserveCapacity(10_000)
        var decisionEvents = 0
        var seconds = 0.0, cpu = 0.0
        say("\(decisionsWanted) gateway decisions")
        var n = 0
        while n < decisionsWanted {
            let chunk = min(10_000, decisionsWanted - n)
            trails.removeAll(keepingCapacity: true)
            for i in n..<(n + chunk) {
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
                trail.sessionHash = sessionHashes[i % 400]
                trail.policyGeneration = 7
                trail.access = access
                trail.decision = decision
                trails.append(trail)
                decisionEvents += decision.obligations.contains { if case .alert = $0 { true } else { false } } ? 2 : 1
            }
            let start = ContinuousClock.now, cpuStart = cpuNow()
            for t in trails { log.record(t) }
            await log.flush()
            seconds += (ContinuousClock.now - start).seconds
            cpu += cpuNow() - cpuStart
            n += chunk
        }
        guard log.droppedCount == 0 else { throw BenchError("the decision log dropped \(log.droppedCount) decisions") }
        var stages = [Stage(name: "decisions (audit+chain+store)", events: decisionEvents, seconds: seconds, cpuSeconds: cpu)]

        // 2. Sign-ins, one write each; every 50th a burst of password spraying from one address.
        say("\(signIns) sign-in events")
        let identity = IdentityEvents(store: store, clock: clock, random: random)
        var start = ContinuousClock.now, cpuStart = cpuNow()
        for i in 0..<signIns {
            let spraying = (i / 40) % 50 == 49
            let user = "user\(i % 400)"
            let ok = !spraying && i % 9 != 0
            try await identity.authentication(.logon, user: UserID(user), userName: user, success: ok,
                                               detail: ok ? "password and one-time code" : "wrong password",
                                               source: spraying ? "203.0.113.77" : "10.1.\(i % 400 / 200).\(i % 200 + 1)",
                                               factors: ok ? ["pwd", "otp"] : ["pwd"], loa: ok ? 2 : nil)
        }
        stages.append(Stage(name: "sign-ins (one write each)", events: signIns, seconds: (ContinuousClock.now - start).seconds,
                            cpuSeconds: cpuNow() - cpuStart))

        // 3. Detections over the whole log, read back in order.
        say("detections over the log")
        var engine = try DetectionEngine.builtIn()
        var findings: [String: Int] = [:]
        var read = 0
        var after: Int64 = 0
        var previous = genesisEventHash
        var chainIntact = true
        start = ContinuousClock.now
        cpuStart = cpuNow()
        while true {
            let page = try await store.events(after: after, limit: 1000)
            guard let last = page.last else { break }
            if EventChain.firstBrokenLink(page, expectedPrevious: previous) != nil { chainIntact = false }
            previous = last.hash
            after = last.sequence
            for stored in page {
                for f in engine.process(try DetectionEvent(stored, projection: engine.projection)) { findings[f.title, default: 0] += 1 }
            }
            read += page.count
        }
        for f in engine.advance(to: clock.now().addingTimeInterval(3600)) { findings[f.title, default: 0] += 1 }
        stages.append(Stage(name: "detections (read+parse+rules+chain check)", events: read, seconds: (ContinuousClock.now - start).seconds,
                            cpuSeconds: cpuNow() - cpuStart))
        let kinds = findings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return Result(backend: backend, stages: stages, findings: findings.values.reduce(0, +), findingKinds: kinds, chainIntact: chainIntact)
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
