/// MenshenConfig — one typed, documented configuration tree.
///
/// The file format is YAML (read with Yams, chosen over swift-configuration
/// because Yams reports the line and column of every node, so `menshen config
/// check` can point at each mistake); every key may be overridden by an
/// environment variable `MENSHEN_<PATH>` (the key path upper-cased with `.`
/// replaced by `_`, e.g. `MENSHEN_STORE_DRIVER`). Every key has a documented
/// default; unknown keys are errors. Validation reports every problem at once.

/// The type of a configuration value.
public enum ConfigValueKind: Sendable, Equatable {
    case string
    case integer(ClosedRange<Int>)
    case boolean
    case oneOf([String])
    /// `host:port`, with a port in 0–65535 (0 = any free port).
    case listenAddress
    /// An absolute `http://` or `https://` URL.
    case httpURL
    /// A `postgres://` URL (may be empty when unused).
    case postgresURL
    /// An IANA time zone name such as `Asia/Taipei`.
    case timeZone
    /// Comma-separated CIDR blocks (`10.0.0.0/8, ::1/128`); may be empty.
    case cidrList
    /// Comma-separated HTTP header names (RFC 9110 tokens); may be empty.
    case headerNameList
}

/// One key of the tree: its dotted path, type, default and documentation.
public struct ConfigKeySpec: Sendable {
    public var path: String
    public var kind: ConfigValueKind
    public var defaultValue: String
    public var doc: String

    /// The environment variable that overrides this key.
    public var environmentName: String {
        "MENSHEN_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
    }
}

/// Every key Menshen understands. The single source of truth for loading,
/// `menshen config example` and docs/configuration.md.
public enum ConfigKeys {
    public static let all: [ConfigKeySpec] = [
        ConfigKeySpec(path: "organisation.name", kind: .string, defaultValue: "Menshen",
                      doc: "Name of the institution, shown in the sign-in pages and reports."),
        ConfigKeySpec(path: "organisation.time_zone", kind: .timeZone, defaultValue: "Asia/Taipei",
                      doc: "IANA time zone used for business-hours policies and reports."),
        ConfigKeySpec(path: "server.listen", kind: .listenAddress, defaultValue: "127.0.0.1:8080",
                      doc: "Address of the user-facing listener (portal and, later, the enforcement point)."),
        ConfigKeySpec(path: "server.public_url", kind: .httpURL, defaultValue: "http://localhost:8080",
                      doc: "External URL users reach Menshen at; used in links and as the WebAuthn origin."),
        ConfigKeySpec(path: "gateway.listen", kind: .listenAddress, defaultValue: "127.0.0.1:8000",
                      doc: "Address of the enforcement point: the reverse proxy in front of the protected applications."),
        ConfigKeySpec(path: "gateway.public_url", kind: .httpURL, defaultValue: "http://localhost:8000",
                      doc: "External URL of the enforcement point; sign-in and step-up may return there."),
        ConfigKeySpec(path: "gateway.tls.certificate_file", kind: .string, defaultValue: "",
                      doc: "PEM certificate chain of the gateway listener; with gateway.tls.private_key_file it serves HTTPS with HTTP/2 (ALPN h2) and HTTP/1.1. Empty: plain HTTP (put TLS in front)."),
        ConfigKeySpec(path: "gateway.tls.private_key_file", kind: .string, defaultValue: "",
                      doc: "PEM private key of gateway.tls.certificate_file (keep it mode 0600)."),
        ConfigKeySpec(path: "gateway.tls.client_ca_file", kind: .string, defaultValue: "",
                      doc: "PEM device CA certificate (the first in the file) for device (client) certificates: when set, clients are asked for a certificate; the gateway checks a presented one against this CA, its expiry, revocation and the device inventory, and a verified device's attributes reach the policy decision (a refused certificate counts as no device and is logged as an OCSF 3002 event). Clients without one are still served."),
        ConfigKeySpec(path: "gateway.upstream_tls.ca_file", kind: .string, defaultValue: "",
                      doc: "PEM CA certificates trusted for https:// upstreams (an internal CA). Empty: the system's trust store. The upstream's certificate must chain to one of them and name the upstream URL's host (DNS name, or IP address for an IP literal); there is no way to skip this check."),
        ConfigKeySpec(path: "gateway.upstream_tls.certificate_file", kind: .string, defaultValue: "",
                      doc: "PEM client certificate chain the gateway presents to https:// upstreams that ask for one (mutual TLS); with gateway.upstream_tls.private_key_file. Empty: none."),
        ConfigKeySpec(path: "gateway.upstream_tls.private_key_file", kind: .string, defaultValue: "",
                      doc: "PEM private key of gateway.upstream_tls.certificate_file (keep it mode 0600)."),
        ConfigKeySpec(path: "gateway.assertion_key_file", kind: .string, defaultValue: "",
                      doc: "PEM P-256 key that signs the identity assertion (X-Menshen-Assertion, ES256 JWT) sent to applications; must be mode 0600. Empty: assertion.key next to the SQLite file, created when missing. Required with PostgreSQL and never created there: make it once (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256) and give every node the same file (the JWKS at /.menshen/jwks.json lists it)."),
        ConfigKeySpec(path: "gateway.assertion_published_keys_file", kind: .string, defaultValue: "",
                      doc: "PEM file of P-256 public keys (openssl ec -in K.key -pubout) the JWKS lists besides the signing key, for a key rotation: the next key before the nodes switch to it, then the previous one until its last assertions have expired and verifiers have fetched the JWKS again (see docs/operations.md). At most 8; never used to sign. Empty: only the signing key."),
        ConfigKeySpec(path: "gateway.routes_file", kind: .string, defaultValue: "",
                      doc: "YAML file of protected applications (host, path prefix, upstreams, classification, requirements or Cedar files); empty: only applications saved in the store. See docs/operations.md."),
        ConfigKeySpec(path: "gateway.reload_interval_seconds", kind: .integer(1...3600), defaultValue: "5",
                      doc: "How often the routes file and the store's policies and applications are checked for changes (a change is swapped in atomically; a bad one is refused and the running set stays)."),
        ConfigKeySpec(path: "gateway.reevaluate_interval_seconds", kind: .integer(1...3600), defaultValue: "30",
                      doc: "Long-lived connections (WebSocket, streaming responses) are authorized again this often and closed when the answer is no longer allow."),
        ConfigKeySpec(path: "gateway.max_connections", kind: .integer(1...1_000_000), defaultValue: "10000",
                      doc: "Most client connections (TCP, plain or TLS) the gateway listener holds open at once; a connection beyond it is closed at once and counted (menshen_gateway_connections_refused_total), so a flood of idle connections cannot exhaust memory or file descriptors. Keep it below the process's open-file limit (ulimit -n) minus the upstream connections."),
        ConfigKeySpec(path: "gateway.websocket_idle_timeout_seconds", kind: .integer(10...86_400), defaultValue: "300",
                      doc: "An upgraded connection (WebSocket) that carries no byte either way for this long is closed on both sides. Applications that keep one open send pings well within it; a tunnel no longer counts against the upstream's connection pool."),
        ConfigKeySpec(path: "gateway.extra_identity_headers", kind: .headerNameList, defaultValue: "",
                      doc: "More request header names, comma-separated, that carry identity to your applications (e.g. X-Bank-User): never passed from a client, like X-Menshen-*, X-Forwarded-*, X-Remote-User and Remote-User, which are always removed."),
        ConfigKeySpec(path: "gateway.forward_auth.trusted_callers", kind: .cidrList, defaultValue: "127.0.0.0/8, ::1/128",
                      doc: "Networks whose proxies may call the forward-auth endpoints (/.menshen/auth/nginx, /traefik, /envoy/…); their description of the original request is believed."),
        ConfigKeySpec(path: "admin.listen", kind: .listenAddress, defaultValue: "127.0.0.1:9090",
                      doc: "Address of the operations listener (/healthz, /readyz, /metrics). Keep it on a private network."),
        ConfigKeySpec(path: "store.driver", kind: .oneOf(["sqlite", "postgres"]), defaultValue: "sqlite",
                      doc: "Store backend: an embedded SQLite file, or PostgreSQL for several gateway nodes."),
        ConfigKeySpec(path: "store.sqlite.path", kind: .string, defaultValue: "./menshen-data/menshen.sqlite",
                      doc: "SQLite database file (created when missing; WAL mode)."),
        ConfigKeySpec(path: "store.sqlite.busy_timeout_seconds", kind: .integer(0...600), defaultValue: "5",
                      doc: "How long to wait for another process' lock before failing."),
        ConfigKeySpec(path: "store.postgres.url", kind: .postgresURL, defaultValue: "",
                      doc: "postgres://user:password@host:5432/database?sslmode=require — required when store.driver is postgres."),
        ConfigKeySpec(path: "store.postgres.pool_size", kind: .integer(1...500), defaultValue: "10",
                      doc: "Maximum connections per node."),
        ConfigKeySpec(path: "store.postgres.connect_timeout_seconds", kind: .integer(1...120), defaultValue: "5",
                      doc: "Give up connecting after this many seconds."),
        ConfigKeySpec(path: "log.level", kind: .oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
                      defaultValue: "info", doc: "Minimum level of log messages."),
        ConfigKeySpec(path: "log.format", kind: .oneOf(["text", "json"]), defaultValue: "text",
                      doc: "Log line format: human-readable text or one JSON object per line."),
        ConfigKeySpec(path: "identity.session.idle_timeout_seconds", kind: .integer(60...86_400), defaultValue: "1800",
                      doc: "A session unused for this long ends."),
        ConfigKeySpec(path: "identity.session.absolute_lifetime_seconds", kind: .integer(300...604_800), defaultValue: "43200",
                      doc: "A session ends this long after sign-in, however busy it is."),
        ConfigKeySpec(path: "identity.session.keep_ended_days", kind: .integer(0...3_650), defaultValue: "30",
                      doc: "Sessions are deleted from the store this many days after their absolute lifetime ended (revoked ones too), by `menshen serve` at start and hourly, in batches; expired sign-in and enrolment ceremony state is deleted at once. Sign-ins, sign-outs and revocations stay in the audit log."),
        ConfigKeySpec(path: "identity.session.privileged_lifetime_seconds", kind: .integer(300...43_200), defaultValue: "3600",
                      doc: "A privileged-work session (the account page's switch, after a fresh LoA 3 proof) ends this long after it started; ordinary sessions never hold privileged roles. The maturity assessment (4.2) counts it time-bound up to 4 hours."),
        ConfigKeySpec(path: "identity.secrets_key_file", kind: .string, defaultValue: "",
                      doc: "File holding the 32-byte key that seals TOTP seeds at rest (created, mode 0600, when missing). Empty: secrets.key next to the SQLite file; required with PostgreSQL, and the same file on every node."),
        ConfigKeySpec(path: "identity.oidc.providers_file", kind: .string, defaultValue: "",
                      doc: "YAML file listing the OpenID Connect providers users may sign in with (empty: none). See docs/operations.md."),
        ConfigKeySpec(path: "audit.signing_key_file", kind: .string, defaultValue: "",
                      doc: "Ed25519 key (32 raw bytes, base64, mode 0600) that signs audit checkpoints of the event chain. Empty: audit.key next to the SQLite file, created when missing. With PostgreSQL name it on every node (never created there); without it no checkpoints are signed. `menshen audit key` prints the public key for offline verification."),
        ConfigKeySpec(path: "audit.checkpoint.every_events", kind: .integer(1...1_000_000), defaultValue: "1000",
                      doc: "Sign a checkpoint of the chain head once this many events were appended since the last one."),
        ConfigKeySpec(path: "audit.checkpoint.interval_seconds", kind: .integer(1...86_400), defaultValue: "60",
                      doc: "Sign a checkpoint at least this often while new events arrive (and once at graceful shutdown)."),
        ConfigKeySpec(path: "audit.checkpoint.anchor_file", kind: .string, defaultValue: "",
                      doc: "Append-only JSON-lines file outside the database that repeats every checkpoint, so a truncated database is still caught. Empty: audit-anchor.jsonl next to the SQLite file; with PostgreSQL name a local file on each node. Keep a copy off the machine (e.g. ship it with the logs)."),
        ConfigKeySpec(path: "audit.retention_days", kind: .integer(0...36_500), defaultValue: "0",
                      doc: "Audit retention: `menshen serve` exports, then prunes, the events older than this many days, at start and daily, cut at the newest signed checkpoint before that age and never past an enabled log consumer's cursor. 0: keep every event (the default)."),
        ConfigKeySpec(path: "audit.retention_export_dir", kind: .string, defaultValue: "",
                      doc: "Directory the scheduled prune writes each export to (audit-export-<time>-<from>-<through>.jsonl, mode 0600) before it deletes anything; required when audit.retention_days is above 0. Move the files to WORM storage."),
        ConfigKeySpec(path: "audit.when_unwritten", kind: .oneOf(["refuse", "admit"]), defaultValue: "refuse",
                      doc: "What the gateway does while its access decisions cannot be written to the event log. refuse (fail closed): every access the policies allow is refused with a 503 (a forward-auth caller: 403 for nginx, 503 for Traefik and Envoy) while 50,000 decisions wait, or while decisions wait and the store has taken no write for audit.unwritten_grace_seconds; a batch whose write fails is kept and written again, before anything newer, until the store takes it. admit: access goes on, a failed batch is written again twice more and then dropped, and decisions over the bound are dropped; drops are counted (menshen_decision_events_dropped_total)."),
        ConfigKeySpec(path: "audit.unwritten_grace_seconds", kind: .integer(1...300), defaultValue: "5",
                      doc: "With audit.when_unwritten refuse: how long decisions may wait on a store that takes no write before access is refused."),
        // SIEM export (syslog over TCP or TLS); see docs/operations.md "SIEM export".
        ConfigKeySpec(path: "export.syslog.enabled", kind: .boolean, defaultValue: "false",
                      doc: "Send every event of the log to a syslog receiver (SIEM), at least once, resuming from a saved cursor."),
        ConfigKeySpec(path: "export.syslog.address", kind: .listenAddress, defaultValue: "127.0.0.1:6514",
                      doc: "host:port of the syslog receiver."),
        ConfigKeySpec(path: "export.syslog.transport", kind: .oneOf(["tls", "tcp"]), defaultValue: "tls",
                      doc: "tls (RFC 5425, the receiver's certificate is verified) or tcp (plain, only on a trusted network); both octet-counted."),
        ConfigKeySpec(path: "export.syslog.format", kind: .oneOf(["cef", "json"]), defaultValue: "cef",
                      doc: "Message body: ArcSight CEF mapped from the OCSF fields, or the OCSF JSON as stored."),
        ConfigKeySpec(path: "export.syslog.tls.ca_file", kind: .string, defaultValue: "",
                      doc: "PEM CA certificates the receiver's certificate must chain to; empty: the system's trusted roots."),
        ConfigKeySpec(path: "export.syslog.tls.certificate_file", kind: .string, defaultValue: "",
                      doc: "PEM client certificate for mutual TLS (with export.syslog.tls.private_key_file); empty: none."),
        ConfigKeySpec(path: "export.syslog.tls.private_key_file", kind: .string, defaultValue: "",
                      doc: "PEM private key of export.syslog.tls.certificate_file (keep it mode 0600)."),
        ConfigKeySpec(path: "export.syslog.tls.server_name", kind: .string, defaultValue: "",
                      doc: "Name the receiver's certificate must carry (also sent as SNI); empty: the host of export.syslog.address."),
        ConfigKeySpec(path: "export.syslog.app_name", kind: .string, defaultValue: "menshen",
                      doc: "RFC 5424 APP-NAME (printable ASCII, at most 48 characters)."),
        ConfigKeySpec(path: "export.syslog.hostname", kind: .string, defaultValue: "",
                      doc: "RFC 5424 HOSTNAME; empty: this machine's host name."),
        ConfigKeySpec(path: "export.syslog.facility", kind: .integer(0...23), defaultValue: "13",
                      doc: "RFC 5424 facility (13 log audit, 10 authpriv, 16-23 local0-7)."),
        ConfigKeySpec(path: "export.syslog.structured_data", kind: .boolean, defaultValue: "true",
                      doc: "Add [menshen@32473 seq id class hash] naming the event to each message; false: no structured data (-)."),
        ConfigKeySpec(path: "export.syslog.max_message_bytes", kind: .integer(2048...262_144), defaultValue: "8192",
                      doc: "Largest syslog message; CEF fields that do not fit are left out, a larger JSON event is replaced by a stub naming it."),
        ConfigKeySpec(path: "export.syslog.write_timeout_seconds", kind: .integer(1...300), defaultValue: "10",
                      doc: "A receiver that takes no data for this long is disconnected and retried with back-off."),
        ConfigKeySpec(path: "export.syslog.confirm_after_seconds", kind: .integer(1...60), defaultValue: "2",
                      doc: "An event counts as delivered (and the saved cursor moves past it) once written and the connection stayed open this long."),
        // JSON Lines file export (for log shippers); see docs/operations.md "JSON Lines export".
        ConfigKeySpec(path: "export.jsonl.enabled", kind: .boolean, defaultValue: "false",
                      doc: "Write every event of the log to a JSON Lines file, each event in exactly one file, resuming from a saved cursor."),
        ConfigKeySpec(path: "export.jsonl.path", kind: .string, defaultValue: "",
                      doc: "The active file (rotated files are PATH.1, the newest, … PATH.N). Empty: events.jsonl next to the SQLite file; required with PostgreSQL."),
        ConfigKeySpec(path: "export.jsonl.max_file_bytes", kind: .integer(4096...1_073_741_824), defaultValue: "104857600",
                      doc: "Rotate the file before a line would take it past this size (bytes)."),
        ConfigKeySpec(path: "export.jsonl.keep_files", kind: .integer(1...1000), defaultValue: "10",
                      doc: "Rotated files kept besides the active one; the oldest beyond this is deleted."),
        // HTTPS webhook export (batches of events, acknowledged by 2xx); see docs/operations.md "Webhook export".
        ConfigKeySpec(path: "export.webhook.enabled", kind: .boolean, defaultValue: "false",
                      doc: "POST every event of the log to an HTTPS receiver in batches, at least once; the saved cursor moves only when the receiver answered 2xx."),
        ConfigKeySpec(path: "export.webhook.url", kind: .string, defaultValue: "",
                      doc: "The receiver's URL: https, or plain http only to a loopback host (localhost, 127.0.0.0/8, ::1); no user name, password or fragment. Required when enabled."),
        ConfigKeySpec(path: "export.webhook.token_file", kind: .string, defaultValue: "",
                      doc: "File holding the bearer token sent as Authorization: Bearer TOKEN (one line, printable ASCII, at most 4096 bytes; keep it mode 0600). Empty: no Authorization header (e.g. mutual TLS only)."),
        ConfigKeySpec(path: "export.webhook.ca_file", kind: .string, defaultValue: "",
                      doc: "PEM CA certificates the receiver's certificate must chain to (a private CA); empty: the system's trusted roots."),
        ConfigKeySpec(path: "export.webhook.client_certificate_file", kind: .string, defaultValue: "",
                      doc: "PEM client certificate chain for mutual TLS (with export.webhook.client_key_file); empty: none."),
        ConfigKeySpec(path: "export.webhook.client_key_file", kind: .string, defaultValue: "",
                      doc: "PEM private key of export.webhook.client_certificate_file (keep it mode 0600)."),
        ConfigKeySpec(path: "export.webhook.batch_size", kind: .integer(1...10_000), defaultValue: "500",
                      doc: "Most events in one request."),
        ConfigKeySpec(path: "export.webhook.max_batch_bytes", kind: .integer(65_536...67_108_864), defaultValue: "1048576",
                      doc: "Most bytes in one request body; a single event larger than this is sent alone."),
        ConfigKeySpec(path: "export.webhook.timeout_seconds", kind: .integer(1...300), defaultValue: "10",
                      doc: "Each request (connect, send, answer) is abandoned after this long and retried with back-off."),
        ConfigKeySpec(path: "export.webhook.max_backoff_seconds", kind: .integer(1...3600), defaultValue: "30",
                      doc: "Longest wait between retries (back-off doubles up to this; a Retry-After is honoured up to it)."),
        // The maturity assessment's evidence packs; see docs/operations.md "Evidence pack".
        ConfigKeySpec(path: "assessment.signing_key_file", kind: .string, defaultValue: "",
                      doc: "Ed25519 key (32 raw bytes, base64, mode 0600) that signs evidence packs (menshen assess --evidence-pack). Empty: assessment.key next to the SQLite file, created when missing. With PostgreSQL name it (never created there). `menshen assess key` prints the public key a regulator verifies packs with."),
        ConfigKeySpec(path: "device.ca_file", kind: .string, defaultValue: "",
                      doc: "The sealed device CA (JSON; its key sealed under a key derived from identity.secrets_key_file). Empty: device-ca.json next to the SQLite file, created when missing; required with PostgreSQL and never created there (copy the SQLite node's file). Its certificate (menshen device ca) is what gateway.tls.client_ca_file should hold."),
        ConfigKeySpec(path: "device.compliance_file", kind: .string, defaultValue: "",
                      doc: "YAML compliance baselines per device class (managed, byod, vendor; see docs/operations.md). Empty: every class must report hourly with disk encryption, firewall, screen lock and a running EDR, and no critical vulnerability. Read again when it changes (every gateway.reload_interval_seconds); a file that does not load is refused and the running baselines stay."),
        ConfigKeySpec(path: "device.advisories_dir", kind: .string, defaultValue: "",
                      doc: "Directory of OSV advisories (JSON, one record per file, e.g. osv.dev's Debian export; no network fetch) matched against the packages of every posture report; findings are kept per device and their highest severity is the device's max_vulnerability_severity. Read at start and again when its files change (every gateway.reload_interval_seconds); a directory that does not load is refused naming the file and the problem, and the previous advisories stay. Empty: packages are not scanned, so a reporting device's severity counts as critical (fail closed)."),
        ConfigKeySpec(path: "device.tpm_ca_file", kind: .string, defaultValue: "",
                      doc: "PEM bundle of the TPM manufacturers' CAs (roots, plus any intermediates) that endorsement-key certificates must chain to. A device that proves its key is in such a TPM (menshen agent enrol --tpm) is recorded hardware-bound. Empty: TPM enrolment is refused, so no device is hardware-bound."),
        ConfigKeySpec(path: "response.approval_timeout_seconds", kind: .integer(60...604_800), defaultValue: "3600",
                      doc: "A playbook step marked approval: required waits this long for menshen playbook approve or reject; then it expires and nothing is done (recorded as an event)."),
        ConfigKeySpec(path: "response.case_window_seconds", kind: .integer(60...2_592_000), defaultValue: "86400",
                      doc: "A detection finding joins the open case of the same subject (user, or source address for spraying-like findings) and ATT&CK tactic whose latest finding is at most this long before it; otherwise it opens a new case (menshen case …)."),
        ConfigKeySpec(path: "response.detections_enabled", kind: .boolean, defaultValue: "true",
                      doc: "This node may run the detections and playbooks: follow the event log, write findings, carry out playbooks and approved steps, keep cases and risk scores. Among the nodes sharing one database they run on one at a time: the node holding the lease `detections` in the store runs them, the others with this key on stand by and take over within about 35 s when it stops or loses the database (within 5 s when it shuts down cleanly). Off: this node never runs them, and its gateway does not spend its CPU on them (e.g. gateway-only nodes). At least one node must have it on: with none, nothing is detected."),
        ConfigKeySpec(path: "response.playbooks_file", kind: .string, defaultValue: "",
                      doc: "YAML file of playbooks: which detection findings (by rule, ATT&CK technique, minimum severity) trigger which actions (revoke_sessions, disable_user, webhook, log). Read again every gateway.reload_interval_seconds; a change that does not load is refused and the running set stays. Empty: the built-in set (log findings; end sessions after session-cookie reuse or impossible travel). See docs/operations.md."),
    ]

    static let byPath: [String: ConfigKeySpec] = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })

    /// Section paths (e.g. `store`, `store.sqlite`) that may hold keys.
    static let sections: Set<String> = {
        var s: Set<String> = [""]
        for key in all {
            var parts = key.path.split(separator: ".").map(String.init)
            parts.removeLast()
            while !parts.isEmpty { s.insert(parts.joined(separator: ".")); parts.removeLast() }
        }
        return s
    }()
}
