import Foundation
import Logging
import MenshenEnforcementPoint
import MenshenStorage
import ServiceLifecycle

/// Runs the enforcement point under swift-service-lifecycle: binds, reports
/// its port, refreshes the route table from the store every few seconds, and
/// drains on graceful shutdown.
struct GatewayService: Service {
    let server: EnforcementPointServer
    let routes: RouteTable
    let store: any MenshenStore
    let refreshInterval: Duration
    let logger: Logger
    let onBound: @Sendable (Int) async -> Void

    func run() async throws {
        try await routes.refresh(from: store)
        try await server.start()
        await onBound(server.localPort ?? 0)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: refreshInterval)
                do { try await routes.refresh(from: store) } catch {
                    logger.warning("route refresh failed; keeping the previous routes", metadata: ["error": "\(error)"])
                }
            }
        }
        try await server.shutdown()
    }
}
