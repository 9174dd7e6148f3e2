import Foundation
import Logging
import MenshenCore
import MenshenStorage
import MenshenVisibility
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Where and how the SIEM export sends (the `export.syslog.*` keys).
public struct SyslogExportSettings: Sendable {
    public enum Transport: String, Sendable { case tcp, tls }

    public var host: String
    public var port: Int
    public var transport: Transport
    /// PEM CA certificates the receiver's certificate must chain to (TLS); empty: the system's roots.
    public var caFile: String
    /// PEM client certificate chain and key for mutual TLS (both or neither).
    public var certificateFile: String
    public var privateKeyFile: String
    /// The name the receiver's certificate must carry (and SNI); empty: `host` when it is a name, else its IP address is checked.
    public var serverName: String
    public var formatter: SyslogEventFormatter
    public var connectTimeout: Duration
    /// A frame not taken by the connection within this time closes it (a receiver that stopped reading).
    public var writeTimeout: Duration
    /// An event counts as delivered once written and the connection then stayed open this long (see ``SyslogExporter``).
    public var confirmAfter: Duration
    /// Most bytes written but not yet counted delivered; the exporter waits for confirmations beyond this.
    public var maxInFlightBytes: Int
    /// Longest wait between reconnection attempts (back-off doubles from `idleInterval` up to this).
    public var maxBackoff: Duration
    /// How often an idle log is polled.
    public var idleInterval: Duration
    /// The consumer cursor's name in the store.
    public var cursorName: String

    public init(host: String, port: Int, transport: Transport = .tcp, caFile: String = "", certificateFile: String = "",
                privateKeyFile: String = "", serverName: String = "", formatter: SyslogEventFormatter,
                connectTimeout: Duration = .seconds(5), writeTimeout: Duration = .seconds(10), confirmAfter: Duration = .seconds(2),
                maxInFlightBytes: Int = 1 << 20, maxBackoff: Duration = .seconds(30), idleInterval: Duration = .milliseconds(200),
                cursorName: String = "export.syslog") {
        self.host = host; self.port = port; self.transport = transport; self.caFile = caFile
        self.certificateFile = certificateFile; self.privateKeyFile = privateKeyFile; self.serverName = serverName
        self.formatter = formatter; self.connectTimeout = connectTimeout; self.writeTimeout = writeTimeout
        self.confirmAfter = confirmAfter; self.maxInFlightBytes = max(64 * 1024, maxInFlightBytes); self.maxBackoff = maxBackoff
        self.idleInterval = idleInterval; self.cursorName = cursorName
    }
}

/// Errors of the export connection.
public struct SyslogExportError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable { case connectFailed, writeTimeout, connectionClosed, tlsConfiguration }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code.rawValue): \(message)" }
    public static func == (l: Self, r: Self) -> Bool { l.code == r.code }
}

/// Sends every event of the log to a syslog receiver (a SIEM) over TCP or
/// TLS, RFC 5425 octet-counted, as CEF or OCSF JSON (``SyslogEventFormatter``).
///
/// It only reads the log (through ``EventTail``), so a slow, hung or absent
/// receiver never slows anything that writes events: it falls behind, and
/// catches up later from its cursor.
///
/// **Delivery: at least once, every event carries its id.** Plain syslog over
/// TCP has no acknowledgement: a write that succeeded only reached our kernel,
/// and a receiver that stops discards what it had not read yet. So an event
/// counts as delivered only once it was written and the connection then stayed
/// open for ``SyslogExportSettings/confirmAfter`` (a receiver that reads keeps
/// up in milliseconds; one that stops closes the connection). Only then does
/// the persistent cursor (``ConsumerCursorStore``, name `export.syslog`) move.
/// Events not yet confirmed when a connection ends are sent again on the next
/// one, and after a restart everything after the saved cursor is sent again.
/// Consequences: nothing is lost when the receiver stops, restarts or is
/// unreachable for a while; an event written in the last `confirmAfter` before
/// a connection broke may arrive twice (same `id`/`externalId` and `seq`, for
/// the SIEM to drop); a receiver that accepts data and then loses it (its own
/// queue in memory, a crash) can lose it — that needs the receiver's disk
/// queue, or RELP, which is not built.
///
/// In-flight data is bounded (``SyslogExportSettings/maxInFlightBytes``); a
/// connection whose writes stall for ``SyslogExportSettings/writeTimeout`` is
/// closed and retried with back-off. Bytes the receiver sends (syslog
/// receivers send none) are discarded and counted.
public final class SyslogExporter: Service, Sendable {
    /// What the exporter has done so far (for tests, logs and `/metrics`).
    public struct Status: Sendable, Equatable {
        public var connected = false
        public var connections = 0
        public var connectFailures = 0
        public var writeTimeouts = 0
        /// Frames written (a resent event counts again).
        public var framesWritten = 0
        /// Frames written again on a new connection because the previous one ended before they were confirmed.
        public var framesResent = 0
        /// The last event confirmed delivered (the saved cursor follows it).
        public var confirmedSequence: Int64 = 0
        /// Bytes received from the receiver (which should send none).
        public var unexpectedBytesReceived = 0
        /// Bytes written but not yet confirmed, now and at most so far (bounded by ``SyslogExportSettings/maxInFlightBytes``).
        public var inFlightBytes = 0
        public var maxInFlightBytesSeen = 0
        public var lastError: String?
    }

    let store: any EventStore & ConsumerCursorStore
    let settings: SyslogExportSettings
    let clock: any WallClock
    let logger: Logger
    let link: SyslogLink

    public init(store: any EventStore & ConsumerCursorStore, settings: SyslogExportSettings, clock: any WallClock = SystemClock(),
                logger: Logger = Logger(label: "menshen.export.syslog")) throws {
        self.store = store; self.settings = settings; self.clock = clock; self.logger = logger
        self.link = SyslogLink(settings: settings, tls: try Self.tlsContext(settings), logger: logger)
    }

    /// The current status.
    public var status: Status { link.status.withLock { $0 } }

    /// Builds the NIOSSL client context (nil for plain TCP); throws for unreadable files.
    static func tlsContext(_ s: SyslogExportSettings) throws -> NIOSSLContext? {
        guard s.transport == .tls else { return nil }
        do {
            var c = TLSConfiguration.makeClientConfiguration()
            c.minimumTLSVersion = .tlsv12
            c.certificateVerification = .fullVerification
            if !s.caFile.isEmpty { c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(s.caFile)) }
            if s.certificateFile.isEmpty != s.privateKeyFile.isEmpty {
                throw SyslogExportError(.tlsConfiguration, "export.syslog.tls.certificate_file and private_key_file go together")
            }
            if !s.certificateFile.isEmpty {
                c.certificateChain = try NIOSSLCertificate.fromPEMFile(s.certificateFile).map { .certificate($0) }
                c.privateKey = .privateKey(try NIOSSLPrivateKey(file: s.privateKeyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: c)
        } catch let e as SyslogExportError {
            throw e
        } catch {
            throw SyslogExportError(.tlsConfiguration, "export.syslog TLS files: \(error)")
        }
    }

    public func run() async throws {
        // Where to resume. A store that cannot answer is asked again (never "from 0": that would send everything again).
        var start: Int64?
        var backoff = settings.idleInterval
        while start == nil, !Task.isCancelled {
            do {
                start = try await store.cursor(named: settings.cursorName) ?? 0
            } catch {
                link.noteError("cannot read the cursor: \(error)")
                logger.warning("syslog export: cannot read the cursor \(settings.cursorName): \(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, settings.maxBackoff)
            }
        }
        guard let start else { return }
        await link.start(confirmed: start)
        logger.info("syslog export starting", metadata: ["receiver": "\(settings.host):\(settings.port)", "transport": "\(settings.transport.rawValue)",
                                                           "format": "\(settings.formatter.body.rawValue)", "after_sequence": "\(start)"])
        let tail = EventTail(store: store, batchSize: 200, idleInterval: settings.idleInterval, maxBackoff: settings.maxBackoff)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await tail.follow(after: start, onError: { [logger = self.logger, link = self.link] error in
                        link.noteError("\(error)")
                        logger.warning("syslog export: \(error)")
                    }) { batch in try await self.link.send(batch) }
                }
                group.addTask { await self.maintain() }
                await group.waitForAll()
            }
        }
        await link.confirmSettled()
        // Saved outside this task: it is cancelled by now, and the store refuses work for a cancelled task
        // (the save would fail and a restart would send the confirmed events again).
        let exporter = self
        await Task { await exporter.saveCursor() }.value
        await link.close()
    }

    /// Confirms settled events, saves the cursor, and resends unconfirmed events after a lost connection (also when no new events come).
    func maintain() async {
        var backoff = settings.idleInterval
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.idleInterval)
            await link.confirmSettled()
            await saveCursor()
            do {
                try await link.resendIfDisconnected()
                backoff = settings.idleInterval
            } catch {
                link.noteError("\(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, settings.maxBackoff)
            }
        }
    }

    private let saved = Mutex<Int64>(-1)

    func saveCursor() async {
        let confirmed = status.confirmedSequence
        guard saved.withLock({ $0 }) != confirmed else { return }
        do {
            try await store.saveCursor(named: settings.cursorName, sequence: confirmed, at: clock.now())
            saved.withLock { $0 = confirmed }
        } catch {
            logger.warning("syslog export: cannot save the cursor: \(error)")
        }
    }
}

/// The connection to the receiver and the events written but not yet confirmed.
actor SyslogLink {
    struct Pending { var sequence: Int64; var frame: [UInt8]; var sentAt: ContinuousClock.Instant; var generation: Int }

    let settings: SyslogExportSettings
    let tls: NIOSSLContext?
    let logger: Logger
    nonisolated let status = ExportStatusBox()
    private var channel: (any Channel)?
    private var generation = 0
    private var pending: [Pending] = []
    private var pendingBytes = 0
    private var lastQueued: Int64 = 0
    private var connecting: Task<Void, any Error>?

    static let sent = Counter(label: "menshen_export_syslog_frames_written_total")
    static let resent = Counter(label: "menshen_export_syslog_frames_resent_total")
    static let failures = Counter(label: "menshen_export_syslog_connection_failures_total")
    static let timeouts = Counter(label: "menshen_export_syslog_write_timeouts_total")
    static let unexpected = Counter(label: "menshen_export_syslog_unexpected_bytes_total")

    init(settings: SyslogExportSettings, tls: NIOSSLContext?, logger: Logger) {
        self.settings = settings; self.tls = tls; self.logger = logger
    }

    func start(confirmed: Int64) {
        status.withLock { $0.confirmedSequence = confirmed }
        lastQueued = max(lastQueued, confirmed)
    }

    nonisolated func noteError(_ text: String) { status.withLock { $0.lastError = text } }

    /// Writes each event of the batch not yet written; waits while the in-flight bound is reached.
    func send(_ batch: [StoredEvent]) async throws {
        let confirmed = status.withLock({ $0.confirmedSequence })
        for event in batch where event.sequence > max(lastQueued, confirmed) {
            let frame = settings.formatter.frame(event)
            while pendingBytes + frame.count > settings.maxInFlightBytes, let oldest = pending.first {
                confirmSettled()
                if pending.first?.sequence == oldest.sequence {
                    try await Task.sleep(for: max(.milliseconds(20), settings.confirmAfter - (ContinuousClock.now - oldest.sentAt)))
                    try await ensureConnected()
                }
            }
            try await ensureConnected()
            guard let ch = channel else { throw SyslogExportError(.connectionClosed, "no connection") }
            try await write(frame, on: ch)
            pending.append(Pending(sequence: event.sequence, frame: frame, sentAt: .now, generation: generation))
            pendingBytes += frame.count
            lastQueued = max(lastQueued, event.sequence)
            let inFlight = pendingBytes
            status.withLock { $0.inFlightBytes = inFlight; $0.maxInFlightBytesSeen = max($0.maxInFlightBytesSeen, inFlight) }
        }
    }

    /// Confirms pending events written long enough ago on the connection that is still open.
    func confirmSettled() {
        guard let ch = channel, ch.isActive else { return }
        let now = ContinuousClock.now
        var confirmed: Int64?
        while let p = pending.first, p.generation == generation, now - p.sentAt >= settings.confirmAfter {
            confirmed = p.sequence
            pendingBytes -= p.frame.count
            pending.removeFirst()
        }
        let inFlight = pendingBytes
        if let confirmed { status.withLock { $0.confirmedSequence = max($0.confirmedSequence, confirmed); $0.inFlightBytes = inFlight } }
    }

    /// After a lost connection, reconnects and writes the unconfirmed events again (nothing to do otherwise).
    func resendIfDisconnected() async throws {
        if pending.isEmpty || channel?.isActive == true { return }
        try await ensureConnected()
    }

    func close() async {
        connecting?.cancel()
        if let ch = channel { try? await ch.close().get() }
        channel = nil
        status.withLock { $0.connected = false }
    }

    private func ensureConnected() async throws {
        if let ch = channel, ch.isActive { return }
        if let t = connecting { try await t.value; return }
        let t = Task { try await self.connect() }
        connecting = t
        defer { connecting = nil }
        try await t.value
    }

    private func connect() async throws {
        if let old = channel { old.close(promise: nil); channel = nil }
        status.withLock { $0.connected = false }
        let ch: any Channel
        do {
            ch = try await Self.bootstrap(settings: settings, tls: tls, status: status)
                .connect(host: settings.host, port: settings.port).get()
        } catch {
            Self.failures.increment()
            status.withLock { $0.connectFailures += 1; $0.lastError = "connect to \(settings.host):\(settings.port): \(error)" }
            throw SyslogExportError(.connectFailed, "\(settings.host):\(settings.port): \(error)")
        }
        generation += 1
        channel = ch
        status.withLock { $0.connected = true; $0.connections += 1 }
        logger.info("syslog export connected", metadata: ["receiver": "\(settings.host):\(settings.port)", "unconfirmed": "\(pending.count)"])
        // Everything not confirmed on the previous connection goes again, in order.
        for i in pending.indices {
            try await write(pending[i].frame, on: ch)
            pending[i].sentAt = .now
            pending[i].generation = generation
            Self.resent.increment()
            status.withLock { $0.framesResent += 1 }
        }
    }

    private func write(_ frame: [UInt8], on ch: any Channel) async throws {
        let timedOut = ExportFlag()
        let timeout = ch.eventLoop.scheduleTask(in: .nanoseconds(Int64(settings.writeTimeout.components.seconds) * 1_000_000_000
                                                                 + settings.writeTimeout.components.attoseconds / 1_000_000_000)) {
            timedOut.set()
            ch.close(promise: nil)
        }
        do {
            try await ch.writeAndFlush(ch.allocator.buffer(bytes: frame)).get()
            timeout.cancel()
        } catch {
            timeout.cancel()
            ch.close(promise: nil)
            status.withLock { $0.connected = false }
            if timedOut.isSet {
                Self.timeouts.increment()
                status.withLock { $0.writeTimeouts += 1; $0.lastError = "write timeout: the receiver stopped reading" }
                logger.warning("syslog export: write timed out; the receiver is not reading, reconnecting")
                throw SyslogExportError(.writeTimeout, "no progress in \(settings.writeTimeout)")
            }
            let text = status.withLock { $0.lastError } ?? "\(error)"
            throw SyslogExportError(.connectionClosed, text)
        }
        Self.sent.increment()
        status.withLock { $0.framesWritten += 1 }
    }

    static func bootstrap(settings: SyslogExportSettings, tls: NIOSSLContext?, status: ExportStatusBox) -> ClientBootstrap {
        let secs = settings.connectTimeout.components.seconds
        let host = settings.host
        let serverName = settings.serverName.isEmpty ? (Self.isIPAddress(host) ? nil : host) : settings.serverName
        return ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(max(1, secs)))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try channel.pipeline.syncOperations.addHandler(ReceiverInputHandler(status: status))
                }
            }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Discards and counts whatever the receiver sends, and records connection errors (TLS failures included).
final class ReceiverInputHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let status: ExportStatusBox
    init(status: ExportStatusBox) { self.status = status }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let n = unwrapInboundIn(data).readableBytes
        SyslogLink.unexpected.increment(by: n)
        status.withLock { $0.unexpectedBytesReceived += n }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.withLock { $0.connected = false }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.withLock { $0.lastError = "\(error)" }
        context.close(promise: nil)
    }
}

/// The exporter's ``SyslogExporter/Status`` behind a lock, shared with the channel's handler.
final class ExportStatusBox: Sendable {
    private let m = Mutex(SyslogExporter.Status())
    func withLock<T: Sendable>(_ body: (inout SyslogExporter.Status) -> T) -> T { m.withLock { body(&$0) } }
}

/// A flag set from the event loop (the write timeout) and read by the exporter.
final class ExportFlag: Sendable {
    private let m = Mutex(false)
    func set() { m.withLock { $0 = true } }
    var isSet: Bool { m.withLock { $0 } }
}
