import AsyncHTTPClient
import Foundation
import Logging
import MenshenCore
import MenshenStorage
import MenshenVisibility
import Metrics
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Where and how the webhook export posts (the `export.webhook.*` keys).
public struct WebhookExportSettings: Sendable {
    /// The receiver: https, or http to a loopback host (checked when the configuration loads).
    public var url: String
    /// Sent as `Authorization: Bearer …` (read from `export.webhook.token_file`); nil: no Authorization header.
    public var bearerToken: String?
    /// PEM CA certificates the receiver's certificate must chain to; empty: the system's roots.
    public var caFile: String
    /// PEM client certificate chain and key for mutual TLS (both or neither).
    public var certificateFile: String
    public var privateKeyFile: String
    /// Most events in one request.
    public var batchSize: Int
    /// Most bytes in one request body (a single larger event is sent alone).
    public var maxBatchBytes: Int
    /// Each request — connect, send, answer — is abandoned after this long.
    public var timeout: Duration
    /// The first retry waits this long; each further one twice as long, up to `maxBackoff`.
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    /// How often an idle log is polled.
    public var idleInterval: Duration
    /// The consumer cursor's name in the store.
    public var cursorName: String

    public init(url: String, bearerToken: String? = nil, caFile: String = "", certificateFile: String = "", privateKeyFile: String = "",
                batchSize: Int = 500, maxBatchBytes: Int = 1 << 20, timeout: Duration = .seconds(10),
                initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30),
                idleInterval: Duration = .milliseconds(200), cursorName: String = "export.webhook") {
        self.url = url; self.bearerToken = bearerToken; self.caFile = caFile; self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile; self.batchSize = max(1, batchSize); self.maxBatchBytes = max(4096, maxBatchBytes)
        self.timeout = timeout; self.initialBackoff = initialBackoff; self.maxBackoff = max(initialBackoff, maxBackoff)
        self.idleInterval = idleInterval; self.cursorName = cursorName
    }
}

/// Errors of the webhook export: its configuration (at start) and each failed delivery.
public struct WebhookExportError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// A TLS file that cannot be read or does not hold what it should.
        case tlsConfiguration
        /// The token file is missing, empty, too long or holds characters a header cannot carry.
        case tokenFile
        /// The receiver answered 408, 429 or 5xx, or the exchange failed (connection, TLS, timeout, garbage).
        case deliveryFailed
        /// The receiver answered another 4xx: it refuses this request (a bad token, a body it does not take).
        case rejected
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code.rawValue): \(message)" }
    public static func == (l: Self, r: Self) -> Bool { l.code == r.code }
}

/// POSTs every event of the log to an HTTPS receiver (a SIEM's HTTP collector, a data lake's ingest
/// endpoint) in batches, each acknowledged by a 2xx answer.
///
/// **Body.** `Content-Type: application/json`, `{"events":[E1,E2,…]}` where each `E` is the object the
/// JSON Lines export writes (``AuditEventText/jsonLine(_:)``: `sequence`, `id`, `time`, `class_uid`,
/// `severity_id`, `user_id`, `prev_hash`, `hash` and the OCSF event under `event`), in log order.
/// Headers: `Authorization: Bearer TOKEN` (from a file), `X-Menshen-Batch: FIRST-LAST` (the sequences
/// of the first and last event), `Idempotency-Key: menshen-FIRST-LAST`, `User-Agent: Menshen/VERSION`.
/// A request holds at most ``WebhookExportSettings/batchSize`` events and
/// ``WebhookExportSettings/maxBatchBytes`` bytes (a single larger event goes alone).
///
/// **Delivery: at least once, every event carries its id.** The exporter follows the log with
/// ``EventTail`` from a persistent consumer cursor (`export.webhook`): the log is the spool, so nothing
/// is lost while the receiver is down. A request counts as delivered only when the receiver answered
/// 2xx and the whole answer arrived; only then does the cursor move past its last event. Anything else
/// is tried again, the same events in the same order, after a back-off that doubles from
/// ``WebhookExportSettings/initialBackoff`` up to ``WebhookExportSettings/maxBackoff``: connection
/// and TLS failures, timeouts, garbage, 408, 429 and 5xx (a `Retry-After` of seconds or an HTTP date is
/// honoured up to the cap), and also any other 4xx — which is logged as an error and counted as a
/// rejection, since it will not pass until someone fixes the token or the receiver, but dropping the
/// events would lose them. The export never skips an event and never spins. A batch whose answer was
/// lost is sent again, so a receiver may see an event twice: de-duplicate on `id`.
///
/// The exporter only reads the log, so a slow, hung or absent receiver never slows sign-ins or the
/// gateway; it falls behind and catches up.
public final class WebhookExporter: Service, Sendable {
    /// What the exporter has done so far (for tests and logs; `/metrics` has the counters).
    public struct Status: Sendable, Equatable {
        /// Requests the receiver acknowledged, and the events in them.
        public var batchesDelivered = 0
        public var eventsDelivered = 0
        /// Requests that failed (any reason, rejections included).
        public var failedAttempts = 0
        /// Requests refused with a 4xx other than 408 and 429.
        public var rejections = 0
        /// The last event acknowledged (the saved cursor follows it).
        public var acknowledgedSequence: Int64 = 0
        /// The last HTTP status received (nil before any answer).
        public var lastHTTPStatus: Int?
        public var lastError: String?
    }

    static let batches = Counter(label: "menshen_export_webhook_batches_total")
    static let events = Counter(label: "menshen_export_webhook_events_total")
    static let failures = Counter(label: "menshen_export_webhook_failures_total")
    static let rejected = Counter(label: "menshen_export_webhook_rejections_total")

    let store: any EventStore & ConsumerCursorStore
    let settings: WebhookExportSettings
    let clock: any WallClock
    let logger: Logger
    let tls: TLSConfiguration
    private let state = Mutex<Status>(Status())
    /// The sequence last saved as the cursor (-1: not yet).
    private let saved = Mutex<Int64>(-1)

    /// Throws when a TLS file cannot be read, so a misconfigured export stops the start instead of sending nothing.
    public init(store: any EventStore & ConsumerCursorStore, settings: WebhookExportSettings, clock: any WallClock = SystemClock(),
                logger: Logger = Logger(label: "menshen.export.webhook")) throws {
        self.store = store; self.settings = settings; self.clock = clock; self.logger = logger
        self.tls = try Self.tlsConfiguration(settings)
    }

    public var status: Status { state.withLock { $0 } }

    static func tlsConfiguration(_ s: WebhookExportSettings) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.minimumTLSVersion = .tlsv12
        c.certificateVerification = .fullVerification
        do {
            if !s.caFile.isEmpty {
                let roots = try NIOSSLCertificate.fromPEMFile(s.caFile)
                guard !roots.isEmpty else { throw WebhookExportError(.tlsConfiguration, "export.webhook.ca_file \(s.caFile) holds no PEM certificate") }
                c.trustRoots = .certificates(roots)
            }
            guard s.certificateFile.isEmpty == s.privateKeyFile.isEmpty else {
                throw WebhookExportError(.tlsConfiguration, "export.webhook.client_certificate_file and client_key_file go together")
            }
            if !s.certificateFile.isEmpty {
                let chain = try NIOSSLCertificate.fromPEMFile(s.certificateFile)
                guard !chain.isEmpty else {
                    throw WebhookExportError(.tlsConfiguration, "export.webhook.client_certificate_file \(s.certificateFile) holds no PEM certificate")
                }
                c.certificateChain = chain.map { .certificate($0) }
                c.privateKey = .privateKey(try NIOSSLPrivateKey(file: s.privateKeyFile, format: .pem))
            }
        } catch let e as WebhookExportError {
            throw e
        } catch {
            throw WebhookExportError(.tlsConfiguration, "export.webhook TLS files: \(error)")
        }
        return c
    }

    public func run() async throws {
        // Where to resume. A store that cannot answer is asked again (never "from 0": that would send everything again).
        var start: Int64?
        var backoff = settings.idleInterval
        while start == nil, !Task.isCancelled {
            do {
                start = try await store.cursor(named: settings.cursorName) ?? 0
            } catch {
                note("cannot read the cursor \(settings.cursorName): \(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, settings.maxBackoff)
            }
        }
        guard let start else { return }
        state.withLock { $0.acknowledgedSequence = max($0.acknowledgedSequence, start) }
        saved.withLock { $0 = start }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.redirectConfiguration = .disallow
        let seconds = Int64(max(1, settings.timeout.components.seconds))
        configuration.timeout = .init(connect: .seconds(seconds), read: .seconds(seconds))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        logger.info("webhook export starting", metadata: ["receiver": "\(Self.redacted(settings.url))", "after_sequence": "\(start)"])
        let tail = EventTail(store: store, batchSize: settings.batchSize, idleInterval: settings.idleInterval, maxBackoff: settings.maxBackoff)
        await cancelWhenGracefulShutdown {
            await tail.follow(after: start, onError: { [weak self] error in
                self?.note("\(error)")
            }) { batch in try await self.deliver(batch, client: client) }
        }
        // A stop that lands between an acknowledgement and its cursor save must not leave the cursor behind
        // (the acknowledged request would be sent again after a restart). Saved outside this task, which
        // is cancelled by now and whose store calls would refuse to start.
        let exporter = self
        _ = await Task { try? await exporter.saveCursor() }.value
        try? await client.shutdown()
    }

    /// Sends the batch's events not yet acknowledged, request by request, each until the receiver
    /// acknowledges it; throws only when cancelled or when the cursor cannot be saved (the tail then
    /// retries the batch, and the acknowledged events are not sent again).
    func deliver(_ batch: [StoredEvent], client: HTTPClient) async throws {
        try await saveCursor()
        let acknowledged = status.acknowledgedSequence
        for request in Self.requests(batch.filter { $0.sequence > acknowledged }, maxBytes: settings.maxBatchBytes) {
            try await send(request, client: client)
            try await saveCursor()
        }
    }

    /// One request's events and body.
    struct Request {
        var first: Int64
        var last: Int64
        var count: Int
        var body: ByteBuffer
    }

    /// Splits events into request bodies of at most `maxBytes` (one larger event goes alone).
    static func requests(_ events: [StoredEvent], maxBytes: Int) -> [Request] {
        let open = Array(#"{"events":["#.utf8), close = Array("]}".utf8)
        var out: [Request] = []
        var body: [UInt8] = [], first: Int64 = 0, last: Int64 = 0, count = 0
        func finish() {
            guard count > 0 else { return }
            out.append(Request(first: first, last: last, count: count, body: ByteBuffer(bytes: open + body + close)))
            body.removeAll(keepingCapacity: true); count = 0
        }
        for e in events {
            let line = Array(AuditEventText.jsonLine(e).utf8)
            if count > 0, open.count + body.count + 1 + line.count + close.count > maxBytes { finish() }
            if count == 0 { first = e.sequence } else { body.append(UInt8(ascii: ",")) }
            body += line
            last = e.sequence
            count += 1
        }
        finish()
        return out
    }

    /// Posts one request until the receiver acknowledges it (2xx), backing off between attempts.
    private func send(_ request: Request, client: HTTPClient) async throws {
        var headers = [("Content-Type", "application/json"), ("User-Agent", "Menshen/\(MenshenCore.version)"),
                       ("X-Menshen-Batch", "\(request.first)-\(request.last)"), ("Idempotency-Key", "menshen-\(request.first)-\(request.last)")]
        if let token = settings.bearerToken { headers.append(("Authorization", "Bearer \(token)")) }
        var backoff = settings.initialBackoff
        while true {
            try Task.checkCancellation()
            var wait = backoff
            do {
                let answer = try await WebhookPost.send(client, url: settings.url, headers: headers, body: request.body, timeout: settings.timeout)
                state.withLock { $0.lastHTTPStatus = answer.status }
                switch answer.status {
                case 200..<300 where answer.complete:
                    Self.batches.increment()
                    Self.events.increment(by: request.count)
                    state.withLock {
                        $0.batchesDelivered += 1; $0.eventsDelivered += request.count
                        $0.acknowledgedSequence = max($0.acknowledgedSequence, request.last)
                    }
                    return
                case 200..<300:
                    throw WebhookExportError(.deliveryFailed, "HTTP \(answer.status), but the connection failed before the answer ended")
                case 408, 429, 500..<600:
                    if let after = Self.retryAfter(answer.retryAfter, now: clock.now()) { wait = max(wait, after) }
                    throw WebhookExportError(.deliveryFailed, "HTTP \(answer.status)")
                case 400..<500:
                    throw WebhookExportError(.rejected, "HTTP \(answer.status): the receiver refuses the request (check the token and the receiver); retrying, nothing is dropped")
                default:
                    throw WebhookExportError(.deliveryFailed, "HTTP \(answer.status) is not an acknowledgement")
                }
            } catch {
                if Task.isCancelled { throw CancellationError() }
                let failure = error as? WebhookExportError ?? WebhookExportError(.deliveryFailed, String("\(error)".prefix(300)))
                Self.failures.increment()
                if failure.code == .rejected { Self.rejected.increment() }
                state.withLock {
                    $0.failedAttempts += 1
                    if failure.code == .rejected { $0.rejections += 1 }
                    $0.lastError = failure.description
                }
                let metadata: Logger.Metadata = ["receiver": "\(Self.redacted(settings.url))", "batch": "\(request.first)-\(request.last)",
                                                 "problem": "\(failure.message)", "retry_in": "\(min(wait, settings.maxBackoff))"]
                if failure.code == .rejected { logger.error("webhook export: the receiver rejected a batch", metadata: metadata) }
                else { logger.warning("webhook export: delivery failed", metadata: metadata) }
            }
            try await Task.sleep(for: min(wait, settings.maxBackoff))
            backoff = min(backoff * 2, settings.maxBackoff)
        }
    }

    /// `Retry-After` as a wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3); nil when absent or unreadable.
    static func retryAfter(_ value: String?, now: Date) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty, value.utf8.count <= 64 else { return nil }
        if value.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            guard let seconds = Int64(value.prefix(9)) else { return nil }
            return .seconds(seconds)
        }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        guard let date = f.date(from: value) else { return nil }
        return .milliseconds(Int64(max(0, min(date.timeIntervalSince(now), 86_400)) * 1000))
    }

    /// Saves the cursor at the acknowledged sequence when it moved.
    private func saveCursor() async throws {
        let acknowledged = status.acknowledgedSequence
        guard saved.withLock({ $0 }) != acknowledged else { return }
        try await store.saveCursor(named: settings.cursorName, sequence: acknowledged, at: clock.now())
        saved.withLock { $0 = acknowledged }
    }

    private func note(_ text: String) {
        state.withLock { $0.lastError = text }
        logger.warning("webhook export: \(text)")
    }

    /// The URL without its query (which might carry a key) for logs.
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "(unreadable URL)" }
        if parts.query != nil { parts.query = "…" }
        return parts.string ?? "(unreadable URL)"
    }
}
