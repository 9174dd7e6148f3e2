import Foundation
import Logging
import MenshenEnforcementPoint
import MenshenStorage
import ServiceLifecycle

/// Runs the enforcement point under swift-service-lifecycle: binds, reports
/// its port, reloads the routes and policies when their sources change, and
/// drains on graceful shutdown.
struct GatewayService: Service {
    let server: EnforcementPointServer
    let state: GatewayState
    let loader: GatewayLoader
    let reloadInterval: Duration
    let logger: Logger
    let onBound: @Sendable (Int) async -> Void

    func run() async throws {
        try await server.start()
        await onBound(server.localPort ?? 0)
        await cancelWhenGracefulShutdown {
            var lastRefusal = ""
            while !Task.isCancelled {
                try? await Task.sleep(for: reloadInterval)
                switch await loader.reloadIfChanged(state) {
                case .unchanged: break
                case .reloaded(let generation):
                    lastRefusal = ""
                    let s = state.snapshot
                    logger.notice("gateway configuration reloaded", metadata: [
                        "generation": "\(generation)", "applications": "\(s.routes.applications.count)",
                        "policies": "\(s.decisionPoint.policies.policies.count)"])
                case .refused(let why):
                    // Said once per distinct problem, not every interval.
                    if why != lastRefusal {
                        logger.error("gateway configuration change refused; the running configuration stays", metadata: ["problems": "\(why)"])
                        lastRefusal = why
                    }
                }
            }
        }
        try await server.shutdown()
    }
}
