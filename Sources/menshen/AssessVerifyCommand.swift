import ArgumentParser
import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenServer

/// `menshen assess verify FILE`: checks an evidence pack offline — canonical
/// archive, Ed25519 signature by a trusted key (the deployment's, or only the
/// `--public-key`s given), every file against the manifest, the report.
/// Exit status like `menshen audit verify`: 0 valid, 1 does not verify, 2 could not verify.
struct AssessVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check an evidence pack: archive, signature, every file against the signed manifest.",
        discussion: """
            The signature is checked with the deployment's evidence-pack key, or only with the keys given by --public-key
            (what `menshen assess key` prints), never with the key the pack names on its own.
            Exit status: 0 valid, 1 does not verify, 2 could not verify (unreadable file, no key).
            """)

    enum Exit {
        static let valid: Int32 = 0, invalid: Int32 = 1, couldNotVerify: Int32 = 2
    }

    @Argument(help: ArgumentHelp("The evidence pack.", valueName: "file"))
    var file: String

    @Option(name: .long, help: ArgumentHelp("Trust this public key (base64, or a file of `menshen assess key` lines); repeatable. Replaces the deployment's key.", valueName: "key"))
    var publicKey: [String] = []

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    func run() async throws {
        let keys: [EvidencePackPublicKey]
        let bytes: [UInt8]
        do {
            keys = try trustedKeys()
            bytes = try Self.read(file, limits: .default)
        } catch {
            if json { print(AuditCommand.json(["status": "error", "error": "\(error)"])) }
            else { FileHandle.standardError.write(Data("menshen: could not verify the evidence pack: \(error)\n".utf8)) }
            throw ExitCode(Exit.couldNotVerify)
        }
        let v = EvidencePack.verify(bytes, trustedKeys: keys)
        report(v, keys: keys, size: bytes.count)
        if !v.valid { throw ExitCode(Exit.invalid) }
    }

    /// The keys to trust: `--public-key`s, or the deployment's (never created here).
    func trustedKeys() throws -> [EvidencePackPublicKey] {
        if publicKey.isEmpty {
            return [try EvidencePackAssembler.signingKey(try store.load(), mayCreate: false).publicKey]
        }
        var keys: [EvidencePackPublicKey] = []
        for value in publicKey {
            if FileManager.default.fileExists(atPath: value) {
                guard let data = FileManager.default.contents(atPath: value), data.count <= 64 * 1024 else {
                    throw AssessmentError.evidencePack("\(value): cannot read the key file")
                }
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    guard let last = line.split(separator: " ").last else { continue }
                    keys.append(try EvidencePackPublicKey(base64: String(last)))
                }
            } else {
                keys.append(try EvidencePackPublicKey(base64: value))
            }
        }
        guard !keys.isEmpty else { throw AssessmentError.evidencePack("no public key given") }
        return keys
    }

    /// The file's bytes, refused before reading when larger than any pack the limits allow.
    static func read(_ path: String, limits: UstarArchive.Limits) throws -> [UInt8] {
        let maxBytes = limits.maxTotalBytes + 1024 * (limits.maxEntries + 2)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw AssessmentError.evidencePack("\(path): no such file") }
        guard !isDirectory.boolValue else { throw AssessmentError.evidencePack("\(path): is a directory, not an evidence pack") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw AssessmentError.evidencePack("\(path): cannot open it for reading") }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.read(upToCount: maxBytes + 1) ?? Data() } catch {
            throw AssessmentError.evidencePack("\(path): cannot read it (\(error))")
        }
        guard data.count <= maxBytes else { throw AssessmentError.evidencePack("\(path): larger than \(maxBytes) bytes, refused") }
        return Array(data)
    }

    func report(_ v: EvidencePack.Verification, keys: [EvidencePackPublicKey], size: Int) {
        if json {
            var o: [String: Any] = [
                "status": v.valid ? "valid" : "invalid", "file": file, "bytes": size,
                "checks": v.checks.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] as [String: Any] },
                "trusted_keys": keys.map(\.fingerprint),
            ]
            o["signer"] = v.statedSigner ?? NSNull()
            o["verified_by"] = v.verifiedBy?.fingerprint ?? NSNull()
            o["assessment_id"] = v.manifest?.assessmentID ?? NSNull()
            print(AuditCommand.json(o))
            return
        }
        var lines = [v.valid ? "evidence pack:  VALID" : "evidence pack:  DOES NOT VERIFY", "file:           \(file) (\(size) bytes)"]
        lines.append("signer:         \(v.statedSigner ?? "unknown") (as the manifest states it)")
        lines.append("trusted keys:   \(keys.map(\.fingerprint).joined(separator: ", "))")
        if let m = v.manifest { lines.append("assessment:     \(m.assessmentID) (\(m.organisation))") }
        for c in v.checks {
            let label = "\(c.name):".padding(toLength: 15, withPad: " ", startingAt: 0)
            lines.append("\(label) \(c.passed ? "ok" : "FAILED") — \(c.detail)")
        }
        print(lines.joined(separator: "\n"))
    }
}

/// `menshen assess key`: the public key that verifies this deployment's evidence
/// packs, to publish to the regulator (created with its private key on SQLite when missing).
struct AssessKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Print the public key that verifies evidence packs (created with the signing key on SQLite when missing).")
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print as JSON.") var json = false

    func run() async throws {
        do {
            let config = try store.load()
            let key = try EvidencePackAssembler.signingKey(config, mayCreate: config.store.driver == .sqlite).publicKey
            print(json ? AuditCommand.json(["fingerprint": key.fingerprint, "public_key": key.base64, "algorithm": "Ed25519"])
                       : "\(key.fingerprint) \(key.base64)")
        } catch { throw fail(error) }
    }
}
