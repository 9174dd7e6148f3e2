import Foundation
import MenshenTestSupport
import MenshenVisibility
import Testing

/// Runs pySigma (the reference Sigma implementation) over every built-in rule
/// file, offline, through `scripts/validate-sigma.py` in the `.venv-test`
/// virtualenv that `scripts/test` prepares. A missing venv fails the test.
@Suite("pySigma validates the built-in Sigma rules")
struct PySigmaValidationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = root.appendingPathComponent(".venv-test/bin/python")
    static let script = root.appendingPathComponent("scripts/validate-sigma.py")

    static func run(_ files: [SigmaRuleFile]) throws -> (status: Int32, output: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-sigma-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var paths: [String] = []
        for f in files {
            let url = dir.appendingPathComponent(f.name)
            try f.text.write(to: url, atomically: true, encoding: .utf8)
            paths.append(url.path)
        }
        var env = ProcessInfo.processInfo.environment
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait(python.path, [script.path] + paths, environment: env)
        return (r.status, r.stdoutText + r.stderrText)
    }

    static func requireVenv() throws {
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            Issue.record("""
                The pySigma virtualenv is missing: \(python.path) does not exist. Create it with \
                `python3 -m venv .venv-test && .venv-test/bin/pip install pysigma` (scripts/test installs it).
                """)
            throw CancellationError()
        }
    }

    @Test("every built-in Sigma rule file passes pySigma's validators (ATT&CK and D3FEND tag validators excluded: they download data)")
    func builtInRulesValidate() throws {
        try Self.requireVenv()
        #expect(!BuiltInRules.sigmaFiles.isEmpty)
        let (status, output) = try Self.run(BuiltInRules.sigmaFiles)
        #expect(status == 0, "pySigma found problems:\n\(output)")
        #expect(output.contains("\(BuiltInRules.sigmaFiles.count) passed, 0 failed"), "\(output)")
        // Our own loader accepts the same files.
        let set = try BuiltInRules.ruleSet()
        #expect(set.detections.count + set.correlations.count == BuiltInRules.sigmaFiles.map { $0.text.components(separatedBy: "\n---\n").count }.reduce(0, +))
    }

    @Test("the harness is not vacuous: a rule pySigma rejects makes it fail")
    func harnessCatchesProblems() throws {
        try Self.requireVenv()
        let bad = SigmaRuleFile(name: "menshen_bad_rule.yml", text: """
            title: Bad rule
            id: 5d4f3c3a-0000-4000-8000-000000000001
            status: test
            logsource:
                product: menshen
                category: authentication
            detection:
                selection:
                    user.name|base64x: a
                condition: selection
            level: high

            """)
        let (status, output) = try Self.run([bad])
        #expect(status == 1, "\(output)")
        #expect(output.contains("base64x"), "\(output)")
        let dangling = SigmaRuleFile(name: "menshen_dangling_rule.yml", text: """
            title: Dangling rule
            id: 5d4f3c3a-0000-4000-8000-000000000002
            status: test
            logsource:
                product: menshen
                category: authentication
            detection:
                selection:
                    user.name: a
                unused:
                    user.name: b
                condition: selection
            level: high

            """)
        let (status2, output2) = try Self.run([dangling])
        #expect(status2 == 1 && output2.contains("DanglingDetection"), "\(output2)")
    }
}
