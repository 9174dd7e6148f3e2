import Crypto
import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorageSQLite
import MenshenTestSupport
import Testing

/// `menshen assess --evidence-pack` and `menshen assess verify` (the real
/// binary) on a real SQLite deployment seeded with the demo organisation and a
/// signed audit checkpoint. GNU tar is the independent oracle for the archive.
@Suite("menshen assess evidence pack")
struct TimedEvidencePackCommandTests {
    struct Deployment {
        let dir: URL
        var data: String { dir.appendingPathComponent("menshen-data").path }
        var pack: String { dir.appendingPathComponent("evidence.tar").path }

        /// The demo organisation, five audit events and a checkpoint signed at sequence 5.
        static func make() async throws -> Deployment {
            let d = Deployment(dir: try Harness.tempDir())
            try FileManager.default.createDirectory(atPath: d.data, withIntermediateDirectories: true)
            let store = try SQLiteStore(path: d.data + "/menshen.sqlite")
            try await DemoOrganisation.seed(into: store, upstream: "http://127.0.0.1:9", host: "localhost", clock: SystemClock())
            let events = IdentityEvents(store: store, clock: SystemClock(), random: SystemRandomSource())
            for i in 0..<5 {
                try await events.authentication(.logon, user: nil, userName: "user-\(i)", success: false, detail: "wrong password",
                                                source: "192.0.2.\(i + 1)")
            }
            try await store.close()
            let r = try await Harness.runAsync(["audit", "checkpoint", "--data", d.data])
            #expect(r.status == 0, "\(r)")
            return d
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    /// Runs GNU tar; returns its status and raw stdout.
    static func tar(_ args: [String]) async throws -> (status: Int32, out: Data) {
        try await Harness.offPool {
            // posix_spawn, not Foundation's Process (see `spawnAndWait`).
            let r = try spawnAndWait("/usr/bin/tar", args)
            return (r.status, Data(r.stdout))
        }
    }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    @Test("a written pack verifies with the deployment's key and its published key; GNU tar reads the same files")
    func writeAndVerify() async throws {
        let d = try await Deployment.make()
        defer { d.cleanup() }
        let w = try await Harness.runAsync(["assess", "--data", d.data, "--evidence-pack", d.pack])
        #expect(w.status == 0 && w.out.contains("signed by:       ed25519:"), "\(w)")
        let mode = (try FileManager.default.attributesOfItem(atPath: d.pack)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
        let keyFile = d.data + "/assessment.key"
        #expect(((try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int) ?? 0) == 0o600)

        let v = try await Harness.runAsync(["assess", "verify", d.pack, "--data", d.data])
        #expect(v.status == 0 && v.out.contains("evidence pack:  VALID"), "\(v)")
        for check in ["archive", "canonical", "manifest", "signature", "files", "report"] {
            #expect(v.out.contains("\(check):") && !v.out.contains("FAILED"), "\(check): \(v.out)")
        }
        let key = try await Harness.runAsync(["assess", "key", "--data", d.data])
        let parts = key.out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        #expect(key.status == 0 && parts.count == 2 && parts[0].hasPrefix("ed25519:"), "\(key)")
        #expect(w.out.contains(parts[0]) && v.out.contains("signer:         \(parts[0])"))
        // A regulator with only the pack and the published key (no deployment): valid, also with a key file.
        let offline = try await Harness.runAsync(["assess", "verify", d.pack, "--public-key", parts[1], "--data", d.dir.path + "/nowhere", "--json"])
        let json = (try? JSONSerialization.jsonObject(with: Data(offline.out.utf8))) as? [String: Any] ?? [:]
        #expect(offline.status == 0 && json["status"] as? String == "valid" && json["verified_by"] as? String == parts[0], "\(offline)")
        let published = d.dir.appendingPathComponent("published.key").path
        try (key.out).write(toFile: published, atomically: true, encoding: .utf8)
        #expect(try await Harness.runAsync(["assess", "verify", d.pack, "--public-key", published]).status == 0)

        // GNU tar lists the same files the manifest lists, and extracts the same bytes.
        let list = try await Self.tar(["-tf", d.pack])
        let paths = String(decoding: list.out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(list.status == 0 && paths == paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(Set(["manifest.json", "manifest.sig", "report.json", "attestations.json", "policies.json", "audit-checkpoint.json"])
            .isSubset(of: Set(paths)), "\(paths)")
        #expect(paths.filter { $0.hasPrefix("policies/") && $0.hasSuffix(".cedar") }.count == DemoOrganisation.policies.count)
        let manifestData = try await Self.tar(["-xOf", d.pack, "manifest.json"]).out
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let files = try #require(manifest["files"] as? [[String: Any]])
        #expect(files.compactMap { $0["path"] as? String } == paths.filter { $0 != "manifest.json" && $0 != "manifest.sig" })
        for f in files {
            let path = try #require(f["path"] as? String)
            let bytes = try await Self.tar(["-xOf", d.pack, path]).out
            #expect(Self.sha256(bytes) == f["sha256"] as? String && bytes.count == f["size"] as? Int, "\(path)")
        }
        let checkpoint = try await Self.tar(["-xOf", d.pack, "audit-checkpoint.json"]).out
        #expect(String(decoding: checkpoint, as: UTF8.self).contains(#""sequence" : 5"#))
        #expect((manifest["signer"] as? [String: Any])?["fingerprint"] as? String == parts[0])
    }

    @Test("with a routes file, the pack holds its policies (compiled require: permits and listed Cedar files) beside the store's, and verifies")
    func routesFilePolicies() async throws {
        let d = try await Deployment.make()
        defer { d.cleanup() }
        let routes = d.dir.appendingPathComponent("routes.yaml").path
        try FileManager.default.createDirectory(atPath: d.dir.appendingPathComponent("policies").path, withIntermediateDirectories: true)
        let extra = "@id(\"wiki-no-vendors\")\nforbid (principal, action, resource == Application::\"wiki\")\nwhen { principal.kind == \"vendor\" };\n"
        try extra.write(toFile: d.dir.appendingPathComponent("policies/extra.cedar").path, atomically: true, encoding: .utf8)
        try """
            policies:
              - policies/extra.cedar
            routes:
              - id: wiki
                host: wiki.bank.example
                upstreams: ["http://10.0.0.5:8080"]
                classification: internal
                require:
                  min_loa: 2
                  groups: [staff]
            """.write(toFile: routes, atomically: true, encoding: .utf8)
        // `--data` ignores the environment; a configuration file names the routes file (and the same store).
        let config = d.dir.appendingPathComponent("menshen.yaml").path
        try """
            store:
              driver: sqlite
              sqlite:
                path: "\(d.data)/menshen.sqlite"
            gateway:
              routes_file: "\(routes)"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let w = try await Harness.runAsync(["assess", "--config", config, "--evidence-pack", d.pack])
        #expect(w.status == 0, "\(w)")
        let v = try await Harness.runAsync(["assess", "verify", d.pack, "--data", d.data])
        #expect(v.status == 0 && v.out.contains("evidence pack:  VALID"), "\(v)")

        let paths = String(decoding: try await Self.tar(["-tf", d.pack]).out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(paths.filter { $0.hasPrefix("policies/store/") }.count == DemoOrganisation.policies.count, "\(paths)")
        #expect(paths.filter { $0.hasPrefix("policies/routes-file/") } == ["policies/routes-file/1.cedar", "policies/routes-file/2.cedar"], "\(paths)")
        // Each is listed in the signed manifest (verified above) and named in policies.json by its source and document.
        let index = try #require(try JSONSerialization.jsonObject(with: try await Self.tar(["-xOf", d.pack, "policies.json"]).out) as? [[String: Any]])
        let fromFile = index.filter { $0["source"] as? String == "routes-file" }
        #expect(fromFile.count == 2 && index.count == DemoOrganisation.policies.count + 2)
        #expect(fromFile.contains { ($0["document"] as? String)?.contains("route wiki") == true })
        #expect(fromFile.contains { ($0["document"] as? String)?.hasSuffix("policies/extra.cedar") == true })
        var texts: [String] = []
        for path in ["policies/routes-file/1.cedar", "policies/routes-file/2.cedar"] {
            texts.append(String(decoding: try await Self.tar(["-xOf", d.pack, path]).out, as: UTF8.self))
        }
        #expect(texts.contains(extra), "\(texts)")
        #expect(texts.contains { $0.contains("Application::\"wiki\"") && $0.contains("Group::\"staff\"") }, "\(texts)")

        // A routes file that does not load: refused, nothing written.
        try "routes: [".write(toFile: routes, atomically: true, encoding: .utf8)
        let other = d.dir.appendingPathComponent("broken.tar").path
        let broken = try await Harness.runAsync(["assess", "--config", config, "--evidence-pack", other])
        #expect(broken.status != 0 && broken.err.contains("routes file"), "\(broken)")
        #expect(!FileManager.default.fileExists(atPath: other))
    }

    @Test("a changed byte, another key, an unreadable file or no key: exit 1, 1, 2, 2, each with its message")
    func refusals() async throws {
        let d = try await Deployment.make()
        defer { d.cleanup() }
        #expect(try await Harness.runAsync(["assess", "--data", d.data, "--evidence-pack", d.pack]).status == 0)
        let original = try Data(contentsOf: URL(fileURLWithPath: d.pack))

        // One byte changed in the middle of the report (content), then in the first header.
        for offset in [original.count / 2, 10] {
            var bytes = original
            bytes[offset] ^= 0x01
            let tampered = d.dir.appendingPathComponent("tampered-\(offset).tar").path
            try bytes.write(to: URL(fileURLWithPath: tampered))
            let r = try await Harness.runAsync(["assess", "verify", tampered, "--data", d.data])
            #expect(r.status == 1 && r.out.contains("DOES NOT VERIFY") && r.out.contains("FAILED"), "\(offset): \(r)")
        }

        // Another deployment's key.
        let other = try await Harness.runAsync(["assess", "key", "--data", d.dir.path + "/other"])
        let otherKey = String(other.out.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let wrong = try await Harness.runAsync(["assess", "verify", d.pack, "--public-key", otherKey])
        #expect(wrong.status == 1 && wrong.out.contains("does not verify with any trusted key"), "\(wrong)")

        // Not readable as a file (a directory; tests run as root, so permissions would not stop the read), missing.
        for path in [d.dir.path, d.dir.path + "/missing.tar"] {
            let r = try await Harness.runAsync(["assess", "verify", path, "--data", d.data])
            #expect(r.status == 2 && r.err.contains("could not verify the evidence pack"), "\(r)")
        }
        // No key to trust: none given and the deployment has none (it is not created by verify).
        let none = try await Harness.runAsync(["assess", "verify", d.pack, "--data", d.dir.path + "/empty"])
        #expect(none.status == 2 && none.err.contains("no evidence-pack signing key"), "\(none)")
        #expect(!FileManager.default.fileExists(atPath: d.dir.path + "/empty/assessment.key"))
        // A bad --public-key is refused, not ignored.
        #expect(try await Harness.runAsync(["assess", "verify", d.pack, "--public-key", "not-a-key"]).status == 2)
        // The pack was not changed by any of this.
        #expect(try Data(contentsOf: URL(fileURLWithPath: d.pack)) == original)
    }
}

/// `EvidencePackAssembler` in process on a real SQLite store: attestation files
/// go into the pack byte for byte; a missing or altered one is refused with a
/// clear message and nothing is written (no pack, no temporary file).
@Suite("Evidence pack assembler")
struct EvidencePackAssemblerTests {
    static func attestation(_ files: [String: Data]) -> Attestation {
        Attestation(id: "pentest-2026", principleID: "4.4", statement: "External penetration test, no open high findings",
                    attestedBy: "ciso@bank.example", attestedAt: Date(timeIntervalSince1970: 1_790_000_000),
                    expiresAt: Date(timeIntervalSince1970: 1_900_000_000),
                    files: files.keys.sorted().map { Attestation.EvidenceFile(name: $0, sha256: TimedEvidencePackCommandTests.sha256(files[$0]!), size: files[$0]!.count) })
    }

    @Test("attestation files are packed and verify; a missing or altered file is refused and nothing is written")
    func attestationFiles() async throws {
        let d = try await TimedEvidencePackCommandTests.Deployment.make()
        defer { d.cleanup() }
        let config = try ConfigLoader.load(file: nil, environment: [:], overrides: ["store.driver": "sqlite", "store.sqlite.path": d.data + "/menshen.sqlite"])
        let store = try SQLiteStore(path: d.data + "/menshen.sqlite")
        let key = try EvidencePackAssembler.signingKey(config, mayCreate: true)
        let assessment = try await AssessmentRunner.assess(configuration: config, store: store, window: 30 * 86_400, now: Date(),
                                                           attestations: [], previous: nil)
        let report = Data("%PDF-1.7 penetration test report 滲透測試".utf8)
        let a = Self.attestation(["report.pdf": report])
        do {
            let summary = try await EvidencePackAssembler.write(assessment: assessment, reportHTML: "<!doctype html><p>report</p>",
                                                                attestations: [(a, ["report.pdf": report])], configuration: config,
                                                                store: store, key: key, to: d.pack)
            #expect(summary.files.contains("attestations/pentest-2026/report.pdf") && summary.files.contains("report.html"))
            let v = EvidencePack.verify(Array(try Data(contentsOf: URL(fileURLWithPath: d.pack))), trustedKeys: [key.publicKey])
            #expect(v.valid, "\(v.failures)")
            #expect(try await TimedEvidencePackCommandTests.tar(["-xOf", d.pack, "attestations/pentest-2026/report.pdf"]).out == report)

            let other = d.dir.appendingPathComponent("other.tar").path
            for files in [[:], ["report.pdf": Data("%PDF-1.7 edited".utf8)]] as [[String: Data]] {
                await #expect(throws: AssessmentError.self) {
                    _ = try await EvidencePackAssembler.write(assessment: assessment, reportHTML: nil, attestations: [(a, files)],
                                                              configuration: config, store: store, key: key, to: other)
                }
            }
            #expect(!FileManager.default.fileExists(atPath: other))
            #expect(try FileManager.default.contentsOfDirectory(atPath: d.dir.path).allSatisfy { !$0.hasSuffix(".tmp") })
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    @Test("the signing key: PostgreSQL needs assessment.signing_key_file and never creates it; a key readable by others is refused")
    func signingKeyFile() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pg = try ConfigLoader.load(file: nil, environment: [:],
                                       overrides: ["store.driver": "postgres", "store.postgres.url": "postgres://menshen@127.0.0.1:5432/menshen"])
        #expect(EvidencePackAssembler.keyPath(pg) == nil)
        #expect(throws: AssessmentError.evidencePack("no assessment.signing_key_file configured (required with PostgreSQL)")) {
            _ = try EvidencePackAssembler.signingKey(pg, mayCreate: false)
        }
        let path = dir.appendingPathComponent("pack.key").path
        let configured = try ConfigLoader.load(file: nil, environment: [:], overrides: [
            "store.driver": "postgres", "store.postgres.url": "postgres://menshen@127.0.0.1:5432/menshen", "assessment.signing_key_file": path,
        ])
        do { _ = try EvidencePackAssembler.signingKey(configured, mayCreate: false); Issue.record("a missing key was created or accepted") } catch {
            #expect("\(error)".contains("no evidence-pack signing key"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        // Created (mode 0600) when allowed, then loaded as the same key; made readable by others, refused.
        let created = try EvidencePackAssembler.signingKey(configured, mayCreate: true)
        #expect(try EvidencePackAssembler.signingKey(configured, mayCreate: false).publicKey == created.publicKey)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        do { _ = try EvidencePackAssembler.signingKey(configured, mayCreate: false); Issue.record("a world-readable key was accepted") } catch {
            #expect("\(error)".contains("evidence-pack signing key must not be readable by group or others"), "\(error)")
        }
    }
}
