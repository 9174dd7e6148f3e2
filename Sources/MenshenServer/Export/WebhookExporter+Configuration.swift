import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenStorage

extension WebhookExporter {
    /// The exporter the `export.webhook.*` keys describe (call only when `export.webhook.enabled`).
    /// Throws when the token or TLS files cannot be read, so a misconfigured export stops the start
    /// instead of silently sending nothing (the URL was checked when the configuration loaded).
    public static func configured(_ config: MenshenConfiguration, store: any EventStore & ConsumerCursorStore, clock: any WallClock,
                                  logger: Logger) throws -> WebhookExporter {
        let c = config.webhookExport
        let settings = WebhookExportSettings(url: c.url, bearerToken: try readToken(c.tokenFile), caFile: c.caFile,
                                             certificateFile: c.clientCertificateFile, privateKeyFile: c.clientKeyFile,
                                             batchSize: c.batchSize, maxBatchBytes: c.maxBatchBytes, timeout: .seconds(c.timeoutSeconds),
                                             maxBackoff: .seconds(c.maxBackoffSeconds))
        return try WebhookExporter(store: store, settings: settings, clock: clock, logger: logger)
    }

    /// The bearer token from `export.webhook.token_file` (nil when the key is empty): one line of printable
    /// ASCII without spaces (what an HTTP header can carry), at most 4096 bytes, a final newline allowed.
    static func readToken(_ path: String) throws -> String? {
        guard !path.isEmpty else { return nil }
        func bad(_ why: String) -> WebhookExportError { WebhookExportError(.tokenFile, "export.webhook.token_file \(path): \(why)") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw bad("cannot be read") }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: 4098)) ?? Data()
        guard data.count <= 4097 else { throw bad("is longer than 4096 bytes") }
        var bytes = [UInt8](data)
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else { throw bad("is empty") }
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw bad("must hold one line of printable ASCII without spaces (the token only)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
