import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenServer
import MenshenStorage

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Menshen with zero configuration: embedded store, demo organisation, everything on loopback.",
        discussion: """
            Creates (or reuses) an SQLite store in the data directory, seeds a demo organisation (users, groups,
            roles, two protected applications, Cedar policies for the remote-work and vendor-maintenance
            scenarios), starts the portal, the operations listener and a sample upstream application, and
            prints the URLs and a one-time enrolment link for the administrator. Stop it with Ctrl-C.
            """
    )

    @Option(help: ArgumentHelp("Data directory (created when missing, reused when present).", valueName: "dir"))
    var data: String = "./menshen-data"

    @Option(help: ArgumentHelp("Address of the portal (user-facing listener).", valueName: "host:port"))
    var listen: String = "127.0.0.1:8080"

    @Option(name: .customLong("admin-listen"), help: ArgumentHelp("Address of the operations listener.", valueName: "host:port"))
    var adminListen: String = "127.0.0.1:9090"

    @Option(name: .customLong("app-listen"), help: ArgumentHelp("Address of the sample upstream application.", valueName: "host:port"))
    var appListen: String = "127.0.0.1:8081"

    @Option(name: .customLong("gateway-listen"),
            help: ArgumentHelp("Address of the enforcement point in front of the sample application.", valueName: "host:port"))
    var gatewayListen: String = "127.0.0.1:8000"

    func run() async throws {
        guard let sample = ListenAddress(parsing: appListen) else {
            throw ValidationError("--app-listen must be host:port, not '\(appListen)'")
        }
        guard var portalListen = ListenAddress(parsing: listen) else {
            throw ValidationError("--listen must be host:port, not '\(listen)'")
        }
        // The portal's public origin must be known before it starts (WebAuthn
        // origin checks, CSRF): with port 0, pick a free port now.
        if portalListen.port == 0 { portalListen.port = try freeTCPPort(host: portalListen.host) }
        guard var gateway = ListenAddress(parsing: gatewayListen) else {
            throw ValidationError("--gateway-listen must be host:port, not '\(gatewayListen)'")
        }
        if gateway.port == 0 { gateway.port = try freeTCPPort(host: gateway.host) }
        let config: MenshenConfiguration
        do {
            config = try ConfigLoader.load(file: nil, environment: logEnvironment(), overrides: [
                "organisation.name": DemoOrganisation.name,
                "store.driver": "sqlite",
                "store.sqlite.path": StoreOptions.sqlitePath(in: data),
                "server.listen": portalListen.description,
                "server.public_url": "http://localhost:\(portalListen.port)",
                "admin.listen": adminListen,
                "gateway.listen": gateway.description,
                "gateway.public_url": "http://localhost:\(gateway.port)",
            ])
        } catch { throw fail(error) }
        let logger = bootstrapLogging(config)
        let clock = SystemClock()
        let store: any MenshenStore
        do { store = try await StoreFactory.open(config, logger: logger) } catch { throw fail(error) }
        let dataDir = data
        do {
            let upstream = "http://\(sample)"
            let created = try await DemoOrganisation.seed(into: store, upstream: upstream, host: "localhost", clock: clock)
            logger.info("demo organisation \(created ? "created" : "reused")", metadata: ["data": "\(dataDir)"])
        } catch {
            try? await store.close()
            throw fail(error)
        }
        let runtime = MenshenRuntime(config: config, store: store, logger: logger, clock: clock,
                                     demo: .init(sampleApplicationListen: sample))
        do {
            try await runtime.run { listeners in
                await Self.printBanner(listeners: listeners, store: store, clock: clock, dataDir: dataDir)
            }
        } catch { throw fail(error) }
    }

    static func printBanner(listeners: [BoundListener], store: any MenshenStore, clock: any WallClock, dataDir: String) async {
        func url(_ name: String, host: String? = nil) -> String {
            guard let l = listeners.first(where: { $0.name == name }) else { return "?" }
            let h = host ?? (l.host.contains(":") ? "[\(l.host)]" : l.host)
            return "http://\(h):\(l.port)"
        }
        // Browsers accept WebAuthn on http://localhost only (an IP address is not a valid RP ID).
        let portal = url("portal", host: "localhost")
        var link = "(could not issue: store unavailable)"
        if let token = try? await DemoOrganisation.issueEnrolmentToken(for: DemoOrganisation.administrator, store: store,
                                                                       clock: clock, random: SystemRandomSource()) {
            link = "\(portal)/enrol/\(token)"
        }
        let banner = """
            門神 Menshen demo is running — data in \(dataDir) (SQLite)
              Portal:                 \(portal)/
              Protected applications: \(url("gateway", host: "localhost"))/   (through the enforcement point; every request re-authorized)
              Sample application:     \(url("sample"))/   (upstream of the protected applications)
              Operations:             \(url("admin"))/healthz  \(url("admin"))/readyz  \(url("admin"))/metrics
              Administrator enrolment (one-time link, valid 24 h):
                \(link)
            Press Ctrl-C to stop.

            """
        FileHandle.standardOutput.write(Data(banner.utf8))
    }
}
