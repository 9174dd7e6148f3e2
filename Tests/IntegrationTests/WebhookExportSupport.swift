import Foundation
import Logging
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenTestSupport
import Synchronization
import Testing

/// Certificates made with `openssl` for the webhook export tests: a throwaway CA, a server certificate
/// for `localhost`/127.0.0.1 and a client certificate (mutual TLS) from it, and a second, unrelated CA.
struct WebhookTestPKI {
    let dir: URL
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    var caFile: String { path("ca.pem") }
    var otherCAFile: String { path("other-ca.pem") }
    var serverCert: String { path("server.pem") }
    var serverKey: String { path("server.key") }
    var clientCert: String { path("client.pem") }
    var clientKey: String { path("client.key") }

    /// Makes them in `dir` (blocking: call off the cooperative pool).
    static func make(in dir: URL) throws -> WebhookTestPKI {
        let pki = WebhookTestPKI(dir: dir)
        func openssl(_ args: [String]) throws {
            let r = try TimedDeviceEndToEndTests.process("/usr/bin/openssl", args)
            guard r.status == 0 else { throw Harness.HarnessError("openssl \(args.prefix(2).joined(separator: " ")): \(r.err)") }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-days", "2", "-keyout", pki.path("ca.key"), "-out", pki.caFile, "-subj", "/CN=Webhook Test CA"])
        try openssl(["req", "-x509"] + ec + ["-days", "2", "-keyout", pki.path("other-ca.key"), "-out", pki.otherCAFile, "-subj", "/CN=Webhook Test CA"])
        for (name, ext) in [("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
                            ("client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")] {
            try ext.write(toFile: pki.path("\(name).ext"), atomically: true, encoding: .utf8)
            try openssl(["req"] + ec + ["-keyout", pki.path("\(name).key"), "-out", pki.path("\(name).csr"), "-subj", "/CN=\(name == "server" ? "localhost" : "menshen-exporter")"])
            try openssl(["x509", "-req", "-in", pki.path("\(name).csr"), "-CA", pki.caFile, "-CAkey", pki.path("ca.key"), "-CAcreateserial",
                         "-days", "2", "-out", pki.path("\(name).pem"), "-extfile", pki.path("\(name).ext")])
        }
        return pki
    }
}

/// `scripts/webhook-export-receiver.py`: a real HTTPS server (Python's `http.server` over `ssl`) that records
/// every request and answers what its answers file says. Stopped by ``stop()`` (call it in `defer`).
final class WebhookExportReceiver: @unchecked Sendable {
    // Invariant: started and stopped by one test; `process` is touched only in init and stop().
    let process = ChildProcess()
    let log: URL
    let answers: URL
    let port: Int

    struct Request {
        var time: Double
        var answer: String
        var body: String
        var headers: [String: String]
        /// The `sequence` and `id` of each event in the body (empty when the body is not the export's JSON).
        var events: [(sequence: Int64, id: String)]
    }

    /// Starts it (blocking; call off the cooperative pool). `port` 0 picks a free one.
    init(dir: URL, pki: WebhookTestPKI?, port: Int = 0, clientCA: String? = nil, answers: [String] = []) throws {
        log = dir.appendingPathComponent("received-\(UUID().uuidString.prefix(8)).jsonl")
        self.answers = dir.appendingPathComponent("answers-\(UUID().uuidString.prefix(8)).txt")
        try answers.map { $0 + "\n" }.joined().write(to: self.answers, atomically: true, encoding: .utf8)
        var args = [Harness.packageRoot.appendingPathComponent("scripts/webhook-export-receiver.py").path, String(port), log.path,
                    "--answers", self.answers.path]
        if let pki { args += ["--cert", pki.serverCert, "--key", pki.serverKey] }
        if let clientCA { args += ["--client-ca", clientCA] }
        let out = try Harness.Collector()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = args
        process.outputPath = out.url.path
        process.errorPath = "/dev/null"
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let line = out.text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }), let p = Int(line.dropFirst(10)) {
                self.port = p
                return
            }
            if !process.isRunning { throw Harness.HarnessError("webhook export receiver exited (port \(port) taken?)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.signal(SIGKILL)
        process.waitUntilExit()
        throw Harness.HarnessError("webhook export receiver did not start")
    }

    /// Starts one off the cooperative pool, retrying a few times when a fixed port is still held by a previous listener.
    static func start(dir: URL, pki: WebhookTestPKI?, port: Int = 0, clientCA: String? = nil, answers: [String] = []) async throws -> WebhookExportReceiver {
        var lastError: any Error = Harness.HarnessError("not started")
        for _ in 0..<20 {
            do {
                return try await Harness.offPool { try WebhookExportReceiver(dir: dir, pki: pki, port: port, clientCA: clientCA, answers: answers) }
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        throw lastError
    }

    /// Every request so far, in arrival order.
    var requests: [Request] {
        entries.compactMap { o in
            guard let time = o["time"] as? Double, let body = o["body"] as? String else { return nil }
            let parsed = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
            let events = (parsed?["events"] as? [[String: Any]] ?? []).map { e in
                ((e["sequence"] as? NSNumber)?.int64Value ?? -1, e["id"] as? String ?? "")
            }
            return Request(time: time, answer: o["answer"] as? String ?? "", body: body, headers: o["headers"] as? [String: String] ?? [:],
                           events: events)
        }
    }

    /// TLS handshakes that failed on the receiver's side.
    var tlsErrors: [String] { entries.compactMap { $0["tls_error"] as? String } }

    private var entries: [[String: Any]] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// The events the receiver acknowledged (2xx), in order.
    var acknowledged: [(sequence: Int64, id: String)] { requests.filter { ["ok", "big"].contains($0.answer) }.flatMap(\.events) }

    func stop() {
        // SIGKILL: it holds nothing to clean up (a "hang" answer would hold SIGTERM's shutdown).
        process.signal(SIGKILL)
        process.waitUntilExit()
    }
}

/// Runs a webhook exporter in the background until ``stop()``.
final class RunningWebhookExporter: @unchecked Sendable {
    let exporter: WebhookExporter
    private let task: Task<Void, Never>

    init(_ exporter: WebhookExporter) {
        self.exporter = exporter
        task = Task { try? await exporter.run() }
    }

    func stop() async {
        task.cancel()
        await task.value
    }

    /// Waits until the exporter acknowledged through `sequence`; false after `timeout`.
    func waitAcknowledged(_ sequence: Int64, timeout: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while exporter.status.acknowledgedSequence < sequence {
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
        return true
    }
}

extension WebhookExportSettings {
    /// Test settings: short timeouts and back-off so the tests run in seconds.
    static func test(port: Int, token: String? = "test-token-0123456789", pki: WebhookTestPKI?, caFile: String? = nil, client: Bool = false,
                     batchSize: Int = 25, maxBatchBytes: Int = 1 << 20, maxBackoff: Duration = .milliseconds(500)) -> WebhookExportSettings {
        WebhookExportSettings(url: pki == nil ? "http://127.0.0.1:\(port)/ingest" : "https://localhost:\(port)/ingest", bearerToken: token,
                              caFile: caFile ?? pki?.caFile ?? "", certificateFile: client ? pki?.clientCert ?? "" : "",
                              privateKeyFile: client ? pki?.clientKey ?? "" : "", batchSize: batchSize, maxBatchBytes: maxBatchBytes,
                              timeout: .seconds(1), initialBackoff: .milliseconds(100), maxBackoff: maxBackoff, idleInterval: .milliseconds(50))
    }
}

/// A log handler that keeps every message (to check what an operator would read).
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test.webhook") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { _, n in n }
            let text = "\(event.level) \(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.lines.withLock { $0.append(text) }
        }
    }
}
