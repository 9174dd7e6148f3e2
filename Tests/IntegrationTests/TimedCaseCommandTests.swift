import Foundation
import MenshenCore
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// `menshen case …`, the real binary over a real SQLite file holding cases as
/// the detection service stores them: list (with its filters), show, assign,
/// status, note and close change the case and write one OCSF 2005 event each
/// (validated against OCSF 1.8.0), naming the actor; a closed case refuses
/// changes until reopened; every bad input exits 2 with a message naming the
/// problem and changes neither the case nor the event log.
@Suite("menshen case (real binary, real SQLite)")
struct TimedCaseCommandTests {
    struct World {
        let dir: URL
        var database: String { dir.appendingPathComponent("menshen.sqlite").path }
        static let spray = "5e1f0c2a-0000-4000-8000-00000000c0de"
        static let guessing = "6a2b1d3e-0000-4000-8000-00000000beef"

        init() async throws {
            dir = try Harness.tempDir()
            let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
            let t = Date(timeIntervalSince1970: 1_795_000_000)
            try await store.createCase(CaseRecord(id: Self.spray, title: "Password spraying from one source — source 198.51.100.23", severityID: 4,
                                                  groupKey: "source:198.51.100.23/TA0006",
                                                  findingUIDs: ["0a1b2c3d-4e5f-8a7b-8c9d-0e1f2a3b4c5d", "1a1b2c3d-4e5f-8a7b-8c9d-0e1f2a3b4c5d"],
                                                  createdAt: t, lastFindingAt: t))
            try await store.createCase(CaseRecord(id: Self.guessing, title: "Password guessing against one account — user amy", severityID: 3,
                                                  groupKey: "user:amy/TA0006", findingUIDs: ["2a1b2c3d-4e5f-8a7b-8c9d-0e1f2a3b4c5d"],
                                                  createdAt: t.addingTimeInterval(60), lastFindingAt: t.addingTimeInterval(60)))
            try await store.close()
        }

        func cli(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await Harness.runAsync(["case"] + args + ["--data", dir.path], environment: ["USER": "auditor", "SUDO_USER": "auditor"])
        }

        /// Every case, and the events, as stored now.
        func state() async throws -> ([CaseRecord], [StoredEvent]) {
            let store = try SQLiteStore(path: database)
            let cases = try await store.cases(status: nil, owner: .any, limit: 100)
            let events = try await store.events(after: 0, limit: 1000)
            try await store.close()
            return (cases, events)
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    static func object(_ text: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("list, show, assign, note, status, close and reopen; each change one 2005 event naming the actor, valid OCSF 1.8.0")
    func roundTrip() async throws {
        let w = try await World()
        defer { w.cleanup() }
        let list = try await w.cli(["list"])
        #expect(list.status == 0 && list.out.contains("2 cases"), "\(list)")
        let rows = list.out.split(separator: "\n").filter { $0.contains("\t") }
        #expect(rows.first?.hasPrefix(World.guessing) == true, "most recently changed first: \(list.out)")
        #expect(rows.last?.contains("high\tunassigned\t2 findings") == true, "\(list.out)")

        let assign = try await w.cli(["assign", World.spray, "--owner", "analyst 林小美", "--actor", "soc-lead"])
        #expect(assign.status == 0 && assign.out.contains("assigned to analyst 林小美"), "\(assign)")
        let mine = try await w.cli(["list", "--owner", "analyst 林小美", "--json"])
        #expect(mine.status == 0 && mine.out.split(separator: "\n").count == 1, "\(mine)")
        #expect(try Self.object(mine.out.split(separator: "\n")[0])["id"] as? String == World.spray)
        let unassigned = try await w.cli(["list", "--unassigned"])
        #expect(unassigned.out.contains(World.guessing) && !unassigned.out.contains(World.spray), "\(unassigned)")

        let note = try await w.cli(["note", World.spray, "--text", "來源為外部 VPN 位址。Blocked at the firewall."])
        #expect(note.status == 0 && note.out.contains("note 1 added by cli:auditor"), "\(note)")
        let progress = try await w.cli(["status", World.spray, "in_progress"])
        #expect(progress.status == 0, "\(progress)")
        #expect(try await w.cli(["list", "--status", "in_progress"]).out.contains(World.spray))
        #expect(!(try await w.cli(["list", "--status", "new"]).out.contains(World.spray)))
        let close = try await w.cli(["close", World.spray, "--verdict", "true_positive"])
        #expect(close.status == 0 && close.out.contains("status closed") && close.out.contains("verdict true_positive"), "\(close)")

        let show = try await w.cli(["show", World.spray, "--json"])
        #expect(show.status == 0, "\(show)")
        let shown = try Self.object(Substring(show.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(shown["status"] as? String == "closed" && shown["verdict"] as? String == "true_positive" && shown["owner"] as? String == "analyst 林小美")
        #expect((shown["findings"] as? [String])?.count == 2)
        let notes = shown["notes"] as? [[String: Any]] ?? []
        #expect(notes.count == 1 && notes.first?["author"] as? String == "cli:auditor" && (notes.first?["text"] as? String)?.hasPrefix("來源") == true)
        let text = try await w.cli(["show", World.spray])
        #expect(text.out.contains("status:        closed") && text.out.contains("cli:auditor: 來源為外部 VPN 位址。"), "\(text.out)")

        // Closed: changes refused (exit 2) until reopened explicitly.
        let refused = try await w.cli(["status", World.spray, "in_progress"])
        #expect(refused.status == 2 && refused.err.contains("is closed; reopen it first"), "\(refused)")
        let refusedAssign = try await w.cli(["assign", World.spray, "--owner", "bo"])
        #expect(refusedAssign.status == 2 && refusedAssign.err.contains("closed"), "\(refusedAssign)")
        let reopen = try await w.cli(["status", World.spray, "in_progress", "--reopen"])
        #expect(reopen.status == 0 && reopen.out.contains("reopened") && !reopen.out.contains("verdict"), "\(reopen)")

        let (cases, events) = try await w.state()
        let spray = try #require(cases.first { $0.id == World.spray })
        #expect(spray.status == .inProgress && spray.verdict == nil && spray.notes.count == 1)
        #expect(cases.first { $0.id == World.guessing }?.modifiedAt == Date(timeIntervalSince1970: 1_795_000_060), "the other case untouched")
        #expect(events.count == 5 && events.allSatisfy { $0.event.classUID == 2005 }, "assign, note, status, close, reopen: \(events.count)")
        let payloads = try events.map { try Self.object(Substring($0.event.payloadJSON)) }
        #expect(payloads.compactMap { $0["activity_id"] as? Int } == [2, 2, 2, 3, 2])
        let actors = payloads.map { (($0["unmapped"] as? [String: Any])?["case"] as? [String: Any])?["actor"] as? String }
        #expect(actors == ["soc-lead", "cli:auditor", "cli:auditor", "cli:auditor", "cli:auditor"])
        #expect(payloads[1]["comment"] as? String == "來源為外部 VPN 位址。Blocked at the firewall.")
        #expect(payloads[3]["verdict_id"] as? Int == 2 && payloads[3]["status_id"] as? Int == 5)
        guard let (status, report) = try await OCSFConformanceTests.validate(events.map(\.event.payloadJSON)) else { return }
        for failure in report.failures { Issue.record("event \(failure.line): \(failure.errors.joined(separator: "; "))") }
        #expect(status == 0 && report.classes["2005"] == 5)
    }

    @Test("bad input: unknown cases, statuses and verdicts, oversized notes, missing verdicts, bad names — exit 2, a message, nothing changed")
    func badInput() async throws {
        let w = try await World()
        defer { w.cleanup() }
        let before = try await w.state()
        let id = World.spray
        let cases: [([String], String)] = [
            (["show", "00000000-0000-4000-8000-000000000000"], "no case 00000000-0000-4000-8000-000000000000"),
            (["show", "Not-An-Id"], "case id must be 1–64 characters of a-z 0-9 -"),
            (["note", "00000000-0000-4000-8000-000000000000", "--text", "x"], "no case"),
            (["status", id, "done"], "unknown status \"done\"; one of new, in_progress, on_hold, resolved, closed"),
            (["list", "--status", "open"], "unknown status \"open\"; one of new, in_progress, on_hold, resolved, closed"),
            (["close", id, "--verdict", "maybe"], "unknown verdict \"maybe\"; one of false_positive, true_positive"),
            (["status", id, "closed"], "needs a verdict"),
            (["status", id, "on_hold", "--verdict", "benign"], "a verdict is given when a case is resolved or closed"),
            (["status", id, "in_progress", "--reopen"], "not closed; --reopen is only for closed cases"),
            (["note", id, "--text", String(repeating: "長", count: 4001)], "the note is 4001 characters long; at most 4000"),
            (["note", id, "--text", "  \n "], "the note is empty"),
            (["note", id, "--text", "bell\u{7}"], "the note contains a control character"),
            (["assign", id], "give either --owner NAME or --unassign"),
            (["assign", id, "--owner", "x", "--unassign"], "give either --owner NAME or --unassign"),
            (["assign", id, "--owner", String(repeating: "o", count: 201)], "--owner is 201 characters long; at most 200"),
            (["assign", id, "--owner", "esc\u{1B}[31m"], "--owner contains a control character"),
            (["assign", id, "--owner", "bo", "--actor", ""], "--actor is empty"),
            (["list", "--limit", "0"], "--limit must be a number 1–10000"),
            (["list", "--owner", "amy", "--unassigned"], "--owner and --unassigned exclude each other"),
        ]
        for (args, message) in cases {
            let r = try await w.cli(args)
            #expect(r.status == 2 && r.err.contains(message), "\(args.map { String($0.prefix(30)) }): \(r.status) \(r.err)")
        }
        let after = try await w.state()
        #expect(after.0 == before.0, "no case changed")
        #expect(after.1.count == before.1.count, "no event written")
        // Without a database: a clear store error, nothing created.
        let empty = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try await Harness.runAsync(["case", "list", "--data", empty.path])
        #expect(none.status != 0 && none.err.contains("no Menshen database"), "\(none)")
        #expect(!FileManager.default.fileExists(atPath: empty.appendingPathComponent("menshen.sqlite").path))
    }

    @Test("help for every case verb")
    func help() async throws {
        let top = try await Harness.runAsync(["case", "--help"])
        #expect(top.status == 0 && top.out.contains("assign") && top.out.contains("close") && top.out.contains("歸併"), "\(top)")
        for verb in ["list", "show", "assign", "status", "note", "close"] {
            let r = try await Harness.runAsync(["case", verb, "--help"])
            #expect(r.status == 0 && r.out.contains("USAGE:"), "\(verb): \(r.err)")
        }
    }
}
