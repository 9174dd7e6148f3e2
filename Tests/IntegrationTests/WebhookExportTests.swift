import Foundation
import MenshenConfig
import MenshenCore
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import MenshenTestSupport
import Testing

/// The webhook export's configuration and wiring: bad `export.webhook.*` values refused by
/// `menshen config check` with the key named (plain http to a non-loopback host among them), token and
/// TLS files checked at start, request splitting and `Retry-After`, and `menshen serve` posting the
/// events another process writes to a real HTTPS receiver.
@Suite("Webhook export")
struct WebhookExportTests {
    /// ``WebhookExporter/retryAfter(_:now:)`` with `now` given as an HTTP date too.
    static func retryAfter(_ value: String, now: String) -> Duration? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return WebhookExporter.retryAfter(value, now: f.date(from: now) ?? Date())
    }

    @Test("bad export.webhook values are refused by config check with the key named; good ones pass")
    func badConfig() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.yaml").path
        func yaml(_ lines: String) -> String { "export:\n  webhook:\n" + lines.split(separator: "\n").map { "    \($0)\n" }.joined() }
        for (text, key, message) in [
            (yaml("enabled: true\nurl: http://siem.bank.example/ingest"), "export.webhook.url", "plain http is only allowed to a loopback host"),
            (yaml("enabled: true"), "export.webhook.url", "is required when export.webhook.enabled"),
            (yaml("url: ftp://siem.bank.example/"), "export.webhook.url", "must be an https:// URL"),
            (yaml("url: https://user:pw@siem.bank.example/"), "export.webhook.url", "user name or password"),
            (yaml("url: https://siem.bank.example/#x"), "export.webhook.url", "fragment"),
            (yaml("url: not a url"), "export.webhook.url", "must be an absolute https:// URL"),
            (yaml("client_certificate_file: /etc/menshen/c.pem"), "export.webhook.client_key_file", "is required with export.webhook.client_certificate_file"),
            (yaml("batch_size: 0"), "export.webhook.batch_size", "between 1 and 10000"),
            (yaml("max_batch_bytes: 1000"), "export.webhook.max_batch_bytes", "between 65536"),
            (yaml("timeout_seconds: 0"), "export.webhook.timeout_seconds", "between 1 and 300"),
            (yaml("max_backoff_seconds: 99999"), "export.webhook.max_backoff_seconds", "between 1 and 3600"),
            (yaml("enabled: yes please"), "export.webhook.enabled", "true or false"),
        ] {
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try await Harness.runAsync(["config", "check", file])
            #expect(r.status != 0 && (r.out + r.err).contains(key) && (r.out + r.err).contains(message), "\(text): \(r)")
        }
        for good in [yaml("enabled: true\nurl: https://siem.bank.example:8443/menshen?tenant=7\ntoken_file: /etc/menshen/siem.token\nbatch_size: 100"),
                     yaml("enabled: true\nurl: http://127.0.0.1:9000/ingest"), yaml("enabled: true\nurl: http://[::1]:9000/"),
                     yaml("enabled: true\nurl: http://localhost/ingest\nclient_certificate_file: c.pem\nclient_key_file: c.key")] {
            try good.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try await Harness.runAsync(["config", "check", file])
            #expect(r.status == 0, "\(good): \(r)")
        }
    }

    @Test("the token file: one line of visible ASCII; missing, empty, multi-line, spaced or oversized files refused naming the key; TLS files checked")
    func tokenAndTLSFiles() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("token").path
        try "s3cr3t-Token_value.9\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try WebhookExporter.readToken(path) == "s3cr3t-Token_value.9")
        #expect(try WebhookExporter.readToken("") == nil)
        for (content, why) in [("", "is empty"), ("\n", "is empty"), ("abc\ndef\n", "printable ASCII"), ("abc def", "printable ASCII"),
                               ("abc\r\nX-Injected: 1", "printable ASCII"), ("tökén", "printable ASCII"), (String(repeating: "a", count: 5000), "longer than 4096")] {
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: WebhookExportError(.tokenFile, "")) { try WebhookExporter.readToken(path) }
            do { _ = try WebhookExporter.readToken(path) } catch {
                #expect("\(error)".contains("export.webhook.token_file") && "\(error)".contains(why), "\(error)")
            }
        }
        #expect(throws: WebhookExportError(.tokenFile, "")) { try WebhookExporter.readToken(dir.appendingPathComponent("missing").path) }
        let store = InMemoryStore()
        for settings in [WebhookExportSettings(url: "https://localhost/", caFile: dir.appendingPathComponent("missing.pem").path),
                         WebhookExportSettings(url: "https://localhost/", caFile: path),
                         WebhookExportSettings(url: "https://localhost/", certificateFile: path)] {
            #expect(throws: WebhookExportError(.tlsConfiguration, "")) { try WebhookExporter(store: store, settings: settings) }
        }
    }

    @Test("requests are cut by size, never splitting an event; a larger event goes alone; Retry-After in seconds or as a date")
    func requestsAndRetryAfter() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("m.sqlite").path)
        let events = try await NastyEvents.append(40, to: store, clock: FixedClock(Date(timeIntervalSince1970: 1_795_399_200)))
        // The limit is one byte short of the largest event's request: that event goes alone, over the limit; the others share.
        let limit = (events.map { AuditEventText.jsonLine($0).utf8.count }.max() ?? 0) + #"{"events":[]}"#.utf8.count - 1
        let requests = WebhookExporter.requests(events, maxBytes: limit)
        #expect(requests.reduce(0) { $0 + $1.count } == 40 && requests.first?.first == events.first?.sequence && requests.last?.last == events.last?.sequence)
        for (r, next) in zip(requests, requests.dropFirst()) { #expect(next.first == r.last + 1, "contiguous") }
        for r in requests {
            let body = String(buffer: r.body)
            #expect(body.utf8.count <= limit || r.count == 1)
            let batch = events.filter { (r.first...r.last).contains($0.sequence) }
            #expect(body == #"{"events":["# + batch.map(AuditEventText.jsonLine).joined(separator: ",") + "]}")
        }
        #expect(requests.contains { $0.count == 1 && $0.body.readableBytes > limit }, "the largest event went alone")
        #expect(requests.contains { $0.count > 1 } && requests.count < 40, "\(requests.map(\.count))")
        #expect(WebhookExporter.requests([], maxBytes: 4096).isEmpty)
        #expect(Self.retryAfter("120", now: "Wed, 21 Oct 2015 07:28:00 GMT") == .seconds(120))
        #expect(Self.retryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now: "Wed, 21 Oct 2015 07:28:00 GMT") == .seconds(30))
        #expect(Self.retryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now: "Wed, 21 Oct 2015 07:28:00 GMT") == .zero)
        for bad in ["", "-5", "soon", "1.5", String(repeating: "9", count: 70)] {
            #expect(Self.retryAfter(bad, now: "Wed, 21 Oct 2015 07:28:00 GMT") == nil, "\(bad)")
        }
        try await store.close()
    }

    @Test("menshen serve with export.webhook posts the events another process adds to a real HTTPS receiver, with the token from the file")
    func serve() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pki = try await Harness.offPool { try WebhookTestPKI.make(in: dir) }
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki)
        defer { receiver.stop() }
        let (port, admin, gateway) = (try Harness.freePort(), try Harness.freePort(), try Harness.freePort())
        let token = dir.appendingPathComponent("siem.token").path
        try "serve-token-42\n".write(toFile: token, atomically: true, encoding: .utf8)
        let file = dir.appendingPathComponent("menshen.yaml")
        try """
            server:
              listen: 127.0.0.1:\(port)
              public_url: http://localhost:\(port)
            gateway:
              listen: 127.0.0.1:\(gateway)
            admin:
              listen: 127.0.0.1:\(admin)
            store:
              sqlite:
                path: \(dir.appendingPathComponent("m.sqlite").path)
            export:
              webhook:
                enabled: true
                url: https://localhost:\(receiver.port)/menshen
                token_file: \(token)
                ca_file: \(pki.caFile)
            """.write(to: file, atomically: true, encoding: .utf8)
        let process = ChildProcess()
        defer { process.signal(SIGTERM); process.waitUntilExit() }
        let box = UncheckedBox(value: process)
        try await Harness.offPool { try Harness.startServe(box.value, config: file.path, adminPort: admin) }
        #expect(try await Harness.runAsync(["user", "add", "webhook-mei", "--config", file.path]).status == 0)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !receiver.requests.contains(where: { $0.body.contains("webhook-mei") }) {
            try await Task.sleep(for: .milliseconds(200))
        }
        let hit = receiver.requests.first { $0.body.contains("webhook-mei") }
        #expect(hit != nil, "\(receiver.requests.map(\.body).joined().prefix(300))")
        #expect(hit?.headers["authorization"] == "Bearer serve-token-42" && hit?.answer == "ok")
        #expect(receiver.requests.allSatisfy { $0.headers["authorization"] == "Bearer serve-token-42" })
    }
}
