import MenshenEnforcementPoint
import Prometheus
import Synchronization

/// The enforcement point's counters and the decision audit's on the
/// operations listener's `/metrics` (Prometheus): read from their sources at
/// each scrape, counters advanced by what happened since the previous scrape.
///
/// - `menshen_gateway_requests_total`, `menshen_gateway_refused_before_gate_total`
/// - `menshen_gateway_verdicts_total{verdict="forwarded|responded|timeout"}`
/// - `menshen_gateway_decided_immediately_total` (on the event loop, without a store read)
/// - `menshen_gateway_upstream_errors_total`, `…_upstream_timeouts_total`, `…_upstream_failovers_total`
/// - `menshen_gateway_upgrades_total`, `menshen_gateway_reevaluation_closures_total`
/// - `menshen_gateway_connections_refused_total` (closed at once: `gateway.max_connections` were open)
/// - `menshen_gateway_open_connections` (gauge)
/// - `menshen_decision_events_written_total`, `menshen_decision_events_dropped_total`
/// - `menshen_decision_events_unwritten` (gauge: decisions not yet written), `menshen_decision_log_admits_access`
///   (gauge: 0 while access is refused because decisions are not being written, `audit.when_unwritten: refuse`)
public final class GatewayMetricsExport: Sendable {
    public struct Sample: Sendable {
        public var proxy: ProxyMetrics
        public var decisionsWritten: Int
        public var decisionsDropped: Int
        public var decisionsUnwritten: Int
        public var admitsAccess: Bool
        public init(proxy: ProxyMetrics, decisionsWritten: Int, decisionsDropped: Int, decisionsUnwritten: Int = 0, admitsAccess: Bool = true) {
            self.proxy = proxy; self.decisionsWritten = decisionsWritten; self.decisionsDropped = decisionsDropped
            self.decisionsUnwritten = decisionsUnwritten; self.admitsAccess = admitsAccess
        }
    }

    private let registry: PrometheusCollectorRegistry
    private let source = Mutex<(@Sendable () -> Sample)?>(nil)
    private let exported = Mutex<[String: Int]>([:])

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    /// Where the figures come from (the gateway is built after the operations listener).
    public func attach(_ sample: @escaping @Sendable () -> Sample) { source.withLock { $0 = sample } }

    /// Brings the registry up to date; call before emitting it.
    public func update() {
        guard let sample = source.withLock({ $0 })?() else { return }
        let p = sample.proxy
        let counters: [(String, [(String, String)], Int)] = [
            ("menshen_gateway_requests_total", [], p.requests),
            ("menshen_gateway_refused_before_gate_total", [], p.refusedBeforeGate),
            ("menshen_gateway_verdicts_total", [("verdict", "forwarded")], p.gateForwarded),
            ("menshen_gateway_verdicts_total", [("verdict", "responded")], p.gateResponded),
            ("menshen_gateway_verdicts_total", [("verdict", "timeout")], p.gateTimeouts),
            ("menshen_gateway_decided_immediately_total", [], p.gateImmediate),
            ("menshen_gateway_upstream_errors_total", [], p.upstreamErrors),
            ("menshen_gateway_upstream_timeouts_total", [], p.upstreamTimeouts),
            ("menshen_gateway_upstream_failovers_total", [], p.upstreamFailovers),
            ("menshen_gateway_upgrades_total", [], p.upgrades),
            ("menshen_gateway_reevaluation_closures_total", [], p.reevaluationClosures),
            ("menshen_gateway_connections_refused_total", [], p.connectionsRefused),
            ("menshen_decision_events_written_total", [], sample.decisionsWritten),
            ("menshen_decision_events_dropped_total", [], sample.decisionsDropped),
        ]
        exported.withLock { seen in
            for (name, labels, value) in counters {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let delta = value - (seen[key] ?? 0)
                let counter = labels.isEmpty ? registry.makeCounter(name: name) : registry.makeCounter(name: name, labels: labels)
                if delta > 0 { counter.increment(by: Int64(delta)) }
                seen[key] = max(value, seen[key] ?? 0)
            }
        }
        registry.makeGauge(name: "menshen_gateway_open_connections").set(Int64(p.openConnections))
        registry.makeGauge(name: "menshen_decision_events_unwritten").set(Int64(sample.decisionsUnwritten))
        registry.makeGauge(name: "menshen_decision_log_admits_access").set(Int64(sample.admitsAccess ? 1 : 0))
    }
}
