import Foundation
import Hummingbird
import Logging
import MenshenCore
import MenshenStorage
import Metrics
import NIOCore
import Prometheus

/// The operations listener: liveness, readiness and Prometheus metrics.
/// It carries no user data and no secrets; bind it to a private address.
public enum AdminServer {
    /// Builds the router. Exposed for in-process tests.
    public static func router(store: any MenshenStore, latestSchemaVersion: Int, registry: PrometheusCollectorRegistry,
                              gatewayMetrics: GatewayMetricsExport? = nil) -> Router<BasicRequestContext>
    {
        let router = Router()
        router.add(middleware: MetricsMiddleware())
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"status":"alive"}"#)))
        }
        router.get("/readyz") { _, _ -> Response in
            let body: String
            let status: HTTPResponse.Status
            do {
                try await store.ping()
                let version = try await store.schemaVersion()
                if version == latestSchemaVersion {
                    status = .ok
                    body = #"{"status":"ready","store":"\#(store.backendName)","schema_version":\#(version)}"#
                } else {
                    status = .serviceUnavailable
                    body = #"{"status":"not ready","reason":"schema version \#(version), expected \#(latestSchemaVersion)"}"#
                }
            } catch {
                status = .serviceUnavailable
                body = #"{"status":"not ready","reason":"store unreachable"}"#
            }
            return Response(status: status, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ in
            gatewayMetrics?.update()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }
}
