import Foundation
import MenshenAssessment
import MenshenCedar
import MenshenConfig
import MenshenCore
import MenshenDevice
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenStorage
import MenshenVisibility

/// Gathers ``DeploymentFacts`` from a running deployment: the store (through
/// the store protocols, so SQLite and PostgreSQL answer alike), the
/// configuration and the files it names (routes, Cedar, identity providers,
/// compliance baselines, playbooks, the secrets key). Each fact carries the
/// query that reproduces it, written as the SQL an auditor would run against
/// the schema (`events`, `users`, `credentials`, …) or the key or file read.
///
/// Events are read window-bounded and page by page (``pageSize`` at a time)
/// and only counted: memory does not grow with the log.
public enum AssessmentFacts {
    public static let pageSize = 1000
    /// A long scan reports its progress once per this many events read.
    public static let progressEvery = 100_000
    /// Larger events are skipped when a sign-in is parsed (the writers never produce one).
    static let maximumEventBytes = 256 * 1024

    /// Which pillars' events each built-in detection reads (by rule title). A detection not listed counts for no pillar;
    /// `AssessmentFactsTests` fails when a built-in detection with an ATT&CK mapping is missing here.
    public static let detectionPillars: [String: [String]] = [
        "Password guessing against one account": ["identity"],
        "Password spraying from one source": ["identity"],
        "Repeated second-factor failures for one user": ["identity"],
        "Second factor removed after a risky sign-in": ["identity"],
        "Credential stuffing across many accounts": ["identity"],
        "Impossible travel or new country for a user": ["identity"],
        "Dormant account suddenly active": ["identity"],
        "Session token used from another address": ["identity", "network"],
        "Access attempt from an unmanaged device": ["device", "network"],
        "Privileged access outside business hours": ["application"],
        "Abnormal download volume for a user": ["application", "data"],
    ]

    public static func gather(configuration config: MenshenConfiguration, store: any MenshenStore, window: TimeInterval, now: Date,
                              environment: [String: String] = ProcessInfo.processInfo.environment,
                              progress: (@Sendable (String) -> Void)? = nil) async throws -> DeploymentFacts {
        let start = now.addingTimeInterval(-window)
        var facts = DeploymentFacts(windowStart: start, windowEnd: now)
        let users = try await store.listUsers()
        let kinds = Dictionary(users.map { ($0.id.rawValue, $0.kind) }, uniquingKeysWith: { a, _ in a })
        try await directory(&facts, users: users, store: store)
        try await signIns(&facts, kinds: kinds, store: store, start: start, now: now, progress: progress)
        try await decisions(&facts, store: store, start: start, now: now, progress: progress)
        federation(&facts, config: config, environment: environment)
        try await gateway(&facts, config: config, store: store, now: now)
        try await devices(&facts, config: config, store: store, now: now)
        visibility(&facts, config: config)
        try await detectionsElsewhere(&facts, config: config, store: store, now: now)
        try await auditTrail(&facts, config: config, store: store, start: start, now: now)
        facts.data.auditRetentionDays = Fact(config.audit.retentionDays, query: "audit.retention_days = \(config.audit.retentionDays)")
        let lifetime = config.identity.sessionPrivilegedLifetimeSeconds
        facts.roles.privilegedSessionLifetimeSeconds = Fact(lifetime, query: "identity.session.privileged_lifetime_seconds = \(lifetime)")
        secrets(&facts, config: config, now: now)
        return facts
    }

    // MARK: Directory and credentials

    static func directory(_ f: inout DeploymentFacts, users: [UserRecord], store: any MenshenStore) async throws {
        let active = users.filter { !$0.disabled }
        var mfa = 0, webauthn = 0, totp = 0, totpAll = 0, totpSealed = 0
        var holders: [String: Int] = [:]
        var privilegedHolders = 0
        var mixing: [String] = []
        let roles = try await store.listRoles()
        let tier = Dictionary(roles.map { ($0.id.rawValue, $0.riskTier) }, uniquingKeysWith: { a, _ in a })
        for u in users {
            let creds = try await store.credentials(of: u.id)
            for c in creds where c.kind == .totp {
                totpAll += 1
                if Self.isSealedTOTP(c.data) { totpSealed += 1 }
            }
            guard !u.disabled else { continue }
            let kinds = Set(creds.map(\.kind))
            if kinds.contains(.totp) || kinds.contains(.webauthn) { mfa += 1 }
            if kinds.contains(.webauthn) { webauthn += 1 }
            if kinds.contains(.totp) { totp += 1 }
            let held = try await store.roles(of: u.id).map(\.rawValue)
            for r in held { holders[r, default: 0] += 1 }
            let tiers = held.compactMap { tier[$0] }
            if tiers.contains(.privileged) {
                privilegedHolders += 1
                if tiers.contains(where: { $0 != .privileged }) { mixing.append(u.id.rawValue) }
            }
        }
        let activeQ = "SELECT count(*) FROM users WHERE disabled = 0"
        f.identity.activeUsers = Fact(active.count, query: activeQ)
        f.identity.internalUsers = Fact(active.filter { $0.kind == .internal }.count, query: activeQ + " AND kind = 'internal'")
        f.identity.externalUsers = Fact(active.filter { $0.kind != .internal }.count, query: activeQ + " AND kind IN ('vendor','partner')")
        func holding(_ k: String) -> String {
            "SELECT count(DISTINCT u.id) FROM users u JOIN credentials c ON c.user_id = u.id WHERE u.disabled = 0 AND c.kind IN (\(k))"
        }
        f.identity.usersWithMFA = Fact(mfa, query: holding("'totp','webauthn'"))
        f.identity.usersWithWebAuthn = Fact(webauthn, query: holding("'webauthn'"))
        f.identity.usersWithTOTP = Fact(totp, query: holding("'totp'"))
        f.data.totpCredentials = Fact(totpAll, query: "SELECT count(*) FROM credentials WHERE kind = 'totp'")
        f.data.totpCredentialsSealed = Fact(totpSealed, query: "SELECT count(*) FROM credentials WHERE kind = 'totp' AND json_extract(data,'$.secret_sealed') IS NOT NULL AND json_extract(data,'$.secret') IS NULL")
        // Every role, also one without an active holder (0), as the code counts them.
        let rolesQ = "SELECT r.id, r.risk_tier, (SELECT count(*) FROM role_assignments a JOIN users u ON u.id = a.user_id WHERE a.role_id = r.id AND u.disabled = 0) FROM roles r ORDER BY r.id"
        f.roles.roles = Fact(roles.map { .init(id: $0.id.rawValue, tier: $0.riskTier.rawValue, holders: holders[$0.id.rawValue] ?? 0) }, query: rolesQ)
        f.roles.usersHoldingPrivileged = Fact(privilegedHolders, query: "SELECT count(DISTINCT a.user_id) FROM role_assignments a JOIN roles r ON r.id = a.role_id JOIN users u ON u.id = a.user_id WHERE u.disabled = 0 AND r.risk_tier = 'privileged'")
        f.roles.usersMixingPrivileged = Fact(mixing.sorted(), query: "active users with a role of risk_tier 'privileged' and another of risk_tier 'standard' or 'sensitive' (role_assignments ⋈ roles)")
        f.roles.ordinarySessionsMayHoldPrivileged = Fact(false, query: Self.sessionSeparation)
    }

    /// Where the separation of privileged from ordinary sessions comes from: the code, not a count.
    static let sessionSeparation = "by construction, not counted: SessionManager.issue and endPrivileged (Sources/MenshenPolicyAdministrator/Sessions/SessionManager.swift) give an ordinary session the user's standard and sensitive roles only; startPrivileged, after a fresh LoA 3 proof, is the only way to a session acting in the privileged roles, and it revokes the ordinary one"

    /// A stored JSON object (an event's payload, a credential's data) within ``maximumEventBytes``; nil otherwise.
    static func object(_ text: String) -> [String: Any]? {
        guard text.utf8.count <= maximumEventBytes else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }

    /// A stored TOTP credential whose seed is sealed (`secret_sealed`) and not also in clear.
    static func isSealedTOTP(_ data: String) -> Bool {
        guard let o = object(data) else { return false }
        return (o["secret_sealed"] as? String).map { !$0.isEmpty } == true && o["secret"] == nil
    }

    // MARK: Events

    static func scan(_ store: any MenshenStore, classes: [Int], start: Date, now: Date, progress: (@Sendable (String) -> Void)? = nil,
                     every progressEvery: Int = progressEvery, visit: (StoredEvent) -> Void) async throws {
        var cursor: Int64?
        var read = 0
        let query = EventQuery(since: start, until: now, classUIDs: classes)
        let what = "events of class " + classes.map(String.init).joined(separator: ", ")
        while true {
            let page = try await store.searchEvents(query, order: .oldestFirst, after: cursor, limit: pageSize)
            for e in page { visit(e) }
            let before = read
            read += page.count
            if let progress, read / progressEvery > before / progressEvery, let last = page.last {
                progress("read \(read) \(what) (up to \(ISO8601DateFormatter().string(from: last.event.time)))")
            }
            guard page.count == pageSize, let last = page.last else {
                if let progress, read >= progressEvery { progress("read \(read) \(what): done") }
                return
            }
            cursor = last.sequence
        }
    }

    static func window(_ classUID: Int, _ start: Date, _ now: Date) -> String {
        "SELECT payload FROM events WHERE class_uid = \(classUID) AND time >= \(StoreCoding.millis(start)) AND time < \(StoreCoding.millis(now))"
    }

    static func signIns(_ f: inout DeploymentFacts, kinds: [String: UserKind], store: any MenshenStore, start: Date, now: Date,
                        progress: (@Sendable (String) -> Void)? = nil) async throws {
        final class Tally {
            var signIns = 0, mfa = 0, webauthn = 0, otp = 0, stepUps = 0, privilegedStarts = 0
            var internalMin: Int?, externalMin: Int?
        }
        let t = Tally()
        try await scan(store, classes: [3002], start: start, now: now, progress: progress) { e in
            guard let o = object(e.event.payloadJSON), int(o["status_id"]) == 1 else { return }
            let activity = int(o["activity_id"])
            if activity == 99 {
                // Told apart by activity_name: a switch into or out of privileged work is not a step-up.
                switch (o["activity_name"] as? String).flatMap(IdentityEvents.OtherActivity.init(rawValue:)) {
                case .stepUp?: t.stepUps += 1
                case .privilegedStart?: t.privilegedStarts += 1
                default: break
                }
                return
            }
            guard activity == 1 else { return }
            t.signIns += 1
            if bool(o["is_mfa"]) { t.mfa += 1 }
            let factors = (o["auth_factors"] as? [Any] ?? []).compactMap { int(($0 as? [String: Any])?["factor_type_id"]) }
            if factors.contains(10) { t.webauthn += 1 }
            if factors.contains(7) { t.otp += 1 }
            if let loa = int((o["unmapped"] as? [String: Any])?["loa"]) {
                let uid = (o["user"] as? [String: Any])?["uid"] as? String ?? e.event.userID?.rawValue ?? ""
                switch kinds[uid] {
                case .internal?: t.internalMin = min(t.internalMin ?? loa, loa)
                case .vendor?, .partner?: t.externalMin = min(t.externalMin ?? loa, loa)
                case nil: break
                }
            }
        }
        let q = window(3002, start, now) + " AND json_extract(payload,'$.activity_id') = 1 AND json_extract(payload,'$.status_id') = 1"
        f.identity.signIns = Fact(t.signIns, query: q)
        f.identity.signInsMultiFactor = Fact(t.mfa, query: q + " AND json_extract(payload,'$.is_mfa') = true")
        f.identity.signInsPhishingResistant = Fact(t.webauthn, query: q + " AND EXISTS (SELECT 1 FROM json_each(payload,'$.auth_factors') WHERE json_extract(value,'$.factor_type_id') = 10)")
        f.identity.signInsOTP = Fact(t.otp, query: q + " AND EXISTS (SELECT 1 FROM json_each(payload,'$.auth_factors') WHERE json_extract(value,'$.factor_type_id') = 7)")
        let loaQ = "SELECT min(json_extract(e.payload,'$.unmapped.loa')) FROM events e JOIN users u ON u.id = json_extract(e.payload,'$.user.uid') WHERE e.class_uid = 3002 AND e.time >= \(StoreCoding.millis(start)) AND e.time < \(StoreCoding.millis(now)) AND json_extract(e.payload,'$.activity_id') = 1 AND json_extract(e.payload,'$.status_id') = 1"
        f.identity.internalMinimumSignInLoA = Fact(t.internalMin, query: loaQ + " AND u.kind = 'internal'")
        f.identity.externalMinimumSignInLoA = Fact(t.externalMin, query: loaQ + " AND u.kind IN ('vendor','partner')")
        f.roles.privilegedSessionsStarted = Fact(t.privilegedStarts, query: window(3002, start, now) + " AND json_extract(payload,'$.activity_id') = 99 AND json_extract(payload,'$.status_id') = 1 AND json_extract(payload,'$.activity_name') = '\(IdentityEvents.OtherActivity.privilegedStart.rawValue)'")
        f.identity.stepUpsCompleted = Fact(t.stepUps, query: window(3002, start, now) + " AND json_extract(payload,'$.activity_id') = 99 AND json_extract(payload,'$.status_id') = 1 AND json_extract(payload,'$.activity_name') = '\(IdentityEvents.OtherActivity.stepUp.rawValue)'")
    }

    static func decisions(_ f: inout DeploymentFacts, store: any MenshenStore, start: Date, now: Date,
                          progress: (@Sendable (String) -> Void)? = nil) async throws {
        final class Tally {
            var decided = 0, enrolled = 0, hardware = 0, withDevice = 0, stepUp = 0, narrowed = 0, revoked = 0, alerted = 0, responses = 0
            var compliance = 0, findings = 0, casesOpened = 0, casesClosed = 0
            var alertDelays = 0.0, timedFindings = 0
        }
        let t = Tally()
        // Decisions (the most numerous events) by substring tests on the stored JSON, which `DecisionLog` writes in a
        // fixed order: client-supplied text is JSON-escaped, so a bare `"key":value` is structure, and everything from
        // `"unmapped":{"decision":{` on is the decision (`web_resources` after it holds no such key). The rest is parsed.
        try await scan(store, classes: [6001, 7001, 2003, 2004, 2005], start: start, now: now, progress: progress) { e in
            let p = e.event.payloadJSON
            switch e.event.classUID {
            case 6001:
                if p.contains("\"is_alert\":true") { t.alerted += 1 }
                guard let r = p.range(of: "\"unmapped\":{\"decision\":{") else { return }
                if p[..<r.lowerBound].contains("\"device\":{") { t.withDevice += 1 }   // the top-level device (device.uid)
                let d = p[r.upperBound...]
                let allowed = d.contains("\"outcome\":\"allow\"")
                if d.contains("\"outcome\":\"step_up\"") { t.stepUp += 1 }
                if allowed, let o = d.range(of: "\"obligations\":["), let end = d[o.upperBound...].firstIndex(of: "]"),
                   d[o.upperBound..<end].contains("\"read_only\"") { t.narrowed += 1 }
                if d.contains("\"mode\":\"reevaluation\"") && !allowed { t.revoked += 1 }
                guard d.contains("\"device\":{") else { return }
                t.decided += 1
                if d.contains("\"enrolled\":true") { t.enrolled += 1 }
                if d.contains("\"hardware_bound\":true") { t.hardware += 1 }
            case 7001:
                // Actions taken (status 1), not an operator's approval or rejection of a held step, not a dry run.
                guard let o = object(p), int(o["status_id"]) == 1,
                      !["Approve", "Reject"].contains(o["activity_name"] as? String ?? ""),
                      let u = o["unmapped"] as? [String: Any], !bool(u["dry_run"]),
                      ["revoke_sessions", "disable_user", "require_step_up"].contains(u["action"] as? String ?? "") else { return }
                t.responses += 1
            case 2003: t.compliance += 1
            case 2004:
                t.findings += 1
                // Time to alert: from the last event the finding rests on to the finding written (the detections' findings;
                // a gateway @alert is written with its decision and names no last_seen_time).
                if let o = object(p), let info = o["finding_info"] as? [String: Any], let last = info["last_seen_time"] as? NSNumber {
                    t.alertDelays += max(0, e.event.time.timeIntervalSince1970 - last.doubleValue / 1000)
                    t.timedFindings += 1
                }
            case 2005:
                guard let o = object(p) else { return }
                switch int(o["activity_id"]) {
                case 1?: t.casesOpened += 1
                case 3?: t.casesClosed += 1
                default: break
                }
            default: break
            }
        }
        let q = window(6001, start, now)
        let decided = q + " AND json_extract(payload,'$.unmapped.decision.device') IS NOT NULL"
        f.decisions.decided = Fact(t.decided, query: decided)
        f.decisions.fromEnrolledDevice = Fact(t.enrolled, query: decided + " AND json_extract(payload,'$.unmapped.decision.device.enrolled') = true")
        f.decisions.fromHardwareBoundDevice = Fact(t.hardware, query: decided + " AND json_extract(payload,'$.unmapped.decision.device.hardware_bound') = true")
        f.decisions.steppedUp = Fact(t.stepUp, query: q + " AND json_extract(payload,'$.unmapped.decision.outcome') = 'step_up'")
        f.decisions.narrowed = Fact(t.narrowed, query: q + " AND json_extract(payload,'$.unmapped.decision.outcome') = 'allow' AND 'read_only' IN (SELECT value FROM json_each(payload,'$.unmapped.decision.obligations'))")
        f.decisions.revokedOnReevaluation = Fact(t.revoked, query: q + " AND json_extract(payload,'$.unmapped.decision.mode') = 'reevaluation' AND json_extract(payload,'$.unmapped.decision.outcome') <> 'allow'")
        f.decisions.alerted = Fact(t.alerted, query: q + " AND json_extract(payload,'$.is_alert') = true")
        f.decisions.responseActions = Fact(t.responses, query: window(7001, start, now) + " AND json_extract(payload,'$.status_id') = 1 AND IFNULL(json_extract(payload,'$.activity_name'),'') NOT IN ('Approve','Reject') AND json_extract(payload,'$.unmapped.action') IN ('revoke_sessions','disable_user','require_step_up') AND IFNULL(json_extract(payload,'$.unmapped.dry_run'), false) = false")
        f.decisions.complianceChanges = Fact(t.compliance, query: window(2003, start, now))
        f.decisions.withDeviceID = Fact(t.withDevice, query: q + " AND json_extract(payload,'$.device.uid') IS NOT NULL")
        f.visibility.findings = Fact(t.findings, query: window(2004, start, now))
        f.visibility.meanSecondsToAlert = Fact(t.timedFindings == 0 ? nil : t.alertDelays / Double(t.timedFindings),
                                               query: "SELECT avg(max(0, time - json_extract(payload,'$.finding_info.last_seen_time'))) / 1000.0 FROM events WHERE class_uid = 2004 AND time >= \(StoreCoding.millis(start)) AND time < \(StoreCoding.millis(now)) AND json_extract(payload,'$.finding_info.last_seen_time') IS NOT NULL")
        f.visibility.casesOpened = Fact(t.casesOpened, query: window(2005, start, now) + " AND json_extract(payload,'$.activity_id') = 1")
        f.visibility.casesClosed = Fact(t.casesClosed, query: window(2005, start, now) + " AND json_extract(payload,'$.activity_id') = 3")
    }

    static func int(_ v: Any?) -> Int? {
        if let i = v as? Int { return i }
        if let n = v as? NSNumber { return n.intValue }
        return nil
    }
    static func bool(_ v: Any?) -> Bool {
        if let b = v as? Bool { return b }
        return (v as? NSNumber)?.boolValue ?? false
    }

    // MARK: Configuration and files

    static func federation(_ f: inout DeploymentFacts, config: MenshenConfiguration, environment: [String: String]) {
        let path = config.identity.oidcProvidersFile
        let q = "identity.oidc.providers_file (\(path.isEmpty ? "empty: no providers" : path)): each provider's user_kind, max_loa and acr map"
        guard !path.isEmpty else { f.federation.providers = Fact([], query: q); return }
        do {
            let origin = try IdentityWiring.origin(of: config.server.publicURL).origin
            let providers = try OIDCProvidersFile.load(path: path, publicOrigin: origin, environment: environment)
            f.federation.providers = Fact(providers.map {
                .init(id: $0.id, userKind: $0.userKind.rawValue, maximumLoA: $0.maximumLevelOfAssurance.rawValue, acrMappings: $0.acrLevels.count)
            }, query: q)
        } catch {
            f.federation.providers = Fact([], query: q)
            f.federation.problem = "\(error)"
        }
    }

    static func gateway(_ f: inout DeploymentFacts, config: MenshenConfiguration, store: any MenshenStore, now: Date) async throws {
        let loader = GatewayLoader(store: store, routesFile: config.gateway.routesFile, clock: FixedClock(now))
        let file = config.gateway.routesFile
        let routesQ = "SELECT id, host, path_prefix, upstreams, classification, scenario FROM applications" + (file.isEmpty ? "" : " + the routes of gateway.routes_file \(file)")
        let policiesQ = "SELECT text FROM policies p WHERE version = (SELECT max(version) FROM policies WHERE policy_id = p.policy_id)"
            + (file.isEmpty ? "" : " + the compiled require: permits and Cedar files of \(file)") + ", parsed and validated as the gateway loads them"
        f.network.routesFileConfigured = Fact(!file.isEmpty, query: "gateway.routes_file = \(file.isEmpty ? "(empty)" : file)")
        f.network.gatewayServesTLS = Fact(!config.gateway.tlsCertificateFile.isEmpty && !config.gateway.tlsPrivateKeyFile.isEmpty,
                                          query: "gateway.tls.certificate_file and gateway.tls.private_key_file both set")
        f.network.portalURLIsHTTPS = Fact(config.server.publicURL.lowercased().hasPrefix("https://"), query: "server.public_url = \(config.server.publicURL)")
        var storeApps: [ApplicationRecord] = []
        var fileApps: [ApplicationRecord] = []
        do {
            let sources = try await loader.readSources()
            storeApps = sources.applications
            fileApps = sources.file.applications
            _ = try loader.build(sources, generation: 1)   // validates the whole set as the gateway would
            f.policies.inForce = Fact(try policyFacts(sources), query: policiesQ)
        } catch {
            if storeApps.isEmpty { storeApps = try await store.listApplications() }
            f.policies.inForce = Fact([], query: policiesQ)
            f.policies.problem = "\(error)"
        }
        func route(_ a: ApplicationRecord, _ source: String) -> DeploymentFacts.Network.Route {
            .init(id: a.id.rawValue, name: a.displayName, host: a.host, pathPrefix: a.pathPrefix, classification: a.classification,
                  scenario: a.scenario, upstreams: a.upstreams, source: source)
        }
        f.network.routes = Fact(storeApps.map { route($0, "store") } + fileApps.map { route($0, "file") }, query: routesQ)
    }

    /// Each policy in force, with the document it came from (as the gateway names it), its resource scope and its
    /// canonical text. Called once the whole set validated, so every document parses.
    static func policyFacts(_ sources: GatewayLoader.Sources) throws -> [DeploymentFacts.Policies.Policy] {
        var documents = sources.policies.map { (name: "\($0.policyID).cedar (v\($0.version))", text: $0.text) }
        documents += sources.file.documents.map { (name: $0.name, text: $0.text) }
        return try documents.flatMap { doc in
            try CedarParser.parsePolicySet(doc.text).policies.map { p in
                var bare = p
                bare.annotations = Annotations()
                let apps: [String]?
                switch p.resource {
                case .eq(.uid(let u)) where u.type.description == "Application": apps = [u.id]
                default: apps = nil
                }
                return .init(id: PolicyDecisionPoint.displayID(p), source: doc.name, effect: p.effect.rawValue, applications: apps,
                             text: CedarFormatter.format(bare), conditionCount: p.conditions.count, anyPrincipal: p.principal == .any,
                             obligations: p.annotations.entries.filter { $0.key == "obligation" }.map(\.value), alert: p.annotations["alert"])
            }
        }
    }

    static func devices(_ f: inout DeploymentFacts, config: MenshenConfiguration, store: any MenshenStore, now: Date) async throws {
        var baselines: [String: DeploymentFacts.Devices.Baseline] = [:]
        let file = config.device.complianceFile
        let baselineQ = "device.compliance_file = \(file.isEmpty ? "(empty: the built-in baselines)" : file)"
        do {
            let policy = try DeviceRulesLoader.compliance(file: file)
            for (c, p) in policy.classes {
                baselines[c.rawValue] = .init(deviceClass: c.rawValue, maxPostureAgeSeconds: p.maxPostureAgeSeconds, requireDiskEncryption: p.requireDiskEncryption,
                                              requireFirewall: p.requireFirewall, requireScreenLock: p.requireScreenLock, requireEDR: p.requireEDR,
                                              maxEDRSignatureAgeDays: p.maxEDRSignatureAgeDays, maxVulnerabilitySeverity: p.maxVulnerabilitySeverity.rawValue,
                                              maxPendingSecurityUpdates: p.maxPendingSecurityUpdates, requireVulnerabilityScan: p.requireVulnerabilityScan,
                                              minimumOSVersions: p.minimumOSVersions)
            }
        } catch {
            f.devices.baselinesProblem = "\(error)"
        }
        f.devices.baselines = Fact(baselines.values.sorted { $0.deviceClass < $1.deviceClass }, query: baselineQ)
        let all = try await store.listDevices().filter { $0.state == .active }
        let fresh = all.filter { d in
            guard let at = d.lastPostureAt, let b = baselines[d.deviceClass.rawValue] else { return false }
            return now.timeIntervalSince(at) <= Double(b.maxPostureAgeSeconds)
        }
        let q = "SELECT count(*) FROM devices WHERE state = 'active'"
        f.devices.active = Fact(all.count, query: q)
        f.devices.hardwareBound = Fact(all.filter(\.hardwareBound).count, query: q + " AND hardware_bound = 1")
        f.devices.compliant = Fact(all.filter(\.compliant).count, query: q + " AND compliant = 1")
        f.devices.postureFresh = Fact(fresh.count, query: q + " AND \(StoreCoding.millis(now)) - last_posture_at <= 1000 × max_posture_age_seconds of the device's class (\(baselineQ))")
        f.devices.clientCertificatesConfigured = Fact(!config.gateway.tlsClientCAFile.isEmpty && !config.gateway.tlsCertificateFile.isEmpty,
                                                      query: "gateway.tls.client_ca_file set (with gateway.tls.certificate_file)")
        f.devices.advisoriesConfigured = Fact(!config.device.advisoriesDir.isEmpty, query: "device.advisories_dir = \(config.device.advisoriesDir.isEmpty ? "(empty)" : config.device.advisoriesDir)")
        f.devices.tpmAttestationConfigured = Fact(!config.device.tpmCAFile.isEmpty, query: "device.tpm_ca_file set")
    }

    /// The event log's integrity: whether access fails closed when decisions cannot be logged, and whether its head was
    /// signed in the window (the newest audit checkpoint).
    static func auditTrail(_ f: inout DeploymentFacts, config: MenshenConfiguration, store: any MenshenStore, start: Date, now: Date) async throws {
        let refuse = config.audit.whenUnwritten == "refuse"
        f.visibility.decisionAuditFailsClosed = Fact(refuse, query: "audit.when_unwritten = \(config.audit.whenUnwritten)")
        // Signed within the window, or the signature covers the log's head (a log quiet for the whole window).
        let last = try await store.lastCheckpoint()
        let head = try await store.lastEvent()?.sequence
        let signed = last.map { ($0.time >= start && $0.time < now) || $0.sequence == head } ?? false
        let seen = last.map { "the newest at \(StoreCoding.millis($0.time)) ms (sequence \($0.sequence), key \($0.keyID))" } ?? "none"
        f.visibility.auditChainSigned = Fact(signed, query: "SELECT time, sequence FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1: \(seen); "
                                                 + "signed within the window \(StoreCoding.millis(start))–\(StoreCoding.millis(now)) ms or at the log's head (sequence \(head.map(String.init) ?? "none"))")
    }

    static func visibility(_ f: inout DeploymentFacts, config: MenshenConfiguration) {
        f.visibility.syslogExport = Fact(config.syslogExport.enabled, query: "export.syslog.enabled = \(config.syslogExport.enabled)")
        f.visibility.jsonLinesExport = Fact(config.jsonLinesExport.enabled, query: "export.jsonl.enabled = \(config.jsonLinesExport.enabled)")
        f.visibility.webhookExport = Fact(config.webhookExport.enabled, query: "export.webhook.enabled = \(config.webhookExport.enabled)")
        var playbooks: [Playbook] = []
        do { playbooks = try PlaybookState(file: config.response.playbooksFile).set.playbooks } catch {
            f.visibility.playbooksProblem = "\(error)"
        }
        var metadata = BuiltInRules.detectors().map(\.metadata)
        if let set = try? BuiltInRules.ruleSet() { metadata = set.allMetadata + metadata }
        let detections: [DeploymentFacts.Visibility.Detection] = metadata.compactMap { m in
            let techniques = m.techniques.map(\.uid)
            guard !techniques.isEmpty else { return nil }   // the inputs of a correlation: not detections on their own
            let responding = playbooks.filter { responds($0, to: m) }
            let actions = Set(responding.flatMap { $0.actions.map(\.kind) }).subtracting(["log"]).sorted()
            return .init(id: m.id ?? m.title, title: m.title, techniques: techniques, pillars: detectionPillars[m.title] ?? [],
                         respondingPlaybooks: responding.map(\.name), respondingActions: actions)
        }
        let source = config.response.playbooksFile.isEmpty ? "the built-in playbooks" : "response.playbooks_file \(config.response.playbooksFile)"
        f.visibility.detections = Fact(detections, query: "the built-in detections the server runs (BuiltInRules: Sigma and Swift, ATT&CK tags), matched against \(source)")
    }

    /// On a node that leaves detections to another (`response.detections_enabled: false`), they count as running only
    /// while ``DetectionLag`` does not find them behind: the shared consumer cursor `detections` exists and the first
    /// event after it is at most ``DetectionLag/limit`` old. Otherwise no detection runs, and the query says why.
    /// Which playbooks answer them is still read from this node's `response.playbooks_file` (the same file on every node).
    static func detectionsElsewhere(_ f: inout DeploymentFacts, config: MenshenConfiguration, store: any MenshenStore, now: Date) async throws {
        guard !config.response.detectionsEnabled else { return }
        let here = "response.detections_enabled = false on this node", cursorName = DetectionService.cursorName
        switch try await DetectionLag.read(store, now: now) {
        case .neverRan:
            f.visibility.detections = Fact([], query: "\(here), and no node ever saved the consumer cursor `\(cursorName)`: no detection runs")
            f.visibility.detectionsStopped = true
        case .behind(let cursor, let event, let time):
            f.visibility.detections = Fact([], query: "\(here), and the consumer cursor `\(cursorName)` (at sequence \(cursor)) has "
                                                + "left event \(event) of \(StoreCoding.millis(time)) ms unexamined for more than "
                                                + "\(Int(DetectionLag.limit / 60)) minutes: no node keeps up")
            f.visibility.detectionsStopped = true
        case .keepingUp(let cursor, let unexamined):
            let state = unexamined != nil ? "keeps up with the log" : "has no event after it (a quiet log: no lag, which does not show a node running)"
            f.visibility.detections = Fact(f.visibility.detections.value, query: f.visibility.detections.query
                                           + "; run by another node (\(here); the consumer cursor `\(cursorName)` at sequence \(cursor) \(state); "
                                           + "the playbooks as this node's file says)")
        }
    }

    /// Whether a playbook answers a detection's findings with more than a log line (the same matching as `Playbook.matches`).
    static func responds(_ p: Playbook, to m: RuleMetadata) -> Bool {
        guard !p.dryRun, p.actions.contains(where: { if case .log = $0 { false } else { true } }) else { return false }
        if !p.match.rules.isEmpty {
            let names = Set([m.id, m.name, m.title].compactMap { $0 })
            guard p.match.rules.contains(where: names.contains) else { return false }
        }
        if !p.match.techniques.isEmpty {
            let ids = m.techniques.map { $0.uid.uppercased() }
            guard ids.contains(where: { id in p.match.techniques.contains { id == $0 || id.hasPrefix($0 + ".") } }) else { return false }
        }
        if let minimum = p.match.minimumSeverity, m.level < minimum { return false }
        return true
    }

    static func secrets(_ f: inout DeploymentFacts, config: MenshenConfiguration, now: Date) {
        guard let path = try? IdentityWiring.keyPath(config.identity.secretsKeyFile, default: "secrets.key", key: "identity.secrets_key_file", config: config) else {
            let q = "identity.secrets_key_file (required with PostgreSQL; not set)"
            f.data.secretsKeyPresent = Fact(false, query: q); f.data.secretsKeyOwnerOnly = Fact(false, query: q); f.data.secretsKeyAgeDays = Fact(nil, query: q)
            return
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue
        let modified = attributes?[.modificationDate] as? Date
        f.data.secretsKeyPresent = Fact(attributes != nil && size > 0, query: "stat \(path): exists and is not empty")
        f.data.secretsKeyOwnerOnly = Fact(mode.map { $0 & 0o077 == 0 } ?? false, query: "stat \(path): mode & 0077 = 0")
        f.data.secretsKeyAgeDays = Fact(modified.map { max(0, Int(now.timeIntervalSince($0) / 86_400)) }, query: "stat \(path): days since mtime")
    }
}
