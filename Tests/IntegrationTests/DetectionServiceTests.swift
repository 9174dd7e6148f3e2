#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// The detection service on a real SQLite file, fed by the real sign-in event
/// producer (`IdentityEvents`, as `IdentityService.signIn` calls it): findings
/// are written as OCSF 2004 events that validate, playbooks act on them
/// (sessions revoked, an account disabled, a log line, a webhook that fails
/// and says so), normal traffic fires nothing, and a malformed playbook file
/// is refused while the previous set keeps acting.
@Suite("Detections and playbooks in the server (real SQLite)", .serialized)
struct DetectionServiceTests {
    final class World: Sendable {
        let dir: URL
        let store: SQLiteStore
        let identity: IdentityEvents
        let sessions: SessionManager

        init() throws {
            dir = try Harness.tempDir()
            store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
            identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
            sessions = SessionManager(store: store, clock: SystemClock(), random: SystemRandomSource())
        }

        func users(_ ids: [String]) async throws {
            for id in ids { try await store.createUser(UserRecord(id: UserID(id), displayName: id, createdAt: Date())) }
        }

        func session(_ user: String) async throws -> String {
            try await sessions.issue(SessionGrant(userID: UserID(user), levelOfAssurance: 2, amr: ["pwd", "otp"], aal: nil,
                                                  phishingResistant: false)).token
        }

        /// A failed password step, exactly as `IdentityService.signIn` records it.
        func failedPassword(_ name: String, from ip: String, known: Bool) async throws {
            try await identity.authentication(.logon, user: known ? UserID(name) : nil, userName: name, success: false,
                                              detail: known ? "wrong password" : "unknown user", source: ip, factors: ["pwd"])
        }

        /// A completed sign-in with password and TOTP (each sign-in makes a new session).
        func signIn(_ name: String, from ip: String) async throws {
            try await identity.authentication(.logon, user: UserID(name), userName: name, success: true, detail: "password and totp",
                                              source: ip, factors: ["pwd", "otp"], loa: 2,
                                              sessionHash: SecretHash.sha256Hex(UUID().uuidString))
        }

        func playbooks(_ yaml: String) throws -> String {
            let file = dir.appendingPathComponent("playbooks.yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            return file.path
        }

        func start(_ playbooks: PlaybookState, after start: Int64? = 0) -> Task<Void, Never> {
            let service = DetectionService(store: store, playbooks: playbooks, clock: SystemClock(), logger: Logger(label: "test.detections"),
                                           reloadInterval: .seconds(3600), pollInterval: .milliseconds(50),
                                           webhookBackoff: .milliseconds(50), startAfter: start)
            return Task { try? await service.run() }
        }

        /// Polls the log until `done` holds (at most 60 s: under the parallel suite the spray, its finding and the
        /// webhook's two attempts took more than 15 s); returns the events then.
        func waitFor(_ what: String, _ done: @Sendable ([StoredEvent]) -> Bool) async throws -> [StoredEvent] {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let events = try await store.events(after: 0, limit: 10_000)
                if done(events) { return events }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for \(what)")
            return try await store.events(after: 0, limit: 10_000)
        }

        deinit { try? FileManager.default.removeItem(at: dir) }
    }

    static func payload(_ e: StoredEvent) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(e.event.payloadJSON.utf8))) as? [String: Any] ?? [:]
    }

    static func unmapped(_ e: StoredEvent) -> [String: Any] { payload(e)["unmapped"] as? [String: Any] ?? [:] }

    static let sprayRuleID = "7557e31f-73fd-45ef-bcf2-90d0b3d083bb"

    @Test("normal sign-ins fire nothing; a spray through the sign-in producer becomes one 2004 finding (T1110.003, its ten evidence uids) and every playbook action runs and is recorded; all validate against OCSF 1.8.0")
    func sprayToActions() async throws {
        let w = try World()
        try await w.users(["amy", "bo", "cy", "dee", "eve"])
        let amy = try await w.session("amy"), bo = try await w.session("bo"), eve = try await w.session("eve")
        let file = try w.playbooks("""
            playbooks:
              - name: contain-spraying
                match: {rules: [menshen_password_spraying], techniques: [T1110.003], min_severity: high}
                actions:
                  - {type: revoke_sessions, users: evidence}
                  - log
                  - {type: webhook, url: "http://127.0.0.1:9/unreachable", timeout_seconds: 1, retries: 1}
              - name: lock-last-target
                match: {techniques: [T1110]}
                actions:
                  - disable_user
            """)
        let task = w.start(try PlaybookState(file: file))
        defer { task.cancel() }

        // Normal traffic: sign-ins from the office and home, and a few single mistypes.
        for (i, user) in ["amy", "bo", "cy", "dee", "eve", "amy", "bo", "cy"].enumerated() {
            try await w.signIn(user, from: "10.20.0.\(i + 1)")
        }
        try await w.failedPassword("cy", from: "10.20.0.9", known: true)
        try await w.failedPassword("bo", from: "10.20.0.2", known: true)
        try await w.signIn("bo", from: "10.20.0.2")
        let normal = try await w.store.events(after: 0, limit: 10_000).count

        // The spray: one source, twelve names (existing and not), one wrong password each; the tenth name is dee.
        let names = ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "dee", "eve", "guest"]
        for name in names {
            try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo", "dee", "eve"].contains(name))
        }
        let events = try await w.waitFor("the webhook's failure to be recorded") { events in
            events.contains { $0.event.classUID == 7001 && (Self.unmapped($0)["action"] as? String) == "webhook" }
        }
        let spray = events.dropFirst(normal).filter { $0.event.classUID == 3002 }
        let findings = events.filter { $0.event.classUID == 2004 }
        try #require(findings.count == 1, "exactly one finding: \(findings.map(\.event.payloadJSON))")
        let finding = Self.payload(findings[0])
        let info = try #require(finding["finding_info"] as? [String: Any])
        #expect((info["analytic"] as? [String: Any])?["uid"] as? String == Self.sprayRuleID)
        let attack = try #require((info["attacks"] as? [[String: Any]])?.first)
        #expect((attack["sub_technique"] as? [String: Any])?["uid"] as? String == "T1110.003")
        #expect((attack["technique"] as? [String: Any])?["uid"] as? String == "T1110")
        let related = Set((info["related_events"] as? [[String: Any]] ?? []).compactMap { $0["uid"] as? String })
        #expect(related == Set(spray.prefix(10).map { $0.event.id.uuidString.lowercased() }), "the evidence is the ten failures that made the spray")
        #expect((finding["metadata"] as? [String: Any])?["log_name"] as? String == ResponseEvents.logName)

        // The actions: sessions of the sprayed accounts that exist (amy, bo, dee; eve came after the finding) revoked,
        // dee (the last user in the group) disabled, a log line, and the webhook's failure recorded.
        let actions = events.filter { $0.event.classUID == 7001 }
        let byAction = Dictionary(grouping: actions) { Self.unmapped($0)["action"] as? String ?? "" }
        let revoke = try #require(byAction["revoke_sessions"]?.first)
        #expect(Set(Self.unmapped(revoke)["users"] as? [String] ?? []) == ["amy", "bo", "dee"])
        #expect(Self.payload(revoke)["activity_id"] as? Int == 2 && Self.payload(revoke)["status_id"] as? Int == 1)
        #expect(Self.unmapped(revoke)["sessions_revoked"] as? Int == 2)
        #expect(try await w.sessions.resolve(token: amy) == nil, "amy's session is revoked")
        #expect(try await w.sessions.resolve(token: bo) == nil, "bo's session is revoked")
        #expect(try await w.sessions.resolve(token: eve) != nil, "eve was not in the finding's evidence")
        let disable = try #require(byAction["disable_user"]?.first)
        #expect(Self.unmapped(disable)["users"] as? [String] == ["dee"])
        #expect(try await w.store.user("dee")?.disabled == true)
        let disables = try await w.store.events(after: 0, limit: 10_000).filter {
            $0.event.classUID == 3001 && Self.payload($0)["activity_id"] as? Int == 5 && $0.event.userID == "dee"
        }
        #expect(disables.count == 1, "the account change is audited like `menshen user disable`")
        if let d = disables.first { #expect((Self.payload(d)["actor"] as? [String: Any])?["user"] as? [String: String] == ["name": "playbook lock-last-target"]) }
        #expect(try await w.store.user("amy")?.disabled == false)
        #expect(byAction["log"]?.count == 1)
        let webhook = try #require(byAction["webhook"]?.first)
        #expect(Self.payload(webhook)["status_id"] as? Int == 2)
        #expect(Self.unmapped(webhook)["attempts"] as? Int == 2, "one attempt and one retry")
        for a in actions {
            #expect(Self.payload(a)["command_uid"] as? String == "\(info["uid"] as? String ?? "?")/\(Self.unmapped(a)["playbook"] as? String ?? "?")")
        }

        // Nothing more: the service's own events are not detected upon.
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await w.store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 2004 }.count == 1)

        // OCSF 1.8.0: the finding and every action event.
        guard let (status, report) = try await OCSFConformanceTests.validate((findings + actions).map(\.event.payloadJSON)) else { return }
        for failure in report.failures {
            Issue.record("event \(failure.line) (class \(failure.class_uid.map(String.init) ?? "?")): \(failure.errors.joined(separator: "; "))")
        }
        #expect(status == 0)
        #expect(report.classes["2004"] == 1 && report.classes["7001"] == 4)
    }

    @Test("after a restart detection resumes from its saved cursor: a spray written while it was stopped is still found")
    func resumesFromCursor() async throws {
        let w = try World()
        try await w.users(["amy", "bo"])
        let state = try PlaybookState(file: try w.playbooks("playbooks:\n  - name: note-spraying\n    match: {techniques: [T1110]}\n    actions: [log]\n"))
        try await w.signIn("amy", from: "10.20.0.1")   // history before the first start: not looked at (the head is the start)
        let first = w.start(state, after: nil)
        try await w.signIn("bo", from: "10.20.0.2")
        let seen = try await w.store.events(after: 0, limit: 10_000).last?.sequence ?? 0
        let deadline = Date().addingTimeInterval(60)
        while try await w.store.cursor(named: DetectionService.cursorName) ?? -1 < seen, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await w.store.cursor(named: DetectionService.cursorName) == seen, "the cursor follows the log")
        first.cancel()
        await first.value

        // Stopped: the spray lands in the log now.
        for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "eve", "dee"] {
            try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo"].contains(name))
        }
        let second = w.start(state, after: nil)
        defer { second.cancel() }
        let events = try await w.waitFor("the finding of the spray written while stopped") { events in
            events.contains { $0.event.classUID == 2004 }
        }
        #expect(events.filter { $0.event.classUID == 2004 }.count == 1)
    }

    @Test("a service stopped while it handles a batch carries the batch out whole: the cursor never passes a spray whose finding and playbook steps (a webhook's outcome among them) were not written")
    func stoppedMidBatch() async throws {
        let playbook = """
            playbooks:
              - name: note-spraying
                match: {techniques: [T1110]}
                actions: [log, log, {type: webhook, url: "http://127.0.0.1:9/hook", timeout_seconds: 1, retries: 0}]
            """
        /// A store whose cursor exists, and a spray written while no service runs (so the next one reads it as one batch).
        func world() async throws -> (World, PlaybookState, Int64) {
            let w = try World()
            try await w.users(["amy", "bo"])
            let state = try PlaybookState(file: try w.playbooks(playbook))
            let idle = w.start(state, after: nil)
            while try await w.store.cursor(named: DetectionService.cursorName) == nil { try await Task.sleep(for: .milliseconds(5)) }
            idle.cancel()
            await idle.value
            for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "eve", "dee"] {
                try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo"].contains(name))
            }
            return (w, state, try #require(try await w.store.events(after: 0, limit: 10_000).last?.sequence))
        }
        // How long a service takes from its start to the spray's batch carried out, here and now.
        let (w0, state0, end0) = try await world()
        let clock = ContinuousClock()
        let began = clock.now
        let probe = w0.start(state0, after: nil)
        while try await w0.store.cursor(named: DetectionService.cursorName) ?? 0 < end0 { try await Task.sleep(for: .milliseconds(1)) }
        let whole = clock.now - began
        probe.cancel()
        await probe.value

        // Stopped at 40 points from its start to twice that: before, during or after the batch.
        var outcomes: [String] = []
        for round in 0..<40 {
            let (w, state, sprayEnd) = try await world()
            let service = w.start(state, after: nil)
            try await Task.sleep(for: whole * (Double(round) * 2 / 40))
            service.cancel()
            await service.value
            let cursor = try await w.store.cursor(named: DetectionService.cursorName) ?? 0
            let events = try await w.store.events(after: sprayEnd, limit: 10_000)
            let finding = events.contains { $0.event.classUID == 2004 }, actions = events.filter { $0.event.classUID == 7001 }.count
            // The case (a row, then its 2005 event) and amy's risk are written by transactions of their own.
            let incident = events.contains { $0.event.classUID == 2005 }
            let risk = try await w.store.riskScore(of: "amy") != nil
            outcomes.append("\(cursor >= sprayEnd ? "past" : "before")/\(finding ? "finding" : "-")/\(actions)/\(incident ? "case" : "-")/\(risk ? "risk" : "-")")
            if cursor >= sprayEnd {
                #expect(finding && actions == 3 && incident && risk,
                        "round \(round): the cursor passed the spray, so its finding, three steps (the webhook's delivered or not), case and risk must be written")
            } else {
                #expect(!finding, "round \(round): a finding was written but the cursor stayed before its batch (it would be found again)")
            }
        }
        // Both outcomes must occur for the rounds to mean anything.
        #expect(outcomes.contains { $0.hasPrefix("past") } && outcomes.contains { $0.hasPrefix("before") }, "\(outcomes), whole batch \(whole)")
    }

    /// A TCP port on 127.0.0.1 that takes connections (the kernel's backlog) and never reads or answers them.
    final class SilentReceiver {
        let port: Int
        private let fd: Int32
        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0, listen(fd, 16) == 0 else { Glibc.close(fd); throw CocoaError(.fileWriteUnknown) }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            port = Int(UInt16(bigEndian: addr.sin_port))
            self.fd = fd
        }
        deinit { Glibc.close(fd) }
    }

    @Test("webhooks under way when the service stops — eight being delivered, one waiting for room, one queued — are cut short at once, and each outcome is written: not delivered, the detections stopped")
    func webhookUnderWayAtStop() async throws {
        let receiver = try SilentReceiver()
        let w = try World()
        try await w.users(["amy", "bo"])
        let step = "{type: webhook, url: \"http://127.0.0.1:\(receiver.port)/hook\", timeout_seconds: 30, retries: 0}"
        let file = try w.playbooks("""
            playbooks:
              - name: ticket-spraying
                match: {techniques: [T1110]}
                actions: [\(Array(repeating: step, count: 10).joined(separator: ", "))]
            """)
        let service = w.start(try PlaybookState(file: file))
        for name in ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "guest", "eve", "dee"] {
            try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo"].contains(name))
        }
        _ = try await w.waitFor("the finding") { events in events.contains { $0.event.classUID == 2004 } }
        try await Task.sleep(for: .milliseconds(500))   // the POST is sent and waits for an answer that never comes (30 s)
        #expect(try await w.store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 7001 }.isEmpty, "still under way")
        let stopping = ContinuousClock.now
        service.cancel()
        await service.value
        // Not a speed figure: a stop that waits for the deliveries takes their 30 s timeout (a service kept past the
        // lease's 7.5 s stop wait), one that cuts them short a fraction of a second.
        let stopped = ContinuousClock.now - stopping
        #expect(stopped < .seconds(15), "the deliveries were cut short, not waited for: the stop took \(stopped)")
        let outcomes = try await w.store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 7001 }
        try #require(outcomes.count == 10, "every webhook's outcome is written before the service has stopped")
        for outcome in outcomes {
            #expect(Self.payload(outcome)["status_id"] as? Int == 2)
            let detail = (Self.payload(outcome)["status_detail"] as? String) ?? (Self.payload(outcome)["message"] as? String) ?? ""
            #expect(detail.contains("the detections stopped on this node before its delivery"), "cut short, not timed out: \(outcome.event.payloadJSON)")
        }
    }

    @Test("a malformed playbook file is refused on reload with file, playbook and field; the previous set stays and still acts")
    func malformedReloadKeepsPreviousSet() async throws {
        let w = try World()
        try await w.users(["amy"])
        let amy = try await w.session("amy")
        let file = try w.playbooks("""
            playbooks:
              - name: contain-spraying
                match: {techniques: [T1110.003]}
                actions: [{type: revoke_sessions, users: evidence}]
            """)
        let state = try PlaybookState(file: file)
        #expect(state.reloadIfChanged() == .unchanged)
        _ = try w.playbooks("""
            playbooks:
              - name: contain-spraying
                match: {techniques: [T1110.003]}
                actions: [{type: webhook, url: "http://soc.bank.example/hook"}]
            """)
        guard case .refused(let why) = state.reloadIfChanged() else { Issue.record("a malformed file was accepted"); return }
        #expect(why == "\(file): playbook \"contain-spraying\": actions[0].url: plain http is only allowed to a loopback host (localhost, 127.0.0.0/8, ::1); use https")
        #expect(state.set.playbooks.first?.actions == [.revokeSessions(.evidence)], "the previous set stays")
        _ = try w.playbooks("playbooks:\n  - name: x\n    match: {min_severity: low\n")
        guard case .refused(let yamlError) = state.reloadIfChanged() else { Issue.record("broken YAML was accepted"); return }
        #expect(yamlError.hasPrefix("\(file): not valid YAML: line "), "\(yamlError)")

        // The running set still acts.
        let task = w.start(state)
        defer { task.cancel() }
        for i in 0..<10 { try await w.failedPassword(i == 0 ? "amy" : "user\(i)", from: "203.0.113.50", known: i == 0) }
        _ = try await w.waitFor("the revocation") { events in events.contains { $0.event.classUID == 7001 } }
        #expect(try await w.sessions.resolve(token: amy) == nil)

        // A good file is taken on the next check.
        _ = try w.playbooks("playbooks:\n  - name: only-log\n    match: {min_severity: low}\n    actions: [log]\n")
        #expect(state.reloadIfChanged() == .reloaded(playbooks: 1))
        #expect(state.set.playbooks.map(\.name) == ["only-log"])
    }

    @Test("the server refuses to start on a malformed playbook file, saying where the problem is")
    func malformedAtStart() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml").path
        try "playbooks:\n  - name: a\n    match: {techniques: [T1110.3]}\n    actions: [log]\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: PlaybookFileError.self) { _ = try PlaybookState(file: file) }
        do { _ = try PlaybookState(file: file) } catch {
            #expect("\(error)" == "\(file): playbook \"a\": match.techniques: \"T1110.3\" is not an ATT&CK technique id (T1110 or T1110.003)")
        }
        #expect(throws: PlaybookFileError.self) { _ = try PlaybookState(file: dir.appendingPathComponent("missing.yaml").path) }
        #expect(try PlaybookState(file: "").set == PlaybookSet.builtIn, "no file: the built-in set")
    }

    @Test("findings group into cases: a spraying burst's findings in one case, another user or a burst after the window in another; each change a 2005 event that validates")
    func findingsGroupIntoCases() async throws {
        let w = try World()
        try await w.users(["amy", "bo"])
        let task = w.start(try PlaybookState(file: ""))
        defer { task.cancel() }

        // A spraying burst from one source: twenty names, one wrong password each — two findings (ten names each).
        for i in 0..<20 { try await w.failedPassword("staff\(i)", from: "198.51.100.23", known: false) }
        // Password guessing against amy, then against bo (five failures each, from another address).
        for _ in 0..<5 { try await w.failedPassword("amy", from: "203.0.113.5", known: true) }
        for _ in 0..<5 { try await w.failedPassword("bo", from: "203.0.113.5", known: true) }
        // The same source sprays again 25 hours later: past the 24 h window, a new case.
        let later = IdentityEvents(store: w.store, clock: FixedClock(Date().addingTimeInterval(25 * 3600)), random: SystemRandomSource())
        for i in 0..<10 {
            try await later.authentication(.logon, user: nil, userName: "late\(i)", success: false, detail: "unknown user",
                                           source: "198.51.100.23", factors: ["pwd"])
        }
        let events = try await w.waitFor("five case events") { events in events.filter { $0.event.classUID == 2005 }.count >= 5 }
        let findings = events.filter { $0.event.classUID == 2004 }
        let findingRule = Dictionary(uniqueKeysWithValues: findings.map {
            (((Self.payload($0)["finding_info"] as? [String: Any])?["uid"] as? String) ?? "?",
             (((Self.payload($0)["finding_info"] as? [String: Any])?["analytic"] as? [String: Any])?["uid"] as? String) ?? "?")
        })
        #expect(findingRule.values.filter { $0 == Self.sprayRuleID }.count == 3, "three spraying findings: \(findingRule)")

        let cases = try await w.store.cases(status: nil, owner: .any, limit: 100)
        #expect(cases.count == 4, "\(cases.map(\.groupKey))")
        let spray = cases.filter { $0.groupKey == "source:198.51.100.23/TA0006" }.sorted { $0.createdAt < $1.createdAt }
        try #require(spray.count == 2, "the burst and the one after the window: \(cases.map(\.groupKey))")
        #expect(spray[0].findingUIDs.count == 2 && spray[0].findingUIDs.allSatisfy { findingRule[$0] == Self.sprayRuleID },
                "both findings of the burst in one case")
        #expect(spray[1].findingUIDs.count == 1 && spray[0].findingUIDs.first != spray[1].findingUIDs.first)
        #expect(spray[0].severityID == 4 && spray[0].status == .new && spray[0].owner == nil)
        #expect(spray[0].title.hasPrefix("Password spraying from one source — source 198.51.100.23"), "\(spray[0].title)")
        for user in ["amy", "bo"] {
            let c = cases.filter { $0.groupKey == "user:\(user)/TA0006" }
            #expect(c.count == 1 && c.first?.findingUIDs.count == 1, "one case for \(user)'s guessing")
        }
        #expect(Set(cases.flatMap(\.findingUIDs)) == Set(findingRule.keys), "every finding is in exactly one case")
        #expect(cases.flatMap(\.findingUIDs).count == findingRule.count)

        // The events: four opened (Create), one finding attached (Update), with the case's findings and status.
        let caseEvents = events.filter { $0.event.classUID == 2005 }.map(Self.payload)
        #expect(caseEvents.filter { $0["activity_id"] as? Int == 1 }.count == 4)
        let attached = try #require(caseEvents.first { $0["activity_id"] as? Int == 2 })
        #expect(attached["type_uid"] as? Int == 200_502 && attached["status_id"] as? Int == 1)
        #expect((attached["finding_info_list"] as? [[String: Any]])?.compactMap { $0["uid"] as? String } == spray[0].findingUIDs)
        #expect((attached["metadata"] as? [String: Any])?["correlation_uid"] as? String == spray[0].id)
        #expect(((attached["metadata"] as? [String: Any])?["product"] as? [String: Any])?["name"] as? String == "Menshen")
        guard let (status, report) = try await OCSFConformanceTests.validate(events.filter { $0.event.classUID == 2005 }.map(\.event.payloadJSON))
        else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0 && report.classes["2005"] == 5)

        // Nothing more: case events are not detected upon, and a replayed finding is not filed twice.
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await w.store.events(after: 0, limit: 10_000).filter { $0.event.classUID == 2005 }.count == 5)
    }

}
