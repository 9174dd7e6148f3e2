import Synchronization

/// Counters of one enforcement point, for the operations listener's `/metrics`.
public struct ProxyMetrics: Sendable, Equatable {
    /// Request heads received (valid or not).
    public var requests = 0
    /// Requests refused by the proxy itself before the gate was asked (4xx/5xx).
    public var refusedBeforeGate = 0
    /// Verdicts: forwarded, answered by the gate, and gate timeouts (503).
    public var gateForwarded = 0
    public var gateResponded = 0
    public var gateTimeouts = 0
    /// Of all verdicts, those the gate gave at once on the event loop (``AccessGate/decideImmediately(_:)``).
    public var gateImmediate = 0
    /// Upstream failures answered with 502/503 (connect, pool limit, closed early) and 504 (timeouts).
    public var upstreamErrors = 0
    public var upstreamTimeouts = 0
    /// Requests sent to another upstream of the application after a connection failure.
    public var upstreamFailovers = 0
    /// Connections switched to another protocol (WebSocket) and spliced.
    public var upgrades = 0
    /// Long-lived connections closed because the gate no longer forwarded them on re-evaluation.
    public var reevaluationClosures = 0
    /// Client connections open when the snapshot was taken.
    public var openConnections = 0
    /// Client connections closed at once because ``ProxyConfiguration/maxClientConnections`` were open.
    public var connectionsRefused = 0

    public init() {}
}

/// Mutex-protected counters behind ``EnforcementPointServer/metrics``.
final class MetricsBox: Sendable {
    private let value = Mutex(ProxyMetrics())
    func bump(_ field: WritableKeyPath<ProxyMetrics, Int>) { add(field, 1) }
    func add(_ field: WritableKeyPath<ProxyMetrics, Int>, _ n: Int) { value.withLock { $0[keyPath: field] += n } }
    var snapshot: ProxyMetrics { value.withLock { $0 } }
}
