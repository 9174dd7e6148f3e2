import NIOCore

/// Limits, timeouts and listener settings of the enforcement point.
public struct ProxyConfiguration: Sendable {
    /// Address to listen on; port 0 picks a free port (see ``EnforcementPointServer/localPort``).
    public var host: String = "127.0.0.1"
    public var port: Int = 0
    /// TLS for the client-facing listener: makes the handler put first in each
    /// client pipeline, e.g. `{ NIOSSLServerHandler(context: sslContext) }`.
    /// Nil serves plain HTTP. Kept as a factory so this module does not pin a TLS stack.
    public var tlsHandler: (@Sendable () throws -> any ChannelHandler)?
    /// With ``tlsHandler`` set, offer HTTP/2 through ALPN (the TLS context must
    /// list `h2` and `http/1.1` as application protocols); clients that do not
    /// ask for `h2` get HTTP/1.1. Upstreams are always spoken to in HTTP/1.1.
    public var http2 = true
    /// Most client connections (TCP, plain or TLS; an HTTP/2 connection counts once however many streams it
    /// carries) open at once. A connection accepted beyond it is closed before anything is read from it and counted
    /// (``ProxyMetrics/connectionsRefused``): idle connections cannot grow memory or use up file descriptors.
    public var maxClientConnections: Int = 10_000
    /// Most concurrent streams per HTTP/2 connection.
    public var maxConcurrentStreams = 100
    /// Called on the event loop for each request head, with the client's
    /// connection (for an HTTP/2 stream: the TLS connection carrying it), to describe it to the gate (``GateRequest/connectionAttributes``), e.g. from the
    /// TLS handler's validated peer certificate for mTLS. Never used to cache a verdict.
    public var connectionAttributes: (@Sendable (any Channel) -> [String: String])?
    /// TLS towards upstreams whose ``Upstream/tls`` is set: makes the handler put first in
    /// each such upstream pipeline, e.g.
    /// `{ try NIOSSLClientHandler(context: clientContext, serverHostname: $0.host) }`. It must depend only on the
    /// upstream's `host` and `port` (the pool's key), not on ``Upstream/hostHeader``: a connection is reused for
    /// every request to that host and port.
    public var upstreamTLSHandler: (@Sendable (Upstream) throws -> any ChannelHandler)?
    /// The scheme reported to the gate and in `X-Forwarded-Proto`; derived from `tlsHandler` when nil.
    public var scheme: String?

    /// Longest accepted request target, in bytes (414 beyond).
    public var maxURILength: Int = 8 * 1024
    /// Most header fields accepted in a request (431 beyond).
    public var maxHeaderCount: Int = 100
    /// Largest total size of header names and values (431 beyond).
    public var maxHeaderBytes: Int = 32 * 1024
    /// Largest request body forwarded (413 beyond).
    public var maxRequestBodyBytes: Int64 = 64 * 1024 * 1024

    /// The gate must answer within this time, otherwise 503 (fail closed).
    public var gateTimeout: TimeAmount = .seconds(5)
    /// Connecting to an upstream (502 beyond).
    public var connectTimeout: TimeAmount = .seconds(5)
    /// From the end of the forwarded request to the upstream's response head (504 beyond).
    public var responseHeaderTimeout: TimeAmount = .seconds(30)
    /// Longest silence on either side while an exchange is in progress.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// Longest silence (no byte either way) of an upgraded connection (a WebSocket); both sides are closed after it.
    /// WebSocket applications that keep a connection open send pings well within it (commonly every 20–60 s).
    public var upgradedIdleTimeout: TimeAmount = .seconds(300)
    /// How often long-lived connections (upgraded ones, responses still
    /// streaming after this long) are authorized again and closed when the
    /// gate no longer forwards them; nil turns periodic re-evaluation off
    /// (``EnforcementPointServer/reevaluate(minimumAge:)`` still works).
    public var reevaluationInterval: TimeAmount? = .seconds(30)
    /// Longest idle time of a client keep-alive connection between requests.
    public var keepAliveTimeout: TimeAmount = .seconds(30)

    /// An upstream whose connection failed is tried last for this long, unless a
    /// health check reaches it sooner.
    public var upstreamDownTime: TimeAmount = .seconds(30)
    /// How often upstreams marked down are probed (TCP connect); nil: never.
    public var healthCheckInterval: TimeAmount? = .seconds(5)
    /// Most connections (leased and idle) to one upstream host:port per event loop.
    public var maxConnectionsPerUpstream: Int = 64
    /// Most requests per upstream host:port and event loop that wait for a connection
    /// when all are leased (503 beyond; a waiting request is bounded by ``idleTimeout``).
    public var maxWaitingRequestsPerUpstream: Int = 256
    /// Most idle pooled connections to one upstream host:port per event loop.
    public var maxIdleConnectionsPerUpstream: Int = 16

    /// Extra identity header names (lower-case) stripped from client requests,
    /// in addition to ``HeaderRules/identityExact`` and ``HeaderRules/identityPrefixes``.
    public var extraIdentityHeaders: Set<String> = []
    /// Names of the access platform's own cookies (its session and CSRF cookies), lower-case: removed from the
    /// `Cookie` line sent upstream (they are bearer credentials for every application), and an upstream's
    /// `Set-Cookie` for one of them never reaches the client (``HeaderRules/passesToClient(lower:value:ownCookies:)``).
    public var ownCookies: Set<String> = []
    /// Protocols a client may upgrade to (lower-case); the gate is told via
    /// ``GateRequest/upgrade`` and the connection is spliced after the upstream's 101.
    public var allowedUpgrades: Set<String> = ["websocket"]
    /// Renders the proxy's own error answers (400…504: bad requests, upstream down or slow, gate
    /// unavailable) for the client that asked: given the refusal, the request id and the request's
    /// headers (nil when the request could not be read), it returns headers (with the content type)
    /// and a body. Nil answers `text/plain`.
    public var refusalPage: (@Sendable (ProxyRefusal, String, [(String, String)]?) -> (headers: [(String, String)], body: [UInt8]))?
    /// Pseudonym used in `Via`.
    public var viaName: String = "menshen"
    /// Event loop threads of the server (0 uses the number of cores).
    public var threads: Int = 0

    public init() {}
}
