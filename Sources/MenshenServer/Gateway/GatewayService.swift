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
                // Shutting down: a reload now would only fail on the cancelled store calls and report that as a refusal.
                if Task.isCancelled { break }
                switch await loader.reloadIfChanged(state) {
                case .unchanged: break
                case .reloaded(let generation):
                    lastRefusal = ""
                    let s = state.snapshot
                    logger.notice("gateway configuration reloaded", metadata: [
                        "generation": "\(generation)", "applications": "\(s.routes.applications.count)",
                        "policies": "\(s.decisionPoint.policies.policies.count)"])
                    // Open WebSockets and streams are authorized again under the new routes and policies now, not at
                    // the next periodic re-evaluation (a routes-file change reaches no store change feed).
                    let closed = await server.reevaluate()
                    if closed > 0 { logger.notice("connections closed after a configuration reload", metadata: ["closed": "\(closed)"]) }
                case .refused(let why):
                    // Said once per distinct problem, not every interval (nor when cancelled meanwhile).
                    if why != lastRefusal, !Task.isCancelled {
                        logger.error("gateway configuration change refused; the running configuration stays", metadata: ["problems": "\(why)"])
                        lastRefusal = why
                    }
                }
            }
        }
        try await server.shutdown()
    }
}

/// Acts on the store's change feed (PostgreSQL LISTEN/NOTIFY from every node;
/// polled trigger counters on SQLite): a configuration change rebuilds the
/// snapshot at once instead of at the next reload interval, and any change
/// re-authorizes the long-lived connections, so a revocation made on another
/// node closes this node's WebSockets too.
struct ChangeWatcher: Service {
    let store: any MenshenStore
    let server: EnforcementPointServer
    let state: GatewayState
    let loader: GatewayLoader
    let logger: Logger

    func run() async throws {
        // Changes that arrive during a reload or sweep are merged into one next batch (``CoalescedChanges``).
        let changes = CoalescedChanges(store.changes())
        defer { changes.cancel() }
        await cancelWhenGracefulShutdown {
            for await change in changes.batches() {
                if Task.isCancelled { break }
                // A configuration change another path already loaded (the reload poll) was swept there: sweep again only
                // for access changes, or a reload done here.
                var sweep = change.contains(.access)
                if change.contains(.configuration) {
                    switch await loader.reloadIfChanged(state) {
                    case .reloaded(let generation):
                        sweep = true
                        logger.notice("gateway configuration reloaded after a store change", metadata: ["generation": "\(generation)"])
                    case .refused(let why) where !Task.isCancelled:
                        logger.error("gateway configuration change refused; the running configuration stays", metadata: ["problems": "\(why)"])
                    case .refused, .unchanged: break
                    }
                }
                guard sweep else { continue }
                let closed = await server.reevaluate()
                if closed > 0 {
                    logger.notice("connections closed after a store change", metadata: [
                        "closed": "\(closed)", "change": "\(change.map(\.rawValue).sorted().joined(separator: ","))"])
                }
            }
        }
    }
}
