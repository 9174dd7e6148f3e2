import Foundation
import Logging
import MenshenCore
import MenshenPolicyEngine
@testable import MenshenServer
import MenshenStorage
import MenshenVisibility
import Testing

/// The `quarantine_device` playbook step in the detection service on a real
/// SQLite file, fed by the real gateway decision producer (`DecisionLog`, as
/// the `PolicyGate` records each request): amy's own phone (BYOD, unmanaged)
/// reaching an application is a T1133 finding naming the device, and the step
/// quarantines it exactly as `menshen device quarantine` does (the shared
/// `DeviceLifecycle`): the device non-compliant with the reason kept, its
/// owner's sessions ended, a 3004 Suspend with the playbook as actor, a 2003
/// compliance finding, and the step's own 7001 Isolate — all valid OCSF 1.8.0.
/// A dry run changes nothing; a finding naming no device is a recorded skip;
/// an unknown device fails with the reason; a device already quarantined is a
/// recorded no-op; a held step carries its device through approval.
@Suite("Playbook step quarantine_device (real SQLite)", .serialized)
struct PlaybookQuarantineTests {
    typealias World = DetectionServiceTests.World

    /// What the device binding reports for an enrolled BYOD device with a fresh, compliant posture.
    static let byod = AccessRequest.Device(enrolled: true, managed: false, compliant: true, hardwareBound: false, external: true,
                                           postureAgeSeconds: 60, maxVulnerabilitySeverity: 0)

    /// Enrols amy's own phone, compliant after a posture report.
    @discardableResult
    static func enrolPhone(_ w: World) async throws -> DeviceRecord {
        var d = DeviceRecord(id: "phone-amy", ownerID: "amy", displayName: "Amy 的手機", deviceClass: .byod, platform: "android",
                             hardwareBound: false, enrolledAt: Date())
        d.compliant = true; d.complianceReasons = []; d.lastPostureAt = Date()
        try await w.store.createDevice(d)
        return try #require(try await w.store.device("phone-amy"))
    }

    /// amy's request through the gateway as the policy gate records it: from `device` (its client certificate's device;
    /// nil: none presented), with the device facts the binding found.
    static func access(_ w: World, device: String?, facts: AccessRequest.Device?, from ip: String, classification: String = "internal") async {
        let log = DecisionLog(store: w.store, clock: SystemClock())
        var trail = DecisionTrail(requestID: UUID().uuidString, time: Date(), mode: .proxy, method: "GET", host: "branch-portal.bank.example",
                                  path: "/accounts", sourceIP: ip, outcome: .allow)
        trail.application = "branch-portal"
        trail.user = "amy"
        trail.sessionHash = String(repeating: "a", count: 64)
        trail.deviceID = device
        trail.access = AccessRequest(
            principal: .init(id: "amy", groups: ["staff"], roles: [:]),
            session: .init(levelOfAssurance: 2, amr: ["pwd", "otp"], factorAgeSeconds: 60, ageSeconds: 120),
            device: facts,
            context: .init(time: Date(), sourceIP: ip, networkZone: "internet", country: "", method: "GET", path: "/accounts"),
            resource: .init(applicationID: "branch-portal", classification: classification), isExport: false)
        log.record(trail)
        await log.flush()
    }

    /// Where every case starts: `users`, amy's enrolled phone (returned as stored), a session per user (in the order
    /// of `users`) and the detection service running `playbooks` (cancel the task at the end).
    static func setUp(users: [String] = ["amy"], playbooks: String) async throws
        -> (w: World, phone: DeviceRecord, sessions: [String], task: Task<Void, Never>) {
        let w = try World()
        try await w.users(users)
        let phone = try await enrolPhone(w)
        var sessions: [String] = []
        for user in users { sessions.append(try await w.session(user)) }
        return (w, phone, sessions, try start(w, playbooks))
    }

    static func start(_ w: World, _ yaml: String) throws -> Task<Void, Never> {
        let service = DetectionService(store: w.store, playbooks: try PlaybookState(file: try w.playbooks(yaml)), clock: SystemClock(),
                                       logger: Logger(label: "test.quarantine"), reloadInterval: .seconds(3600), pollInterval: .milliseconds(50),
                                       startAfter: 0, approvalTimeout: .seconds(3600), approvalPoll: .milliseconds(200))
        return Task { try? await service.run() }
    }

    static func actions(_ events: [StoredEvent]) -> [[String: Any]] {
        events.filter { $0.event.classUID == 7001 }.map(DetectionServiceTests.payload)
            .filter { (($0["unmapped"] as? [String: Any])?["action"] as? String) == "quarantine_device" }
    }

    static func unmapped(_ a: [String: Any]) -> [String: Any] { a["unmapped"] as? [String: Any] ?? [:] }

    static func validate(_ events: [StoredEvent], classes: Set<Int>) async throws {
        guard let (status, report) = try await OCSFConformanceTests.validate(events.filter { classes.contains($0.event.classUID) }
            .map(\.event.payloadJSON)) else { return }
        for failure in report.failures {
            Issue.record("event \(failure.line) (class \(failure.class_uid.map(String.init) ?? "?")): \(failure.errors.joined(separator: "; "))")
        }
        #expect(status == 0)
    }

    @Test("an access from an unmanaged device: the step quarantines the finding's device as `menshen device quarantine` does — reason kept, owner's sessions ended, 3004 Suspend by the playbook, 2003, 7001 Isolate; a second finding on it is a recorded no-op; the events validate")
    func quarantines() async throws {
        let (w, before, sessions, task) = try await Self.setUp(users: ["amy", "bo"], playbooks: """
            playbooks:
              - name: contain-unmanaged
                match: {rules: [menshen_unmanaged_device_access]}
                actions:
                  - quarantine_device
            """)
        defer { task.cancel() }
        let amy = sessions[0], bo = sessions[1]
        await Self.access(w, device: "phone-amy", facts: Self.byod, from: "203.0.113.8")
        let events = try await w.waitFor("the quarantine step") { Self.actions($0).count >= 1 }

        let finding = try #require(events.first { $0.event.classUID == 2004 }.map(DetectionServiceTests.payload))
        let info = try #require(finding["finding_info"] as? [String: Any])
        let findingUID = try #require(info["uid"] as? String)
        #expect(info["title"] as? String == "Access attempt from an unmanaged device")

        // The device: quarantined, not compliant, the playbook and finding kept as the reason; one compare-and-set.
        let reason = "playbook contain-unmanaged: Access attempt from an unmanaged device (finding \(findingUID))"
        let after = try #require(try await w.store.device("phone-amy"))
        #expect(after.state == .quarantined && !after.compliant)
        #expect(after.complianceReasons == ["quarantined: " + reason])
        #expect(after.version == before.version + 1)
        // The owner's sessions ended; another user's did not.
        #expect(try await w.sessions.resolve(token: amy) == nil, "amy's session is revoked")
        #expect(try await w.sessions.resolve(token: bo) != nil, "bo owns no device here")

        // The step's event: Remediation Activity 1 Isolate, naming the device and its owner.
        let step = try #require(Self.actions(events).first)
        #expect(step["activity_id"] as? Int == 1 && step["type_uid"] as? Int == 700_101 && step["status_id"] as? Int == 1)
        #expect(Self.unmapped(step)["device"] as? String == "phone-amy")
        #expect(Self.unmapped(step)["users"] as? [String] == ["amy"])
        #expect(Self.unmapped(step)["sessions_revoked"] as? Int == 1)
        #expect(step["status_detail"] as? String == "device phone-amy quarantined; 1 session(s) of its owner amy ended")
        #expect(step["command_uid"] as? String == "\(findingUID)/contain-unmanaged")

        // The device's own events, as the CLI writes them, with the playbook as a System actor.
        let suspends = events.filter { $0.event.classUID == 3004 }.map(DetectionServiceTests.payload)
        try #require(suspends.count == 1)
        #expect(suspends[0]["activity_id"] as? Int == 12 && suspends[0]["comment"] as? String == reason)
        let actor = try #require(suspends[0]["actor"] as? [String: Any])
        #expect(actor["app_name"] as? String == "menshen detections")
        let user = try #require(actor["user"] as? [String: Any])
        #expect(user["name"] as? String == "playbook:contain-unmanaged" && user["type_id"] as? Int == 3 && user["type"] as? String == "System")
        #expect(((suspends[0]["unmapped"] as? [String: Any])?["device"] as? [String: Any])?["sessions_revoked"] as? Int == 1)
        let compliance = events.filter { $0.event.classUID == 2003 }.map(DetectionServiceTests.payload)
        try #require(compliance.count == 1, "a compliant device quarantined is a compliance finding")
        #expect(compliance[0]["activity_id"] as? Int == 1)
        #expect((compliance[0]["finding_info"] as? [String: Any])?["uid"] as? String == "device-compliance:phone-amy")
        #expect((compliance[0]["compliance"] as? [String: Any])?["requirements"] as? [String] == ["quarantined: " + reason])

        // Another finding on the same device (from elsewhere): already quarantined, nothing changes, and the event says so.
        await Self.access(w, device: "phone-amy", facts: Self.byod, from: "198.51.100.77")
        let later = try await w.waitFor("the second step") { Self.actions($0).count >= 2 }
        let again = try #require(Self.actions(later).last)
        #expect(again["status_id"] as? Int == 1 && Self.unmapped(again)["already_quarantined"] as? Bool == true)
        #expect(again["status_detail"] as? String == "device phone-amy was already quarantined; nothing was changed")
        #expect(try await w.store.device("phone-amy") == after, "nothing changed")
        try await Task.sleep(for: .milliseconds(300))
        let all = try await w.store.events(after: 0, limit: 10_000)
        #expect(all.filter { $0.event.classUID == 3004 }.count == 1 && all.filter { $0.event.classUID == 2003 }.count == 1)

        try await Self.validate(all, classes: [2004, 7001, 3004, 2003])
    }

    @Test("dry_run: the step says which device it would quarantine and whose sessions would end, and nothing changes")
    func dryRun() async throws {
        let (w, before, sessions, task) = try await Self.setUp(playbooks: """
            playbooks:
              - name: rehearse-byod
                dry_run: true
                match: {techniques: [T1133]}
                actions: [quarantine_device]
            """)
        defer { task.cancel() }
        let amy = sessions[0]
        await Self.access(w, device: "phone-amy", facts: Self.byod, from: "203.0.113.8")
        let events = try await w.waitFor("the dry-run step") { Self.actions($0).count >= 1 }
        let step = try #require(Self.actions(events).first)
        #expect(step["status_id"] as? Int == 99 && step["status"] as? String == "Dry run")
        #expect(Self.unmapped(step)["dry_run"] as? Bool == true && Self.unmapped(step)["device"] as? String == "phone-amy")
        #expect(Self.unmapped(step)["users"] as? [String] == ["amy"])
        #expect(step["status_detail"] as? String
                == "dry run: would quarantine device phone-amy and end the sessions of its owner amy; nothing was done")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await w.store.device("phone-amy") == before, "the device is untouched")
        #expect(try await w.sessions.resolve(token: amy) != nil)
        let all = try await w.store.events(after: 0, limit: 10_000)
        #expect(!all.contains { [3004, 2003].contains($0.event.classUID) }, "no device event")
        try await Self.validate(all, classes: [7001])
    }

    @Test("a finding naming no device is a recorded skip; an unknown or malformed device id fails with the reason; nothing changes")
    func noDeviceAndUnknownDevice() async throws {
        let (w, before, sessions, task) = try await Self.setUp(playbooks: """
            playbooks:
              - name: contain-unmanaged
                match: {techniques: [T1133]}
                actions: [quarantine_device]
            """)
        defer { task.cancel() }
        let amy = sessions[0]
        // No client certificate on a confidential application: a finding about amy and no device.
        await Self.access(w, device: nil, facts: nil, from: "203.0.113.8", classification: "confidential")
        // A device id the inventory does not hold, and one that is not an id at all (one source each: the rule
        // suppresses repeats per user and source).
        await Self.access(w, device: "ghost-9", facts: Self.byod, from: "203.0.113.9")
        await Self.access(w, device: "../etc/passwd", facts: Self.byod, from: "203.0.113.10")
        let events = try await w.waitFor("three steps") { Self.actions($0).count >= 3 }
        let steps = Self.actions(events)
        try #require(steps.count == 3)

        let skipped = steps[0]
        #expect(skipped["status_id"] as? Int == 99 && skipped["status"] as? String == "Skipped")
        #expect(skipped["status_detail"] as? String == "the finding names no device")
        #expect(Self.unmapped(skipped)["skipped"] as? Bool == true && Self.unmapped(skipped)["device"] == nil)

        let unknown = steps[1]
        #expect(unknown["status_id"] as? Int == 2 && unknown["status"] as? String == "Failure")
        #expect(unknown["status_detail"] as? String == "no device ghost-9 in the inventory; nothing was done")
        #expect(Self.unmapped(unknown)["device"] as? String == "ghost-9")

        let malformed = steps[2]
        #expect(malformed["status_id"] as? Int == 2)
        #expect(malformed["status_detail"] as? String
                == "\"../etc/passwd\" is not a device id (1–128 characters from A–Z a–z 0–9 . _ @ -)")

        try await Task.sleep(for: .milliseconds(300))
        #expect(try await w.store.device("phone-amy") == before)
        #expect(try await w.store.device("ghost-9") == nil)
        #expect(try await w.sessions.resolve(token: amy) != nil, "nobody's sessions end")
        let all = try await w.store.events(after: 0, limit: 10_000)
        #expect(!all.contains { [3004, 2003].contains($0.event.classUID) })
        try await Self.validate(all, classes: [7001])
    }

    @Test("approval: required holds the step with its device; approved with `menshen playbook approve`, the server quarantines that device; a finding naming no device is skipped, not held")
    func heldThenApproved() async throws {
        let (w, _, sessions, task) = try await Self.setUp(playbooks: """
            playbooks:
              - name: careful-byod
                match: {techniques: [T1133]}
                actions:
                  - {type: quarantine_device, approval: required}
            """)
        defer { task.cancel() }
        let amy = sessions[0]
        await Self.access(w, device: "phone-amy", facts: Self.byod, from: "203.0.113.8")
        await Self.access(w, device: nil, facts: nil, from: "203.0.113.9", classification: "restricted")
        let events = try await w.waitFor("the held step and the skip") { Self.actions($0).count >= 2 }
        let steps = Self.actions(events)
        let pending = try #require(steps.first { $0["status"] as? String == "Pending approval" })
        #expect(Self.unmapped(pending)["users"] as? [String] == ["amy"])
        #expect(steps.contains { $0["status"] as? String == "Skipped" }, "no device: nothing to approve")
        let run = try #require((Self.unmapped(pending)["approval"] as? [String: Any])?["run"] as? String)
        let held = try await w.store.approvals(in: [.pending], limit: 10)
        #expect(held.map(\.id) == [run], "only the step with a device waits")
        #expect(held.first?.summary.contains("would quarantine device phone-amy") == true, "\(held.first?.summary ?? "")")
        #expect(try await w.store.device("phone-amy")?.state == .active, "nothing is done before approval")
        #expect(try await w.sessions.resolve(token: amy) != nil)

        let approved = try await Harness.runAsync(["playbook", "approve", run, "--operator", "alice@soc", "--data", w.dir.path])
        #expect(approved.status == 0, "\(approved.err)")
        let after = try await w.waitFor("the approved quarantine") { events in
            Self.actions(events).contains { $0["status_id"] as? Int == 1 && $0["activity_id"] as? Int == 1 }
        }
        let decision = try #require(Self.actions(after).first { $0["activity_name"] as? String == "Approve" })
        #expect(decision["activity_id"] as? Int == 99 && (decision["message"] as? String)?.contains("alice@soc") == true)
        let done = try #require(Self.actions(after).first { $0["status_id"] as? Int == 1 && $0["activity_id"] as? Int == 1 })
        #expect(done["status_detail"] as? String == "approved by alice@soc: device phone-amy quarantined; 1 session(s) of its owner amy ended")
        #expect((Self.unmapped(done)["approval"] as? [String: Any])?["by"] as? String == "alice@soc")
        let device = try #require(try await w.store.device("phone-amy"))
        #expect(device.state == .quarantined && device.complianceReasons.first?.hasPrefix("quarantined: playbook careful-byod: ") == true)
        #expect(try await w.sessions.resolve(token: amy) == nil)
        let suspend = try #require(after.first { $0.event.classUID == 3004 }.map(DetectionServiceTests.payload))
        #expect(((suspend["actor"] as? [String: Any])?["user"] as? [String: Any])?["name"] as? String == "playbook:careful-byod")
        try await Self.validate(after, classes: [7001, 3004, 2003])
    }

    @Test("a held quarantine keeps its device through the store's text; one without a device is refused when read back")
    func heldStepCarriesTheDevice() throws {
        let held = HeldStep(playbook: "careful-byod", action: .quarantineDevice, users: ["amy"], device: "phone-amy", findingUID: "f-1",
                            rule: "r", title: "Access attempt from an unmanaged device", level: .medium)
        let back = try HeldStep.decode(try held.encode())
        #expect(back.action == .quarantineDevice && back.device == "phone-amy" && back.users == ["amy"] && back.findingUID == "f-1")
        var lost = held
        lost.device = nil
        #expect(throws: (any Error).self) { _ = try HeldStep.decode(try lost.encode()) }
        // Other steps carry no device.
        let revoke = HeldStep(playbook: "p", action: .revokeSessions(.finding), users: ["amy"], device: "phone-amy", findingUID: "f-2",
                              rule: "r", title: "t", level: .high)
        #expect(try HeldStep.decode(try revoke.encode()).device == nil)
    }
}
