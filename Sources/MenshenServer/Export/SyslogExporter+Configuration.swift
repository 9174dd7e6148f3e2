import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenStorage
import MenshenVisibility

extension SyslogExporter {
    /// The exporter the `export.syslog.*` keys describe (call only when `export.syslog.enabled`).
    /// Throws when the TLS files cannot be read, so a misconfigured export stops the start instead of silently sending nothing.
    public static func configured(_ config: MenshenConfiguration, store: any EventStore & ConsumerCursorStore, clock: any WallClock,
                                  logger: Logger) throws -> SyslogExporter {
        let c = config.syslogExport
        let hostname = c.hostname.isEmpty ? ProcessInfo.processInfo.hostName : c.hostname
        let formatter = SyslogEventFormatter(body: c.format == "json" ? .json : .cef, facility: c.facility, hostname: hostname,
                                             appName: c.appName, procID: String(ProcessInfo.processInfo.processIdentifier),
                                             structuredDataID: c.structuredData ? "menshen@32473" : nil,
                                             productVersion: MenshenCore.version, maxMessageBytes: c.maxMessageBytes)
        let settings = SyslogExportSettings(host: c.address.host, port: c.address.port, transport: c.transport == "tcp" ? .tcp : .tls,
                                            caFile: c.caFile, certificateFile: c.certificateFile, privateKeyFile: c.privateKeyFile,
                                            serverName: c.serverName, formatter: formatter,
                                            writeTimeout: .seconds(c.writeTimeoutSeconds), confirmAfter: .seconds(c.confirmAfterSeconds))
        return try SyslogExporter(store: store, settings: settings, clock: clock, logger: logger)
    }
}
