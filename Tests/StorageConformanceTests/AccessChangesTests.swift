import Foundation
import MenshenCore
import MenshenStorage
@testable import MenshenStorageSQLite
import Testing

/// SQLite's record of whose access each access change concerned (migration 19, `access_changes`): what the gateway's
/// memory of session facts relies on to keep a session's facts through changes to other users' access.
@Suite("SQLite access changes")
struct AccessChangesTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    /// The path of a database file in a new directory of its own (``remove(_:)`` deletes the directory).
    static func newDatabasePath() throws -> String {
        try WALCommitWatchTests.newDirectory().appendingPathComponent("menshen.sqlite").path
    }

    static func remove(_ file: String) { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }

    @Test("each access change, by any connection, says whose access it concerned; changes that may concern anyone say nobody")
    func attributed() async throws {
        let file = try Self.newDatabasePath()
        defer { Self.remove(file) }
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)   // another process: the command line, a second node
        for id in ["amy", "bob"] { try await other.createUser(UserRecord(id: UserID(id), displayName: id, createdAt: Self.t0)) }
        try await other.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await other.createGroup(GroupRecord(id: "audit", displayName: "Audit"))
        try await other.createRole(RoleRecord(id: "teller", displayName: "Teller", riskTier: .standard))
        let session = SecretHash.sha256Hex("amy-session")
        try await other.createSession(SessionRecord(idHash: session, userID: "amy", createdAt: Self.t0, idleExpiresAt: Self.t0.addingTimeInterval(60),
                                                    absoluteExpiresAt: Self.t0.addingTimeInterval(600), levelOfAssurance: 1, amr: ["pwd"]))
        let start = try #require(store.committedAccessGeneration())

        try await other.addMember("amy", to: "staff")                                                   // amy
        try await other.assignRole("teller", to: "bob")                                                 // bob
        var bob = try #require(try await other.user("bob")); bob.displayName = "Bob"
        try await other.updateUser(bob)                                                                 // bob
        try await other.saveRiskScore(RiskScoreRecord(userID: "bob", contributions: "[]", updatedAt: Self.t0))   // bob
        _ = try await other.touchSession(idHash: session, lastSeenAt: Self.t0.addingTimeInterval(5), idleExpiresAt: Self.t0.addingTimeInterval(65))   // no change
        _ = try await other.revokeSession(idHash: session, at: Self.t0.addingTimeInterval(6), reason: "test")    // amy
        try other.unsafeExecute("UPDATE roles SET risk_tier = 'privileged' WHERE id = 'teller'")      // anyone: every holder's tier
        try other.unsafeExecute("DELETE FROM groups WHERE id = 'audit'")                               // anyone
        try other.unsafeExecute("UPDATE group_members SET user_id = 'bob' WHERE user_id = 'amy'")     // anyone: moved between users
        try await other.removeMember("bob", from: "staff")                                              // bob

        let expected: [String?] = ["amy", "bob", "bob", "bob", "amy", nil, nil, nil, "bob"]
        let now = try #require(store.committedAccessGeneration())
        #expect(now == start + Int64(expected.count), "one access change per row changed")
        let read = try #require(store.accessChanges(after: start))
        #expect(read.after == start && read.through == now && read.complete)
        #expect(read.changes.map(\.generation) == Array(start + 1 ... now))
        #expect(read.changes.map(\.userID) == expected)
        // From any point on: the tail, and nothing past the committed generation.
        let tail = try #require(store.accessChanges(after: now - 2))
        #expect(tail.complete && tail.changes.map(\.userID) == [nil, "bob"])
        let none = try #require(store.accessChanges(after: now))
        #expect(none.complete && none.changes.isEmpty && none.through == now)
        try await other.close()
        try await store.close()
    }

    @Test("every trigger that counts an access change records it (read from the schema with Python's sqlite3)")
    func everyAccessTriggerRecords() async throws {
        let file = try Self.newDatabasePath()
        defer { Self.remove(file) }
        let store = try SQLiteStore(path: file)
        try await store.close()
        let listed = try SQLiteCheckpointTests.python("""
            import sqlite3, sys
            for name, sql in sqlite3.connect(sys.argv[1]).execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"):
                if "kind = 'access'" in sql:
                    print(name, "records" if "INSERT INTO access_changes" in sql else "silent")
            """, file)
        let triggers = listed.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(triggers.count == SQLiteMigrations.accessChangeTriggers.count, "\(listed)")
        #expect(Set(triggers.map { $0[0] }) == Set(SQLiteMigrations.accessChangeTriggers.map(\.name)))
        for trigger in triggers { #expect(trigger.last == "records", "\(trigger[0]) advances the access counter without saying whose access changed") }
    }

    @Test("only the last changes are kept: a range reaching back past them, or counted before migration 19, is incomplete")
    func incompleteRanges() async throws {
        let file = try Self.newDatabasePath()
        defer { Self.remove(file) }
        // A database from before migration 19 counts changes without recording them.
        let old = try SQLiteStore(path: file, migrations: SQLiteMigrations.all.filter { $0.version < 19 })
        try await old.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Self.t0))
        try await old.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await old.addMember("amy", to: "staff")
        try await old.close()
        let store = try SQLiteStore(path: file)
        let upgraded = try #require(store.committedAccessGeneration())
        #expect(upgraded == 1)
        try await store.removeMember("amy", from: "staff")
        let across = try #require(store.accessChanges(after: 0))
        #expect(!across.complete, "the change before the upgrade is not known")
        let since = try #require(store.accessChanges(after: upgraded))
        #expect(since.complete && since.changes.map(\.userID) == ["amy"])

        // More changes than are kept, in one transaction.
        let burst = AccessChanges.kept + 100
        try store.unsafeExecute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(burst))
            INSERT INTO risk_scores(user_id, contributions, updated_at) SELECT 'amy', '[]', i FROM n WHERE true
            ON CONFLICT(user_id) DO UPDATE SET updated_at = excluded.updated_at
            """)
        let now = try #require(store.committedAccessGeneration())
        #expect(now == upgraded + 1 + Int64(burst))
        let all = try #require(store.accessChanges(after: upgraded))
        #expect(!all.complete, "the oldest were pruned")
        let kept = try #require(store.accessChanges(after: now - Int64(AccessChanges.kept)))
        #expect(kept.complete && kept.changes.count == AccessChanges.kept && kept.changes.allSatisfy { $0.userID == "amy" })
        let rows = try SQLiteCheckpointTests.python("""
            import sqlite3, sys
            print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM access_changes").fetchone()[0])
            """, file)
        #expect(rows == "\(AccessChanges.kept)", "the table holds the last \(AccessChanges.kept) changes only")
        try await store.close()
    }
}
