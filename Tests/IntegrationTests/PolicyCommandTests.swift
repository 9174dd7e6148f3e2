import Foundation
import MenshenCedar
import MenshenServer
import Testing

/// `menshen policy …` as a user runs it: every verb, its exit status and its output.
@Suite("menshen policy")
struct PolicyCommandTests {
    static let shared = Harness.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance/cedar")
    static var haveShared: Bool { FileManager.default.fileExists(atPath: shared.appendingPathComponent("tests").path) }

    static let schema = """
        entity Group;
        entity User in [Group] { name: String, age: Long };
        entity Photo { owner: User, private: Bool };
        action view appliesTo { principal: [User], resource: [Photo], context: { mfa: Bool } };
        action edit appliesTo { principal: [User], resource: [Photo] };
        """
    static let entities = """
        [{"uid": {"type": "User", "id": "alice"}, "attrs": {"name": "Alice", "age": 30}, "parents": [{"type": "Group", "id": "staff"}]},
         {"uid": {"type": "Group", "id": "staff"}, "attrs": {}, "parents": []},
         {"uid": {"type": "Photo", "id": "p1"}, "attrs": {"owner": {"type": "User", "id": "alice"}, "private": true}, "parents": []}]
        """
    static let policies = """
        permit (principal in Group::"staff", action == Action::"view", resource)
        when { context.mfa };

        forbid (principal, action == Action::"edit", resource)
        unless { resource.owner == principal };

        permit (principal, action, resource) when { principal.nickname == "x" };
        """

    /// A directory with policies.cedar, schema.cedarschema and entities.json.
    func workspace(policies: String = PolicyCommandTests.policies) throws -> URL {
        let dir = try Harness.tempDir()
        try policies.write(to: dir.appendingPathComponent("policies.cedar"), atomically: true, encoding: .utf8)
        try Self.schema.write(to: dir.appendingPathComponent("schema.cedarschema"), atomically: true, encoding: .utf8)
        try Self.entities.write(to: dir.appendingPathComponent("entities.json"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test("every policy verb has --help with an abstract",
          arguments: ["validate", "authorize", "format", "link", "conformance", "bench"])
    func help(_ verb: String) throws {
        let r = try Harness.run(["policy", verb, "--help"])
        #expect(r.status == 0)
        #expect(r.out.contains("OVERVIEW:") && r.out.contains("USAGE: menshen policy \(verb)"))
        let top = try Harness.run(["policy", "--help"])
        #expect(top.out.contains(verb))
    }

    @Test("validate accepts valid policies")
    func validateGood() throws {
        let dir = try workspace(policies: "permit (principal, action == Action::\"view\", resource) when { resource.owner == principal };\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Harness.run(["policy", "validate", "--policies", "policies.cedar", "--schema", "schema.cedarschema"], cwd: dir)
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("policies are valid"))
    }

    @Test("validate prints each error with policy id and line:column, and fails")
    func validateBad() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Harness.run(["policy", "validate", "--policies", "policies.cedar", "--schema", "schema.cedarschema"], cwd: dir)
        #expect(r.status == 3)
        // policy2 reads `principal.nickname`, which the schema does not declare (line 7).
        #expect(r.out.contains("policies.cedar:7:"), "\(r.out)")
        #expect(r.out.contains("policy2") && r.out.contains("nickname"))
        #expect(r.out.contains("validation failed"))
    }

    @Test("a parse error names FILE:LINE:COL; a missing file is one clear line")
    func parseErrors() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "permit (principal, action, resource);\nforbid (principal, action, resource) when { 1 + };\n"
            .write(to: dir.appendingPathComponent("bad.cedar"), atomically: true, encoding: .utf8)
        let r = try Harness.run(["policy", "validate", "-p", "bad.cedar", "-s", "schema.cedarschema"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("menshen: error: bad.cedar:2:"), "\(r.err)")
        let missing = try Harness.run(["policy", "format", "nowhere.cedar"], cwd: dir)
        #expect(missing.status == 1)
        #expect(missing.err == "menshen: error: nowhere.cedar: policy file not found\n")
        let badEntities = try Harness.run(["policy", "authorize", "-p", "policies.cedar", "--entities", "policies.cedar",
                                           "-l", "User::\"alice\"", "-a", "Action::\"view\"", "-r", "Photo::\"p1\""], cwd: dir)
        #expect(badEntities.status == 1)
        #expect(badEntities.err.hasPrefix("menshen: error: policies.cedar:1:"), "\(badEntities.err)")
    }

    @Test("input files over the size limit are refused with one clear line")
    func sizeLimit() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let big = dir.appendingPathComponent("big.cedar")
        FileManager.default.createFile(atPath: big.path, contents: Data(repeating: UInt8(ascii: " "), count: 16 * 1024 * 1024 + 1))
        let r = try Harness.run(["policy", "format", big.path])
        #expect(r.status == 1)
        #expect(r.err.contains("larger than the limit"), "\(r.err)")
    }

    func authorize(_ dir: URL, _ principal: String, _ action: String, context: String = "{\"mfa\": true}", json: Bool = false) throws
        -> (status: Int32, out: String, err: String)
    {
        try Harness.run(["policy", "authorize", "--policies", "policies.cedar", "--entities", "entities.json", "--schema", "schema.cedarschema",
                         "--principal", principal, "--action", action, "--resource", "Photo::\"p1\"", "--context", context]
                        + (json ? ["--json"] : []), cwd: dir)
    }

    @Test("authorize: allow exits 0, deny exits 2, with determining policies and errors")
    func authorizeSingle() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let allow = try authorize(dir, "User::\"alice\"", "Action::\"view\"")
        #expect(allow.status == 0, "\(allow.err)")
        #expect(allow.out.hasPrefix("ALLOW\n"))
        #expect(allow.out.contains("  policy0\n"))
        // policy2 fails (no `nickname`): listed as an evaluation error.
        #expect(allow.out.contains("policy2: "))

        let deny = try authorize(dir, "User::\"alice\"", "Action::\"view\"", context: "{\"mfa\": false}")
        #expect(deny.status == 2)
        #expect(deny.out.hasPrefix("DENY\n"))

        let json = try authorize(dir, "User::\"alice\"", "Action::\"view\"", json: true)
        #expect(json.status == 0)
        #expect(json.out.hasPrefix("{\"decision\":\"allow\",\"reasons\":[\"policy0\"],\"errors\":[{\"policy\":\"policy2\",\"message\":"), "\(json.out)")

        // Context from a file; an invalid request (context type) is an error, exit 1.
        try "{\"mfa\": 3}".write(to: dir.appendingPathComponent("ctx.json"), atomically: true, encoding: .utf8)
        let invalid = try authorize(dir, "User::\"alice\"", "Action::\"view\"", context: "ctx.json")
        #expect(invalid.status == 1)
        #expect(invalid.err.contains("invalid request"), "\(invalid.err)")
        let badUID = try authorize(dir, "alice", "Action::\"view\"")
        #expect(badUID.status == 1 && badUID.err.contains("--principal alice"))
    }

    @Test("authorize --batch: one JSON result per line, in one process")
    func authorizeBatch() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        func line(_ id: Int, _ extra: String) -> String {
            "{\"id\":\(id),\"policiesFile\":\"policies.cedar\",\"schemaFile\":\"schema.cedarschema\",\"entitiesFile\":\"entities.json\",\(extra)}"
        }
        let inline = "{\"id\":\"inline\",\"policies\":\"permit(principal,action,resource) when { 9223372036854775807 + 1 > 0 };\\n\\npermit(principal == User::\\\"bob\\\",action,resource);\",\"entities\":[],\"principal\":\"User::\\\"bob\\\"\",\"action\":{\"type\":\"Action\",\"id\":\"view\"},\"resource\":{\"__entity\":{\"type\":\"Photo\",\"id\":\"p1\"}}}"
        let lines = [
            line(1, "\"principal\":{\"type\":\"User\",\"id\":\"alice\"},\"action\":{\"type\":\"Action\",\"id\":\"view\"},\"resource\":{\"type\":\"Photo\",\"id\":\"p1\"},\"context\":{\"mfa\":true}"),
            line(2, "\"principal\":{\"type\":\"User\",\"id\":\"alice\"},\"action\":{\"type\":\"Action\",\"id\":\"view\"},\"resource\":{\"type\":\"Photo\",\"id\":\"p1\"},\"context\":{\"mfa\":false}"),
            inline,
        ]
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("batch.jsonl"), atomically: true, encoding: .utf8)
        let r = try Harness.run(["policy", "authorize", "--batch", "batch.jsonl"], cwd: dir)
        #expect(r.status == 0, "\(r.err)")
        let out = r.out.split(separator: "\n").map(String.init)
        #expect(out.count == 3)
        #expect(out.first?.hasPrefix("{\"id\":1,\"decision\":\"allow\",\"reasons\":[\"policy0\"],\"errors\":[{\"policy\":\"policy2\"") == true)
        #expect(out.dropFirst().first?.hasPrefix("{\"id\":2,\"decision\":\"deny\",\"reasons\":[],") == true)
        #expect(out.last?.hasPrefix("{\"id\":\"inline\",\"decision\":\"allow\",\"reasons\":[\"policy1\"],\"errors\":[{\"policy\":\"policy0\",\"message\":") == true,
                "\(out)")
        #expect(out.last?.contains("overflow") == true)

        // A bad line gives an error result for that line only, and exit status 1.
        try (lines[0] + "\nnot json\n" + "{\"id\":9,\"policies\":\"permit(\"}\n").write(to: dir.appendingPathComponent("bad.jsonl"), atomically: true, encoding: .utf8)
        let bad = try Harness.run(["policy", "authorize", "--batch", "bad.jsonl"], cwd: dir)
        #expect(bad.status == 1)
        let badOut = bad.out.split(separator: "\n").map(String.init)
        #expect(badOut.count == 3)
        #expect(badOut.first?.contains("\"decision\":\"allow\"") == true)
        #expect(badOut.dropFirst().first?.hasPrefix("{\"error\":\"bad.jsonl:2:") == true, "\(badOut)")
        #expect(badOut.last?.hasPrefix("{\"id\":9,\"error\":") == true)
    }

    @Test("format is idempotent; --check and --write")
    func format() throws {
        let messy = "@id(\"a\") permit(principal==User::\"alice\",action in [Action::\"view\",Action::\"edit\"],resource)\nwhen{context.mfa&&(1+2)*3>4||!(resource has owner)};\n// comment\nforbid(principal,action,resource)unless{[1,2].contains(1)};"
        let dir = try workspace(policies: messy)
        defer { try? FileManager.default.removeItem(at: dir) }
        let once = try Harness.run(["policy", "format", "policies.cedar"], cwd: dir)
        #expect(once.status == 0)
        #expect(once.out != messy && once.out.contains("permit (\n"))
        try once.out.write(to: dir.appendingPathComponent("formatted.cedar"), atomically: true, encoding: .utf8)
        let twice = try Harness.run(["policy", "format", "formatted.cedar"], cwd: dir)
        #expect(twice.out == once.out)
        #expect(try Harness.run(["policy", "format", "--check", "formatted.cedar"], cwd: dir).status == 0)
        #expect(try Harness.run(["policy", "format", "--check", "policies.cedar"], cwd: dir).status == 1)
        #expect(try Harness.run(["policy", "format", "--write", "policies.cedar"], cwd: dir).status == 0)
        #expect(try String(contentsOf: dir.appendingPathComponent("policies.cedar"), encoding: .utf8) == once.out)
        // Every hand-written conformance policy file formats idempotently too.
        if Self.haveShared, let files = FileManager.default.enumerator(atPath: Self.shared.appendingPathComponent("tests").path) {
            while let rel = files.nextObject() as? String {
                guard rel.hasSuffix(".cedar") else { continue }
                let path = Self.shared.appendingPathComponent("tests").appendingPathComponent(rel).path
                let a = try Harness.run(["policy", "format", path])
                try a.out.write(to: dir.appendingPathComponent("x.cedar"), atomically: true, encoding: .utf8)
                let b = try Harness.run(["policy", "format", "x.cedar"], cwd: dir)
                #expect(a.status == 0 && a.out == b.out, "\(rel)")
            }
        }
    }

    @Test("link fills template slots and prints the linked policy")
    func link() throws {
        let dir = try workspace(policies: "permit (principal, action, resource);\n\npermit (principal == ?principal, action == Action::\"view\", resource in ?resource);\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Harness.run(["policy", "link", "--policies", "policies.cedar", "--template-id", "policy1", "--new-id", "alice-photos",
                                 "--principal", "User::\"alice\"", "--resource", "Photo::\"p1\""], cwd: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("principal == User::\"alice\""))
        #expect(r.out.contains("resource in Photo::\"p1\""))
        #expect(r.out.contains("alice-photos"))
        let missing = try Harness.run(["policy", "link", "--policies", "policies.cedar", "--template-id", "policy1", "--new-id", "x",
                                       "--principal", "User::\"alice\""], cwd: dir)
        #expect(missing.status == 1 && missing.err.contains("?resource"))
        let notTemplate = try Harness.run(["policy", "link", "-p", "policies.cedar", "--template-id", "policy0", "--new-id", "x"], cwd: dir)
        #expect(notTemplate.status == 1 && notTemplate.err.contains("no template"))
    }

    @Test("conformance passes the hand-written cedar-integration-tests", .enabled(if: PolicyCommandTests.haveShared))
    func conformanceShared() throws {
        let r = try Harness.run(["policy", "conformance", Self.shared.appendingPathComponent("tests").path], timeout: 120)
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.hasSuffix(" passed, 0 failed\n"))
        // Relative paths (as CI passes them) resolve against the working directory.
        let rel = try Harness.run(["policy", "conformance", "tests/decimal", "tests/ip/1.json"], cwd: Self.shared, timeout: 120)
        #expect(rel.status == 0, "\(rel.out)")
        #expect(rel.out.hasSuffix(" passed, 0 failed\n"))
    }

    @Test("conformance prints a mismatch and fails on a wrong expectation")
    func conformanceWrong() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sub = dir.appendingPathComponent("tests")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let test = """
            {"policies": "policies.cedar", "entities": "entities.json", "schema": "schema.cedarschema", "shouldValidate": false,
             "requests": [
              {"description": "alice views with mfa", "principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "view"},
               "resource": {"type": "Photo", "id": "p1"}, "context": {"mfa": true}, "decision": "allow", "reason": ["policy0"], "errors": ["policy2"]},
              {"description": "deliberately wrong", "principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "view"},
               "resource": {"type": "Photo", "id": "p1"}, "context": {"mfa": false}, "decision": "allow", "reason": [], "errors": ["policy2"]}
             ]}
            """
        try test.write(to: sub.appendingPathComponent("wrong.json"), atomically: true, encoding: .utf8)
        let r = try Harness.run(["policy", "conformance", sub.appendingPathComponent("wrong.json").path])
        #expect(r.status == 1)
        #expect(r.out.contains("deliberately wrong"), "\(r.out)")
        #expect(r.out.hasSuffix("2 passed, 1 failed\n"), "\(r.out)")
        let none = try Harness.run(["policy", "conformance", dir.appendingPathComponent("nothing-here").path])
        #expect(none.status == 1)
    }

    @Test("bench times a tiny generated directory")
    func bench() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.moveItem(at: dir.appendingPathComponent("policies.cedar"), to: dir.appendingPathComponent("policies_3.cedar"))
        try "permit (principal, action, resource);\n".write(to: dir.appendingPathComponent("policies_1.cedar"), atomically: true, encoding: .utf8)
        var requests: [String] = []
        for i in 0..<20 {
            requests.append("{\"principal\": {\"type\": \"User\", \"id\": \"\(i % 2 == 0 ? "alice" : "bob")\"}, \"action\": {\"type\": \"Action\", \"id\": \"view\"}, \"resource\": {\"type\": \"Photo\", \"id\": \"p1\"}, \"context\": {\"mfa\": \(i % 3 == 0)}}")
        }
        try ("[" + requests.joined(separator: ",\n") + "]").write(to: dir.appendingPathComponent("requests.json"), atomically: true, encoding: .utf8)
        let r = try Harness.run(["policy", "bench", dir.path, "--json", "--rounds", "2"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        for (line, n) in zip(lines, [1, 3]) {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(obj?["policies"] as? Int == n)
            #expect(Set(obj?.keys.map { $0 } ?? []) == ["policies", "median_us", "p99_us", "decisions_per_s"])
        }
        let text = try Harness.run(["policy", "bench", dir.path, "--rounds", "1", "--no-index"])
        #expect(text.status == 0 && text.out.contains("policies 3: median"))
        let empty = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try Harness.run(["policy", "bench", empty.path])
        #expect(none.status == 1 && none.err.contains("no policies_N.cedar"))
    }

    @Test("the demo organisation's policies parse")
    func demoPolicies() throws {
        #expect(!DemoOrganisation.policies.isEmpty)
        for (id, text) in DemoOrganisation.policies {
            do {
                let set = try CedarParser.parsePolicySet(text)
                #expect(!set.policies.isEmpty, "\(id)")
            } catch {
                Issue.record("demo policy document \(id) does not parse: \(error.rendered(source: text))")
            }
        }
    }
}
