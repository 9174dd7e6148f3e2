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
                case .unchanged:
                    lastRefusal = ""   // the sources read, and are the running ones: a later problem is news again
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
                case .unavailable(let why):
                    if why != lastRefusal, !Task.isCancelled {
                        logger.warning("could not read the gateway configuration; the running configuration stays, trying again",
                                       metadata: ["error": "\(why)"])
                        lastRefusal = why
                    }
                }
            }
        }
        try await server.shutdown()
    }
}

extension ChangeWatcher {
    /// Waits before each new attempt when the sources could not be read after a change notification: the notification
    /// is spent, and without another attempt a policy tightening would wait for the reload poll (up to
    /// `gateway.reload_interval_seconds`).
    static let retryDelays: [Duration] = [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)]

    /// After a reload's `first` outcome: a read that failed (``GatewayLoader/Outcome/unavailable(_:)``) is tried again
    /// after each of `delays`; any other outcome is returned as it is (a refused change is not tried again: the same
    /// sources would be refused again).
    static func retry(_ loader: GatewayLoader, _ state: GatewayState, logger: Logger, after first: GatewayLoader.Outcome,
                      delays: [Duration] = retryDelays) async -> GatewayLoader.Outcome {
        var outcome = first
        for delay in delays {
            guard case .unavailable(let why) = outcome, !Task.isCancelled else { break }
            logger.warning("could not read the gateway configuration after a store change; trying again",
                           metadata: ["error": "\(why)", "after_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)"])
            try? await Task.sleep(for: delay)
            if Task.isCancelled { break }
            outcome = await loader.reloadIfChanged(state)
        }
        return outcome
    }
}

/// Acts on the store's change feed (PostgreSQL LISTEN/NOTIFY from every node;
/// polled trigger counters on SQLite): a configuration change rebuilds the
/// snapshot at once instead of at the next reload interval, and any change
/// re-authorizes the long-lived connections, so a revocation made on another
/// node closes this node's WebSockets too (a change to devices alone: only
/// the connections that present a device certificate).
struct ChangeWatcher: Service {
    /// Which long-lived connections a batch of changes has authorized again.
    enum SweepScope: Equatable {
        case all
        /// Only connections whose requests carry connection attributes (a client certificate).
        case connectionsPresentingDevices
    }

    /// The sweep a batch of changes calls for, nil for none:
    /// - an access change (a revocation, a user, membership, role or risk change), or a configuration reload done
    ///   here: every long-lived connection. A configuration change another path already loaded (the reload poll) was
    ///   swept there.
    /// - device changes alone (posture reports, quarantines, certificates): only the connections that present a device
    ///   certificate, since no other connection's decision reads a device.
    static func sweep(after change: Set<StoreChange>, reloadedHere: Bool) -> SweepScope? {
        if change.contains(.access) || reloadedHere { return .all }
        return change.contains(.device) ? .connectionsPresentingDevices : nil
    }

    let store: any MenshenStore
    let server: EnforcementPointServer
    let state: GatewayState
    let loader: GatewayLoader
    let logger: Logger
    /// The user whose session a request presents, when the gate knows it (``PolicyGate/sessionUser(of:)``): with a
    /// store that says whom its access changes concerned (SQLite), a sweep after access changes asks only about the
    /// connections of those users (and of sessions not known here). Nil: every connection is asked.
    var sessionUser: (@Sendable (GateRequest) -> String?)? = nil

    /// The users whose access the changes after `swept` concerned, read from the store before a sweep (a change
    /// committed after the read comes with a batch of its own), and the access generation the sweep covers. Users nil:
    /// ask about every connection — a change that may concern anyone, changes the store no longer keeps or does not
    /// say, a configuration reloaded here or a device change in the batch (their sweeps ask about everyone anyway).
    static func concernedUsers(after change: Set<StoreChange>, reloadedHere: Bool, source: any CommittedAccessGeneration,
                               swept: Int64?) -> (users: Set<String>?, swept: Int64?) {
        guard let swept, let read = source.accessChanges(after: swept) else { return (nil, source.committedAccessGeneration()) }
        guard read.complete, !reloadedHere, !change.contains(.device) else { return (nil, read.through) }
        var users = Set<String>()
        for concerned in read.changes {
            guard let user = concerned.userID else { return (nil, read.through) }
            users.insert(user)
        }
        return (users, read.through)
    }

    func run() async throws {
        let source = sessionUser == nil ? nil : store as? any CommittedAccessGeneration
        // The access generation the last sweep covered: read before the feed starts, so every change it reports is after it.
        let baseline = source?.committedAccessGeneration()
        // Changes that arrive during a reload or sweep are merged into one next batch (``CoalescedChanges``).
        let changes = CoalescedChanges(store.changes())
        defer { changes.cancel() }
        let (loader, state, logger, server, sessionUser) = (self.loader, self.state, self.logger, self.server, self.sessionUser)
        await cancelWhenGracefulShutdown {
            var swept = baseline
            // A reload that could not read the store is tried again beside the feed, not in its way: access changes
            // (revocations from other nodes) keep being swept meanwhile, and a newer configuration change replaces it.
            var retrying: Task<Void, Never>?
            defer { retrying?.cancel() }
            for await change in changes.batches() {
                if Task.isCancelled { break }
                var reloadedHere = false
                if change.contains(.configuration) {
                    retrying?.cancel()
                    retrying = nil
                    switch await loader.reloadIfChanged(state) {
                    case .reloaded(let generation):
                        reloadedHere = true
                        logger.notice("gateway configuration reloaded after a store change", metadata: ["generation": "\(generation)"])
                    case .refused(let why) where !Task.isCancelled:
                        logger.error("gateway configuration change refused; the running configuration stays", metadata: ["problems": "\(why)"])
                    case .unavailable(let why) where !Task.isCancelled:
                        retrying = Task {
                            switch await Self.retry(loader, state, logger: logger, after: .unavailable(why)) {
                            case .reloaded(let generation):
                                logger.notice("gateway configuration reloaded after a store change", metadata: ["generation": "\(generation)"])
                                let closed = await server.reevaluate()
                                if closed > 0 { logger.notice("connections closed after a configuration reload", metadata: ["closed": "\(closed)"]) }
                            case .unavailable(let why) where !Task.isCancelled:
                                logger.error("could not read the gateway configuration after a store change; the reload poll will try again",
                                             metadata: ["error": "\(why)"])
                            case .refused(let why) where !Task.isCancelled:
                                logger.error("gateway configuration change refused; the running configuration stays", metadata: ["problems": "\(why)"])
                            default: break
                            }
                        }
                    case .refused, .unavailable, .unchanged: break
                    }
                }
                guard let scope = Self.sweep(after: change, reloadedHere: reloadedHere) else { continue }
                var only: (@Sendable (GateRequest) -> Bool)?
                if scope == .all, let source, let sessionUser {
                    let concerned = Self.concernedUsers(after: change, reloadedHere: reloadedHere, source: source, swept: swept)
                    swept = concerned.swept
                    if let users = concerned.users {
                        guard !users.isEmpty else { continue }   // already swept with an earlier batch's read
                        only = { request in sessionUser(request).map(users.contains) ?? true }
                    }
                }
                let closed = await server.reevaluate(describedConnectionsOnly: scope == .connectionsPresentingDevices, only: only)
                if closed > 0 {
                    logger.notice("connections closed after a store change", metadata: [
                        "closed": "\(closed)", "change": "\(change.map(\.rawValue).sorted().joined(separator: ","))"])
                }
            }
        }
    }
}
