import Foundation
import MenshenCore

/// The whole configuration, typed. Built only through ``ConfigLoader`` so
/// every instance has passed validation.
public struct MenshenConfiguration: Sendable, Equatable {
    public struct Organisation: Sendable, Equatable {
        /// `organisation.name` (default `Menshen`).
        public var name: String
        /// `organisation.time_zone` (default `Asia/Taipei`).
        public var timeZone: String
    }

    public struct Server: Sendable, Equatable {
        /// `server.listen` (default `127.0.0.1:8080`).
        public var listen: ListenAddress
        /// `server.public_url` (default `http://localhost:8080`).
        public var publicURL: String
    }

    public struct Gateway: Sendable, Equatable {
        /// `gateway.listen` (default `127.0.0.1:8000`).
        public var listen: ListenAddress
        /// `gateway.public_url` (default `http://localhost:8000`).
        public var publicURL: String
        /// `gateway.routes_file` (default empty: applications from the store only).
        public var routesFile: String
        /// `gateway.reload_interval_seconds` (default 5).
        public var reloadIntervalSeconds: Int
        /// `gateway.reevaluate_interval_seconds` (default 30).
        public var reevaluateIntervalSeconds: Int
        /// `gateway.forward_auth.trusted_callers` (default loopback).
        public var forwardAuthTrustedCallers: [CIDR]
        /// `gateway.tls.certificate_file`, `gateway.tls.private_key_file` and `gateway.tls.client_ca_file` (default empty: plain HTTP).
        public var tlsCertificateFile: String
        public var tlsPrivateKeyFile: String
        public var tlsClientCAFile: String
        /// `gateway.assertion_key_file` (default empty: next to the SQLite file).
        public var assertionKeyFile: String
        /// `gateway.upstream_tls.ca_file` (default empty: the system's trust store), `gateway.upstream_tls.certificate_file`
        /// and `gateway.upstream_tls.private_key_file` (default empty: no client certificate): TLS to `https://` upstreams.
        public var upstreamTLSCAFile: String = ""
        public var upstreamTLSCertificateFile: String = ""
        public var upstreamTLSPrivateKeyFile: String = ""
        /// `gateway.assertion_published_keys_file` (default empty): public keys the JWKS lists besides the signing key.
        public var assertionPublishedKeysFile: String = ""
        /// `gateway.extra_identity_headers` (default none), lower-case: more header names clients may not send.
        public var extraIdentityHeaders: [String] = []
        /// `gateway.max_connections` (default 10,000): client connections held open at once.
        public var maxConnections: Int = 10_000
        /// `gateway.websocket_idle_timeout_seconds` (default 300): silence after which an upgraded connection is closed.
        public var websocketIdleTimeoutSeconds: Int = 300
    }

    public struct Admin: Sendable, Equatable {
        /// `admin.listen` (default `127.0.0.1:9090`).
        public var listen: ListenAddress
    }

    public enum StoreDriver: String, Sendable, Equatable { case sqlite, postgres }

    public struct Store: Sendable, Equatable {
        /// `store.driver` (default `sqlite`).
        public var driver: StoreDriver
        /// `store.sqlite.path` (default `./menshen-data/menshen.sqlite`).
        public var sqlitePath: String
        /// `store.sqlite.busy_timeout_seconds` (default 5).
        public var sqliteBusyTimeoutSeconds: Int
        /// `store.postgres.url` (default empty; required for `postgres`).
        public var postgresURL: String
        /// `store.postgres.pool_size` (default 10).
        public var postgresPoolSize: Int
        /// `store.postgres.connect_timeout_seconds` (default 5).
        public var postgresConnectTimeoutSeconds: Int
    }

    public struct Log: Sendable, Equatable {
        /// `log.level` (default `info`).
        public var level: String
        /// `log.format` (default `text`).
        public var format: String
    }

    public struct Identity: Sendable, Equatable {
        /// `identity.session.idle_timeout_seconds` (default 1800).
        public var sessionIdleTimeoutSeconds: Int
        /// `identity.session.absolute_lifetime_seconds` (default 43200).
        public var sessionAbsoluteLifetimeSeconds: Int
        /// `identity.session.privileged_lifetime_seconds` (default 3600).
        public var sessionPrivilegedLifetimeSeconds: Int
        /// `identity.session.keep_ended_days` (default 30).
        public var sessionKeepEndedDays: Int = 30
        /// `identity.oidc.providers_file` (default empty: no federation).
        public var oidcProvidersFile: String
        /// `identity.secrets_key_file` (default empty: next to the SQLite file).
        public var secretsKeyFile: String
    }

    public struct Audit: Sendable, Equatable {
        /// `audit.signing_key_file` (default empty: `audit.key` next to the SQLite file).
        public var signingKeyFile: String
        /// `audit.checkpoint.every_events` (default 1000).
        public var checkpointEveryEvents: Int
        /// `audit.checkpoint.interval_seconds` (default 60).
        public var checkpointIntervalSeconds: Int
        /// `audit.checkpoint.anchor_file` (default empty: `audit-anchor.jsonl` next to the SQLite file).
        public var checkpointAnchorFile: String
        /// `audit.retention_days` (default 0: keep every event).
        public var retentionDays: Int = 0
        /// `audit.retention_export_dir` (default empty; required when retention is on).
        public var retentionExportDir: String = ""
        /// `audit.when_unwritten` (default `refuse`): access refused, or admitted, while decisions are not being written.
        public var whenUnwritten: String = "refuse"
        /// `audit.unwritten_grace_seconds` (default 5).
        public var unwrittenGraceSeconds: Int = 5
    }
    /// The tamper-evident audit log's checkpoints.
    public var audit: Audit
    /// `export.syslog.*`: the SIEM export (default off).
    public struct SyslogExport: Sendable, Equatable {
        public var enabled: Bool
        public var address: ListenAddress
        public var transport: String
        public var format: String
        public var caFile: String
        public var certificateFile: String
        public var privateKeyFile: String
        public var serverName: String
        public var appName: String
        public var hostname: String
        public var facility: Int
        public var structuredData: Bool
        public var maxMessageBytes: Int
        public var writeTimeoutSeconds: Int
        public var confirmAfterSeconds: Int
    }
    /// `export.jsonl.*`: the JSON Lines file export (default off).
    public struct JSONLinesExport: Sendable, Equatable {
        public var enabled: Bool
        public var path: String
        public var maxFileBytes: Int
        public var keepFiles: Int
    }
    public var jsonLinesExport: JSONLinesExport
    /// `export.webhook.*`: the HTTPS webhook export (default off).
    public struct WebhookExport: Sendable, Equatable {
        public var enabled = false
        /// `export.webhook.url` (checked at load: https, or http to a loopback host).
        public var url = ""
        public var tokenFile = ""
        public var caFile = ""
        public var clientCertificateFile = ""
        public var clientKeyFile = ""
        /// `export.webhook.batch_size` (default 500).
        public var batchSize = 500
        /// `export.webhook.max_batch_bytes` (default 1 MiB).
        public var maxBatchBytes = 1 << 20
        /// `export.webhook.timeout_seconds` (default 10).
        public var timeoutSeconds = 10
        /// `export.webhook.max_backoff_seconds` (default 30).
        public var maxBackoffSeconds = 30

        public init(enabled: Bool = false, url: String = "", tokenFile: String = "", caFile: String = "", clientCertificateFile: String = "",
                    clientKeyFile: String = "", batchSize: Int = 500, maxBatchBytes: Int = 1 << 20, timeoutSeconds: Int = 10,
                    maxBackoffSeconds: Int = 30) {
            self.enabled = enabled; self.url = url; self.tokenFile = tokenFile; self.caFile = caFile
            self.clientCertificateFile = clientCertificateFile; self.clientKeyFile = clientKeyFile; self.batchSize = batchSize
            self.maxBatchBytes = maxBatchBytes; self.timeoutSeconds = timeoutSeconds; self.maxBackoffSeconds = maxBackoffSeconds
        }
    }
    public var webhookExport = WebhookExport()
    /// `assessment.*`: the maturity assessment and its evidence packs.
    public struct AssessmentSettings: Sendable, Equatable {
        /// `assessment.signing_key_file` (default empty: `assessment.key` next to the SQLite file).
        public var signingKeyFile: String
    }
    public var assessment = AssessmentSettings(signingKeyFile: "")
    public struct Response: Sendable, Equatable {
        /// `response.playbooks_file` (default empty: the built-in playbooks).
        public var playbooksFile: String
        /// `response.approval_timeout_seconds`: how long a step held for approval waits.
        public var approvalTimeoutSeconds: Int = 3600
        /// `response.case_window_seconds`: how far back an open case's latest finding may be for a new finding to join it.
        public var caseWindowSeconds: Int = 86400
        /// `response.detections_enabled`: whether this node runs the detection service (default true).
        public var detectionsEnabled = true
    }

    public var organisation: Organisation
    public var server: Server
    public var admin: Admin
    public var gateway: Gateway
    public var store: Store
    public var log: Log
    public var identity: Identity
    public var syslogExport: SyslogExport
    public var device: Device

    public struct Device: Sendable, Equatable {
        /// `device.ca_file` (default empty: device-ca.json next to the SQLite file).
        public var caFile: String
        /// `device.compliance_file` (default empty: the built-in baselines).
        public var complianceFile: String
        /// `device.tpm_ca_file` (default empty: TPM enrolment refused).
        public var tpmCAFile: String = ""
        /// `device.advisories_dir` (default empty: no advisory database, packages unscanned).
        public var advisoriesDir: String = ""
    }
    public var response: Response

    /// Builds the typed tree from checked values (every key present and valid).
    init(checked v: [String: String]) {
        func s(_ k: String) -> String { v[k] ?? ConfigKeys.byPath[k]?.defaultValue ?? "" }
        func i(_ k: String) -> Int { Int(s(k)) ?? 0 }
        func l(_ k: String) -> ListenAddress { ListenAddress(parsing: s(k)) ?? ListenAddress(host: "127.0.0.1", port: 0) }
        organisation = Organisation(name: s("organisation.name"), timeZone: s("organisation.time_zone"))
        server = Server(listen: l("server.listen"), publicURL: s("server.public_url"))
        admin = Admin(listen: l("admin.listen"))
        gateway = Gateway(listen: l("gateway.listen"), publicURL: s("gateway.public_url"), routesFile: s("gateway.routes_file"),
                          reloadIntervalSeconds: i("gateway.reload_interval_seconds"),
                          reevaluateIntervalSeconds: i("gateway.reevaluate_interval_seconds"),
                          forwardAuthTrustedCallers: ConfigValues.cidrs(s("gateway.forward_auth.trusted_callers")).compactMap(CIDR.init),
                          tlsCertificateFile: s("gateway.tls.certificate_file"), tlsPrivateKeyFile: s("gateway.tls.private_key_file"),
                          tlsClientCAFile: s("gateway.tls.client_ca_file"), assertionKeyFile: s("gateway.assertion_key_file"),
                          upstreamTLSCAFile: s("gateway.upstream_tls.ca_file"),
                          upstreamTLSCertificateFile: s("gateway.upstream_tls.certificate_file"),
                          upstreamTLSPrivateKeyFile: s("gateway.upstream_tls.private_key_file"),
                          assertionPublishedKeysFile: s("gateway.assertion_published_keys_file"),
                          extraIdentityHeaders: ConfigValues.cidrs(s("gateway.extra_identity_headers")).map { $0.lowercased() },
                          maxConnections: i("gateway.max_connections"),
                          websocketIdleTimeoutSeconds: i("gateway.websocket_idle_timeout_seconds"))
        store = Store(driver: StoreDriver(rawValue: s("store.driver")) ?? .sqlite, sqlitePath: s("store.sqlite.path"),
                      sqliteBusyTimeoutSeconds: i("store.sqlite.busy_timeout_seconds"), postgresURL: s("store.postgres.url"),
                      postgresPoolSize: i("store.postgres.pool_size"),
                      postgresConnectTimeoutSeconds: i("store.postgres.connect_timeout_seconds"))
        log = Log(level: s("log.level"), format: s("log.format"))
        identity = Identity(sessionIdleTimeoutSeconds: i("identity.session.idle_timeout_seconds"),
                            sessionAbsoluteLifetimeSeconds: i("identity.session.absolute_lifetime_seconds"),
                            sessionPrivilegedLifetimeSeconds: i("identity.session.privileged_lifetime_seconds"),
                            oidcProvidersFile: s("identity.oidc.providers_file"), secretsKeyFile: s("identity.secrets_key_file"))
        identity.sessionKeepEndedDays = i("identity.session.keep_ended_days")
        audit = Audit(signingKeyFile: s("audit.signing_key_file"), checkpointEveryEvents: i("audit.checkpoint.every_events"),
                      checkpointIntervalSeconds: i("audit.checkpoint.interval_seconds"), checkpointAnchorFile: s("audit.checkpoint.anchor_file"))
        audit.retentionDays = i("audit.retention_days"); audit.retentionExportDir = s("audit.retention_export_dir")
        audit.whenUnwritten = s("audit.when_unwritten"); audit.unwrittenGraceSeconds = i("audit.unwritten_grace_seconds")
        syslogExport = SyslogExport(enabled: s("export.syslog.enabled") == "true", address: l("export.syslog.address"),
                                    transport: s("export.syslog.transport"), format: s("export.syslog.format"),
                                    caFile: s("export.syslog.tls.ca_file"), certificateFile: s("export.syslog.tls.certificate_file"),
                                    privateKeyFile: s("export.syslog.tls.private_key_file"), serverName: s("export.syslog.tls.server_name"),
                                    appName: s("export.syslog.app_name"), hostname: s("export.syslog.hostname"),
                                    facility: i("export.syslog.facility"), structuredData: s("export.syslog.structured_data") == "true",
                                    maxMessageBytes: i("export.syslog.max_message_bytes"),
                                    writeTimeoutSeconds: i("export.syslog.write_timeout_seconds"),
                                    confirmAfterSeconds: i("export.syslog.confirm_after_seconds"))
        device = Device(caFile: s("device.ca_file"), complianceFile: s("device.compliance_file"), advisoriesDir: s("device.advisories_dir"))
        device.tpmCAFile = s("device.tpm_ca_file")
        response = Response(playbooksFile: s("response.playbooks_file"), approvalTimeoutSeconds: i("response.approval_timeout_seconds"),
                            caseWindowSeconds: i("response.case_window_seconds"), detectionsEnabled: s("response.detections_enabled") == "true")
        jsonLinesExport = JSONLinesExport(enabled: s("export.jsonl.enabled") == "true", path: s("export.jsonl.path"),
                                          maxFileBytes: i("export.jsonl.max_file_bytes"), keepFiles: i("export.jsonl.keep_files"))
        assessment = AssessmentSettings(signingKeyFile: s("assessment.signing_key_file"))
        webhookExport = WebhookExport(enabled: s("export.webhook.enabled") == "true", url: s("export.webhook.url"),
                                      tokenFile: s("export.webhook.token_file"), caFile: s("export.webhook.ca_file"),
                                      clientCertificateFile: s("export.webhook.client_certificate_file"),
                                      clientKeyFile: s("export.webhook.client_key_file"), batchSize: i("export.webhook.batch_size"),
                                      maxBatchBytes: i("export.webhook.max_batch_bytes"), timeoutSeconds: i("export.webhook.timeout_seconds"),
                                      maxBackoffSeconds: i("export.webhook.max_backoff_seconds"))
    }

    /// The configuration with every default.
    public static var defaults: MenshenConfiguration { MenshenConfiguration(checked: [:]) }
}

/// A `host:port` listen address. IPv6 hosts are written `[::1]:8080`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) { self.host = host; self.port = port }

    /// Parses `host:port`; nil when malformed or the port is out of range.
    public init?(parsing text: String) {
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, !host.contains(" "), let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.host = String(host); self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Parsing of list-valued keys.
enum ConfigValues {
    /// The items of a comma-separated list, trimmed, without empty ones (CIDR blocks, header names).
    static func cidrs(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
