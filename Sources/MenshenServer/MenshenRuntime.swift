import Foundation
import Hummingbird
import Logging
import MenshenConfig
import MenshenCore
import MenshenEnforcementPoint
import MenshenPolicyEngine
import MenshenStorage
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

/// What a listener reports once it is bound.
public struct BoundListener: Sendable, Equatable {
    public var name: String
    public var host: String
    public var port: Int
}

/// Runs Menshen's listeners under one `ServiceGroup`; returns when a SIGTERM
/// or SIGINT has drained them, then closes the store.
public struct MenshenRuntime: Sendable {
    /// Settings only the demo uses.
    public struct DemoSettings: Sendable {
        /// Where the sample upstream application listens.
        public var sampleApplicationListen: ListenAddress
        public init(sampleApplicationListen: ListenAddress) { self.sampleApplicationListen = sampleApplicationListen }
    }

    public var config: MenshenConfiguration
    public var store: any MenshenStore
    public var logger: Logger
    public var clock: any WallClock
    public var demo: DemoSettings?

    public init(config: MenshenConfiguration, store: any MenshenStore, logger: Logger, clock: any WallClock = SystemClock(),
                demo: DemoSettings? = nil) {
        self.config = config; self.store = store; self.logger = logger; self.clock = clock; self.demo = demo
    }

    /// The metrics registry; bootstrapped into swift-metrics once per process.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Runs until a shutdown signal. `onReady` receives every bound listener once all are up.
    public func run(onReady: @escaping @Sendable ([BoundListener]) async -> Void) async throws {
        // Refuse to start on a policy set that does not validate: the enforcement
        // point must never run without a known-good snapshot (fail closed).
        let loader = GatewayLoader(store: store, routesFile: config.gateway.routesFile, clock: clock)
        let state = GatewayState(try await loader.load())
        logger.info("gateway configuration loaded", metadata: [
            "applications": "\(state.snapshot.routes.applications.count)", "policies": "\(state.snapshot.decisionPoint.policies.policies.count)"])
        let registry = Self.registry
        let expected = demo == nil ? 3 : 4   // listeners that report readiness
        let ready = ReadyCollector(expected: expected, onReady: onReady)
        let latest = StoreFactory.latestSchemaVersion(config.store.driver)
        var services: [any Service] = []
        // Listed first so it stops last: its final checkpoint covers the decisions flushed at shutdown.
        let checkpointer = try AuditCheckpointer.configured(config, store: store, clock: clock, logger: Logger(label: "menshen.audit"))
        if let checkpointer { services.append(checkpointer) }
        // Audit retention (audit.retention_days): export-then-prune at start and daily; after the checkpointer, so it stops first.
        if let retention = AuditRetention.configured(config, store: store, checkpointer: checkpointer, clock: clock,
                                                     logger: Logger(label: "menshen.audit")) {
            services.append(retention)
        }
        // Ended sessions and expired ceremony state deleted at start and hourly (identity.session.keep_ended_days).
        services.append(SessionHousekeeping(store: store, clock: clock, keepEndedDays: config.identity.sessionKeepEndedDays,
                                            logger: Logger(label: "menshen.sessions")))

        func app<Context: RequestContext>(_ name: String, _ router: Router<Context>, _ listen: ListenAddress) -> some Service
            where Context.Source == ApplicationRequestContextSource
        {
            Application(router: router,
                        configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "Menshen"),
                        onServerRunning: { channel in
                            await ready.add(BoundListener(name: name, host: listen.host, port: channel.localAddress?.port ?? listen.port))
                        },
                        logger: logger)
        }

        let gatewayMetrics = GatewayMetricsExport(registry: registry)
        services.append(app("admin", AdminServer.router(store: store, latestSchemaVersion: latest, registry: registry,
                                                        gatewayMetrics: gatewayMetrics), config.admin.listen))
        var portal = try IdentityWiring.portal(config: config, store: store, clock: clock)
        portal.applicationCatalog = { state.snapshot.routes.applications }
        let portalRouter = PortalServer.router(store: store, organisation: config.organisation.name, clock: clock, identity: portal)
        // Device rules (compliance baselines, advisories): a set that does not load stops the start, later ones are refused.
        let deviceRulesLoader = DeviceWiring.rulesLoader(config: config)
        let deviceRules = DeviceRulesState(try deviceRulesLoader.load())
        // The device agent's API (enrolment, posture); with PostgreSQL only once device.ca_file names the shared CA.
        if config.store.driver == .sqlite || !config.device.caFile.isEmpty {
            DeviceRoutes.register(on: portalRouter, authority: try DeviceWiring.authority(config: config, store: store, clock: clock, rules: deviceRules))
        }
        services.append(app("portal", portalRouter, config.server.listen))
        let (gatewayOrigin, _) = try IdentityWiring.origin(of: config.gateway.publicURL)
        var proxyConfig = ProxyConfiguration()
        proxyConfig.host = config.gateway.listen.host
        proxyConfig.port = config.gateway.listen.port
        proxyConfig.scheme = gatewayOrigin.hasPrefix("https") ? "https" : "http"
        proxyConfig.reevaluationInterval = .seconds(Int64(config.gateway.reevaluateIntervalSeconds))
        proxyConfig.ownCookies = PortalCookies.all
        proxyConfig.extraIdentityHeaders = Set(config.gateway.extraIdentityHeaders)
        proxyConfig.maxClientConnections = config.gateway.maxConnections
        proxyConfig.upgradedIdleTimeout = .seconds(Int64(config.gateway.websocketIdleTimeoutSeconds))
        try GatewayTLS.configure(&proxyConfig, from: config.gateway)
        try GatewayTLS.configureUpstreams(&proxyConfig, from: config.gateway)
        proxyConfig.refusalPage = PolicyGate.refusalPage(portalOrigin: portal.publicOrigin)
        let decisions = DecisionLog(store: store, clock: clock, whenUnwritten: DecisionLog.WhenUnwritten(rawValue: config.audit.whenUnwritten) ?? .refuse,
                                    grace: .seconds(config.audit.unwrittenGraceSeconds))
        services.append(decisions)
        let assertions = try await IdentityAssertionSigner(privateKeyPEM: IdentityAssertionSigner.loadOrCreateKey(path: IdentityWiring.keyPath(
                                                               config.gateway.assertionKeyFile, default: "assertion.key", key: "gateway.assertion_key_file", config: config),
                                                               mayCreate: config.store.driver == .sqlite),
                                                           issuer: gatewayOrigin, clock: clock,
                                                           publishedPublicKeysPEM: config.gateway.assertionPublishedKeysFile.isEmpty ? []
                                                               : IdentityAssertionSigner.loadPublishedKeys(path: config.gateway.assertionPublishedKeysFile))
        let deviceBinding = try DeviceBinding.load(gateway: config.gateway, rules: deviceRules, store: store, clock: clock, random: SystemRandomSource())
        services.append(DeviceRulesService(state: deviceRules, loader: deviceRulesLoader, binding: deviceBinding,
                                           reloadInterval: .seconds(config.gateway.reloadIntervalSeconds), logger: logger))
        let gate = PolicyGate(store: store, sessions: portal.sessions, clock: clock, state: state,
                              portalOrigin: portal.publicOrigin, timeZone: config.organisation.timeZone,
                              forwardAuthCallers: config.gateway.forwardAuthTrustedCallers, recorder: decisions, assertions: assertions,
                              devices: deviceBinding)
        let gatewayListen = config.gateway.listen
        let gatewayServer = EnforcementPointServer(configuration: proxyConfig, gate: gate, logger: Logger(label: "menshen.enforcement-point"))
        gatewayMetrics.attach {
            .init(proxy: gatewayServer.metrics, decisionsWritten: decisions.writtenCount, decisionsDropped: decisions.droppedCount,
                  decisionsUnwritten: decisions.unwrittenCount, admitsAccess: decisions.admitsAccess)
        }
        services.append(GatewayService(server: gatewayServer, state: state, loader: loader,
                                       reloadInterval: .seconds(config.gateway.reloadIntervalSeconds), logger: logger,
                                       onBound: { port in await ready.add(BoundListener(name: "gateway", host: gatewayListen.host, port: port)) }))
        services.append(ChangeWatcher(store: store, server: gatewayServer, state: state, loader: loader, logger: logger,
                                      sessionUser: { gate.sessionUser(of: $0) }))
        if config.syslogExport.enabled {   // SIEM export: reads the event log only (Export/SyslogExporter)
            services.append(try SyslogExporter.configured(config, store: store, clock: clock, logger: logger))
        }
        if config.jsonLinesExport.enabled {   // JSON Lines file export: reads the event log only (Export/JSONLinesExporter)
            services.append(try JSONLinesExporter.configured(config, store: store, clock: clock, logger: logger))
        }
        if config.webhookExport.enabled {   // HTTPS webhook export in batches: reads the event log only (Export/WebhookExporter)
            services.append(try WebhookExporter.configured(config, store: store, clock: clock, logger: logger))
        }
        // Detections and playbooks: a playbooks file that does not load stops the start (like the routes file), also on a
        // node that leaves them to another (its file is checked all the same, so a node can take over by configuration).
        let playbooks = try PlaybookState(file: config.response.playbooksFile)
        if config.response.detectionsEnabled {
            // On one node at a time among those sharing the store: the one holding the lease (LeasedService).
            let reload = config.gateway.reloadIntervalSeconds, approval = config.response.approvalTimeoutSeconds
            let caseWindow = config.response.caseWindowSeconds
            // `/metrics`: menshen_detections_running is 1 on the node that runs them, 0 on the ones standing by.
            let running = registry.makeGauge(name: "menshen_detections_running")
            running.set(Int64(0))
            services.append(LeasedService(store: store, name: LeasedService.detectionsLease, logger: logger,
                                          onChange: { running.set(Int64($0 ? 1 : 0)) }) {
                DetectionService(store: store, playbooks: playbooks, clock: clock, logger: logger,
                                 reloadInterval: .seconds(reload), approvalTimeout: .seconds(approval),
                                 caseWindow: .seconds(caseWindow))
            })
        } else {
            logger.notice("detections and playbooks are off on this node (response.detections_enabled: false): another node must run them")
        }
        // On every node, whichever runs the detections: `/metrics` menshen_detections_lag_seconds (how long the oldest event
        // they have not examined has waited; absent until the first reading, not a made-up 0), and a warning when no node
        // runs them or they fall behind.
        services.append(DetectionLagWatch(store: store, clock: clock, logger: logger, runsHere: config.response.detectionsEnabled,
                                          onAge: { registry.makeGauge(name: "menshen_detections_lag_seconds").set($0) }))
        if let demo {
            services.append(app("sample", SampleApplication.router(organisation: config.organisation.name), demo.sampleApplicationListen))
        }
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await portal.federation?.shutdown()
            try? await store.close()
            throw error
        }
        try? await portal.federation?.shutdown()
        try await store.close()
    }
}

/// Collects bound listeners and fires once all expected ones are up.
actor ReadyCollector {
    private var listeners: [BoundListener] = []
    private let expected: Int
    private let onReady: @Sendable ([BoundListener]) async -> Void

    init(expected: Int, onReady: @escaping @Sendable ([BoundListener]) async -> Void) {
        self.expected = expected; self.onReady = onReady
    }

    func add(_ l: BoundListener) async {
        listeners.append(l)
        if listeners.count == expected { await onReady(listeners) }
    }
}
