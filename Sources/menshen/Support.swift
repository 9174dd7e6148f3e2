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

    /// Loads the configuration and opens an existing store (an administrative verb
    /// never creates an empty SQLite database by mistake). Errors become one line and a non-zero exit.
    func openExisting() async throws -> (MenshenConfiguration, any MenshenStore) {
        do {
            let config = try load()
            if config.store.driver == .sqlite, !FileManager.default.fileExists(atPath: config.store.sqlitePath) {
                throw StoreError(.notFound, "\(config.store.sqlitePath): no Menshen database here (run `menshen demo` or pass --config)")
            }
            return (config, try await StoreFactory.open(config, logger: Logger(label: "menshen")))
        } catch { throw fail(error) }
    }
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
    if let e = error as? GatewayLoadError {
        for line in e.message.split(separator: "\n") { stderr.write(Data("menshen: gateway configuration error: \(line)\n".utf8)) }
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

/// A TCP port that is free on `host` right now (bind to port 0, read it back, close).
func freeTCPPort(host: String) throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw ValidationError("cannot open a socket to find a free port") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ValidationError("cannot bind \(host):0 to find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
