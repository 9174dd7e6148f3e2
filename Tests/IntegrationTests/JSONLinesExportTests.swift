import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// The JSON Lines file export on a real SQLite file of real sign-in events: rotation by size keeps the
/// configured number of files, every event is in exactly one file and in order, also after the exporter
/// was stopped with a torn last line and a cursor that was never saved; bad `export.jsonl.*` values are
/// refused by `menshen config check`.
@Suite("JSON Lines export")
struct JSONLinesExportTests {
    static func signIns(_ store: SQLiteStore, _ names: [String]) async throws {
        let identity = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
        for n in names { try await identity.authentication(.logon, user: nil, userName: n, success: false, detail: "wrong password", source: "192.0.2.1") }
    }

    /// Runs an exporter until it wrote through `sequence` and saved its cursor there (or 60 s), then stops it.
    /// (The status moves when the file is synced, the cursor just after: stopping in between would leave the
    /// cursor behind, as a crash would.)
    static func export(_ store: SQLiteStore, _ settings: JSONLinesExportSettings, through sequence: Int64) async throws -> JSONLinesExporter.Status {
        let exporter = JSONLinesExporter(store: store, settings: settings)
        let task = Task { try await exporter.run() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if exporter.status.writtenSequence >= sequence, try await store.cursor(named: settings.cursorName) ?? 0 >= sequence { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        task.cancel()
        _ = try? await task.value
        return exporter.status
    }

    /// The sequences in the files, oldest file first (path.N … path.1, path), and each file's size.
    static func files(_ path: String, keep: Int) throws -> (sequences: [[Int64]], sizes: [Int]) {
        var out: [[Int64]] = [], sizes: [Int] = []
        for name in (1...keep).reversed().map({ "\(path).\($0)" }) + [path]
        where FileManager.default.fileExists(atPath: name) {
            let text = try String(contentsOfFile: name, encoding: .utf8)
            sizes.append(text.utf8.count)
            #expect(text.isEmpty || text.hasSuffix("\n"), "\(name) ends with a whole line")
            out.append(text.split(separator: "\n").map { line in
                ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["sequence"] as? Int64 ?? -1
            })
        }
        return (out, sizes)
    }

    @Test("rotation by size keeps N files; every event in exactly one file, in order; old files dropped beyond N")
    func rotation() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        try await Self.signIns(store, (1...300).map { "user-\($0)" })
        let path = dir.appendingPathComponent("out/events.jsonl").path
        try FileManager.default.createDirectory(atPath: dir.appendingPathComponent("out").path, withIntermediateDirectories: true)

        // Enough files for everything: each of the 300 events exactly once, in order, files within the size.
        let all = JSONLinesExportSettings(path: path, maxFileBytes: 16_384, keepFiles: 100, batchSize: 64)
        let status = try await Self.export(store, all, through: 300)
        #expect(status.writtenSequence == 300 && status.linesWritten == 300, "\(status)")
        let (sequences, sizes) = try Self.files(path, keep: 100)
        #expect(sequences.flatMap { $0 } == Array(1...300), "every event once, in order across the files")
        #expect(sequences.count > 5 && status.rotations == sequences.count - 1, "\(sizes)")
        #expect(sizes.allSatisfy { $0 <= 16_384 })
        #expect(try await store.cursor(named: "export.jsonl") == 300)
        // Each line is what `audit search --json` prints: the stored event under "event".
        let first = try String(contentsOfFile: "\(path).\(sequences.count - 1)", encoding: .utf8).split(separator: "\n").first ?? ""
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(((object["event"] as? [String: Any])?["user"] as? [String: Any])?["name"] as? String == "user-1")

        // Keep 2: only the newest two rotated files and the active one remain, and they hold the newest events in order.
        let dir2 = dir.appendingPathComponent("keep2")
        try FileManager.default.createDirectory(at: dir2, withIntermediateDirectories: true)
        let path2 = dir2.appendingPathComponent("events.jsonl").path
        let two = JSONLinesExportSettings(path: path2, maxFileBytes: 16_384, keepFiles: 2, batchSize: 64, cursorName: "export.jsonl.keep2")
        _ = try await Self.export(store, two, through: 300)
        let kept = try Self.files(path2, keep: 5)
        #expect(kept.sequences.count == 3, "\(kept.sizes)")
        #expect(!FileManager.default.fileExists(atPath: "\(path2).3"))
        let flat = kept.sequences.flatMap { $0 }
        #expect(flat.last == 300 && flat == Array((flat.first ?? 0)...300) && (flat.first ?? 0) > 1, "the newest, contiguous: \(flat.first ?? 0)…")
        try await store.close()
    }

    @Test("after a crash (a torn last line, the cursor not saved) the export resumes: every event exactly once")
    func resume() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        try await Self.signIns(store, (1...120).map { "user-\($0)" })
        let path = dir.appendingPathComponent("events.jsonl").path
        let settings = JSONLinesExportSettings(path: path, maxFileBytes: 8192, keepFiles: 50, batchSize: 25)
        _ = try await Self.export(store, settings, through: 120)
        // As if the process died: the cursor never saved, and half a line written.
        try await store.saveCursor(named: "export.jsonl", sequence: 0, at: Date())
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"sequence":121,"id":"half-writ"#.utf8))
        try handle.close()
        try await Self.signIns(store, (121...200).map { "user-\($0)" })
        let status = try await Self.export(store, settings, through: 200)
        #expect(status.writtenSequence == 200 && status.linesWritten == 80, "only the new events are written: \(status)")
        let (sequences, _) = try Self.files(path, keep: 50)
        #expect(sequences.flatMap { $0 } == Array(1...200), "exactly once, in order, the torn line gone")
        // The file that is not an export is refused rather than appended to.
        let other = dir.appendingPathComponent("not-ours.jsonl").path
        try "hello\n".write(toFile: other, atomically: true, encoding: .utf8)
        let refused = JSONLinesExporter(store: store, settings: JSONLinesExportSettings(path: other, cursorName: "export.jsonl.other"))
        let task = Task { try await refused.run() }
        let deadline = Date().addingTimeInterval(60)   // a loaded parallel run can starve the exporter for seconds
        while refused.status.lastError == nil, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        task.cancel()
        _ = try? await task.value
        #expect(refused.status.lastError?.contains("the last line is not an exported event") == true, "\(refused.status)")
        #expect(try String(contentsOfFile: other, encoding: .utf8) == "hello\n")
        try await store.close()
    }

    @Test("menshen serve with export.jsonl writes the events another process adds to the default file next to the database")
    func serve() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (port, admin, gateway) = (try Harness.freePort(), try Harness.freePort(), try Harness.freePort())
        let file = dir.appendingPathComponent("menshen.yaml")
        try """
            server:
              listen: 127.0.0.1:\(port)
              public_url: http://localhost:\(port)
            gateway:
              listen: 127.0.0.1:\(gateway)
            admin:
              listen: 127.0.0.1:\(admin)
            store:
              sqlite:
                path: \(dir.appendingPathComponent("m.sqlite").path)
            export:
              jsonl:
                enabled: true
                keep_files: 2
            """.write(to: file, atomically: true, encoding: .utf8)
        let process = ChildProcess()
        defer { process.signal(SIGTERM); process.waitUntilExit() }
        let box = UncheckedBox(value: process)
        try await Harness.offPool { try Harness.startServe(box.value, config: file.path, adminPort: admin) }
        #expect(try await Harness.runAsync(["user", "add", "jsonl-mei", "--config", file.path]).status == 0)
        let path = dir.appendingPathComponent("events.jsonl").path
        let deadline = ContinuousClock.now + .seconds(20)
        var text = ""
        while ContinuousClock.now < deadline {
            text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.contains("jsonl-mei") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(text.contains("jsonl-mei") && text.hasSuffix("\n"), "\(path): \(text.prefix(300))")
    }

    @Test("bad export.jsonl values are refused by config check with the key named")
    func badConfig() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.yaml").path
        for (yaml, key, message) in [
            ("export:\n  jsonl:\n    enabled: true\n    max_file_bytes: 100\n", "export.jsonl.max_file_bytes", "4096"),
            ("export:\n  jsonl:\n    enabled: true\n    keep_files: 0\n", "export.jsonl.keep_files", "1"),
            ("export:\n  jsonl:\n    enabled: maybe\n", "export.jsonl.enabled", "maybe"),
            ("store:\n  driver: postgres\n  postgres:\n    url: postgres://u@db/menshen\nexport:\n  jsonl:\n    enabled: true\n", "export.jsonl.path",
             "is required when export.jsonl.enabled with store.driver postgres"),
        ] {
            try yaml.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try await Harness.runAsync(["config", "check", file])
            #expect(r.status != 0 && (r.out + r.err).contains(key) && (r.out + r.err).contains(message), "\(yaml): \(r)")
        }
        try "export:\n  jsonl:\n    enabled: true\n    path: /var/log/menshen/events.jsonl\n    keep_files: 3\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await Harness.runAsync(["config", "check", file]).status == 0)
    }
}
