import Foundation
import MenshenCore
import MenshenDevice
import MenshenEnforcementPoint
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenTestSupport
import MenshenVisibility
import Testing

/// Every kind of event Menshen writes, produced by the code that writes it
/// (identity events, enrolment links, the gateway's decision audit and its
/// alerts), validated offline against the OCSF 1.8.0 JSON Schema by PyPI
/// `ocsf-json-schema` + `jsonschema` (`scripts/ocsf-validate.py`), plus the
/// checks that schema leaves out (`type_uid` arithmetic, category, version).
@Suite("OCSF 1.8.0 conformance of the events Menshen writes")
struct OCSFConformanceTests {
    struct Report: Decodable {
        struct Failure: Decodable { let line: Int; let class_uid: Int?; let errors: [String] }
        let checked: Int
        let classes: [String: Int]
        let failures: [Failure]
    }

    /// Runs the validator over JSON Lines; nil (with an issue recorded under CI) when the test virtualenv is missing.
    static func validate(_ lines: [String]) async throws -> (status: Int32, report: Report)? {
        let python = Harness.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        let script = Harness.packageRoot.appendingPathComponent("scripts/ocsf-validate.py").path
        let ready = FileManager.default.isExecutableFile(atPath: python)
            ? try await Harness.offPool { () -> Bool in
                // posix_spawn, not Foundation's Process (see `spawnAndWait`).
                try spawnAndWait(python, ["-c", "import ocsf_json_schema, jsonschema"]).status == 0
            } : false
        guard ready else {
            Issue.record("the OCSF validator needs .venv-test with ocsf-json-schema and jsonschema (scripts/test installs them)")
            return nil
        }
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("events.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let (status, output) = try await Harness.offPool { () -> (Int32, Data) in
            let r = try spawnAndWait(python, [script, file.path])
            return (r.status, Data(r.stdout))
        }
        return (status, try JSONDecoder().decode(Report.self, from: output))
    }

    @Test("every event type Menshen writes validates against OCSF 1.8.0 (3001, 3002, 6001, 2004, 5001, 2003, 3004, 2005, 7001)")
    func everyEventValidates() async throws {
        let w = try await PolicyGateTests.World()
        // Identity: every authentication activity, succeeded and failed, local and federated; every account change.
        let identity = IdentityEvents(store: w.store, clock: w.clock, random: SystemRandomSource())
        for activity in [IdentityEvents.AuthenticationActivity.logon, .logoff, .other] {
            try await identity.authentication(activity, user: "amy", userName: "amy", success: true, detail: "passkey",
                                              source: "203.0.113.7", factors: ["hwk", "user", "mfa", "pwd", "otp"], loa: 3, sessionHash: String(repeating: "ab", count: 32))
            try await identity.authentication(activity, user: nil, userName: "nobody@example", success: false, detail: "unknown user or wrong password",
                                              source: "2001:db8::7", idp: "corp-idp")
        }
        // Activity 99 named by what it is (activity_name): step-up, privileged work start and end, bad request.
        for other in IdentityEvents.OtherActivity.allCases {
            try await identity.authentication(.other, user: "amy", userName: "amy", success: other != .badRequest, detail: other.rawValue,
                                              source: "203.0.113.7", factors: ["pwd", "hwk"], loa: 3, sessionHash: String(repeating: "cd", count: 32), other: other)
        }
        for change in [IdentityEvents.AccountChange.create, .enable, .passwordChange, .disable, .mfaFactorEnable, .mfaFactorDisable, .other] {
            try await identity.accountChange(change, user: "amy", actor: "admin", detail: "change \(change.rawValue)")
        }
        _ = try await DemoOrganisation.issueEnrolmentToken(for: "amy", store: w.store, clock: w.clock, random: SystemRandomSource())

        // Decisions through the real gate: allow, allow with an @alert finding, read-only deny, step-up, sign-in, no route,
        // a forward-auth call from an untrusted address and a malformed one.
        let token = try await w.session(loa: 1)
        _ = await w.ask("/page", token: token)
        _ = await w.ask("/payments/batch/7", token: token)
        _ = await w.ask("/reports/q3", method: "DELETE", token: token)
        _ = await w.ask("/edit", method: "POST", token: token)
        _ = await w.ask("/page")
        _ = await w.ask("/page", host: "elsewhere.example")
        _ = await w.gate.decide(GateRequest(method: "GET", path: "/.menshen/auth/nginx", rawTarget: "/.menshen/auth/nginx", query: nil,
                                            host: "gw", scheme: "http", clientAddress: "198.51.100.9", headers: [], requestID: "fa-1"))
        _ = await w.gate.decide(GateRequest(method: "GET", path: "/.menshen/auth/nginx", rawTarget: "/.menshen/auth/nginx", query: nil,
                                            host: "gw", scheme: "http", clientAddress: "127.0.0.1", headers: [], requestID: "fa-2"))
        // Decisions on a known device (mTLS device certificate): `device.uid`, with and without a user.
        for user in ["amy", nil] as [String?] {
            var t = DecisionTrail(requestID: "dev-\(user ?? "none")", time: w.clock.now(), mode: .proxy, method: "GET", host: "gw.example",
                                  path: "/page", sourceIP: "203.0.113.7", outcome: user == nil ? .signIn : .allow)
            t.user = user; t.deviceID = "d-0123456789abcdef"; t.application = "app"
            w.decisions.record(t)
        }
        await w.decisions.flush()
        // The device pillar: a refused device certificate (with and without the certificate itself).
        let deviceCA = try DeviceCA.create(name: DeviceCAName(commonName: "Menshen Device CA", organization: "Bank"), now: Date(),
                                           keyEncryptionKey: Array(SystemRandomSource().bytes(32))).ca
        let deviceEvents = DeviceEvents(store: w.store, clock: w.clock, random: SystemRandomSource())
        try await deviceEvents.certificateRefused(code: "other_ca", detail: "other_ca", certificate: deviceCA.certificate,
                                                  fingerprint: String(repeating: "ab", count: 32), source: "203.0.113.7", requestID: "dev-1")
        try await deviceEvents.certificateRefused(code: "malformed", detail: "not a certificate", certificate: nil,
                                                  fingerprint: String(repeating: "cd", count: 32), source: nil, requestID: "dev-2")
        let laptop = DeviceRecord(id: "d-0123456789abcdef", ownerID: "amy", displayName: "Amy's laptop", deviceClass: .managed, platform: "Debian",
                                  hardwareBound: false, compliant: false, complianceReasons: ["firewall_off"], enrolledAt: Date())
        try await deviceEvents.inventory(device: laptop, activity: 1, success: true, detail: "enrolled (managed)", source: "203.0.113.7")
        try await deviceEvents.inventory(device: laptop, activity: 2, success: true, detail: "non-compliant: firewall_off", source: nil)
        try await deviceEvents.postureRefused(device: laptop.id, code: "nonce_unknown", source: "203.0.113.7")
        try await deviceEvents.inventory(device: laptop, activity: 1, success: true, detail: "enrolled (managed), hardware-bound", source: nil,
                                         tpmEKFingerprint: String(repeating: "ab", count: 32))
        try await deviceEvents.enrolmentRefused(code: "untrusted_ek_certificate", detail: "no path to a TPM manufacturer CA", source: "203.0.113.7")
        try await deviceEvents.complianceChanged(device: laptop, reasons: ["firewall_off", "os_version_below_minimum"], sessionsRevoked: 2,
                                                 source: "203.0.113.7")
        var healed = laptop
        healed.compliant = true; healed.complianceReasons = []
        try await deviceEvents.complianceChanged(device: healed, reasons: [], sessionsRevoked: 0, source: nil)
        try await deviceEvents.entityManagement(device: laptop, activity: 6, actor: "amy", actorIsOperator: false, application: "menshen agent enrol",
                                                comment: "one-time enrolment token", source: "203.0.113.7")
        for activity in [12, 13, 7] {
            try await deviceEvents.entityManagement(device: laptop, activity: activity, actor: "root", actorIsOperator: true, application: "menshen device",
                                                    comment: activity == 13 ? nil : "EDR alert 4711", sessionsRevoked: 1)
        }
        // Attestations (menshen attest add / revoke): Entity Management 3004, activities 1 and 11.
        var attestation = AttestationRecord(id: "0f0e0d0c-aaaa-4bbb-8ccc-123456789abc", principleID: "4.4", statement: "年度滲透測試 annual pentest",
                                            attestedBy: "CISO 王小明", attestedAt: Date(), expiresAt: Date().addingTimeInterval(86400), createdAt: Date(),
                                            createdBy: "cli:root", files: [AttestationFileInfo(name: "報告.pdf", sha256: String(repeating: "ab", count: 32), size: 3)])
        let attestationEvents = AttestationEvents(store: w.store, clock: w.clock, random: SystemRandomSource())
        try await attestationEvents.added(attestation)
        attestation.revokedAt = Date(); attestation.revokedBy = "cli:root"; attestation.revocationReason = "withdrawn"
        try await attestationEvents.revoked(attestation)
        // Cases (the detection service's grouping, menshen case …): Incident Finding 2005, activities 1 Create, 2 Update, 3 Close.
        let incident = CaseRecord(id: "5e1f0c2a-0000-4000-8000-00000000c0de", title: "Password spraying from one source — source 198.51.100.23",
                                  severityID: 4, groupKey: "source:198.51.100.23/TA0006", findingUIDs: ["0a1b2c3d-4e5f-8a7b-8c9d-0e1f2a3b4c5d"],
                                  createdAt: Date(), lastFindingAt: Date())
        try await w.store.createCase(incident)
        let opened = try CaseEvents.event(incident, change: .opened, actor: "menshen detections", findingUID: incident.findingUIDs[0], id: UUID(), at: Date())
        let grown = try await w.store.attachFinding(caseID: incident.id, findingUID: "1a1b2c3d-4e5f-8a7b-8c9d-0e1f2a3b4c5d", severityID: 5,
                                                    findingTime: Date(), at: Date())
        let attached = try CaseEvents.event(grown, change: .findingAttached, actor: "menshen detections", findingUID: grown.findingUIDs[1],
                                            id: UUID(), at: Date())
        _ = try await w.store.appendEvents([opened, attached], hasher: EventChain.hasher)
        // A detection finding about one event on a known device: Detection Finding 2004 with `evidences[].device`.
        let onDevice = DetectionFinding(metadata: RuleMetadata(file: "t.yml", id: "2428a622-cf6c-456d-b81a-111debfcafcc", name: nil,
                                                               title: "Access attempt from an unmanaged device", status: .experimental,
                                                               level: .medium, tags: ["attack.initial-access", "attack.t1133"], description: nil),
                                        user: "amy", sourceIP: "203.0.113.7", device: "d-0123456789abcdef", evidence: ["e1"],
                                        firstTime: Date(), lastTime: Date(), message: "unmanaged device")
        _ = try await w.store.appendEvents([try ResponseEvents.finding(onDevice, id: UUID(), writtenAt: Date())], hasher: EventChain.hasher)
        // Playbook steps (the detection service): a Remediation Activity 7001 for every action; quarantine_device also
        // skipped (the finding names no device) and rehearsed (dry run); and the device quarantined by a playbook through
        // the shared DeviceLifecycle: 3004 Suspend with a System actor, and 2003.
        let actions: [PlaybookAction] = [.revokeSessions(.finding), .disableUser(.evidence), .requireStepUp(seconds: 3600, .finding),
                                         .raiseRisk(points: 10, .finding), .quarantineDevice,
                                         .webhook(try WebhookTarget(url: "https://soc.bank.example/hooks/menshen")), .log]
        var remediations: [NewEvent] = []
        for action in actions {
            remediations.append(try ResponseEvents.action(PlaybookStep(playbook: "contain", action: action), finding: onDevice,
                                                          outcome: .init(success: true, detail: "done", users: ["amy"]), id: UUID(), at: Date()))
        }
        remediations.append(try ResponseEvents.action(PlaybookStep(playbook: "contain", action: .quarantineDevice), finding: onDevice,
                                                      outcome: .init(success: true, detail: "the finding names no device", facts: ["skipped": true],
                                                                     status: (99, "Skipped")), id: UUID(), at: Date()))
        remediations.append(try ResponseEvents.action(PlaybookStep(playbook: "contain", action: .quarantineDevice, dryRun: true), finding: onDevice,
                                                      outcome: .init(success: true, detail: "dry run: would quarantine device d-0123456789abcdef",
                                                                     users: ["amy"], facts: ["dry_run": true, "device": "d-0123456789abcdef"]),
                                                      id: UUID(), at: Date()))
        _ = try await w.store.appendEvents(remediations, hasher: EventChain.hasher)
        var phone = DeviceRecord(id: "phone-amy", ownerID: "amy", displayName: "Amy 的手機", deviceClass: .byod, platform: "android",
                                 hardwareBound: false, enrolledAt: Date())
        phone.compliant = true; phone.complianceReasons = []
        try await w.store.createDevice(phone)
        let quarantined = try await DeviceLifecycle(store: w.store, clock: w.clock, random: SystemRandomSource())
            .quarantine("phone-amy", reason: "playbook contain: Access attempt from an unmanaged device", by: .playbook("contain"))
        guard case .quarantined = quarantined else { Issue.record("the phone was not quarantined: \(quarantined)"); return }
        let cases = CaseService(store: w.store, clock: w.clock, random: SystemRandomSource())
        try await cases.assign(id: incident.id, owner: "analyst 林小美", actor: "cli:root")
        try await cases.addNote(id: incident.id, text: "來源為外部 VPN。\nBlocked at the firewall.", actor: "cli:root")
        try await cases.setStatus(id: incident.id, status: .inProgress, verdict: nil, reopen: false, actor: "cli:root")
        try await cases.setStatus(id: incident.id, status: .resolved, verdict: .truePositive, reopen: false, actor: "cli:root")
        try await cases.setStatus(id: incident.id, status: .closed, verdict: .falsePositive, reopen: false, actor: "cli:root")
        try await cases.setStatus(id: incident.id, status: .onHold, verdict: nil, reopen: true, actor: "cli:root")
        try await cases.assign(id: incident.id, owner: nil, actor: "cli:root")

        let events = try await w.store.events(after: 0, limit: 10_000)
        guard let (status, report) = try await Self.validate(events.map(\.event.payloadJSON)) else { return }
        for failure in report.failures {
            Issue.record("event \(failure.line) (class \(failure.class_uid.map(String.init) ?? "?")): \(failure.errors.joined(separator: "; "))")
        }
        #expect(status == 0)
        #expect(report.checked == events.count)
        let incidents = events.filter { $0.event.classUID == 2005 }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.event.payloadJSON.utf8)) as? [String: Any]
        }
        #expect(incidents.compactMap { $0["activity_id"] as? Int } == [1, 2, 2, 2, 2, 2, 3, 2, 2], "opened, attached, assigned, note, status ×2, closed, reopened, unassigned")
        #expect(incidents.allSatisfy { ($0["type_uid"] as? Int) == 200_500 + (($0["activity_id"] as? Int) ?? -1) })
        #expect(incidents.compactMap { $0["verdict_id"] as? Int } == [2, 1], "the verdict while resolved, then closed")
        #expect((incidents[2]["assignee"] as? [String: Any])?["name"] as? String == "analyst 林小美")
        let quarantineSteps = events.filter { $0.event.classUID == 7001 }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.event.payloadJSON.utf8)) as? [String: Any]
        }.filter { ($0["unmapped"] as? [String: Any])?["action"] as? String == "quarantine_device" }
        #expect(quarantineSteps.map { $0["activity_id"] as? Int } == [1, 1, 1], "quarantine_device is 1 Isolate")
        #expect(quarantineSteps.map { $0["status_id"] as? Int } == [1, 99, 99], "done, skipped, dry run")
        for uid in ["3001", "3002", "6001", "2004", "5001", "2003", "3004", "2005", "7001"] {
            #expect((report.classes[uid] ?? 0) > 0, "class \(uid) was produced and checked")
        }
    }

    @Test("the validator is not vacuous: each broken event is refused")
    func brokenEventsRefused() async throws {
        let good = #"{"class_uid":3001,"category_uid":3,"activity_id":1,"type_uid":300101,"severity_id":1,"time":1795000000000,"metadata":{"version":"1.8.0","product":{"name":"Menshen"}},"user":{"uid":"amy"}}"#
        let broken = [
            good.replacingOccurrences(of: #""type_uid":300101"#, with: #""type_uid":300102"#),          // arithmetic
            good.replacingOccurrences(of: #","product":{"name":"Menshen"}"#, with: ""),                 // metadata.product required
            good.replacingOccurrences(of: #""severity_id":1"#, with: #""severity_id":42"#),             // not an enum value
            good.replacingOccurrences(of: #""version":"1.8.0""#, with: #""version":"1.1.0""#),         // another schema version
            good.replacingOccurrences(of: #""category_uid":3"#, with: #""category_uid":2"#),            // category of another class
            good.replacingOccurrences(of: #""class_uid":3001"#, with: #""class_uid":3999"#),            // no such class
            #"{"class_uid":3001,"activity_id":99,"activity_name":"Enrolment link issued","user":{"uid":"amy"}}"#,   // the shape the demo once wrote
            "not json",
        ]
        guard let (okStatus, okReport) = try await Self.validate([good]) else { return }
        #expect(okStatus == 0 && okReport.failures.isEmpty, "the well-formed event passes: \(okReport.failures.map(\.errors))")
        guard let (status, report) = try await Self.validate(broken) else { return }
        #expect(status == 1)
        #expect(Set(report.failures.map(\.line)) == Set(1...broken.count), "every broken line is reported: \(report.failures.map(\.line))")
    }
}
