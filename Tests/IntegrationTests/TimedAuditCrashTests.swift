import Foundation
import MenshenStorage
import MenshenStorageSQLite
import Synchronization
import MenshenTestSupport
import Testing

/// Crash durability of the audit log: the real `menshen serve` on SQLite takes a
/// load of failed sign-ins (each answered only after its event is committed), is
/// killed with SIGKILL mid-load, and restarted. Every event the server
/// acknowledged is in the log, and `menshen audit verify` finds it intact.
@Suite("Timed audit log across SIGKILL", .serialized)
struct TimedAuditCrashTests {
    struct Server {
        let dir: URL
        let config: String
        let portal: String
        let admin: Int
        let database: String

        init(dir: URL) throws {
            let p = try Harness.freePort(), g = try Harness.freePort()
            admin = try Harness.freePort()
            portal = "http://127.0.0.1:\(p)"
            self.dir = dir
            database = dir.appendingPathComponent("data/menshen.sqlite").path
            let file = dir.appendingPathComponent("menshen.yaml")
            try """
                server:
                  listen: 127.0.0.1:\(p)
                  public_url: \(portal)
                gateway:
                  listen: 127.0.0.1:\(g)
                  public_url: http://127.0.0.1:\(g)
                admin:
                  listen: 127.0.0.1:\(admin)
                store:
                  driver: sqlite
                  sqlite:
                    path: \(database)
                audit:
                  checkpoint:
                    every_events: 25
                    interval_seconds: 1
                """.write(to: file, atomically: true, encoding: .utf8)
            config = file.path
        }

        func start() throws -> ChildProcess {
            let process = ChildProcess()
            try Harness.startServe(process, config: config, adminPort: admin, name: "menshen serve (audit crash)")
            return process
        }
    }

    /// Signs in as `names` (unknown users) over one CSRF-protected visitor; returns the names
    /// whose answer (401 or 429, both sent only after the event was committed) arrived.
    /// Stops at the first request that gets no answer (the server died) or when `stop` is set.
    /// Shared by the load's client threads.
    final class LoadState: Sendable {
        let stop = Atomic<Bool>(false)
        let acknowledged = Mutex<[String]>([])
    }

    static func failedSignIns(_ portal: String, prefix: String, state: LoadState) {
        guard let page = try? PortalIdentityTests.httpSync("GET", portal + "/signin"),
              let token = try? PortalIdentityTests.Visitor.csrf(in: page.body) else { return }
        var cookies: [String: String] = [:]
        for line in page.header("set-cookie") {
            let pair = line.prefix { $0 != ";" }
            if let eq = pair.firstIndex(of: "=") { cookies[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
        }
        var i = 0
        while !state.stop.load(ordering: .relaxed) {
            i += 1
            let name = "\(prefix)-\(i)"
            guard let r = try? PortalIdentityTests.httpSync("POST", portal + "/signin", cookies: cookies,
                                                           form: [("user", name), ("password", "wrong"), ("csrf", token)],
                                                           headers: ["Origin": portal]) else { return }
            if r.status == 401 || r.status == 429 { state.acknowledged.withLock { $0.append(name) } }
            else if r.status == 0 { return }
        }
    }

    static func load(_ portal: String, workers: Int, prefix: String, until: @escaping @Sendable (Int) -> Bool,
                     then action: @Sendable () -> Void) -> [String] {
        let state = LoadState()
        let group = DispatchGroup()
        for w in 0..<workers {
            DispatchQueue.global().async(group: group) { failedSignIns(portal, prefix: "\(prefix)\(w)", state: state) }
        }
        let deadline = Date().addingTimeInterval(30)
        while !until(state.acknowledged.withLock { $0.count }), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        action()
        state.stop.store(true, ordering: .relaxed)
        group.wait()
        return state.acknowledged.withLock { $0 }
    }

    static func crashRun() throws -> (acknowledged: [String], server: Server) {
        let dir = try Harness.tempDir()
        let server = try Server(dir: dir)
        let first = try server.start()
        defer { if first.isRunning { first.signal(SIGKILL); first.waitUntilExit() } }
        // SIGKILL while four clients are still signing in (some requests are in flight).
        let beforeCrash = load(server.portal, workers: 4, prefix: "crash-a", until: { $0 >= 150 }) {
            first.signal(SIGKILL)
        }
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal && first.terminationStatus == SIGKILL)

        let second = try server.start()
        defer { if second.isRunning { second.signal(SIGKILL); second.waitUntilExit() } }
        let afterRestart = load(server.portal, workers: 2, prefix: "crash-b", until: { $0 >= 20 }) {}
        second.signal(SIGTERM)
        second.waitUntilExit()
        #expect(second.terminationStatus == 0, "graceful shutdown after the restart")
        return (beforeCrash + afterRestart, server)
    }

    @Test("every acknowledged event survives SIGKILL mid-load, and the chain and its checkpoints verify after restart",
          .timeLimit(.minutes(3)))
    func killedMidLoad() async throws {
        let (acknowledged, server) = try await Harness.offPool { try Self.crashRun() }
        defer { try? FileManager.default.removeItem(at: server.dir) }
        #expect(acknowledged.count >= 170)

        let store = try SQLiteStore(path: server.database)
        var payloads = ""
        var after: Int64 = 0
        while true {
            let page = try await store.events(after: after, limit: 1000)
            guard let last = page.last else { break }
            for e in page { payloads += e.event.payloadJSON }
            after = last.sequence
        }
        let checkpoints = try await store.checkpoints(after: 0, limit: 10_000)
        try await store.close()
        let missing = acknowledged.filter { !payloads.contains("\"\($0)\"") }
        #expect(missing.isEmpty, "acknowledged but not in the log: \(missing.prefix(10))")
        #expect(checkpoints.count >= 2, "checkpoints were signed during the load and at shutdown")

        let verify = try await Harness.runAsync(["audit", "verify", "--config", server.config, "--json"])
        #expect(verify.status == 0 && verify.out.contains(#""status":"intact""#), "\(verify)")
        #expect(verify.out.contains(#""unsigned_tail":0"#), "the graceful shutdown signed the head: \(verify.out)")
    }
}
