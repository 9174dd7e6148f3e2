import Foundation
import MenshenCore
import MenshenStorage
import MenshenTestSupport
@testable import MenshenStorageSQLite
import Testing

/// The SQLite store checkpoints its WAL on a connection of its own, off the writer: the writer's automatic
/// checkpoint is off, the background one runs after enough appended events, and the database file then
/// holds the events without the WAL (read with Python's sqlite3 after the WAL is set aside).
@Suite("SQLite background checkpoints")
struct SQLiteCheckpointTests {
    #if os(Linux)
    /// The store's asynchronous reads and writes (the decision audit's batches among them) run on dispatch threads
    /// at nice 0 or above (lower priority), never below like GRDB's default QoS (`userInitiated`: nice −2 on Linux,
    /// where they preempted the gateway's event loops). Raising a thread's priority needs root or CAP_SYS_NICE; CI
    /// runs as root, where the old default fails this test (elsewhere it cannot fail). A test process started at a
    /// higher nice keeps it, and still passes.
    @Test func databaseWorkNotAboveRequests() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-qos-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let nice = try await store.databaseThreadNice()
        #expect(nice.write >= 0 && nice.read >= 0, "write at nice \(nice.write), read at nice \(nice.read)")
        try await store.close()
    }
    #endif

    @Test func checkpointsRunOffTheWriter() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        // The writer connection no longer checkpoints on commit.
        #expect(try await store.writerPragma("wal_autocheckpoint") == 0)
        let before = store.backgroundCheckpoints
        let events = SQLiteStore.checkpointEvery.events + 500
        var appended = 0
        while appended < events {
            let batch = (0..<500).map { n in
                NewEvent(id: UUID(), time: Date(timeIntervalSince1970: 1_795_000_000 + Double(appended + n)), classUID: 6001, severityID: 1,
                         payloadJSON: #"{"class_uid":6001,"n":\#(appended + n),"pad":"\#(String(repeating: "x", count: 600))"}"#)
            }
            _ = try await store.appendEvents(batch, hasher: EventChain.hasher)
            appended += batch.count
        }
        // A checkpoint follows the appends (generous deadline: a loaded parallel run, not a timing claim).
        let deadline = ContinuousClock.now + .seconds(120)
        while store.backgroundCheckpoints == before, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(store.backgroundCheckpoints > before)
        // Once nothing else is written, a later round copies every frame: the database file alone holds the log.
        let copy = dir.appendingPathComponent("copy.sqlite").path
        var count = ""
        while ContinuousClock.now < deadline {
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: file, toPath: copy)   // the main file only: no -wal beside it
            count = try Self.python("""
                import sqlite3, sys
                print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM events").fetchone()[0])
                """, copy)
            if count == "\(events)" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(count == "\(events)")
        try await store.close()
        #expect(store.backgroundCheckpoints >= 1)
    }

    static func python(_ script: String, _ argument: String) throws -> String {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        try spawnAndWait("/usr/bin/env", ["python3", "-c", script, argument]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
