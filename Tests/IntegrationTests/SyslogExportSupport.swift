import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import MenshenVisibility
import Testing

/// A real rsyslogd started by `scripts/rsyslog-throwaway` (plain TCP and TLS listeners, a JSON
/// line per received message with rsyslog's own parse of it). Stopped and deleted by ``clean()``,
/// which the tests call on every path (`defer`).
final class ThrowawayRsyslog: @unchecked Sendable {
    let dir: URL
    let auth: String
    private(set) var tcpPort = 0
    private(set) var tlsPort = 0
    var output: URL { dir.appendingPathComponent("messages.jsonl") }
    var caFile: String { dir.appendingPathComponent("ca.pem").path }
    var clientCert: String { dir.appendingPathComponent("client.pem").path }
    var clientKey: String { dir.appendingPathComponent("client.key").path }

    static var script: String { Harness.packageRoot.appendingPathComponent("scripts/rsyslog-throwaway").path }

    /// Starts one on free ports below 32768, or returns nil (recording an issue under CI) when rsyslog is not installed.
    static func start(auth: String = "anon") async throws -> ThrowawayRsyslog? {
        let r = ThrowawayRsyslog(dir: try Harness.tempDir().appendingPathComponent("rsyslog"), auth: auth)
        var lastError = ""
        for _ in 0..<6 {
            let base = Int.random(in: 20_000...31_000)
            let (status, _, err) = try await Self.script(["start", r.dir.path, String(base), String(base + 1), auth])
            if status == 0 { r.tcpPort = base; r.tlsPort = base + 1; return r }
            if status == 3 {
                if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("rsyslog is missing under CI: \(err)") }
                else { FileHandle.standardError.write(Data("WARNING: rsyslog is not installed; the SIEM export tests are SKIPPED (\(err))\n".utf8)) }
                r.clean()
                return nil
            }
            lastError = err
        }
        r.clean()
        throw Harness.HarnessError("rsyslog-throwaway did not start: \(lastError)")
    }

    private init(dir: URL, auth: String) { self.dir = dir; self.auth = auth }

    static func script(_ args: [String]) async throws -> (Int32, String, String) {
        try await Harness.offPool {
            // posix_spawn, not Foundation's Process (see `spawnAndWait`).
            let r = try spawnAndWait(script, args)
            return (r.status, r.stdoutText, r.stderrText)
        }
    }

    /// Stops rsyslogd (SIGTERM; it drains its queue to the file). The directory, certificates and output stay.
    func stop() async throws {
        let (status, _, err) = try await Self.script(["stop", dir.path])
        if status != 0 { throw Harness.HarnessError("rsyslog-throwaway stop: \(err)") }
    }

    /// Starts it again on the same ports and directory.
    func restart() async throws {
        var lastError = ""
        for _ in 0..<40 {   // the old listener's port may linger a moment
            let (status, _, err) = try await Self.script(["start", dir.path, String(tcpPort), String(tlsPort), auth])
            if status == 0 { return }
            lastError = err
            try await Task.sleep(for: .milliseconds(250))
        }
        throw Harness.HarnessError("rsyslog-throwaway restart: \(lastError)")
    }

    /// Stops it and deletes its directory (synchronously, so it can run in `defer`).
    func clean() {
        _ = try? spawnAndWait(Self.script, ["clean", dir.path])
        try? FileManager.default.removeItem(at: dir.deletingLastPathComponent())
    }

    /// The messages received so far, as rsyslog parsed them.
    func messages() -> [[String: String]] {
        guard let data = FileManager.default.contents(atPath: output.path), let text = String(data: data, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
        }
    }

    /// Waits until at least `count` messages arrived (or `timeout` passes); returns them.
    func waitForMessages(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [[String: String]] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let m = messages()
            if m.count >= count || ContinuousClock.now > deadline { return m }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Events with nasty text, written by the real producers into a real SQLite store.
enum NastyEvents {
    static let names = ["alice", "pipe|user", #"back\slash"#, "eq=uals", "new\nline", "cr\rreturn", "王小明", "émile 🙂",
                        #"quote"and]bracket"#, String(repeating: "長", count: 400)]

    /// Appends `count` events (sign-in failures and account changes, cycling through ``names``) and returns them as stored.
    static func append(_ count: Int, to store: any MenshenStore, clock: FixedClock, offset: Int = 0) async throws -> [StoredEvent] {
        let before = try await store.lastEvent()?.sequence ?? 0
        let events = IdentityEvents(store: store, clock: clock, random: SystemRandomSource())
        for i in 0..<count {
            let n = names[(i + offset) % names.count]
            clock.advance(by: 1)
            if i % 3 == 2 {
                try await events.accountChange(.other, user: UserID("u\(i)"), actor: n, detail: "changed \(n) = x\\y|z\r\nnext #\(i + offset)")
            } else {
                try await events.authentication(.logon, user: nil, userName: n, success: false,
                                                detail: "wrong password for \(n) | a=b \\ c\nline #\(i + offset)", source: "203.0.113.\(i % 250)")
            }
        }
        return try await store.events(after: before, limit: count + 10)
    }
}

/// Runs an exporter in the background until ``stop()``.
final class RunningExporter: @unchecked Sendable {
    let exporter: SyslogExporter
    private let task: Task<Void, Never>

    init(_ exporter: SyslogExporter) {
        self.exporter = exporter
        task = Task { try? await exporter.run() }
    }

    func stop() async {
        task.cancel()
        await task.value
    }

    /// Waits until the exporter's confirmed sequence reaches `sequence`.
    func waitConfirmed(_ sequence: Int64, timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while exporter.status.confirmedSequence < sequence {
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(100))
        }
        return true
    }
}

extension SyslogExportSettings {
    /// Test settings: short confirmation and back-off so the tests run in seconds.
    static func test(port: Int, transport: Transport, format: SyslogEventFormatter.Body = .cef, caFile: String = "",
                     cert: String = "", key: String = "") -> SyslogExportSettings {
        SyslogExportSettings(host: "127.0.0.1", port: port, transport: transport, caFile: caFile, certificateFile: cert, privateKeyFile: key,
                             serverName: transport == .tls ? "localhost" : "",
                             formatter: SyslogEventFormatter(body: format, hostname: "gw01.test", productVersion: MenshenCore.version),
                             connectTimeout: .seconds(2), writeTimeout: .seconds(2), confirmAfter: .milliseconds(600),
                             maxBackoff: .milliseconds(500), idleInterval: .milliseconds(50))
    }
}
