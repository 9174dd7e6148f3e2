import Foundation
import MenshenStorage
import Testing

/// Cases (migration 15) on every backend: create and read back with findings
/// and notes in order; attaching (severity the higher, a repeat a no-op, two
/// at once both kept); status changes with the closed-case rule and the
/// verdict; notes appended and never edited nor deleted (the SQL backends'
/// triggers); list filters and order; the open case of a group within the
/// window; every limit refused with nothing changed.
@Suite("Case store")
struct CaseStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func record(_ id: String, key: String = "user:amy/TA0006", severity: Int = 3, findings: [String] = ["f-1"],
                       at offset: TimeInterval = 0) -> CaseRecord {
        CaseRecord(id: id, title: "密碼噴灑 Password spraying — source 198.51.100.23", severityID: severity, groupKey: key, findingUIDs: findings,
                   createdAt: t0.addingTimeInterval(offset), lastFindingAt: t0.addingTimeInterval(offset))
    }

    @Test("create, read back, attach (severity the higher, a repeat changes nothing), open case within the window", arguments: Backend.available)
    func createAndAttach(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.caseRecord(id: "c-1") == nil)
            try await s.createCase(Self.record("c-1", findings: ["f-1", "f-2"]))
            #expect(try await s.caseRecord(id: "c-1") == Self.record("c-1", findings: ["f-1", "f-2"]))
            await #expect(throws: StoreError(.conflict, "")) { try await s.createCase(Self.record("c-1")) }

            let later = Self.t0.addingTimeInterval(600)
            var r = try await s.attachFinding(caseID: "c-1", findingUID: "f-3", severityID: 4, findingTime: later, at: later.addingTimeInterval(1))
            #expect(r.findingUIDs == ["f-1", "f-2", "f-3"] && r.severityID == 4 && r.lastFindingAt == later && r.modifiedAt == later.addingTimeInterval(1))
            r = try await s.attachFinding(caseID: "c-1", findingUID: "f-4", severityID: 2, findingTime: Self.t0, at: later.addingTimeInterval(2))
            #expect(r.severityID == 4 && r.lastFindingAt == later, "severity and the latest finding time only go up")
            let again = try await s.attachFinding(caseID: "c-1", findingUID: "f-3", severityID: 5, findingTime: later, at: later.addingTimeInterval(9))
            #expect(again == r, "a finding attached already changes nothing")
            #expect(try await s.caseRecord(id: "c-1") == r)
            await #expect(throws: StoreError(.notFound, "")) {
                _ = try await s.attachFinding(caseID: "nope", findingUID: "f-9", severityID: 1, findingTime: later, at: later)
            }

            // The open case of a group: the latest one whose last finding is at or after `since`.
            try await s.createCase(Self.record("c-2", key: "source:198.51.100.23/TA0006", at: 100))
            #expect(try await s.openCase(groupKey: "user:amy/TA0006", since: later)?.id == "c-1")
            #expect(try await s.openCase(groupKey: "user:amy/TA0006", since: later.addingTimeInterval(1)) == nil, "outside the window")
            #expect(try await s.openCase(groupKey: "user:bo/TA0006", since: Self.t0) == nil)
            #expect(try await s.openCase(groupKey: "source:198.51.100.23/TA0006", since: Self.t0)?.id == "c-2")
            _ = try await s.setCaseStatus(id: "c-2", status: .resolved, verdict: .truePositive, reopen: false, at: later)
            #expect(try await s.openCase(groupKey: "source:198.51.100.23/TA0006", since: Self.t0) == nil, "a resolved case is not open")
            await #expect(throws: StoreError(.conflict, "")) {
                _ = try await s.attachFinding(caseID: "c-2", findingUID: "f-9", severityID: 1, findingTime: later, at: later)
            }
            #expect(try await s.caseRecord(id: "c-2")?.findingUIDs == ["f-1"], "nothing attached to a resolved case")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("status changes: verdict needed to close, a closed case refuses changes until reopened, reopening clears the verdict", arguments: Backend.available)
    func statusRules(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.createCase(Self.record("c-1"))
            let t = Self.t0.addingTimeInterval(60)
            var r = try await s.setCaseStatus(id: "c-1", status: .inProgress, verdict: nil, reopen: false, at: t)
            #expect(r.status == .inProgress && r.modifiedAt == t)
            r = try await s.assignCase(id: "c-1", owner: "analyst 林小美", at: t)
            #expect(r.owner == "analyst 林小美")
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.setCaseStatus(id: "c-1", status: .closed, verdict: nil, reopen: false, at: t)
            }
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.setCaseStatus(id: "c-1", status: .onHold, verdict: .benign, reopen: false, at: t)
            }
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.setCaseStatus(id: "c-1", status: .onHold, verdict: nil, reopen: true, at: t)
            }
            #expect(try await s.caseRecord(id: "c-1") == r, "the refusals changed nothing")
            r = try await s.setCaseStatus(id: "c-1", status: .resolved, verdict: .truePositive, reopen: false, at: t)
            #expect(r.status == .resolved && r.verdict == .truePositive)
            r = try await s.setCaseStatus(id: "c-1", status: .closed, verdict: nil, reopen: false, at: t)
            #expect(r.status == .closed && r.verdict == .truePositive, "closing a resolved case keeps its verdict")
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.setCaseStatus(id: "c-1", status: .closed, verdict: .falsePositive, reopen: true, at: t)
            }
            let closed = try #require(try await s.caseRecord(id: "c-1"))
            #expect(closed.status == .closed && closed.verdict == .truePositive, "reopening to closed was refused")
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.setCaseStatus(id: "c-1", status: .inProgress, verdict: nil, reopen: false, at: t) }
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.setCaseStatus(id: "c-1", status: .closed, verdict: .benign, reopen: false, at: t) }
            await #expect(throws: StoreError(.conflict, "")) { _ = try await s.assignCase(id: "c-1", owner: nil, at: t) }
            await #expect(throws: StoreError(.conflict, "")) {
                _ = try await s.attachFinding(caseID: "c-1", findingUID: "f-2", severityID: 5, findingTime: t, at: t)
            }
            #expect(try await s.caseRecord(id: "c-1") == closed, "a closed case is unchanged by every refused change")
            let noted = try await s.addCaseNote(id: "c-1", note: CaseNote(author: "cli:auditor", time: t, text: "post-incident review done"))
            #expect(noted.notes.count == 1 && noted.status == .closed, "a note may be added to a closed case")
            let reopened = try await s.setCaseStatus(id: "c-1", status: .inProgress, verdict: nil, reopen: true, at: t)
            #expect(reopened.status == .inProgress && reopened.verdict == nil && reopened.owner == "analyst 林小美")
            let unassigned = try await s.assignCase(id: "c-1", owner: nil, at: t)
            #expect(unassigned.owner == nil)
            await #expect(throws: StoreError(.notFound, "")) { _ = try await s.assignCase(id: "nope", owner: "x", at: t) }
            await #expect(throws: StoreError(.notFound, "")) { _ = try await s.setCaseStatus(id: "nope", status: .new, verdict: nil, reopen: false, at: t) }
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("notes are appended in order; the database refuses editing or deleting notes, findings and cases", arguments: Backend.available)
    func notesAppendOnly(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.createCase(Self.record("c-1"))
            let n1 = CaseNote(author: "cli:amy", time: Self.t0.addingTimeInterval(10), text: "來源為外部 VPN 位址。\nSource is an outside VPN address.")
            let n2 = CaseNote(author: "cli:bo", time: Self.t0.addingTimeInterval(20), text: "Blocked at the firewall.")
            _ = try await s.addCaseNote(id: "c-1", note: n1)
            let r = try await s.addCaseNote(id: "c-1", note: n2)
            #expect(r.notes == [n1, n2] && r.modifiedAt == n2.time)
            #expect(try await s.caseRecord(id: "c-1")?.notes == [n1, n2])
            for bad in [CaseNote(author: "cli:amy", time: Self.t0, text: " \n "),
                        CaseNote(author: "cli:amy", time: Self.t0, text: String(repeating: "長", count: CaseLimits.maxNoteLength + 1)),
                        CaseNote(author: "cli:amy", time: Self.t0, text: "bell \u{7}"),
                        CaseNote(author: "", time: Self.t0, text: "ok")] {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.addCaseNote(id: "c-1", note: bad) }
            }
            await #expect(throws: StoreError(.notFound, "")) { _ = try await s.addCaseNote(id: "nope", note: n1) }
            #expect(try await s.caseRecord(id: "c-1") == r, "refused notes changed nothing")
            guard backend != .memory else { await f.cleanup(); return }
            for sql in ["UPDATE case_notes SET text = 'edited'", "DELETE FROM case_notes", "UPDATE case_findings SET finding_uid = 'x'",
                        "DELETE FROM case_findings", "DELETE FROM cases", "UPDATE cases SET id = 'c-9'", "UPDATE cases SET created_at = 0"] {
                await #expect(throws: (any Error).self, "\(sql)") { try await ChangeFeedTests.execute(backend, f, sql) }
            }
            #expect(try await s.caseRecord(id: "c-1") == r)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("list: by status and owner (named, unassigned), most recently modified first, bounded", arguments: Backend.available)
    func listFilters(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            for (i, id) in ["c-a", "c-b", "c-c", "c-d"].enumerated() { try await s.createCase(Self.record(id, at: TimeInterval(i))) }
            _ = try await s.assignCase(id: "c-a", owner: "amy", at: Self.t0.addingTimeInterval(100))
            _ = try await s.assignCase(id: "c-c", owner: "amy", at: Self.t0.addingTimeInterval(50))
            _ = try await s.setCaseStatus(id: "c-c", status: .inProgress, verdict: nil, reopen: false, at: Self.t0.addingTimeInterval(60))
            _ = try await s.assignCase(id: "c-b", owner: "bo", at: Self.t0.addingTimeInterval(10))
            #expect(try await s.cases(status: nil, owner: .any, limit: 10).map(\.id) == ["c-a", "c-c", "c-b", "c-d"])
            #expect(try await s.cases(status: nil, owner: .any, limit: 2).map(\.id) == ["c-a", "c-c"])
            #expect(try await s.cases(status: nil, owner: .any, limit: 0).isEmpty)
            #expect(try await s.cases(status: nil, owner: .named("amy"), limit: 10).map(\.id) == ["c-a", "c-c"])
            #expect(try await s.cases(status: .new, owner: .named("amy"), limit: 10).map(\.id) == ["c-a"])
            #expect(try await s.cases(status: .inProgress, owner: .any, limit: 10).map(\.id) == ["c-c"])
            #expect(try await s.cases(status: nil, owner: .unassigned, limit: 10).map(\.id) == ["c-d"])
            #expect(try await s.cases(status: .closed, owner: .any, limit: 10).isEmpty)
            #expect(try await s.cases(status: nil, owner: .named("nobody"), limit: 10).isEmpty)
            let c = try #require(try await s.cases(status: .inProgress, owner: .any, limit: 10).first)
            #expect(c.findingUIDs == ["f-1"] && c.owner == "amy", "listed cases carry their findings")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("two attaches at once to one case both land, at distinct positions", arguments: Backend.available)
    func concurrentAttaches(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.createCase(Self.record("c-1"))
            for round in 0..<5 {
                let t = Self.t0.addingTimeInterval(TimeInterval(round))
                async let a = s.attachFinding(caseID: "c-1", findingUID: "a-\(round)", severityID: 4, findingTime: t, at: t)
                async let b = s.attachFinding(caseID: "c-1", findingUID: "b-\(round)", severityID: 5, findingTime: t, at: t)
                _ = try await (a, b)
            }
            let r = try #require(try await s.caseRecord(id: "c-1"))
            #expect(r.findingUIDs.count == 11 && Set(r.findingUIDs).count == 11, "\(r.findingUIDs)")
            #expect(r.severityID == 5)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("bad cases are refused with nothing stored", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            var bad: [CaseRecord] = []
            for id in ["", "Upper", "a b", String(repeating: "a", count: 65)] { var r = Self.record("x"); r.id = id; bad.append(r) }
            var r = Self.record("t1"); r.title = String(repeating: "題", count: CaseLimits.maxTitleLength + 1); bad.append(r)
            r = Self.record("t2"); r.title = "line\nbreak"; bad.append(r)
            r = Self.record("t3"); r.findingUIDs = []; bad.append(r)
            r = Self.record("t4"); r.findingUIDs = ["f-1", "f-1"]; bad.append(r)
            r = Self.record("t5"); r.findingUIDs = [String(repeating: "f", count: 65)]; bad.append(r)
            r = Self.record("t6"); r.severityID = 7; bad.append(r)
            r = Self.record("t7"); r.status = .closed; r.verdict = .benign; bad.append(r)
            r = Self.record("t8"); r.notes = [CaseNote(author: "a", time: Self.t0, text: "b")]; bad.append(r)
            r = Self.record("t9"); r.owner = String(repeating: "o", count: 201); bad.append(r)
            for b in bad {
                await #expect(throws: StoreError(.invalidInput, ""), "\(b.id) \(b.title.prefix(20))") { try await s.createCase(b) }
            }
            #expect(try await s.cases(status: nil, owner: .any, limit: 100).isEmpty)
            try await s.createCase(Self.record("c-1"))
            await #expect(throws: StoreError(.invalidInput, "")) { _ = try await s.assignCase(id: "c-1", owner: "a\u{1B}[31m", at: Self.t0) }
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.attachFinding(caseID: "c-1", findingUID: "", severityID: 1, findingTime: Self.t0, at: Self.t0)
            }
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.attachFinding(caseID: "c-1", findingUID: "f-2", severityID: 42, findingTime: Self.t0, at: Self.t0)
            }
            #expect(try await s.caseRecord(id: "c-1") == Self.record("c-1"))
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
