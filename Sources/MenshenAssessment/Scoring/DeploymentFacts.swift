import Foundation

/// One measured value and how it was obtained: the store query (in words an
/// auditor can repeat against the database), the configuration key read, or
/// the file inspected. Every number a rule decides on is one of these, so a
/// ``Measurement`` built from it always carries an honest `query`.
public struct Fact<Value: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    public var value: Value
    public var query: String
    public init(_ value: Value, query: String) { self.value = value; self.query = query }
}

/// Everything measured from one deployment over the assessment window: the
/// directory, credentials and sign-ins (identity), devices and decisions
/// (device), routes and TLS (network), roles and policies (application),
/// classification and secrets (data), and the visibility pipeline (export,
/// detections, playbooks). A plain value: the server gathers it
/// (`AssessmentFacts` in MenshenServer), ``PrincipleRules`` judges it, and
/// tests build it by hand. Nothing here is a verdict.
public struct DeploymentFacts: Sendable, Equatable, Codable {
    public var windowStart: Date
    public var windowEnd: Date
    public var identity: Identity
    public var federation: Federation
    public var policies: Policies
    public var decisions: Decisions
    public var devices: Devices
    public var network: Network
    public var roles: Roles
    public var visibility: Visibility
    public var data: DataFacts

    public init(windowStart: Date, windowEnd: Date, identity: Identity = .init(), federation: Federation = .init(),
                policies: Policies = .init(), decisions: Decisions = .init(), devices: Devices = .init(), network: Network = .init(),
                roles: Roles = .init(), visibility: Visibility = .init(), data: DataFacts = .init()) {
        self.windowStart = windowStart; self.windowEnd = windowEnd; self.identity = identity; self.federation = federation
        self.policies = policies; self.decisions = decisions; self.devices = devices; self.network = network; self.roles = roles
        self.visibility = visibility; self.data = data
    }

    // MARK: Identity

    /// Users, their authenticators and the sign-ins of the window (OCSF 3002 events).
    public struct Identity: Sendable, Equatable, Codable {
        /// Users not disabled.
        public var activeUsers = Fact(0, query: "")
        /// Active users of kind `internal`.
        public var internalUsers = Fact(0, query: "")
        /// Active users of kind `vendor` or `partner`.
        public var externalUsers = Fact(0, query: "")
        /// Active users holding a second factor (TOTP or WebAuthn).
        public var usersWithMFA = Fact(0, query: "")
        /// Active users holding a WebAuthn (FIDO2) credential.
        public var usersWithWebAuthn = Fact(0, query: "")
        /// Active users holding a TOTP credential (a phishable second factor).
        public var usersWithTOTP = Fact(0, query: "")
        /// Successful sign-ins (Authentication, activity Logon, status Success) in the window.
        public var signIns = Fact(0, query: "")
        /// … of which `is_mfa` was true.
        public var signInsMultiFactor = Fact(0, query: "")
        /// … of which an `auth_factors` entry is WebAuthn (`factor_type_id` 10).
        public var signInsPhishingResistant = Fact(0, query: "")
        /// … of which an `auth_factors` entry is an OTP (`factor_type_id` 7: TOTP or a recovery code).
        public var signInsOTP = Fact(0, query: "")
        /// Lowest level of assurance (`unmapped.loa`) of a successful sign-in by an internal user in the window; nil: none.
        public var internalMinimumSignInLoA = Fact<Int?>(nil, query: "")
        /// The same for external users (vendor, partner); nil: none.
        public var externalMinimumSignInLoA = Fact<Int?>(nil, query: "")
        /// Successful step-ups in the window: Authentication activity 99 (Other) with `activity_name` `Step-up`
        /// (not the switches into and out of privileged work, which share the activity).
        public var stepUpsCompleted = Fact(0, query: "")
        public init() {}
    }

    /// The OpenID Connect providers users may sign in with.
    public struct Federation: Sendable, Equatable, Codable {
        public struct Provider: Sendable, Equatable, Codable {
            public var id: String
            /// `internal`, `vendor` or `partner`.
            public var userKind: String
            /// The most this provider may assert (`max_loa`), 1–4.
            public var maximumLoA: Int
            /// `acr` values mapped to a level.
            public var acrMappings: Int
            public init(id: String, userKind: String, maximumLoA: Int, acrMappings: Int) {
                self.id = id; self.userKind = userKind; self.maximumLoA = maximumLoA; self.acrMappings = acrMappings
            }
            public var isExternal: Bool { userKind != "internal" }
        }
        public var providers = Fact<[Provider]>([], query: "")
        /// Set when the providers file is configured but does not load (the portal would not start).
        public var problem: String?
        public init() {}
    }

    // MARK: Policies

    /// The policy set in force: the store's current policies, the routes file's compiled permits and its Cedar files.
    public struct Policies: Sendable, Equatable, Codable {
        public struct Policy: Sendable, Equatable, Codable {
            /// `@id`, or the parser's id.
            public var id: String
            /// The document it came from.
            public var source: String
            /// `permit` or `forbid`.
            public var effect: String
            /// The applications its resource scope names (`resource == Application::"x"`); nil: any application.
            public var applications: [String]?
            /// The policy in Cedar's canonical form, without annotations (scope and conditions): what the rules read.
            public var text: String
            /// Number of `when`/`unless` clauses.
            public var conditionCount: Int
            /// The principal scope is plain `principal` (anyone).
            public var anyPrincipal: Bool
            /// `@obligation` values (`step_up:…`, `read_only`).
            public var obligations: [String]
            /// `@alert` severity, if any.
            public var alert: String?
            public init(id: String, source: String, effect: String, applications: [String]?, text: String, conditionCount: Int = 1,
                        anyPrincipal: Bool = false, obligations: [String] = [], alert: String? = nil) {
                self.id = id; self.source = source; self.effect = effect; self.applications = applications; self.text = text
                self.conditionCount = conditionCount; self.anyPrincipal = anyPrincipal
                self.obligations = obligations; self.alert = alert
            }

            public var isPermit: Bool { effect == "permit" }
            /// A permit for anyone on every application without conditions: it defeats default deny.
            public var isUnconditionalGlobalPermit: Bool { isPermit && applications == nil && anyPrincipal && conditionCount == 0 }
            public func applies(to application: String) -> Bool { applications.map { $0.contains(application) } ?? true }
            func mentions(_ s: String) -> Bool { text.contains(s) }
            /// Conditions on the session's assurance level.
            public var usesLoA: Bool { mentions("context.session.loa") }
            /// Conditions on authentication mechanism names (`amr`) rather than levels.
            public var usesAMR: Bool { mentions("context.session.amr") }
            /// Conditions on the session's dynamic attributes: its age and factor age, time, network, device, risk.
            public var usesSessionContext: Bool {
                ["context.session", "context.time", "context.network", "context.device", "context.risk"].contains(where: mentions)
            }
            public var usesDevice: Bool { mentions("context.device") }
            public var usesTime: Bool { mentions("context.time") }
            public var usesRisk: Bool { mentions("context.risk") }
            public var usesClassification: Bool { mentions("resource.classification") }
            /// Who the principal is: its scope, groups, roles, kind or assurance.
            public var usesIdentity: Bool {
                ["principal in ", "principal == ", "principal is ", "principal.", "context.session.loa"].contains(where: mentions)
            }
            public var usesGrant: Bool { mentions("context.grant") }
            public var stepsUp: Bool { obligations.contains { $0.hasPrefix("step_up") } || mentions("context.session.factor_age_seconds") }
            public var narrows: Bool { obligations.contains("read_only") }
            /// Roles it names (`Role::"id"`).
            public var roleReferences: [String] {
                var out: [String] = []
                var rest = Substring(text)
                while let r = rest.range(of: "Role::\"") {
                    let after = rest[r.upperBound...]
                    guard let end = after.firstIndex(of: "\"") else { break }
                    out.append(String(after[..<end]))
                    rest = after[after.index(after: end)...]
                }
                return out
            }
        }
        public var inForce = Fact<[Policy]>([], query: "")
        /// Set when the policy set or the routes file does not load (then `inForce` holds what could be read).
        public var problem: String?
        public init() {}

        public func applying(to application: String) -> [Policy] { inForce.value.filter { $0.applies(to: application) } }
    }

    // MARK: Decisions

    /// The gateway's decisions in the window (OCSF 6001 events) and the responses to findings (7001).
    public struct Decisions: Sendable, Equatable, Codable {
        /// Decisions made from an access request (a signed-in user: the event carries `unmapped.decision.device`).
        public var decided = Fact(0, query: "")
        /// … where the device was enrolled (a verified device certificate).
        public var fromEnrolledDevice = Fact(0, query: "")
        /// … where the device's key is hardware-bound (TPM).
        public var fromHardwareBoundDevice = Fact(0, query: "")
        /// Decisions whose outcome was a step-up.
        public var steppedUp = Fact(0, query: "")
        /// Allowed decisions narrowed to read-only.
        public var narrowed = Fact(0, query: "")
        /// Re-evaluations of long-lived connections that no longer allowed them (the connection was closed).
        public var revokedOnReevaluation = Fact(0, query: "")
        /// Decisions that raised an alert (`is_alert`).
        public var alerted = Fact(0, query: "")
        /// Playbook actions that revoked sessions, disabled users or required a step-up (7001, not dry runs).
        public var responseActions = Fact(0, query: "")
        /// Changes of a device's compliance (2003): each ends the owner's sessions when it turns non-compliant.
        public var complianceChanges = Fact(0, query: "")
        /// Decisions naming the device the request came from (`device.uid`, from a verified device certificate):
        /// what `menshen audit search --device` reads to show, for one device, the applications it reached.
        public var withDeviceID = Fact(0, query: "")
        public init() {}
    }

    // MARK: Devices

    public struct Devices: Sendable, Equatable, Codable {
        /// Active (not quarantined, not retired) devices.
        public var active = Fact(0, query: "")
        public var hardwareBound = Fact(0, query: "")
        public var compliant = Fact(0, query: "")
        /// Active devices whose last verified posture is younger than their class's `max_posture_age_seconds`.
        public var postureFresh = Fact(0, query: "")
        /// `gateway.tls.client_ca_file` is set: devices can present their certificates, and their attributes reach decisions.
        public var clientCertificatesConfigured = Fact(false, query: "")
        /// `device.advisories_dir` is set: posture packages are matched against vulnerability advisories.
        public var advisoriesConfigured = Fact(false, query: "")
        /// `device.tpm_ca_file` is set: devices can prove a TPM-held key.
        public var tpmAttestationConfigured = Fact(false, query: "")
        /// The compliance baseline per device class (`managed`, `byod`, `vendor`); a class without one is absent.
        public var baselines = Fact<[Baseline]>([], query: "")
        public var baselinesProblem: String?

        public struct Baseline: Sendable, Equatable, Codable {
            public var deviceClass: String
            public var maxPostureAgeSeconds: Int
            public var requireDiskEncryption: Bool
            public var requireFirewall: Bool
            public var requireScreenLock: Bool
            public var requireEDR: Bool
            public var maxEDRSignatureAgeDays: Int
            /// 0 none … 4 critical.
            public var maxVulnerabilitySeverity: Int
            public var maxPendingSecurityUpdates: Int?
            public var requireVulnerabilityScan: Bool
            public var minimumOSVersions: [String: String]
            public init(deviceClass: String, maxPostureAgeSeconds: Int, requireDiskEncryption: Bool, requireFirewall: Bool,
                        requireScreenLock: Bool, requireEDR: Bool, maxEDRSignatureAgeDays: Int, maxVulnerabilitySeverity: Int,
                        maxPendingSecurityUpdates: Int?, requireVulnerabilityScan: Bool, minimumOSVersions: [String: String] = [:]) {
                self.deviceClass = deviceClass; self.maxPostureAgeSeconds = maxPostureAgeSeconds
                self.requireDiskEncryption = requireDiskEncryption; self.requireFirewall = requireFirewall
                self.requireScreenLock = requireScreenLock; self.requireEDR = requireEDR; self.maxEDRSignatureAgeDays = maxEDRSignatureAgeDays
                self.maxVulnerabilitySeverity = maxVulnerabilitySeverity; self.maxPendingSecurityUpdates = maxPendingSecurityUpdates
                self.requireVulnerabilityScan = requireVulnerabilityScan; self.minimumOSVersions = minimumOSVersions
            }

            /// The controls in which this baseline is weaker than `other` (empty: at least as strict).
            public func weaker(than other: Baseline) -> [String] {
                var out: [String] = []
                if maxPostureAgeSeconds > other.maxPostureAgeSeconds { out.append("max_posture_age_seconds") }
                if other.requireDiskEncryption && !requireDiskEncryption { out.append("require_disk_encryption") }
                if other.requireFirewall && !requireFirewall { out.append("require_firewall") }
                if other.requireScreenLock && !requireScreenLock { out.append("require_screen_lock") }
                if other.requireEDR && !requireEDR { out.append("require_edr") }
                if other.requireEDR && maxEDRSignatureAgeDays > other.maxEDRSignatureAgeDays { out.append("max_edr_signature_age_days") }
                if maxVulnerabilitySeverity > other.maxVulnerabilitySeverity { out.append("max_vulnerability_severity") }
                if let o = other.maxPendingSecurityUpdates, (maxPendingSecurityUpdates ?? Int.max) > o { out.append("max_pending_security_updates") }
                if other.requireVulnerabilityScan && !requireVulnerabilityScan { out.append("require_vulnerability_scan") }
                if !other.minimumOSVersions.isEmpty && minimumOSVersions.isEmpty { out.append("minimum_os_versions") }
                return out
            }
        }
        public init() {}
    }

    // MARK: Network

    /// The protected applications (routes) and the TLS of the access path.
    public struct Network: Sendable, Equatable, Codable {
        public struct Route: Sendable, Equatable, Codable {
            public var id: String
            public var name: String
            public var host: String
            public var pathPrefix: String
            public var classification: String
            public var scenario: String?
            public var upstreams: [String]
            /// `store` (saved in the store) or `file` (the routes file).
            public var source: String
            public init(id: String, name: String, host: String, pathPrefix: String, classification: String, scenario: String?,
                        upstreams: [String], source: String) {
                self.id = id; self.name = name; self.host = host; self.pathPrefix = pathPrefix; self.classification = classification
                self.scenario = scenario; self.upstreams = upstreams; self.source = source
            }
            /// Classified confidential or restricted.
            public var isSensitive: Bool { classification == "confidential" || classification == "restricted" }
        }
        public var routes = Fact<[Route]>([], query: "")
        /// `gateway.tls.certificate_file` and `private_key_file` are set: the gateway itself serves HTTPS.
        public var gatewayServesTLS = Fact(false, query: "")
        /// `server.public_url` (the portal, where passwords and factors are entered) is `https://`.
        public var portalURLIsHTTPS = Fact(false, query: "")
        /// `gateway.routes_file` is set (routes and policies managed as files, reloaded automatically).
        public var routesFileConfigured = Fact(false, query: "")
        public init() {}
    }

    // MARK: Roles

    public struct Roles: Sendable, Equatable, Codable {
        public struct Role: Sendable, Equatable, Codable {
            public var id: String
            /// `standard`, `sensitive` or `privileged`.
            public var tier: String
            public var holders: Int
            public init(id: String, tier: String, holders: Int) { self.id = id; self.tier = tier; self.holders = holders }
        }
        public var roles = Fact<[Role]>([], query: "")
        /// Active users holding at least one privileged role.
        public var usersHoldingPrivileged = Fact(0, query: "")
        /// … who also hold a standard or sensitive role. Mixing only when ``ordinarySessionsMayHoldPrivileged``:
        /// Menshen keeps the two tiers in separate sessions, so holding both is not working in both at once.
        public var usersMixingPrivileged = Fact<[String]>([], query: "")
        /// Whether an ordinary session can act in a privileged role. A design fact of the code, not a count: in
        /// Menshen it is false by construction (`SessionManager.issue` and `endPrivileged` give an ordinary
        /// session the standard and sensitive roles only; `startPrivileged` is the one way to the privileged
        /// ones). True (the fail-closed default) when not established.
        public var ordinarySessionsMayHoldPrivileged = Fact(true, query: "")
        /// `identity.session.privileged_lifetime_seconds`: a privileged-work session ends at most this long after it started; nil: unknown.
        public var privilegedSessionLifetimeSeconds = Fact<Int?>(nil, query: "")
        /// Privileged-work sessions started in the window (3002, activity 99, status 1, `activity_name` `Privileged work start`).
        public var privilegedSessionsStarted = Fact(0, query: "")
        public init() {}
    }

    // MARK: Visibility

    public struct Visibility: Sendable, Equatable, Codable {
        public struct Detection: Sendable, Equatable, Codable {
            public var id: String
            public var title: String
            /// ATT&CK technique ids (`T1110.003`).
            public var techniques: [String]
            /// The pillars whose events it reads (`identity`, `device`, `network`, `application`, `data`).
            public var pillars: [String]
            /// Playbooks that answer it with an action beyond logging (revoke, disable, step-up, risk, webhook).
            public var respondingPlaybooks: [String]
            /// The actions of those playbooks (`revoke_sessions`, `disable_user`, …), sorted, once each.
            public var respondingActions: [String]
            public init(id: String, title: String, techniques: [String], pillars: [String], respondingPlaybooks: [String],
                        respondingActions: [String] = []) {
                self.id = id; self.title = title; self.techniques = techniques; self.pillars = pillars
                self.respondingPlaybooks = respondingPlaybooks; self.respondingActions = respondingActions
            }
        }
        /// `export.syslog.enabled`.
        public var syslogExport = Fact(false, query: "")
        /// `export.jsonl.enabled`.
        public var jsonLinesExport = Fact(false, query: "")
        /// `export.webhook.enabled`.
        public var webhookExport = Fact(false, query: "")
        /// The detections the server runs (`menshen serve`, unless `response.detections_enabled` is off: then those another
        /// node runs, while the shared cursor keeps up with the log, else none).
        public var detections = Fact<[Detection]>([], query: "")
        /// True when ``detections`` is empty because this node leaves them to another and none runs them (its query says why).
        public var detectionsStopped = false
        /// Detection Findings (2004) in the window.
        public var findings = Fact(0, query: "")
        /// Mean time from event to alert over those findings: from the last event a finding rests on
        /// (`finding_info.last_seen_time`) to the finding written; nil without findings.
        public var meanSecondsToAlert = Fact<Double?>(nil, query: "")
        /// `audit.when_unwritten = refuse`: the gateway refuses access while its decisions cannot be written to the
        /// event log, so no access goes unlogged.
        public var decisionAuditFailsClosed = Fact(false, query: "")
        /// The event log's head was signed (an audit checkpoint, Ed25519) within the window, so cutting or rewriting
        /// the log is detectable.
        public var auditChainSigned = Fact(false, query: "")
        /// Cases (incidents grouping findings, `menshen case`) opened in the window: Incident Finding (2005) activity 1 Create.
        public var casesOpened = Fact(0, query: "")
        /// … and closed in the window: 2005 activity 3 Close.
        public var casesClosed = Fact(0, query: "")
        public var playbooksProblem: String?
        public init() {}

        public var exported: Bool { syslogExport.value || jsonLinesExport.value || webhookExport.value }
        public func detections(for pillar: String) -> [Detection] {
            detections.value.filter { $0.pillars.contains(pillar) && !$0.techniques.isEmpty }
        }
    }

    // MARK: Data

    public struct DataFacts: Sendable, Equatable, Codable {
        /// The key that seals secrets at rest (`identity.secrets_key_file`).
        public var secretsKeyPresent = Fact(false, query: "")
        /// Its file mode allows only the owner (0600 or stricter).
        public var secretsKeyOwnerOnly = Fact(false, query: "")
        /// Days since the key file was last written (nil when absent).
        public var secretsKeyAgeDays = Fact<Int?>(nil, query: "")
        /// TOTP credentials stored, and those whose seed is sealed (`secret_sealed`) rather than in clear.
        public var totpCredentials = Fact(0, query: "")
        public var totpCredentialsSealed = Fact(0, query: "")
        /// `audit.retention_days`: events older than this are exported and pruned on schedule (0: kept for ever).
        public var auditRetentionDays = Fact(0, query: "")
        public init() {}
    }
}
