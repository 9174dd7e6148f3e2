import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// The checkpointer `menshen serve` runs, on a real SQLite file: when it signs,
/// what it writes (database and anchor), that it never signs over a broken
/// chain, and how it treats its key and anchor files.
@Suite("Audit checkpointer")
struct AuditCheckpointerTests {
    static func append(_ store: SQLiteStore, _ n: Int) async throws {
        _ = try await store.appendEvents((0..<n).map { i in
            NewEvent(id: UUID(), time: Date(), classUID: 3002, payloadJSON: #"{"n":\#(i)}"#)
        }, hasher: EventChain.hasher)
    }

    @Test("signs every N events, or after T seconds when events arrived, into the database and the anchor")
    func cadence() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_800_000_000))
        let key = AuditSigningKey()
        let anchor = dir.appendingPathComponent("audit-anchor.jsonl").path
        let c = AuditCheckpointer(store: store, key: key, anchorPath: anchor, everyEvents: 5, interval: 60, clock: clock)

        #expect(try await c.checkpoint(force: false) == nil, "nothing to sign in an empty log")
        try await Self.append(store, 4)
        #expect(try await c.checkpoint(force: false)?.sequence == 4, "the first events are signed at once")
        try await Self.append(store, 3)
        #expect(try await c.checkpoint(force: false) == nil, "3 < 5 events and 0 < 60 s")
        try await Self.append(store, 2)
        #expect(try await c.checkpoint(force: false)?.sequence == 9, "5 events since the last checkpoint")
        try await Self.append(store, 1)
        clock.advance(by: 59)
        #expect(try await c.checkpoint(force: false) == nil)
        clock.advance(by: 1)
        #expect(try await c.checkpoint(force: false)?.sequence == 10, "60 s with a new event")
        clock.advance(by: 600)
        #expect(try await c.checkpoint(force: true) == nil, "no new event, no checkpoint")

        let stored = try await store.checkpoints(after: 0, limit: 100)
        #expect(stored.map(\.sequence) == [4, 9, 10])
        #expect(stored.allSatisfy(key.verifyKey.isValidSignature(of:)))
        let lines = try #require(try AuditFiles.readAnchor(path: anchor))
        #expect(lines.checkpoints == stored && !lines.tornLastLine)
        let verdict = try await AuditChainVerifier(trustedKeys: [key.verifyKey]).verify(store: store, anchor: lines.checkpoints)
        #expect(verdict.intact && verdict.eventsAfterNewestCheckpoint == 0)
        try await store.close()
    }

    @Test("a chain broken after the last checkpoint is never signed over, also by a freshly started checkpointer")
    func refusesBrokenChain() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let key = AuditSigningKey()
        let anchor = dir.appendingPathComponent("audit-anchor.jsonl").path
        let first = AuditCheckpointer(store: store, key: key, anchorPath: anchor, everyEvents: 1, interval: 60, clock: SystemClock())
        try await Self.append(store, 3)
        #expect(try await first.checkpoint(force: true)?.sequence == 3)
        try await Self.append(store, 3)
        try store.unsafeExecute("DROP TRIGGER events_no_update")
        try store.unsafeExecute(#"UPDATE events SET payload = '{"n":"forged"}' WHERE seq = 5"#)
        #expect(try await first.checkpoint(force: true) == nil)
        let restarted = AuditCheckpointer(store: store, key: key, anchorPath: anchor, everyEvents: 1, interval: 60, clock: SystemClock())
        #expect(try await restarted.checkpoint(force: true) == nil)
        #expect(try await store.checkpoints(after: 0, limit: 10).map(\.sequence) == [3])
        #expect(try AuditFiles.readAnchor(path: anchor)?.checkpoints.count == 1)
        try await store.close()
    }

    @Test("the key file is created mode 0600 and reused; an open, garbled or missing key is refused; anchor lines are bounded")
    func files() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("keys/audit.key").path
        #expect(throws: AuditFileError.self) { _ = try AuditFiles.loadOrCreateKey(path: path, mayCreate: false) }
        let key = try AuditFiles.loadOrCreateKey(path: path, mayCreate: true)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(try AuditFiles.loadOrCreateKey(path: path, mayCreate: true).verifyKey == key.verifyKey, "the same key again")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: AuditFileError.self) { _ = try AuditFiles.loadOrCreateKey(path: path, mayCreate: true) }
        try "not a key\n".write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: AuditFileError.self) { _ = try AuditFiles.loadOrCreateKey(path: path, mayCreate: true) }

        let anchor = dir.appendingPathComponent("anchor.jsonl").path
        #expect(try AuditFiles.readAnchor(path: anchor) == nil, "no file: nil, not empty")
        let c = try key.checkpoint(sequence: 1, eventID: UUID(), hash: String(repeating: "a", count: 64), time: Date())
        try AuditFiles.append(c, toAnchor: anchor)
        // A crash in the middle of a line leaves a torn last line: ignored and reported.
        let handle = try #require(FileHandle(forWritingAtPath: anchor))
        try handle.seekToEnd(); try handle.write(contentsOf: Data(#"{"sequence":2,"#.utf8)); try handle.close()
        let read = try #require(try AuditFiles.readAnchor(path: anchor))
        #expect(read.checkpoints == [c] && read.tornLastLine)
        try (String(repeating: "x", count: 5000) + "\n").write(toFile: anchor, atomically: false, encoding: .utf8)
        #expect(throws: AuditFileError.self) { _ = try AuditFiles.readAnchor(path: anchor) }
    }
}
