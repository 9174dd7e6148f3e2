import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage

enum MenshenVersion {
    static var text: String { "menshen \(MenshenCore.version)" }
}

/// How every administrative verb picks its store: a configuration file, or a
/// data directory holding the embedded SQLite store (the demo's default).
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file of the deployment to act on.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Data directory of an embedded deployment (ignored with --config).", valueName: "dir"))
    var data: String = "./menshen-data"

    func load() throws -> MenshenConfiguration {
        if let config {
            return try ConfigLoader.load(file: config, environment: ProcessInfo.processInfo.environment)
        }
        return try ConfigLoader.load(file: nil, environment: logEnvironment(),
                                     overrides: ["store.driver": "sqlite", "store.sqlite.path": Self.sqlitePath(in: data)])
    }

    static func sqlitePath(in dir: String) -> String { (dir as NSString).appendingPathComponent("menshen.sqlite") }
}

/// Only the logging variables of the environment (the demo ignores the rest on purpose).
func logEnvironment() -> [String: String] {
    ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("MENSHEN_LOG_") }
}

/// Prints an error as one line on standard error and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    let stderr = FileHandle.standardError
    if let e = error as? ConfigError {
        for p in e.problems { stderr.write(Data("menshen: config error: \(p)\n".utf8)) }
        return ExitCode(2)
    }
    if let e = error as? PolicyLoadError {
        for p in e.problems { stderr.write(Data("menshen: policy error: \(p)\n".utf8)) }
        return ExitCode(1)
    }
    if let e = error as? StoreError {
        stderr.write(Data("menshen: store error: \(e.message)\n".utf8))
        return ExitCode(1)
    }
    stderr.write(Data("menshen: error: \(error)\n".utf8))
    return ExitCode(1)
}

/// Bootstraps swift-log once, from the configuration's `log.*` keys.
func bootstrapLogging(_ config: MenshenConfiguration) -> Logger {
    let level = Logger.Level(rawValue: config.log.level) ?? .info
    let json = config.log.format == "json"
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "menshen")
}
