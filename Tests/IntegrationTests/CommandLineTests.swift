import Foundation
import MenshenTestSupport
import Testing
import MenshenStorageSQLite

/// The command line as an operator meets it: help, config check, and every
/// kind of bad input giving one clear line, a non-zero exit, and no change.
@Suite("menshen command line")
struct CommandLineTests {
    @Test("every verb has --help", arguments: [["--help"], ["demo", "--help"], ["serve", "--help"], ["config", "--help"],
                                                ["config", "check", "--help"], ["config", "example", "--help"],
                                                ["store", "status", "--help"], ["version", "--help"]])
    func help(_ args: [String]) throws {
        let r = try Harness.run(args)
        #expect(r.status == 0)
        #expect(r.out.contains("USAGE:"))
    }

    @Test("version prints the version")
    func version() throws {
        let r = try Harness.run(["version"])
        #expect(r.status == 0 && r.out.hasPrefix("menshen "))
    }

    @Test("config check reports all three mistakes in a file and exits non-zero")
    func configCheckBad() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.yaml")
        try "admin:\n  listen: nowhere\nstore:\n  driver: oracle\nlogging:\n  level: info\n".write(to: file, atomically: true, encoding: .utf8)
        let r = try Harness.run(["config", "check", "--no-environment", file.path])
        #expect(r.status == 1)
        #expect(r.out.contains("bad.yaml:2:11: admin.listen: must be host:port"))
        #expect(r.out.contains("bad.yaml:4:11: store.driver: must be one of sqlite, postgres"))
        #expect(r.out.contains("bad.yaml:5:1: logging: unknown key"))
        #expect(r.out.contains("3 problems found"))
    }

    @Test("config check accepts a valid file and the printed example")
    func configCheckGood() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let example = try Harness.run(["config", "example"])
        let file = dir.appendingPathComponent("menshen.yaml")
        try example.out.write(to: file, atomically: true, encoding: .utf8)
        let r = try Harness.run(["config", "check", "--no-environment", file.path])
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.contains("valid"))
    }

    @Test("docs/configuration.md shows exactly what `menshen config example` prints (every key, default and description)")
    func configurationReferenceIsCurrent() throws {
        let example = try Harness.run(["config", "example"])
        #expect(example.status == 0)
        let doc = try String(contentsOf: Harness.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let start = try #require(doc.range(of: "```yaml\n")), end = try #require(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        let shown = String(doc[start.upperBound..<end.lowerBound])
        #expect(shown == example.out, "docs/configuration.md is out of date: replace its yaml block with `menshen config example`")
    }

    @Test("serve with a missing or invalid config says so and exits non-zero")
    func serveBadConfig() throws {
        let missing = try Harness.run(["serve", "--config", "/nonexistent/menshen.yaml"])
        #expect(missing.status != 0)
        #expect(missing.err == "menshen: config error: /nonexistent/menshen.yaml: configuration file not found\n")
    }

    @Test("a corrupt SQLite file is refused with one line and left byte for byte as it was")
    func corruptSQLite() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("menshen.sqlite")
        let garbage = Data((0..<8192).map { UInt8(($0 * 31 + 7) & 0xFF) })
        try garbage.write(to: db)
        let r = try Harness.run(["store", "status", "--data", dir.path])
        #expect(r.status != 0)
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(r.err.contains("menshen.sqlite: not a Menshen database or damaged"))
        #expect(try Data(contentsOf: db) == garbage)
    }

    @Test("a database written by a newer Menshen is refused untouched")
    func newerSchema() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("m.yaml")
        let db = dir.appendingPathComponent("menshen.sqlite")
        try "store:\n  sqlite:\n    path: \(db.path)\n".write(to: config, atomically: true, encoding: .utf8)
        _ = try Harness.run(["store", "status", "--config", config.path])  // creates nothing: no file yet
        try sqlite(db.path, "CREATE TABLE menshen_schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL); INSERT INTO menshen_schema_migrations VALUES (99, 'future', 0);")
        let before = try Data(contentsOf: db)
        let r = try Harness.run(["store", "status", "--data", dir.path])
        #expect(r.status != 0)
        #expect(r.err.contains("schema version 99 is newer than this Menshen knows (\(SQLiteMigrations.all.map(\.version).max() ?? 0))"), "\(r.err)")
        #expect(try Data(contentsOf: db) == before)
    }

    @Test("a SQLite file locked by another process gives a clear error after the busy timeout")
    func lockedSQLite() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("menshen.sqlite")
        // Create an empty-but-valid database in rollback-journal mode, then hold an exclusive lock on it.
        try sqlite(db.path, "CREATE TABLE placeholder(x);")
        let holder = ChildProcess()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import sqlite3, time, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            time.sleep(20)
            """, db.path]
        let holderOut = try Harness.Collector()
        holder.outputPath = holderOut.url.path
        holder.errorPath = "/dev/null"   // only its "locked" line: a traceback ("database is locked") must not count
        try holder.run()
        defer { holder.signal(SIGKILL); holder.waitUntilExit(); _ = holderOut.finish() }
        let deadline = Date().addingTimeInterval(10)
        while !holderOut.text.contains("locked"), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let config = dir.appendingPathComponent("m.yaml")
        try "store:\n  sqlite:\n    path: \(db.path)\n    busy_timeout_seconds: 1\n".write(to: config, atomically: true, encoding: .utf8)
        let r = try Harness.run(["store", "status", "--config", config.path])
        #expect(r.status != 0)
        #expect(r.err.contains("locked"), "\(r.err)")
    }

    @Test("an unreachable PostgreSQL gives one clear line naming the server, not its password")
    func unreachablePostgres() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("pg.yaml")
        try """
            store:
              driver: postgres
              postgres:
                url: postgres://menshen:s3cret@127.0.0.1:1/menshen?sslmode=disable
                connect_timeout_seconds: 2
            """.write(to: config, atomically: true, encoding: .utf8)
        let r = try Harness.run(["serve", "--config", config.path])
        #expect(r.status != 0)
        #expect(r.err.contains("postgres://menshen@127.0.0.1:1/menshen: PostgreSQL is unreachable"), "\(r.err)")
        #expect(!r.err.contains("s3cret"))
    }

    @Test("serve refuses to start on a stored policy set that does not validate, naming document and line")
    func invalidStoredPolicy() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        let demo = try Harness.Demo(dataDir: data, cwd: dir)
        try demo.waitUntilReady()
        demo.kill(signal: SIGTERM)
        let db = data.appendingPathComponent("menshen.sqlite").path
        try sqlite(db, """
            INSERT INTO policies(policy_id, version, text, author, comment, created_at)
            VALUES ('zz-typo', 1, 'permit (principal, action, resource)
            when { context.sesion.loa >= 3 };', 'test', '', 0);
            """)
        let config = dir.appendingPathComponent("m.yaml")
        try "server:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nstore:\n  sqlite:\n    path: \(db)\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let r = try Harness.run(["serve", "--config", config.path], timeout: 30)
        #expect(r.status == 1)
        #expect(r.err.contains("menshen: policy error: zz-typo.cedar (v1):2:"), "\(r.err)")
    }

    /// Runs SQL with Python's sqlite3 module (an independent writer).
    func sqlite(_ path: String, _ sql: String) throws {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", path, sql])
        #expect(r.status == 0, "\(r.stderrText)")
    }
}
