import Foundation
import MenshenCore
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// The audit checkpoint table (migration 7) on every backend: ordered reads, one
/// checkpoint per sequence and key, several keys per sequence, append-only in the database itself.
@Suite("Audit checkpoint store")
struct AuditCheckpointStoreTests {
    static func checkpoint(_ sequence: Int64, key: String = "ed25519:aaaa", hash: String? = nil) -> AuditCheckpointRecord {
        AuditCheckpointRecord(sequence: sequence, eventID: UUID(), hash: hash ?? SecretHash.sha256Hex("event \(sequence)"),
                              time: Date(timeIntervalSince1970: Double(sequence)), keyID: key, signature: "c2lnbmF0dXJl")
    }

    @Test("checkpoints are stored, read back in sequence order, paged, and the newest is found", arguments: Backend.available)
    func roundTrip(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        #expect(try await f.store.lastCheckpoint() == nil)
        let written = [Self.checkpoint(30), Self.checkpoint(10), Self.checkpoint(20), Self.checkpoint(20, key: "ed25519:bbbb")]
        for c in written { try await f.store.appendCheckpoint(c) }
        let all = try await f.store.checkpoints(after: 0, limit: 100)
        #expect(all.map(\.sequence) == [10, 20, 20, 30])
        #expect(all.map(\.keyID) == ["ed25519:aaaa", "ed25519:aaaa", "ed25519:bbbb", "ed25519:aaaa"])
        #expect(all.first == written[1], "every field survives the round trip")
        #expect(try await f.store.checkpoints(after: 10, limit: 2).map(\.sequence) == [20, 20])
        #expect(try await f.store.checkpoints(after: 30, limit: 10).isEmpty)
        #expect(try await f.store.lastCheckpoint() == written[0])
        await f.cleanup()
    }

    @Test("a second checkpoint for the same sequence and key is ignored; the first stays", arguments: Backend.available)
    func firstStays(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        let first = Self.checkpoint(5)
        try await f.store.appendCheckpoint(first)
        try await f.store.appendCheckpoint(Self.checkpoint(5, hash: String(repeating: "f", count: 64)))
        #expect(try await f.store.checkpoints(after: 0, limit: 10) == [first])
        await f.cleanup()
    }

    @Test("checkpoints cannot be edited or deleted in the database itself", arguments: MigrationTests.sqlBackends)
    func appendOnly(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        try await f.store.appendCheckpoint(Self.checkpoint(1))
        switch backend {
        case .sqlite:
            let store = try SQLiteStore(path: f.location)
            #expect(throws: (any Error).self) { try store.unsafeExecute("UPDATE audit_checkpoints SET hash = 'x'") }
            #expect(throws: (any Error).self) { try store.unsafeExecute("DELETE FROM audit_checkpoints") }
            try await store.close()
        case .postgres:
            let url = try #require((f.store as? PostgresStore)?.url)
            await #expect(throws: (any Error).self) { try await TestPostgres.execute(on: url, "UPDATE audit_checkpoints SET hash = 'x'") }
            await #expect(throws: (any Error).self) { try await TestPostgres.execute(on: url, "DELETE FROM audit_checkpoints") }
        case .memory: break
        }
        #expect(try await f.store.checkpoints(after: 0, limit: 10).count == 1)
        await f.cleanup()
    }

    @Test("the SQLite writer commits with synchronous=FULL in WAL mode (an acknowledged event survives power loss)")
    func sqliteDurability() async throws {
        let f = try await Fixture.make(.sqlite)
        let store = try #require(f.store as? SQLiteStore)
        #expect(try store.writerSynchronousMode() == 2)
        _ = try await store.appendEvents([NewEvent(id: UUID(), time: Date(), classUID: 3002, payloadJSON: "{}")], hasher: EventChain.hasher)
        #expect(FileManager.default.fileExists(atPath: f.location + "-wal"), "WAL mode")
        await f.cleanup()
    }
}
