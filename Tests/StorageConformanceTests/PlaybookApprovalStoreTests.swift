import Foundation
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// Playbook steps held for approval (migration 10) on every backend: stored,
/// listed by state oldest first, and moved between states only from the state
/// the caller names, so exactly one of two competing decisions wins.
@Suite("Playbook approvals")
struct PlaybookApprovalStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func record(_ id: String, at offset: TimeInterval = 0) -> PlaybookApprovalRecord {
        PlaybookApprovalRecord(id: id, playbook: "contain", action: "revoke_sessions", findingUID: "f-1", summary: "would revoke amy's sessions",
                               step: #"{"kind":"revoke_sessions"}"#, createdAt: t0.addingTimeInterval(offset), expiresAt: t0.addingTimeInterval(3600 + offset))
    }

    @Test("create, read, list by state oldest first; a transition happens only from the named state, once", arguments: Backend.available)
    func lifecycle(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.approval(id: "run-a") == nil)
            try await s.createApproval(Self.record("run-b", at: 5))
            try await s.createApproval(Self.record("run-a"))
            #expect(try await s.approval(id: "run-a") == Self.record("run-a"))
            #expect(try await s.approvals(in: [.pending], limit: 10).map(\.id) == ["run-a", "run-b"])
            #expect(try await s.approvals(in: [.pending], limit: 1).map(\.id) == ["run-a"])
            await #expect(throws: StoreError(.conflict, "")) { try await s.createApproval(Self.record("run-a")) }

            #expect(try await s.transitionApproval(id: "run-a", from: .pending, to: .approved, by: "alice", at: Self.t0.addingTimeInterval(10)))
            #expect(try await !s.transitionApproval(id: "run-a", from: .pending, to: .rejected, by: "bob", at: Self.t0.addingTimeInterval(11)),
                    "the second decision loses")
            let a = try #require(try await s.approval(id: "run-a"))
            #expect(a.state == .approved && a.decidedBy == "alice" && a.decidedAt == Self.t0.addingTimeInterval(10))
            #expect(try await s.transitionApproval(id: "run-a", from: .approved, to: .done, by: nil, at: Self.t0.addingTimeInterval(12)))
            #expect(try await s.approval(id: "run-a")?.decidedBy == "alice", "claiming keeps the approver")
            #expect(try await !s.transitionApproval(id: "run-a", from: .approved, to: .done, by: nil, at: Self.t0), "claimed once")
            #expect(try await !s.transitionApproval(id: "nope", from: .pending, to: .approved, by: "x", at: Self.t0))
            #expect(try await s.approvals(in: [.pending], limit: 10).map(\.id) == ["run-b"])
            #expect(try await s.approvals(in: [.done, .approved], limit: 10).map(\.id) == ["run-a"])
            #expect(try await s.approvals(in: [], limit: 10).isEmpty)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("bad ids and oversized steps or names are refused and store nothing", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            for bad in ["", "Run-A", "run a", "x'; DROP TABLE events; --", String(repeating: "a", count: 65)] {
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.createApproval(Self.record(bad)) }
            }
            var big = Self.record("run-big")
            big.step = String(repeating: "x", count: PlaybookApprovalLimits.maxStepBytes + 1)
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.createApproval(big) }
            var long = Self.record("run-long")
            long.summary = String(repeating: "s", count: PlaybookApprovalLimits.maxTextLength + 1)
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.createApproval(long) }
            #expect(try await s.approvals(in: ApprovalState.allCases, limit: 100).isEmpty)
            try await s.createApproval(Self.record("run-ok"))
            await #expect(throws: StoreError(.invalidInput, "")) {
                _ = try await s.transitionApproval(id: "run-ok", from: .pending, to: .approved, by: String(repeating: "o", count: 2000), at: Self.t0)
            }
            #expect(try await s.approval(id: "run-ok")?.state == .pending)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
