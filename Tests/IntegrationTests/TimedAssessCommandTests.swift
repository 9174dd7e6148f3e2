import Foundation
import MenshenTestSupport
import Testing

/// `menshen assess` as an operator runs it: the real binary over the demo
/// deployment's store, every format written, the JSON validated against
/// `docs/assessment.schema.json` with Python's `jsonschema`
/// (`scripts/validate-assessment.py`), and bad options refused with a clear
/// message and no file written.
@Suite("menshen assess: the maturity report over the demo deployment")
struct TimedAssessCommandTests {
    static var python: String { Harness.packageRoot.appendingPathComponent(".venv-test/bin/python").path }

    /// Runs scripts/validate-assessment.py on a file: exit status and output.
    static func validate(_ file: URL) throws -> (status: Int32, out: String) {
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(python, [Harness.packageRoot.appendingPathComponent("scripts/validate-assessment.py").path, file.path])
        return (r.status, r.stdoutText + r.stderrText)
    }

    /// A data directory the demo has seeded (the demo is started, waited for and stopped).
    static func seededDemo(in dir: URL) throws -> URL {
        let data = dir.appendingPathComponent("menshen-data")
        let demo = try Harness.Demo(dataDir: data, cwd: dir)
        try demo.waitUntilReady()
        demo.kill(signal: SIGTERM)
        return data
    }

    @Test("every format is written from the demo store, in both languages; the JSON validates against the schema and a mutated one does not")
    func formats() async throws {
        try await Harness.offPool { try Self.formatsBody() }
    }

    static func formatsBody() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try seededDemo(in: dir)
        func assess(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
            try Harness.run(["assess", "--data", data.path] + args, timeout: 120)
        }

        for lang in ["zh-TW", "en"] {
            let html = dir.appendingPathComponent("report-\(lang).html")
            let r = try assess(["--format", "html", "--lang", lang, "--out", html.path])
            #expect(r.status == 0, "\(r.err)")
            #expect(r.err.contains("overall: ") && r.err.contains("gaps: "), "summary on stderr: \(r.err)")
            let text = try String(contentsOf: html, encoding: .utf8)
            #expect(text.hasPrefix("<!DOCTYPE html>\n<html lang=\"\(lang)\">"))
            #expect(text.components(separatedBy: "<article class=\"principle ").count - 1 == 36)
            #expect(text.contains("id=\"heatmap\""))
            #expect(text.contains(lang == "en" ? "Zero Trust maturity assessment" : "零信任成熟度評估報告"))
        }
        // The default language is zh-TW.
        let md = dir.appendingPathComponent("report.md")
        let m = try assess(["--format", "md", "--out", md.path])
        #expect(m.status == 0, "\(m.err)")
        #expect(try String(contentsOf: md, encoding: .utf8).hasPrefix("# 零信任成熟度評估報告"))

        let csv = dir.appendingPathComponent("report.csv")
        #expect(try assess(["--format", "csv", "--lang", "en", "--out", csv.path]).status == 0)
        let csvBytes = try Data(contentsOf: csv)
        #expect(csvBytes.starts(with: [0xEF, 0xBB, 0xBF]), "UTF-8 byte-order mark")
        let rows = String(decoding: csvBytes.dropFirst(3), as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.first?.hasPrefix("principle_id,pillar,level,") == true)
        #expect(rows.dropFirst().filter { $0.range(of: #"^[1-5]\.[1-8],"#, options: .regularExpression) != nil }.count == 36)

        // JSON to a file and to standard output: the same document shape, valid against the schema.
        let json = dir.appendingPathComponent("report.json")
        #expect(try assess(["--format", "json", "--out", json.path]).status == 0)
        let stdout = try assess(["--format", "json", "--window", "2w", "--out", "-"])
        #expect(stdout.status == 0)
        // Sorted keys, pretty-printed (from the second run on, "comparison" sorts before "generatedAt").
        #expect(stdout.out.hasPrefix("{\n  \""))
        #expect(((try? JSONSerialization.jsonObject(with: Data(stdout.out.utf8))) as? [String: Any])?["generatedAt"] is String)
        // The window is the one asked for: 30 days by default, 2 weeks, 12 hours.
        let hours = try assess(["--format", "json", "--window", "12h", "--out", "-"])
        for (text, seconds) in [(try String(contentsOf: json, encoding: .utf8), 30 * 86_400.0), (stdout.out, 14 * 86_400.0), (hours.out, 12 * 3600.0)] {
            let doc = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
            let iso = ISO8601DateFormatter()
            let start = (doc["windowStart"] as? String).flatMap(iso.date(from:)), end = (doc["windowEnd"] as? String).flatMap(iso.date(from:))
            #expect(start != nil && end != nil && abs(end!.timeIntervalSince(start!) - seconds) < 1.5, "window of \(seconds) s")
        }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("the schema check needs .venv-test with jsonschema (scripts/test installs it)")
            return
        }
        let valid = try validate(json)
        #expect(valid.status == 0, "\(valid.out)")
        #expect(valid.out.contains("valid"))

        // Mutated documents fail: a verdict outside the enum, a principle missing, an unknown member,
        // a principle twice, a principle in the wrong pillar, a malformed date.
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any] ?? [:]
        typealias Mutation = (String, (inout [String: Any]) -> Void)
        let mutations: [Mutation] = [
            ("verdict", { d in Self.editPrinciple(&d, 0) { $0["verdict"] = "great" } }),
            ("missing principle", { d in d["principles"] = Array((d["principles"] as? [Any] ?? []).dropLast()) }),
            ("unknown member", { d in d["claimedLevel"] = 4 }),
            ("duplicate", { d in
                var list = d["principles"] as? [Any] ?? []
                list[1] = list[0]
                d["principles"] = list
            }),
            ("wrong pillar", { d in Self.editPrinciple(&d, 0) { $0["pillar"] = "data" } }),
            ("date", { d in d["generatedAt"] = "yesterday" }),
            ("level", { d in d["overallLevel"] = 5 }),
        ]
        for (name, mutate) in mutations {
            var doc = original
            mutate(&doc)
            let bad = dir.appendingPathComponent("bad-\(name.replacingOccurrences(of: " ", with: "-")).json")
            try JSONSerialization.data(withJSONObject: doc).write(to: bad)
            let r = try validate(bad)
            #expect(r.status == 1, "mutation '\(name)' must fail validation: \(r.out)")
        }
    }

    static func editPrinciple(_ d: inout [String: Any], _ i: Int, _ edit: (inout [String: Any]) -> Void) {
        var list = d["principles"] as? [Any] ?? []
        guard var p = list[i] as? [String: Any] else { return }
        edit(&p)
        list[i] = p
        d["principles"] = list
    }

    @Test("bad --window, --format, --lang and --out are refused with a clear message, and no file is written", arguments: [
        (["--window", "30x"], "--window '30x': expected a number and a unit h, d or w"),
        (["--window", "0h"], "--window '0h': must be between 1h and 3650d"),
        (["--window", "3651d"], "--window '3651d': must be between 1h and 3650d"),
        (["--window=-2d"], "--window '-2d': expected a number"),
        (["--window", "d"], "--window 'd': expected a number"),
        (["--format", "docx"], "The value 'docx' is invalid for '--format <format>'"),
        (["--lang", "fr"], "The value 'fr' is invalid for '--lang <language>'"),
        (["--format", "pdf", "--out", "-"], "--format pdf cannot be written to standard output"),
        (["--out", ""], "--out is required"),
    ])
    func badOptions(_ c: ([String], String)) async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("report.out")
        let args = c.0.contains("--out") ? c.0 : c.0 + ["--out", out.path]
        let r = try await Harness.runAsync(["assess", "--data", dir.appendingPathComponent("data").path] + args)
        #expect(r.status != 0)
        #expect(r.err.contains(c.1), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "nothing written")
    }

    @Test("a missing store, a missing output directory and a missing Chromium are clear errors; nothing is written")
    func environmentErrors() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("report.html")
        let noStore = try await Harness.runAsync(["assess", "--data", dir.appendingPathComponent("data").path, "--out", out.path])
        #expect(noStore.status == 1)
        #expect(noStore.err.contains("no Menshen database here"), "\(noStore.err)")
        let noDir = try await Harness.runAsync(["assess", "--data", dir.path, "--out", dir.appendingPathComponent("missing/r.html").path])
        #expect(noDir.err.contains("the directory \(dir.path)/missing does not exist"), "\(noDir.err)")
        let empty = dir.appendingPathComponent("empty-path")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let noChromium = try await Harness.runAsync(["assess", "--data", dir.path, "--format", "pdf", "--out", dir.appendingPathComponent("r.pdf").path],
                                                    environment: ["PATH": empty.path])
        #expect(noChromium.status == 1)
        #expect(noChromium.err.contains("--format pdf needs Chromium, which is not installed (Debian: apt-get install chromium)"), "\(noChromium.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["empty-path"], "nothing written")
        // A failed run leaves an existing report exactly as it was (no truncation, no temporary file left).
        let existing = dir.appendingPathComponent("r.pdf")
        try Data("old report".utf8).write(to: existing)
        let again = try await Harness.runAsync(["assess", "--data", dir.path, "--format", "pdf", "--out", existing.path], environment: ["PATH": empty.path])
        #expect(again.status == 1)
        #expect(try Data(contentsOf: existing) == Data("old report".utf8))
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["empty-path", "r.pdf"])
    }

    @Test("assess has its own options and the verify and key subcommands")
    func verifySubcommand() async throws {
        let help = try await Harness.runAsync(["assess", "--help"])
        #expect(help.status == 0)
        #expect(help.out.contains("verify") && help.out.contains("key") && help.out.contains("--window") && help.out.contains("zh-TW")
                && help.out.contains("--evidence-pack"), "\(help.out)")
        let verify = try await Harness.runAsync(["assess", "verify", "/nonexistent.pack"])
        #expect(verify.status == 2)
        #expect(verify.err.contains("could not verify the evidence pack"), "\(verify.err)")
    }
}

/// The pieces of `menshen assess` together, as an operator uses them: an
/// attestation recorded with `menshen attest add` counts in the next
/// assessment, every assessment is stored and the next report shows what
/// changed, and the evidence pack carries the HTML report and the
/// attestation's file byte for byte.
@Suite("menshen assess: attestations, history and the evidence pack together")
struct TimedAssessWiringTests {
    @Test("attest 4.4 → the next assessment meets it and says what changed; the pack verifies and carries the file and the HTML report")
    func wiring() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (pack, bytes) = try await Harness.offPool { try Self.wiringBody(dir) }
        // GNU tar (the independent reader) extracts the attestation's file and the HTML report from the pack.
        let list = try await TimedEvidencePackCommandTests.tar(["-tf", pack.path])
        let paths = String(decoding: list.out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(paths.contains("report.html"), "\(paths)")
        let filePath = try #require(paths.first { $0.hasPrefix("attestations/") && $0.hasSuffix("/pentest-2026.pdf") }, "\(paths)")
        #expect(try await TimedEvidencePackCommandTests.tar(["-xOf", pack.path, filePath]).out == bytes)
        let html = try await TimedEvidencePackCommandTests.tar(["-xOf", pack.path, "report.html"]).out
        #expect(String(decoding: html, as: UTF8.self).contains("id=\"heatmap\""))
    }

    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func principle(_ doc: [String: Any], _ id: String) -> [String: Any]? {
        (doc["principles"] as? [[String: Any]])?.first { $0["principleID"] as? String == id }
    }

    static func wiringBody(_ dir: URL) throws -> (URL, Data) {
        let data = try TimedAssessCommandTests.seededDemo(in: dir)
        func menshen(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try Harness.run(args, timeout: 120) }

        let first = dir.appendingPathComponent("first.json")
        var r = try menshen(["assess", "--data", data.path, "--format", "json", "--out", first.path])
        #expect(r.status == 0, "\(r.err)")
        let before = try json(first)
        #expect(principle(before, "4.4")?["verdict"] as? String == "not_met")
        #expect(before["comparison"] == nil, "the first assessment has nothing to compare with")

        let evidence = dir.appendingPathComponent("pentest-2026.pdf")
        let bytes = Data("%PDF-1.7 penetration test report \(UUID())".utf8)
        try bytes.write(to: evidence)
        let today = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-86_400)).prefix(10)
        r = try menshen(["attest", "add", "--data", data.path, "--principle", "4.4", "--statement", "Annual penetration test, no open high findings",
                         "--by", "CISO 王小明", "--at", String(today), "--expires", "2099-01-01", "--file", evidence.path])
        #expect(r.status == 0, "\(r.err)")

        let second = dir.appendingPathComponent("second.json")
        let pack = dir.appendingPathComponent("evidence.tar")
        r = try menshen(["assess", "--data", data.path, "--format", "json", "--out", second.path, "--evidence-pack", pack.path])
        #expect(r.status == 0, "\(r.err)")
        let after = try json(second)
        let p44 = try #require(principle(after, "4.4"))
        #expect(p44["verdict"] as? String == "met", "\(p44)")
        #expect((p44["attestations"] as? [[String: Any]])?.first?["state"] as? String == "valid")
        let comparison = try #require(after["comparison"] as? [String: Any], "the second assessment compares with the first")
        #expect(comparison["previousID"] as? String == before["id"] as? String)
        let changes = comparison["changes"] as? [[String: Any]] ?? []
        #expect(changes.contains { $0["principleID"] as? String == "4.4" && $0["before"] as? String == "not_met" && $0["after"] as? String == "met" },
                "\(changes)")

        // The pack verifies with the deployment's key.
        r = try menshen(["assess", "verify", pack.path, "--data", data.path])
        #expect(r.status == 0, "\(r.out) \(r.err)")
        return (pack, bytes)
    }
}
