import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import Synchronization

/// What ``EnforcementPointServer/closeConnections(where:)`` knows about a live client connection.
public struct ConnectionInfo: Sendable {
    /// The peer address as text, when known.
    public var clientAddress: String?
    /// The most recent request on the connection (what the gate was last asked).
    public var lastRequest: GateRequest?
    /// The connection was upgraded (WebSocket) and now carries spliced bytes.
    public var spliced = false
    /// When the exchange in progress started forwarding (a response may stream for long), or nil.
    public var forwardingSince: NIODeadline?
    /// When the gate last let the connection's request through: asked (``lastRequest``), or authorized again.
    public var authorizedAt: NIODeadline?
    /// ``ProxyShared/changeSweeps`` and ``ProxyShared/describedSweeps`` when ``lastRequest`` was put to the gate.
    var requestSweep = 0
    var requestDescribedSweep = 0

    /// Whether the connection is long-lived enough to be authorized again.
    func isLongLived(now: NIODeadline, minimumAge: TimeAmount) -> Bool {
        spliced || (forwardingSince.map { now - $0 >= minimumAge } ?? false)
    }

    /// Whether a periodic re-evaluation is due: a long-lived connection last authorized `due` or longer ago.
    func isDue(now: NIODeadline, due: TimeAmount) -> Bool {
        isLongLived(now: now, minimumAge: .zero) && (authorizedAt.map { now - $0 >= due } ?? true)
    }
}

/// One open client connection (or HTTP/2 stream) in ``ProxyShared``'s table. Its handler updates the
/// info under the connection's own lock, so requests on different connections do not contend.
final class LiveConnection: Sendable {
    let id: Int
    let channel: any Channel
    let info: Mutex<ConnectionInfo>

    init(id: Int, channel: any Channel, info: ConnectionInfo) {
        self.id = id
        self.channel = channel
        self.info = Mutex(info)
    }

    func noteRequest(_ request: GateRequest, sweeps: (all: Int, described: Int)) {
        let now = NIODeadline.now()
        info.withLock { $0.lastRequest = request; $0.authorizedAt = now; $0.requestSweep = sweeps.all; $0.requestDescribedSweep = sweeps.described }
    }
    func noteAuthorized(at time: NIODeadline) { info.withLock { $0.authorizedAt = time } }
    /// Whether a change sweep (``EnforcementPointServer/reevaluate(minimumAge:describedConnectionsOnly:)``) that covers
    /// the last request started since it was put to the gate (or since this was last asked): any sweep of everything,
    /// a sweep of described connections only when the request carries connection attributes. Given once per sweep.
    func sweptSinceRequest(_ sweeps: (all: Int, described: Int)) -> Bool {
        info.withLock { i in
            defer { i.requestSweep = sweeps.all; i.requestDescribedSweep = sweeps.described }
            if i.requestSweep != sweeps.all { return true }
            return i.requestDescribedSweep != sweeps.described && i.lastRequest?.connectionAttributes.isEmpty == false
        }
    }
    func noteSpliced() { info.withLock { $0.spliced = true } }

    /// Set by ``close()``: over TLS a closing channel stays active while NIOSSL waits for the client's close_notify, so
    /// a splice about to be built checks this too (a revocation between the upstream's 101 and the splice).
    private let closing = Atomic<Bool>(false)
    var closeRequested: Bool { closing.load(ordering: .sequentiallyConsistent) }

    /// Closes the client connection (a revocation, a sweep's no, shutdown).
    func close() {
        closing.store(true, ordering: .sequentiallyConsistent)
        channel.close(promise: nil)
    }
    func noteForwarding(since: NIODeadline?) { info.withLock { $0.forwardingSince = since } }
}

/// State shared by all connections of one server. Sendable: immutable values
/// plus mutex-protected tables.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let gate: any AccessGate
    let pool: UpstreamPool
    /// Field bytes the codecs accept in a head (HTTP/1 and HTTP/2), above the validator's `maxHeaderBytes`.
    let maxHeaderListSize: Int
    /// Limits of the HTTP/1 codec's heads (client and upstream side).
    let headLimits: HTTP1Head.Limits
    let logger: Logger
    let metrics = MetricsBox()
    let health: UpstreamHealth
    private let connections = Mutex<(next: Int, live: [Int: LiveConnection])>((0, [:]))
    /// Request ids: a per-server random key, and a counter mixed by a bijection (unique, no system call per request).
    private let requestIDKey: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
    private let requestCounter = Atomic<UInt64>(0)
    /// How many re-evaluations after a change have started (``EnforcementPointServer/reevaluate(minimumAge:)``): an
    /// exchange whose decision was asked before one and that becomes long-lived after it is authorized again then.
    let changeSweeps = Atomic<Int>(0)
    /// The same for re-evaluations of described connections only (after device changes): only an exchange whose request
    /// carries connection attributes is authorized again after one.
    let describedSweeps = Atomic<Int>(0)
    /// Both sweep counters now.
    var sweeps: (all: Int, described: Int) {
        (changeSweeps.load(ordering: .sequentiallyConsistent), describedSweeps.load(ordering: .sequentiallyConsistent))
    }
    /// Client TCP connections open now (``ProxyConfiguration/maxClientConnections``).
    private let clientConnections = Atomic<Int>(0)
    /// When a refusal was last logged (uptime nanoseconds): at most one warning per ten seconds.
    private let lastRefusalLog = Atomic<UInt64>(0)

    /// Counts a newly accepted client connection in, or closes it at once when ``ProxyConfiguration/maxClientConnections``
    /// are open already (returns false). An admitted connection is counted out when it closes.
    func admit(_ channel: any Channel) -> Bool {
        let open = clientConnections.wrappingAdd(1, ordering: .relaxed).newValue
        guard open <= configuration.maxClientConnections else {
            clientConnections.wrappingSubtract(1, ordering: .relaxed)
            metrics.bump(\.connectionsRefused)
            let now = NIODeadline.now().uptimeNanoseconds, last = lastRefusalLog.load(ordering: .relaxed)
            if now &- last >= 10_000_000_000 || last == 0,
               lastRefusalLog.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
                logger.warning("client connection refused: the gateway's connection limit is reached",
                               metadata: ["limit": "\(configuration.maxClientConnections)", "refused_so_far": "\(metrics.snapshot.connectionsRefused)"])
            }
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in clientConnections.wrappingSubtract(1, ordering: .relaxed) }
        return true
    }

    /// Client TCP connections open now.
    var clientConnectionCount: Int { clientConnections.load(ordering: .relaxed) }

    init(configuration: ProxyConfiguration, gate: any AccessGate, logger: Logger) {
        self.configuration = configuration
        self.gate = gate
        self.logger = logger
        self.health = UpstreamHealth(downFor: configuration.upstreamDownTime)
        self.viaValues = ("1.1 \(configuration.viaName)", "1.0 \(configuration.viaName)", "2.0 \(configuration.viaName)")
        // The codecs' limits bound memory before RequestValidator answers 414 or 431; they are set above the
        // validator's so that the validator decides in normal cases.
        self.maxHeaderListSize = max(1024, configuration.maxHeaderBytes) + 16 * 1024
        self.headLimits = HTTP1Head.Limits(maxHeadBytes: max(1024, configuration.maxURILength) + maxHeaderListSize,
                                           maxFields: max(1, configuration.maxHeaderCount) + 64)
        self.pool = UpstreamPool(maxConnections: configuration.maxConnectionsPerUpstream,
                                 maxIdle: configuration.maxIdleConnectionsPerUpstream,
                                 maxWaiters: configuration.maxWaitingRequestsPerUpstream,
                                 connectTimeout: configuration.connectTimeout,
                                 tlsHandler: configuration.upstreamTLSHandler, headLimits: headLimits)
    }

    /// `Via` values for the versions messages arrive in (RFC 9110 §7.6.3), made once.
    private let viaValues: (http11: String, http10: String, http2: String)

    /// The `Via` value for a message received in `version`.
    func via(_ version: HTTPVersion) -> String {
        switch (version.major, version.minor) {
        case (1, 1): viaValues.http11
        case (1, 0): viaValues.http10
        case (2, 0): viaValues.http2
        default: "\(version.major).\(version.minor) \(configuration.viaName)"
        }
    }

    /// 32 lower-case hex digits, unique per server: the first half is a bijective mix of the request
    /// counter under the server's random key (so no two requests share it), the second half differs
    /// between servers and restarts.
    func makeRequestID() -> String {
        let n = requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let a = Self.mix(n ^ requestIDKey.0), b = Self.mix(n &+ requestIDKey.1)
        return String(unsafeUninitializedCapacity: 32) { out in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<16 {
                let shift = UInt64(60 - 4 * i)
                out[i] = digits.utf8Start[Int((a >> shift) & 0xF)]
                out[16 + i] = digits.utf8Start[Int((b >> shift) & 0xF)]
            }
            return 32
        }
    }

    /// SplitMix64's finaliser: a bijection on 64-bit values that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func connectionOpened(_ channel: any Channel) -> LiveConnection {
        connections.withLock { c in
            c.next += 1
            let connection = LiveConnection(id: c.next, channel: channel,
                                            info: ConnectionInfo(clientAddress: channel.remoteAddress?.ipAddress))
            c.live[c.next] = connection
            return connection
        }
    }

    func connectionClosed(_ connection: LiveConnection) { _ = connections.withLock { $0.live.removeValue(forKey: connection.id) } }

    func liveEntries(where predicate: (ConnectionInfo) -> Bool) -> [(LiveConnection, ConnectionInfo)] {
        let all = connections.withLock { Array($0.live.values) }
        return all.compactMap { connection in
            let info = connection.info.withLock { $0 }
            return predicate(info) ? (connection, info) : nil
        }
    }

    var liveCount: Int { connections.withLock { $0.live.count } }
}

/// The enforcement point's HTTP/1.1 listener.
///
/// ```swift
/// let server = EnforcementPointServer(configuration: config, gate: myGate)
/// try await server.start()          // binds; see localPort
/// …
/// try await server.shutdown()
/// ```
/// For TLS, set ``ProxyConfiguration/tlsHandler`` to
/// `{ NIOSSLServerHandler(context: sslContext) }` with an `NIOSSLContext`
/// built from a server `TLSConfiguration` (mTLS: set its `certificateVerification`).
public final class EnforcementPointServer: Sendable {
    let shared: ProxyShared   // internal: tests read the pool's counts
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let serverChannel = Mutex<(any Channel)?>(nil)
    private let reevaluationTask = Mutex<Task<Void, Never>?>(nil)
    private let healthTask = Mutex<Task<Void, Never>?>(nil)

    public init(configuration: ProxyConfiguration, gate: any AccessGate, group: (any EventLoopGroup)? = nil,
                logger: Logger = Logger(label: "menshen.enforcement-point")) {
        self.shared = ProxyShared(configuration: configuration, gate: gate, logger: logger)
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            let threads = configuration.threads > 0 ? configuration.threads : System.coreCount
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            self.ownsGroup = true
        }
    }

    /// Binds the listener. Throws when the address cannot be bound.
    public func start() async throws {
        let shared = self.shared
        // Both are written into every forwarded message as they are, past no validation handler.
        let via = shared.configuration.viaName, scheme = shared.configuration.scheme
        guard !via.isEmpty, ClientHandler.isValidHeader("Via", via) else {
            throw ProxyConfigurationError("viaName must be a non-empty header value without control characters: \(via.debugDescription)")
        }
        guard scheme.map({ !$0.isEmpty && $0.utf8.allSatisfy(RequestValidator.isTokenChar) }) ?? true else {
            throw ProxyConfigurationError("scheme must be a token such as http or https: \(scheme.debugDescription)")
        }
        let tls = shared.configuration.tlsHandler
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                // Over the limit: closed before any handler or read.
                guard shared.admit(channel) else { return channel.eventLoop.makeSucceededVoidFuture() }
                @Sendable func http1(_ channel: any Channel) throws {
                    let sync = channel.pipeline.syncOperations
                    // The enforcement point's own codec (`HTTP1Codec`), and nothing between it and `ClientHandler`:
                    // `ClientHandler` orders pipelined requests and answers unreadable bytes itself, and every field
                    // written to a client is from a message `HTTP1Head` parsed (it refuses control bytes, bare CR/LF
                    // and folding) or checked by `ClientHandler.isValidHeader`.
                    let pending = HTTP1PendingMethods()
                    try sync.addHandler(ByteToMessageHandler(HTTP1RequestDecoder(limits: shared.headLimits, pending: pending)))
                    try sync.addHandler(HTTP1ResponseEncoder(pending: pending))
                    try sync.addHandler(ClientHandler(shared: shared, connection: shared.connectionOpened(channel)))
                }
                guard let tls else { return channel.eventLoop.makeCompletedFuture { try http1(channel) } }
                do {
                    try channel.pipeline.syncOperations.addHandler(tls())
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                guard shared.configuration.http2 else { return channel.eventLoop.makeCompletedFuture { try http1(channel) } }
                // The handshake and ALPN need reads before a protocol handler exists; each protocol
                // then turns reading back to demand-driven (HTTP/1.1) or per-stream (HTTP/2).
                // A client that never completes the handshake and ALPN is not held forever.
                let negotiated = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
                channel.eventLoop.assumeIsolated().scheduleTask(in: shared.configuration.keepAliveTimeout) {
                    if !negotiated.value { channel.close(promise: nil) }
                }
                return channel.setOption(.autoRead, value: true).flatMap {
                    channel.configureHTTP2SecureUpgrade(
                        h2ChannelConfigurator: { connection in
                            negotiated.value = true
                            // An HTTP/2 connection with nothing moving for the idle timeout is closed; the client's
                            // header table size is capped before the HTTP/2 handler applies it to our encoder.
                            do {
                                try connection.pipeline.syncOperations.addHandlers([
                                    IdleStateHandler(allTimeout: shared.configuration.idleTimeout), IdleConnectionCloser(),
                                    HTTP2HeaderTableCap()])
                            } catch { return connection.eventLoop.makeFailedFuture(error) }
                            return connection.configureHTTP2Pipeline(
                                mode: .server,
                                initialLocalSettings: [HTTP2Setting(parameter: .maxConcurrentStreams, value: shared.configuration.maxConcurrentStreams),
                                                       HTTP2Setting(parameter: .maxHeaderListSize, value: shared.maxHeaderListSize)],
                                inboundStreamInitializer: { stream in
                                    stream.eventLoop.makeCompletedFuture {
                                        try stream.syncOptions?.setOption(.autoRead, value: false)
                                        try stream.pipeline.syncOperations.addHandler(AuthorityCheck())
                                        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                                        try stream.pipeline.syncOperations.addHandler(
                                            ClientHandler(shared: shared, connection: shared.connectionOpened(stream), http2: true))
                                    }
                                }
                            ).flatMapThrowing { _ in
                                // Right after the HTTP/2 handler, where stream events pass.
                                let sync = connection.pipeline.syncOperations
                                try sync.addHandler(HTTP2StreamlessCloser(timeout: shared.configuration.keepAliveTimeout),
                                                    position: .after(try sync.handler(type: NIOHTTP2Handler.self)))
                            }
                        },
                        http1ChannelConfigurator: { connection in
                            negotiated.value = true
                            return connection.eventLoop.makeCompletedFuture {
                                try connection.syncOptions?.setOption(.autoRead, value: false)
                                try http1(connection)
                            }
                        })
                }
            }
            .bind(host: shared.configuration.host, port: shared.configuration.port)
            .get()
        serverChannel.withLock { $0 = channel }
        if let interval = shared.configuration.reevaluationInterval {
            // Ticks every quarter interval; a connection is due once three quarters have passed since it was last
            // authorized, so none goes longer than the interval unchecked (ticking once per interval, a stream
            // started just after a tick was first checked almost two intervals later).
            let tick = TimeAmount.nanoseconds(max(1, interval.nanoseconds / 4))
            let due = TimeAmount.nanoseconds(interval.nanoseconds - tick.nanoseconds)
            let task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(tick.nanoseconds))
                    guard let self, !Task.isCancelled else { return }
                    let now = NIODeadline.now()
                    await self.shared.reauthorize(self.shared.liveEntries { $0.lastRequest != nil && $0.isDue(now: now, due: due) })
                }
            }
            reevaluationTask.withLock { $0 = task }
        }
        if let interval = shared.configuration.healthCheckInterval {
            let health = shared.health, group = self.group, timeout = shared.configuration.connectTimeout
            let task = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(max(1, interval.nanoseconds)))
                    if Task.isCancelled { return }
                    await health.probe(group: group, timeout: timeout)
                }
            }
            healthTask.withLock { $0 = task }
        }
    }

    /// Upstreams currently marked down (failed recently, not yet reachable again).
    public var upstreamsDown: Int { shared.health.downCount }

    /// Authorizes every long-lived connection again — upgraded (WebSocket)
    /// ones, and exchanges that have been forwarding for `minimumAge` or more —
    /// by asking the gate about the connection's last request (with
    /// ``GateRequest/isReevaluation`` set), and closes each one the gate no
    /// longer forwards: a revoked session or user, a disabled device, a policy
    /// that now denies. A gate that does not answer within the gate timeout
    /// counts as no (fail closed). Call it when a revocation or policy change is
    /// known, so that it takes effect at once; exchanges whose decision is under way
    /// meanwhile are asked again when they start forwarding or are upgraded. (The
    /// periodic re-evaluation, every ``ProxyConfiguration/reevaluationInterval``,
    /// asks about each long-lived connection last authorized three quarters of an
    /// interval ago or more, on ticks a quarter interval apart.) Returns how many
    /// connections were closed.
    ///
    /// With `describedConnectionsOnly`, only connections whose last request carries
    /// ``GateRequest/connectionAttributes`` (e.g. a client certificate) are asked: what a
    /// change to devices alone can alter. With `only`, only connections whose last request it
    /// accepts (e.g. those of the users a change concerned); exchanges whose decision is under way
    /// are then asked again as after a sweep of everything.
    @discardableResult
    public func reevaluate(minimumAge: TimeAmount = .zero, describedConnectionsOnly: Bool = false,
                           only include: (@Sendable (GateRequest) -> Bool)? = nil) async -> Int {
        // Exchanges whose decision is under way now are not long-lived yet: they are authorized again when they
        // become so (``ClientHandler``, ``ProxyShared/changeSweeps``, ``ProxyShared/describedSweeps``).
        if describedConnectionsOnly {
            shared.describedSweeps.add(1, ordering: .sequentiallyConsistent)
        } else {
            shared.changeSweeps.add(1, ordering: .sequentiallyConsistent)
        }
        let now = NIODeadline.now()
        return await shared.reauthorize(shared.liveEntries { info in
            guard let last = info.lastRequest, info.isLongLived(now: now, minimumAge: minimumAge) else { return false }
            return (!describedConnectionsOnly || !last.connectionAttributes.isEmpty) && include?(last) != false
        })
    }

    /// Whether the gate still forwards `request`; false on any other verdict or after `timeout`.
    ///
    /// Returns at the timeout even when the gate's work goes on: a store read stuck on a network that drops packets
    /// does not end when its task is cancelled, and a task group would wait for it — the connection would stay open
    /// (fail open) and the sweep, and every later one, would hang behind it. The gate's task is cancelled and left to
    /// finish on its own.
    static func answer(_ gate: any AccessGate, _ request: GateRequest, within timeout: TimeAmount) async -> Bool {
        let race = AnswerRace()
        return await withCheckedContinuation { continuation in
            race.start(continuation)
            let deciding = Task {
                let allowed: Bool
                if case .forward = await gate.decide(request) { allowed = true } else { allowed = false }
                race.finish(allowed)
            }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(max(1, timeout.nanoseconds)))
                if race.finish(false) { deciding.cancel() }
            }
            race.onFinish { timer.cancel() }
        }
    }

    /// The bound port (useful with port 0), or nil before ``start()``.
    public var localPort: Int? { serverChannel.withLock { $0?.localAddress?.port } }

    /// Number of open client exchanges: HTTP/1 connections and HTTP/2 streams.
    public var openConnections: Int { shared.liveCount }

    /// Number of open client TCP connections (what ``ProxyConfiguration/maxClientConnections`` limits).
    public var clientConnections: Int { shared.clientConnectionCount }

    /// A snapshot of the counters.
    public var metrics: ProxyMetrics {
        var m = shared.metrics.snapshot
        m.openConnections = shared.liveCount
        return m
    }

    /// Closes every client connection whose info matches (e.g. after a
    /// session is revoked). Returns how many were closed.
    @discardableResult
    public func closeConnections(where predicate: (ConnectionInfo) -> Bool) -> Int {
        let connections = shared.liveEntries(where: predicate)
        for (connection, _) in connections { connection.close() }
        return connections.count
    }

    /// Stops listening, closes client and pooled connections, and shuts the
    /// event loops down when this server created them.
    public func shutdown() async throws {
        let channel = serverChannel.withLock { c in
            defer { c = nil }
            return c
        }
        try? await channel?.close()
        reevaluationTask.withLock { t in t?.cancel(); t = nil }
        healthTask.withLock { t in t?.cancel(); t = nil }
        closeConnections { _ in true }
        shared.pool.shutdown()
        if ownsGroup { try await group.shutdownGracefully() }
    }
}

/// Closes a connection when `IdleStateHandler` reports it idle (HTTP/2 connections).
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }
}

/// Closes an HTTP/2 connection that has had no open stream for `timeout` (``ProxyConfiguration/keepAliveTimeout``,
/// as an idle HTTP/1 keep-alive connection). Frames outside streams — PING, SETTINGS, WINDOW_UPDATE — reset the idle
/// handler below the HTTP/2 handler, so without this a client that opens no stream could hold a connection and its
/// TLS state open forever with a PING a minute, unseen by the connection table (only streams are in it).
final class HTTP2StreamlessCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let timeout: TimeAmount
    private var open = 0
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }
    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel(); timer = nil }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is NIOHTTP2StreamCreatedEvent {
            open += 1
            timer?.cancel()
            timer = nil
        } else if event is StreamClosedEvent {
            open = max(0, open - 1)
            if open == 0 { arm(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.open == 0 else { return }
            context.close(promise: nil)
        }
    }
}

/// An HTTP/2 request's `:authority` and a `host` field that name different hosts (RFC 9113 §8.3.1: such a request
/// should be treated as malformed). NIO's HTTP/2-to-HTTP/1 codec keeps `host` and drops `:authority` when both are
/// present, so the gate and the upstream would see one host while whatever routed the connection by `:authority`
/// (a front proxy, connection coalescing, the certificate's name) saw another. Here the `:authority` is added as a
/// second `host` field instead, which ``RequestValidator`` refuses (400, more than one Host). Equal values pass.
final class AuthorityCheck: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(var payload) = unwrapInboundIn(data), let authority = payload.headers.first(name: ":authority"),
              payload.headers["host"].contains(where: { !Self.sameHost($0, authority) })
        else { return context.fireChannelRead(data) }
        payload.headers.add(name: "host", value: authority)
        context.fireChannelRead(wrapInboundOut(.headers(payload)))
    }

    /// Byte for byte, folding ASCII letters only: Unicode case folding would call a Kelvin sign (U+212A) a `k`.
    static func sameHost(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { x, y in
            x == y || (x ^ y == 0x20 && (0x61...0x7A).contains(x | 0x20))
        }
    }
}

/// The first of a gate's answer and its timeout, for ``EnforcementPointServer/answer(_:_:within:)``.
private final class AnswerRace: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Bool, Never>?, done: Bool, onFinish: (@Sendable () -> Void)?)>((nil, false, nil))

    func start(_ continuation: CheckedContinuation<Bool, Never>) { state.withLock { $0.continuation = continuation } }

    /// Resumes the waiter with `allowed` if nothing did yet; true when this call was first.
    @discardableResult
    func finish(_ allowed: Bool) -> Bool {
        let (continuation, after): (CheckedContinuation<Bool, Never>?, (@Sendable () -> Void)?) = state.withLock { s in
            guard !s.done else { return (nil, nil) }
            s.done = true
            defer { s.continuation = nil; s.onFinish = nil }
            return (s.continuation, s.onFinish)
        }
        guard let continuation else { return false }
        continuation.resume(returning: allowed)
        after?()
        return true
    }

    /// Runs `action` once the race is decided (at once if it already is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let already = state.withLock { s in
            if s.done { return true }
            s.onFinish = action
            return false
        }
        if already { action() }
    }
}

extension ProxyShared {
    /// Asks the gate about each connection's last request again (``GateRequest/isReevaluation`` set) and closes those
    /// it no longer forwards; the others count as authorized from the time they were asked. At most 16 questions in
    /// flight: thousands of open WebSockets must not stampede the store. Returns how many were closed.
    @discardableResult
    func reauthorize(_ entries: [(LiveConnection, ConnectionInfo)]) async -> Int {
        guard !entries.isEmpty else { return 0 }
        let gate = self.gate, timeout = configuration.gateTimeout, logger = self.logger
        var closed = 0
        for chunk in stride(from: 0, to: entries.count, by: 16).map({ Array(entries[$0..<min($0 + 16, entries.count)]) }) {
            closed += await withTaskGroup(of: Int.self) { group in
                for (connection, info) in chunk {
                    guard var request = info.lastRequest else { continue }
                    request.isReevaluation = true
                    let question = request
                    group.addTask {
                        let asked = NIODeadline.now()
                        let stillAllowed = await EnforcementPointServer.answer(gate, question, within: timeout)
                        guard !stillAllowed else {
                            connection.noteAuthorized(at: asked)
                            return 0
                        }
                        logger.info("connection closed: no longer authorized", metadata: [
                            "request_id": "\(question.requestID)", "path": "\(question.path)", "upgrade": "\(question.upgrade ?? "")"])
                        connection.close()
                        return 1
                    }
                }
                return await group.reduce(0, +)
            }
        }
        if closed > 0 { metrics.add(\.reevaluationClosures, closed) }
        return closed
    }
}
