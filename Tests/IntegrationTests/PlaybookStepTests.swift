import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenVisibility
import Testing

/// The playbook steps beyond revoking and disabling, and dry runs, in the
/// detection service on a real SQLite file fed by the real sign-in event
/// producer (as `DetectionServiceTests`): `require_step_up` makes the gateway
/// (a real `PolicyGate` on the same database) ask the sprayed users for a
/// fresh authentication, `raise_risk` adds to their score, and a dry-run
/// playbook records every step with what it would have acted on and does
/// nothing.
@Suite("Playbook steps: step-up, raise risk, dry run (real SQLite)", .serialized)
struct PlaybookStepTests {
    typealias World = DetectionServiceTests.World
    static let names = ["amy", "bo", "admin", "root", "teller01", "teller02", "ops", "backup", "audit", "dee", "guest", "scanner"]

    static func spray(_ w: World) async throws {
        for name in names { try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo", "dee"].contains(name)) }
    }

    static func actions(_ events: [StoredEvent]) -> [[String: Any]] {
        events.filter { $0.event.classUID == 7001 }.map(DetectionServiceTests.payload)
    }

    static func score(_ w: World, _ user: String) async throws -> RiskScore {
        let stored = try await w.store.riskScore(of: UserID(user)).map { try RiskScore.decode($0.contributions) } ?? []
        return RiskScore(user: user, contributions: stored, at: Date())
    }

    @Test("require_step_up: the sprayed users' older sessions must step up (max_age since the step), a fresh authentication passes, others are untouched; raise_risk adds its points")
    func stepUpAndRaiseRisk() async throws {
        let w = try World()
        try await w.users(["amy", "bo", "carl", "dee"])
        try await w.store.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        for u in ["amy", "bo", "carl", "dee"] { try await w.store.addMember(UserID(u), to: "staff") }
        let amyOld = try await w.session("amy"), carl = try await w.session("carl")
        let node = try RiskScoreGatewayTests.secondNode(w.store)
        #expect(try await RiskScoreGatewayTests.ask(node, token: amyOld) == "allow 0")

        let file = try w.playbooks("""
            playbooks:
              - name: challenge-sprayed
                match: {techniques: [T1110.003]}
                actions:
                  - {type: require_step_up, for: 1h, users: evidence}
                  - {type: raise_risk, points: 10, users: evidence}
            """)
        let task = w.start(try PlaybookState(file: file))
        defer { task.cancel() }
        try await Self.spray(w)
        _ = try await w.waitFor("both steps") { Self.actions($0).count == 2 }
        var stored: RiskScoreRecord?
        for _ in 0..<100 {
            stored = try await w.store.riskScore(of: "amy")
            if let s = stored, s.contributions.contains("step-up:challenge-sprayed") && s.contributions.contains("playbook:challenge-sprayed") { break }
            try await Task.sleep(for: .milliseconds(50))
        }

        let events = try await w.store.events(after: 0, limit: 10_000)
        let byAction = Dictionary(grouping: Self.actions(events)) { ($0["unmapped"] as? [String: Any])?["action"] as? String ?? "" }
        let stepUp = try #require(byAction["require_step_up"]?.first)
        #expect(stepUp["activity_id"] as? Int == 4 && stepUp["type_uid"] as? Int == 700_104 && stepUp["status_id"] as? Int == 1)
        #expect(Set((stepUp["unmapped"] as? [String: Any])?["users"] as? [String] ?? []) == ["amy", "bo", "dee"])
        #expect((stepUp["unmapped"] as? [String: Any])?["for_seconds"] as? Int == 3600)
        let raise = try #require(byAction["raise_risk"]?.first)
        #expect(raise["activity_id"] as? Int == 99 && raise["activity_name"] as? String == "Raise risk")

        // amy: the spray's 35 and the playbook's 10.
        #expect(try await Self.score(w, "amy").value == 45)
        #expect(try await Self.score(w, "carl").value == 0)

        // The gateway: amy's session from before the step must step up; the decision says why and how fresh.
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await RiskScoreGatewayTests.ask(node, token: amyOld) == "step_up 45")
        let trail = try #require(node.1.last)
        #expect(trail.decision?.reasons.contains(.stepUpRequired) == true)
        let maxAge = trail.decision?.obligations.compactMap { o -> Int? in if case .stepUp(_, let a) = o { a } else { nil } }.first
        #expect(maxAge.map { (1...60).contains($0) } == true, "max_age is the time since the step: \(String(describing: maxAge))")
        // A fresh authentication (a new session, as the portal's step-up issues) passes; carl was not sprayed.
        let amyNew = try await w.session("amy")
        #expect(try await RiskScoreGatewayTests.ask(node, token: amyNew) == "allow 45")
        #expect(try await RiskScoreGatewayTests.ask(node, token: carl) == "allow 0")

        // OCSF 1.8.0 for the new steps' events.
        guard let (status, report) = try await OCSFConformanceTests.validate(events.filter { $0.event.classUID == 7001 }.map(\.event.payloadJSON))
        else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0)
    }

    @Test("dry_run: every step is recorded as a 7001 event marked dry run, with whom it would act on, and nothing is done")
    func dryRun() async throws {
        let w = try World()
        try await w.users(["amy", "bo", "dee"])
        let amy = try await w.session("amy"), bo = try await w.session("bo")
        let file = try w.playbooks("""
            playbooks:
              - name: rehearse-containment
                dry_run: true
                match: {techniques: [T1110]}
                actions:
                  - {type: revoke_sessions, users: evidence}
                  - {type: lock_account, users: evidence}
                  - {type: raise_risk, points: 50, users: evidence}
                  - {type: require_step_up, for: 2h, users: evidence}
                  - {type: webhook, url: "http://127.0.0.1:9/tickets", timeout_seconds: 1, retries: 0}
                  - log
            """)
        let task = w.start(try PlaybookState(file: file))
        defer { task.cancel() }
        try await Self.spray(w)
        let events = try await w.waitFor("six dry-run steps") { Self.actions($0).count >= 6 }
        try await Task.sleep(for: .milliseconds(300))
        let actions = Self.actions(try await w.store.events(after: 0, limit: 10_000))
        #expect(actions.count == 6, "one event per step, and no webhook outcome afterwards")
        for a in actions {
            let unmapped = a["unmapped"] as? [String: Any] ?? [:]
            #expect(unmapped["dry_run"] as? Bool == true)
            #expect(a["status_id"] as? Int == 99 && a["status"] as? String == "Dry run")
            #expect((a["message"] as? String)?.hasPrefix("[dry run] playbook rehearse-containment: ") == true)
            #expect((a["status_detail"] as? String)?.contains("nothing was") == true)
            if ["revoke_sessions", "disable_user", "raise_risk", "require_step_up"].contains(unmapped["action"] as? String) {
                #expect(Set(unmapped["users"] as? [String] ?? []) == ["amy", "bo", "dee"], "it says whom it would act on")
            }
        }
        #expect(Set(actions.compactMap { ($0["unmapped"] as? [String: Any])?["action"] as? String })
                == ["revoke_sessions", "disable_user", "raise_risk", "require_step_up", "webhook", "log"])
        // Nothing was done.
        #expect(try await w.sessions.resolve(token: amy) != nil)
        #expect(try await w.sessions.resolve(token: bo) != nil)
        for u in ["amy", "bo", "dee"] { #expect(try await w.store.user(UserID(u))?.disabled == false) }
        #expect(try await Self.score(w, "amy").value == 35, "only the finding's own points")
        let stored = try #require(try await w.store.riskScore(of: "amy"))
        #expect(RiskScore.stepUpRequiredSince(try RiskScore.decode(stored.contributions), at: Date()) == nil)
        #expect(!events.contains { $0.event.classUID == 3001 }, "no account change")

        guard let (status, report) = try await OCSFConformanceTests.validate(actions.compactMap {
            (try? JSONSerialization.data(withJSONObject: $0)).map { String(decoding: $0, as: UTF8.self) }
        }) else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0)
    }
}
