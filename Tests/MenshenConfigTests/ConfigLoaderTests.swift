import Foundation
import MenshenConfig
import Testing

@Suite("Configuration")
final class ConfigLoaderTests: Sendable {
    /// This test's files, removed when it ends (a class suite: one instance per test).
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-config-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: dir) }

    func write(_ text: String) throws -> String {
        let path = dir.appendingPathComponent("\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("an empty file means every default")
    func defaults() throws {
        let config = try ConfigLoader.load(yaml: "")
        #expect(config == MenshenConfiguration.defaults)
        #expect(config.store.driver == .sqlite)
        #expect(config.admin.listen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.organisation.timeZone == "Asia/Taipei")
    }

    @Test("a complete valid file is read into the typed tree")
    func valid() throws {
        let path = try write("""
            organisation:
              name: 台灣測試銀行
              time_zone: Asia/Taipei
            server:
              listen: "[::1]:8443"
              public_url: https://access.bank.example
            admin:
              listen: 127.0.0.1:9900
            store:
              driver: postgres
              postgres:
                url: postgres://menshen@db.internal:5432/menshen?sslmode=require
                pool_size: 20
            log:
              level: debug
              format: json
            """)
        #expect(ConfigLoader.check(file: path).isEmpty)
        let c = try ConfigLoader.load(file: path)
        #expect(c.organisation.name == "台灣測試銀行")
        #expect(c.server.listen == ListenAddress(host: "::1", port: 8443))
        #expect(c.store.driver == .postgres && c.store.postgresPoolSize == 20)
        #expect(c.log.format == "json")
    }

    @Test("three distinct mistakes are all reported with key path and line")
    func threeMistakes() throws {
        let path = try write("""
            server:
              listen: 127.0.0.1:99999
            store:
              driver: mysql
            log:
              colour: true
            """)
        let problems = ConfigLoader.check(file: path)
        #expect(problems.count == 3)
        let keyed = Dictionary(uniqueKeysWithValues: problems.map { ($0.keyPath, $0) })
        #expect(keyed["server.listen"]?.location == "\(path):2:11")
        #expect(keyed["store.driver"]?.message.contains("sqlite, postgres") == true)
        #expect(keyed["log.colour"]?.message.hasPrefix("unknown key") == true)
        #expect(keyed["log.colour"]?.location == "\(path):6:3")
    }

    @Test("gateway TLS needs certificate and key together; client CAs need TLS; trusted callers must be CIDR blocks")
    func gatewayRules() throws {
        let path = try write("""
            gateway:
              tls:
                certificate_file: /etc/menshen/gw.pem
                client_ca_file: /etc/menshen/devices.pem
              forward_auth:
                trusted_callers: "10.0.0.0/8, nginx.internal"
            """)
        let keyed = Dictionary(uniqueKeysWithValues: ConfigLoader.check(file: path).map { ($0.keyPath, $0) })
        #expect(keyed["gateway.tls.private_key_file"]?.message.contains("required with gateway.tls.certificate_file") == true)
        #expect(keyed["gateway.forward_auth.trusted_callers"]?.message.contains("nginx.internal") == true)
        let caOnly = try write("gateway:\n  tls:\n    client_ca_file: /etc/menshen/devices.pem\n")
        #expect(ConfigLoader.check(file: caOnly).contains { $0.keyPath == "gateway.tls.client_ca_file" })
        let ok = try ConfigLoader.load(yaml: "gateway:\n  forward_auth:\n    trusted_callers: \"10.1.0.0/16, ::1\"\n")
        #expect(ok.gateway.forwardAuthTrustedCallers.map(\.description) == ["10.1.0.0/16", "0:0:0:0:0:0:0:1/128"])
    }

    @Test("upstream TLS: the client certificate and its key together, located where the given one is; the CA file alone is fine and read")
    func upstreamTLSRules() throws {
        let path = try write("gateway:\n  upstream_tls:\n    certificate_file: /etc/menshen/gw-client.pem\n")
        let problems = ConfigLoader.check(file: path)
        #expect(problems.map(\.keyPath) == ["gateway.upstream_tls.private_key_file"])
        #expect(problems.first?.message == "is required with gateway.upstream_tls.certificate_file")
        #expect(problems.first?.location == "\(path):3:23")
        let keyOnly = try write("gateway:\n  upstream_tls:\n    private_key_file: /etc/menshen/gw-client.key\n")
        #expect(ConfigLoader.check(file: keyOnly).map(\.keyPath) == ["gateway.upstream_tls.certificate_file"])
        let ok = try ConfigLoader.load(yaml: "gateway:\n  upstream_tls:\n    ca_file: /etc/menshen/internal-ca.pem\n")
        #expect(ok.gateway.upstreamTLSCAFile == "/etc/menshen/internal-ca.pem")
        #expect(ok.gateway.upstreamTLSCertificateFile.isEmpty && ok.gateway.upstreamTLSPrivateKeyFile.isEmpty)
    }

    @Test("gateway.extra_identity_headers: header names, comma-separated, kept lower-case; anything else is named")
    func extraIdentityHeaders() throws {
        #expect(try ConfigLoader.load(yaml: "").gateway.extraIdentityHeaders.isEmpty)
        let ok = try ConfigLoader.load(yaml: "gateway:\n  extra_identity_headers: \"X-Bank-User, x-employee-id,,\"\n")
        #expect(ok.gateway.extraIdentityHeaders == ["x-bank-user", "x-employee-id"])
        let path = try write("gateway:\n  extra_identity_headers: \"X-Bank-User, X Bad, X-Ok:\"\n")
        let problems = ConfigLoader.check(file: path)
        #expect(problems.map(\.keyPath) == ["gateway.extra_identity_headers"])
        #expect(problems.first?.message.contains("'X Bad', 'X-Ok:'") == true, "\(problems)")
        let many = (0..<101).map { "X-H\($0)" }.joined(separator: ",")
        #expect(ConfigLoader.check(file: try write("gateway:\n  extra_identity_headers: \"\(many)\"\n")).first?.message == "lists more than 100 header names")
        let env = try ConfigLoader.load(file: try write(""), environment: ["MENSHEN_GATEWAY_EXTRA_IDENTITY_HEADERS": "X-Teller-Id"])
        #expect(env.gateway.extraIdentityHeaders == ["x-teller-id"])
    }

    @Test("unknown keys suggest the nearest known key")
    func suggestion() throws {
        let problems = ConfigLoader.check(file: try write("store:\n  drivr: sqlite\n"))
        #expect(problems.map(\.message) == ["unknown key (did you mean 'store.driver'?)"])
    }

    @Test("environment variables override the file and are validated too")
    func environment() throws {
        let path = try write("log:\n  level: info\n")
        let c = try ConfigLoader.load(file: path, environment: ["MENSHEN_LOG_LEVEL": "error", "MENSHEN_ADMIN_LISTEN": "0.0.0.0:9999"])
        #expect(c.log.level == "error")
        #expect(c.admin.listen.port == 9999)
        let problems = ConfigLoader.check(file: path, environment: ["MENSHEN_STORE_POSTGRES_POOL_SIZE": "0"])
        #expect(problems.map(\.location) == ["environment MENSHEN_STORE_POSTGRES_POOL_SIZE"])
    }

    @Test("cross-key rules: PostgreSQL needs a URL, listeners must differ")
    func crossKey() throws {
        let problems = ConfigLoader.check(file: try write("store:\n  driver: postgres\nadmin:\n  listen: 127.0.0.1:8080\n"))
        #expect(Set(problems.map(\.keyPath)) == ["store.postgres.url", "admin.listen"])
    }

    @Test("audit retention: off by default, needs an export directory when on, bounded days")
    func auditRetention() throws {
        #expect(MenshenConfiguration.defaults.audit.retentionDays == 0 && MenshenConfiguration.defaults.audit.retentionExportDir.isEmpty)
        let missing = ConfigLoader.check(file: try write("audit:\n  retention_days: 365\n"))
        #expect(missing.map(\.keyPath) == ["audit.retention_export_dir"] && missing.first?.message.contains("is required") == true, "\(missing)")
        let config = try ConfigLoader.load(yaml: "audit:\n  retention_days: 2555\n  retention_export_dir: /var/lib/menshen/exports\n")
        #expect(config.audit.retentionDays == 2555 && config.audit.retentionExportDir == "/var/lib/menshen/exports")
        for bad in ["-1", "36501", "seven"] {
            let problems = ConfigLoader.check(file: try write("audit:\n  retention_days: \(bad)\n  retention_export_dir: /x\n"))
            #expect(problems.map(\.keyPath) == ["audit.retention_days"], "\(bad): \(problems)")
        }
        #expect(ConfigLoader.check(file: try write("audit:\n  retention_days: 0\n")).isEmpty, "0 keeps everything and needs no directory")
    }

    @Test("bad files give one clear problem each", arguments: [
        ("server: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("server:\n  listen:\n    - a\n", "must be a single value"),
        ("server:\n  listen: 1\n  listen: 2\n", "duplicate"),
        (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nesting deeper"),
        ("store: 5\n", "must be a mapping"),
        ("organisation:\n  time_zone: Mars/Olympus\n", "not a known IANA time zone"),
        ("server:\n  public_url: ftp://x\n", "http:// or https://"),
    ])
    func badFiles(_ text: String, _ expected: String) throws {
        let problems = ConfigLoader.check(file: try write(text))
        #expect(problems.count == 1)
        #expect(problems.first?.message.contains(expected) == true, "\(problems)")
    }

    @Test("missing, unreadable and non-UTF-8 files are reported")
    func unreadable() throws {
        #expect(ConfigLoader.check(file: "/nonexistent/menshen.yaml").map(\.message) == ["configuration file not found"])
        #expect(ConfigLoader.check(file: FileManager.default.temporaryDirectory.path).first?.message.contains("directory") == true)
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).yaml")
        try Data([0xFF, 0xFE, 0x00, 0x41]).write(to: bin)
        #expect(ConfigLoader.check(file: bin.path).map(\.message) == ["is not valid UTF-8"])
    }

    @Test("the example file documents every key and loads as the defaults")
    func example() throws {
        let yaml = ConfigLoader.exampleYAML()
        for key in ConfigKeys.all { #expect(yaml.contains(key.environmentName)) }
        #expect(try ConfigLoader.load(yaml: yaml) == MenshenConfiguration.defaults)
    }

    @Test("export.webhook.url: https anywhere, plain http only to loopback, no credentials or fragment; required when enabled", arguments: [
        ("https://siem.bank.example/ingest", true, nil), ("https://10.1.2.3:8443/", true, nil), ("http://127.0.0.1:9000/x", true, nil),
        ("http://127.8.9.10/", true, nil), ("http://localhost/", true, nil), ("http://[::1]:80/", true, nil), ("HTTP://LOCALHOST/", true, nil),
        ("http://siem.bank.example/", false, "plain http is only allowed to a loopback host"), ("http://10.0.0.1/", false, "loopback"),
        ("http://127.0.0.1.evil.example/", false, "loopback"), ("http://[::2]/", false, "loopback"), ("http://128.0.0.1/", false, "loopback"),
        ("https://u:p@siem.bank.example/", false, "user name or password"), ("https://siem.bank.example/#frag", false, "fragment"),
        ("ftp://siem.bank.example/", false, "https://"), ("siem.bank.example", false, "absolute"), ("https:///path", false, "absolute"),
        ("https://siem .example/", false, "absolute"),
    ] as [(String, Bool, String?)])
    func webhookURL(_ url: String, _ ok: Bool, _ expected: String?) throws {
        let problems = ConfigLoader.check(file: try write("export:\n  webhook:\n    enabled: true\n    url: \"\(url)\"\n"))
        #expect(problems.isEmpty == ok, "\(url): \(problems)")
        if let expected {
            #expect(problems.count == 1 && problems.first?.keyPath == "export.webhook.url" && problems.first?.message.contains(expected) == true,
                    "\(url): \(problems)")
        }
    }

    @Test("export.webhook: the typed tree, the URL required when enabled, the client certificate and key together")
    func webhookKeys() throws {
        let config = try ConfigLoader.load(yaml: """
            export:
              webhook:
                enabled: true
                url: https://siem.bank.example/menshen
                token_file: /etc/menshen/siem.token
                ca_file: /etc/menshen/siem-ca.pem
                client_certificate_file: /etc/menshen/c.pem
                client_key_file: /etc/menshen/c.key
                batch_size: 200
                max_batch_bytes: 65536
                timeout_seconds: 5
                max_backoff_seconds: 60
            """)
        #expect(config.webhookExport == .init(enabled: true, url: "https://siem.bank.example/menshen", tokenFile: "/etc/menshen/siem.token",
                                              caFile: "/etc/menshen/siem-ca.pem", clientCertificateFile: "/etc/menshen/c.pem",
                                              clientKeyFile: "/etc/menshen/c.key", batchSize: 200, maxBatchBytes: 65536, timeoutSeconds: 5,
                                              maxBackoffSeconds: 60))
        #expect(MenshenConfiguration.defaults.webhookExport == .init())
        #expect(ConfigLoader.check(file: try write("export:\n  webhook:\n    enabled: true\n")).map(\.keyPath) == ["export.webhook.url"])
        #expect(ConfigLoader.check(file: try write("export:\n  webhook:\n    url: https://x.example/\n")).isEmpty, "a URL without enabled is fine")
        let half = ConfigLoader.check(file: try write("export:\n  webhook:\n    client_key_file: k.pem\n"))
        #expect(half.map(\.keyPath) == ["export.webhook.client_certificate_file"] && half.first?.message.contains("client_key_file") == true)
        let env = ConfigLoader.check(file: try write(""), environment: ["MENSHEN_EXPORT_WEBHOOK_ENABLED": "true",
                                                                         "MENSHEN_EXPORT_WEBHOOK_URL": "http://siem.example/"])
        #expect(env.map(\.keyPath) == ["export.webhook.url"] && env.first?.location == "environment MENSHEN_EXPORT_WEBHOOK_URL")
    }

    @Test("listen addresses", arguments: [
        ("127.0.0.1:8080", true), ("[::1]:443", true), ("localhost:0", true), ("0.0.0.0:65535", true),
        ("8080", false), (":8080", false), ("::1:80", false), ("host:65536", false), ("host:-1", false), ("[::1]", false),
    ])
    func listen(_ text: String, _ ok: Bool) {
        #expect((ListenAddress(parsing: text) != nil) == ok)
    }
}
