import Foundation
import Logging
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenVisibility
import Testing

/// The approval gate: steps marked `approval: required` wait as pending (a
/// 7001 event says so) while the detection service runs on a real SQLite file;
/// the real `menshen playbook pending|approve|reject` (another process) lists
/// and decides them; an approved step is carried out by the service on the
/// users fixed when it was held, a rejected one never; each decision is an
/// event naming the operator; a step nobody decides expires and nothing is done.
@Suite("Playbook approval gate (real SQLite, real menshen CLI)", .serialized)
struct PlaybookApprovalTests {
    typealias World = DetectionServiceTests.World

    static let playbooks = """
        playbooks:
          - name: careful-containment
            match: {techniques: [T1110.003]}
            actions:
              - {type: revoke_sessions, users: evidence, approval: required}
              - {type: lock_account, users: evidence, approval: required}
              - log
        """

    static func start(_ w: World, timeout: Duration) throws -> Task<Void, Never> {
        let service = DetectionService(store: w.store, playbooks: try PlaybookState(file: try w.playbooks(playbooks)), clock: SystemClock(),
                                       logger: Logger(label: "test.approvals"), reloadInterval: .seconds(3600), pollInterval: .milliseconds(50),
                                       startAfter: 0, approvalTimeout: timeout, approvalPoll: .milliseconds(200))
        return Task { try? await service.run() }
    }

    static func actions(_ events: [StoredEvent]) -> [[String: Any]] {
        events.filter { $0.event.classUID == 7001 }.map(DetectionServiceTests.payload)
    }

    static func approval(_ a: [String: Any]) -> [String: Any] { (a["unmapped"] as? [String: Any])?["approval"] as? [String: Any] ?? [:] }
    static func action(_ a: [String: Any]) -> String { (a["unmapped"] as? [String: Any])?["action"] as? String ?? "" }

    static func cli(_ w: World, _ args: [String]) async throws -> (status: Int32, out: String, err: String) {
        try await Harness.runAsync(["playbook"] + args + ["--data", w.dir.path])
    }

    @Test("held steps wait; `menshen playbook approve` has the server carry one out, `reject` stops the other; each decision is an event naming the operator")
    func approveAndReject() async throws {
        let w = try World()
        try await w.users(["amy", "bo", "dee"])
        let amy = try await w.session("amy"), bo = try await w.session("bo")
        let task = try Self.start(w, timeout: .seconds(3600))
        defer { task.cancel() }
        for name in PlaybookStepTests.names { try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo", "dee"].contains(name)) }
        let events = try await w.waitFor("two held steps and the log") { Self.actions($0).count >= 3 }
        let pending = Self.actions(events).filter { $0["status_id"] as? Int == 99 }
        try #require(pending.count == 2)
        for p in pending {
            #expect(p["status"] as? String == "Pending approval")
            #expect(Self.approval(p)["state"] as? String == "pending")
            #expect(Set((p["unmapped"] as? [String: Any])?["users"] as? [String] ?? []) == ["amy", "bo", "dee"], "the users are fixed when held")
        }
        let revokeRun = try #require(pending.first { Self.action($0) == "revoke_sessions" }.flatMap { Self.approval($0)["run"] as? String })
        let disableRun = try #require(pending.first { Self.action($0) == "disable_user" }.flatMap { Self.approval($0)["run"] as? String })
        #expect(try await w.sessions.resolve(token: amy) != nil, "nothing is done before approval")

        // The operator lists what waits (another process on the same database).
        let listed = try await Self.cli(w, ["pending", "--json"])
        #expect(listed.status == 0, "\(listed.err)")
        let lines = listed.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(Set(lines.compactMap { $0["run"] as? String }) == [revokeRun, disableRun])
        #expect(lines.allSatisfy { ($0["summary"] as? String)?.contains("amy") == true })

        // Approve the revocation: the server carries it out.
        let approved = try await Self.cli(w, ["approve", revokeRun, "--operator", "alice@soc"])
        #expect(approved.status == 0, "\(approved.err)")
        let after = try await w.waitFor("the approved revocation") { events in
            Self.actions(events).contains { Self.action($0) == "revoke_sessions" && $0["activity_id"] as? Int == 2 && $0["status_id"] as? Int == 1 }
        }
        #expect(try await w.sessions.resolve(token: amy) == nil)
        #expect(try await w.sessions.resolve(token: bo) == nil)
        let done = try #require(Self.actions(after).first { Self.action($0) == "revoke_sessions" && $0["activity_id"] as? Int == 2 && $0["status_id"] as? Int == 1 })
        #expect((done["status_detail"] as? String)?.hasPrefix("approved by alice@soc: ") == true)
        #expect(Set((done["unmapped"] as? [String: Any])?["users"] as? [String] ?? []) == ["amy", "bo", "dee"])
        #expect(Self.approval(done)["by"] as? String == "alice@soc" && Self.approval(done)["run"] as? String == revokeRun)
        #expect(try await w.store.approval(id: revokeRun)?.state == .done)

        // Reject the lock: never done.
        let rejected = try await Self.cli(w, ["reject", disableRun, "--operator", "bob@soc"])
        #expect(rejected.status == 0, "\(rejected.err)")
        try await Task.sleep(for: .milliseconds(800))
        for u in ["amy", "bo", "dee"] { #expect(try await w.store.user(UserID(u))?.disabled == false) }
        #expect(try await w.store.approval(id: disableRun)?.state == .rejected)

        // Each decision is an event with the operator; a decided step cannot be decided again.
        let all = Self.actions(try await w.store.events(after: 0, limit: 10_000))
        let decisions = all.filter { ["Approve", "Reject"].contains($0["activity_name"] as? String) }
        #expect(decisions.map { Self.approval($0)["by"] as? String } == ["alice@soc", "bob@soc"])
        #expect(decisions.map { Self.approval($0)["run"] as? String } == [revokeRun, disableRun])
        let again = try await Self.cli(w, ["approve", disableRun, "--operator", "mallory"])
        #expect(again.status == 1 && again.err.contains("is rejected (by bob@soc), not pending"), "\(again.err)")
        #expect(try await Self.cli(w, ["approve", "no-such-run"]).status == 1)
        #expect(try await Self.cli(w, ["approve", "Bad Run"]).status != 0, "a malformed run id is refused")
        #expect(try await Self.cli(w, ["pending"]).out.contains("0 steps waiting for approval"))

        guard let (status, report) = try await OCSFConformanceTests.validate(try await w.store.events(after: 0, limit: 10_000)
            .filter { $0.event.classUID == 7001 }.map(\.event.payloadJSON)) else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0)
    }

    @Test("a held step nobody decides expires: an event says so, nothing is done, and it can no longer be approved")
    func expires() async throws {
        let w = try World()
        try await w.users(["amy", "bo", "dee"])
        let amy = try await w.session("amy")
        let task = try Self.start(w, timeout: .seconds(2))
        defer { task.cancel() }
        for name in PlaybookStepTests.names { try await w.failedPassword(name, from: "198.51.100.23", known: ["amy", "bo", "dee"].contains(name)) }
        let events = try await w.waitFor("both steps expired") { events in
            Self.actions(events).filter { Self.approval($0)["state"] as? String == "expired" }.count == 2
        }
        let expired = Self.actions(events).filter { Self.approval($0)["state"] as? String == "expired" }
        #expect(expired.allSatisfy { $0["status_id"] as? Int == 2 && ($0["status_detail"] as? String)?.contains("expired and nothing was done") == true })
        #expect(try await w.sessions.resolve(token: amy) != nil)
        let run = try #require(Self.approval(expired[0])["run"] as? String)
        let late = try await Self.cli(w, ["approve", run])
        #expect(late.status == 1 && late.err.contains("expired"), "\(late.err)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await w.sessions.resolve(token: amy) != nil)
        #expect(try await w.store.user("amy")?.disabled == false)
    }
}
