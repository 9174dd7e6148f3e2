import ArgumentParser
import Foundation
import MenshenConfig
import MenshenServer
import MenshenStorage

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run Menshen in production mode from a configuration file.",
        discussion: "Environment variables MENSHEN_<KEY_PATH> override keys of the file (e.g. MENSHEN_STORE_POSTGRES_URL)."
    )

    @Option(help: ArgumentHelp("Configuration file (YAML). See `menshen config example`.", valueName: "file"))
    var config: String

    func run() async throws {
        let configuration: MenshenConfiguration
        do {
            configuration = try ConfigLoader.load(file: config, environment: ProcessInfo.processInfo.environment)
        } catch { throw fail(error) }
        let logger = bootstrapLogging(configuration)
        let store: any MenshenStore
        do { store = try await StoreFactory.open(configuration, logger: logger) } catch { throw fail(error) }
        logger.info("store ready", metadata: ["backend": "\(store.backendName)"])
        do {
            try await MenshenRuntime(config: configuration, store: store, logger: logger).run { listeners in
                for l in listeners { logger.notice("listening", metadata: ["listener": "\(l.name)", "port": "\(l.port)", "host": "\(l.host)"]) }
            }
        } catch { throw fail(error) }
    }
}
