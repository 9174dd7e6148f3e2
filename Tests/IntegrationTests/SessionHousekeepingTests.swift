import Foundation
import Logging
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// `menshen serve` deletes ended sessions after `identity.session.keep_ended_days` and expired ceremony state, in
/// bounded transactions, on a real SQLite store.
@Suite("Session housekeeping")
struct SessionHousekeepingTests {
    @Test("sessions ended longer ago than kept are deleted in batches, expired ceremony state at once; recent, active and live ones stay")
    func deletesEnded() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_795_000_000))
        let now = clock.now()
        let day: TimeInterval = 86_400
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: now))
        // 2,500 sessions whose absolute lifetime ended 40 days ago (half of them revoked), written in one statement.
        let ended = StoreCoding.millis(now.addingTimeInterval(-40 * day))
        try store.unsafeExecute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
            INSERT INTO sessions(id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, loa, amr, attributes,
                                 revoked_at, revoked_reason)
            SELECT printf('old-%04d', i), 'amy', \(ended - 43_200_000), \(ended - 43_200_000), \(ended), \(ended), 1, '["pwd"]', '{}',
                   CASE WHEN i % 2 = 0 THEN \(ended - 1_000) END, CASE WHEN i % 2 = 0 THEN 'signed out' END FROM n
            """)
        func session(_ id: String, endedDaysAgo: Double) -> SessionRecord {
            let end = now.addingTimeInterval(-endedDaysAgo * day)
            return SessionRecord(idHash: id, userID: "amy", createdAt: end.addingTimeInterval(-3_600), idleExpiresAt: end,
                                 absoluteExpiresAt: end, levelOfAssurance: 1, amr: ["pwd"])
        }
        try await store.createSession(session("recent", endedDaysAgo: 10))
        try await store.createSession(session("boundary", endedDaysAgo: 29.9))
        try await store.createSession(session("active", endedDaysAgo: -0.25))
        for (id, expires) in [("gone-1", -600.0), ("gone-2", -1.0), ("live", 300.0)] {
            try await store.createFlowState(FlowStateRecord(idHash: id, kind: "webauthn.assertion", userID: nil, data: "{}",
                                                            createdAt: now.addingTimeInterval(-900), expiresAt: now.addingTimeInterval(expires)))
        }

        let housekeeping = SessionHousekeeping(store: store, clock: clock, keepEndedDays: 30, logger: Logger(label: "test.housekeeping"),
                                               batch: 1_000, pause: .milliseconds(1))
        let first = await housekeeping.runOnce()
        #expect(first == SessionHousekeeping.Outcome(sessions: 2_500, flowStates: 2, batches: 3, failed: false))
        #expect(try await store.sessions(of: "amy").map(\.idHash).sorted() == ["active", "boundary", "recent"])
        #expect(try await store.takeFlowState(idHash: "live", kind: "webauthn.assertion", at: now) != nil, "a live ceremony was deleted")
        #expect(await housekeeping.runOnce() == SessionHousekeeping.Outcome(), "a second run finds nothing")

        // Keeping 0 days deletes every session whose lifetime has ended, and only those.
        let strict = SessionHousekeeping(store: store, clock: clock, keepEndedDays: 0, logger: Logger(label: "test.housekeeping"))
        #expect(await strict.runOnce().sessions == 2)
        #expect(try await store.sessions(of: "amy").map(\.idHash) == ["active"])
        try await store.close()
        #expect(await strict.runOnce().failed, "a store that fails is reported, not thrown")
    }
}
