/// Where a forwarded request goes: HTTP/1.1, over TLS when `tls` is set (the
/// TLS handler comes from ``ProxyConfiguration/upstreamTLSHandler``).
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// When set, the `Host` header sent upstream; otherwise the client's `Host` is kept.
    public var hostHeader: String?
    /// Connect with TLS. Without a configured TLS handler factory such a request fails closed (502).
    public var tls: Bool

    public init(host: String, port: Int, hostHeader: String? = nil, tls: Bool = false) {
        self.host = host
        self.port = port
        self.hostHeader = hostHeader
        self.tls = tls
    }

    public var description: String { "\(tls ? "https" : "http")://\(host):\(port)" }
}

/// A request as the gate sees it: transport-neutral, already validated and
/// with its path normalised (the same path that is sent upstream).
public struct GateRequest: Sendable {
    /// The request method as sent (methods are case-sensitive tokens).
    public var method: String
    /// The normalised path (see ``PathNormalizer``). This is what is forwarded.
    public var path: String
    /// The request target exactly as received on the wire.
    public var rawTarget: String
    /// The raw query (without `?`), or nil when the target had none.
    public var query: String?
    /// The `Host` header value (exactly one was required).
    public var host: String
    /// `http` or `https`: what the client used to reach the enforcement point.
    public var scheme: String
    /// The peer address as text (an IP address), or nil when unknown.
    public var clientAddress: String?
    /// Request headers minus hop-by-hop headers, in wire order; names as received.
    public var headers: [(String, String)]
    /// Identifier of this request, sent upstream and put in error bodies.
    public var requestID: String
    /// The protocol the client asks to switch to (`websocket`), when it asks for
    /// an allowed upgrade. A `.forward` verdict then splices the connection.
    public var upgrade: String?
    /// Facts about the client connection from ``ProxyConfiguration/connectionAttributes``
    /// (e.g. the mTLS client certificate's subject and fingerprint). Empty when not configured.
    public var connectionAttributes: [String: String]
    /// Set when the proxy asks again about a long-lived connection's request
    /// (see ``EnforcementPointServer/reevaluate(minimumAge:)``), not a new request.
    public var isReevaluation = false

    public init(method: String, path: String, rawTarget: String, query: String?, host: String,
                scheme: String, clientAddress: String?, headers: [(String, String)], requestID: String,
                upgrade: String? = nil, connectionAttributes: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.rawTarget = rawTarget
        self.query = query
        self.host = host
        self.scheme = scheme
        self.clientAddress = clientAddress
        self.headers = headers
        self.requestID = requestID
        self.upgrade = upgrade
        self.connectionAttributes = connectionAttributes
    }

    /// All values of a header, compared case-insensitively by name.
    public func headerValues(_ name: String) -> [String] {
        let wanted = HeaderRules.lowercased(name)   // no copy for the lower-case names callers pass
        // Compared byte by byte, folding ASCII case (names are tokens): no lower-cased copy of every name.
        return headers.compactMap { HeaderRules.name($0.0, equalsLowercased: wanted) ? $0.1 : nil }
    }
}

/// What the gate decided for one request.
public enum GateVerdict: Sendable {
    /// Forward to the first reachable of `upstreams` (fail-over order; ones
    /// that recently failed are tried last), adding `addHeaders` (e.g. the
    /// verified identity) after all client-supplied identity headers were removed.
    case forward(upstreams: [Upstream], addHeaders: [(String, String)])
    /// Answer the client directly (deny, redirect to sign-in, step-up, …).
    case respond(status: Int, headers: [(String, String)], body: [UInt8])

    /// Forward to a single upstream.
    public static func forward(upstream: Upstream, addHeaders: [(String, String)]) -> GateVerdict {
        .forward(upstreams: [upstream], addHeaders: addHeaders)
    }
}

/// The decision seam the proxy asks about every request.
///
/// Implementations must not throw; a gate that cannot decide should answer
/// `.respond` with a deny. A gate that does not answer within the configured
/// timeout is treated as a deny (503).
public protocol AccessGate: Sendable {
    func decide(_ request: GateRequest) async -> GateVerdict
    /// Answers at once, on the event loop, when the gate can decide without
    /// waiting (for example from cached facts it can prove are current);
    /// nil hands the request to ``decide(_:)``. Must be quick and never block
    /// on I/O. Not asked for re-evaluations. The default answers nil.
    func decideImmediately(_ request: GateRequest) -> GateVerdict?
}

extension AccessGate {
    public func decideImmediately(_ request: GateRequest) -> GateVerdict? { nil }
}

/// A gate built from a closure; handy for tests and simple deployments.
public struct ClosureGate: AccessGate {
    private let body: @Sendable (GateRequest) async -> GateVerdict
    public init(_ body: @escaping @Sendable (GateRequest) async -> GateVerdict) { self.body = body }
    public func decide(_ request: GateRequest) async -> GateVerdict { await body(request) }
}
