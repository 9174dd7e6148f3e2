import Foundation
import MenshenCore

/// The signed evidence pack: one ustar archive (``UstarArchive``) that a
/// regulator can check offline with the institution's published key.
///
/// Layout (entries sorted by path, every mtime the assessment's time):
///
/// | path | what |
/// |---|---|
/// | `attestations.json` | the attestations with their state at assessment time and their files' paths |
/// | `attestations/<id>/<name>` | each attestation's evidence files, byte for byte |
/// | `audit-checkpoint.json` | the newest signed audit checkpoint (`{"checkpoint": null}` when none) |
/// | `manifest.json` | ``EvidencePackManifest``: every other file's path, size and SHA-256, and the signer |
/// | `manifest.sig` | base64 Ed25519 signature over `menshen-evidence-pack-v1\n` + `manifest.json`, and a newline |
/// | `policies.json` | the policy set in force: every document, its source (`store` or `routes-file`) and path |
/// | `policies/store/<id>.cedar` | the store's current policies (`menshen policy …`) |
/// | `policies/routes-file/<n>.cedar` | the routes file's Cedar documents (compiled `require:` permits, listed files), in load order from 1 |
/// | `report.html` | the rendered report, when given |
/// | `report.json` | the ``Assessment`` |
///
/// ``verify(_:trustedKeys:limits:)`` accepts a pack only when the archive is
/// canonical (re-serialising its entries gives exactly its bytes), the
/// signature verifies with a key the caller trusts, and every file matches
/// the manifest, so changing any byte anywhere fails it. Pure: no I/O.
public enum EvidencePack {
    public static let formatName = "menshen-evidence-pack"
    public static let formatVersion = 1
    /// Prefixed to the manifest bytes before signing, so a pack signature is never valid for anything else.
    public static let signatureDomain = "menshen-evidence-pack-v1\n"
    /// `manifest.json` is refused above this size.
    public static let maxManifestBytes = 16 << 20

    /// One attestation and its evidence files' bytes by name.
    public struct AttestedEvidence: Sendable {
        public var attestation: Attestation
        public var files: [String: [UInt8]]
        public init(attestation: Attestation, files: [String: [UInt8]]) { self.attestation = attestation; self.files = files }
    }

    /// What goes into a pack.
    public struct Contents: Sendable {
        public var assessment: Assessment
        public var reportHTML: String?
        public var attestations: [AttestedEvidence]
        /// The store's current policies.
        public var policies: [EvidencePackPolicy]
        /// The routes file's Cedar documents (empty without `gateway.routes_file`).
        public var routesFilePolicies: [EvidencePackRoutesFilePolicy]
        public var auditCheckpoint: EvidencePackAuditCheckpoint?
        public init(assessment: Assessment, reportHTML: String? = nil, attestations: [AttestedEvidence] = [],
                    policies: [EvidencePackPolicy] = [], routesFilePolicies: [EvidencePackRoutesFilePolicy] = [],
                    auditCheckpoint: EvidencePackAuditCheckpoint? = nil) {
            self.assessment = assessment; self.reportHTML = reportHTML; self.attestations = attestations
            self.policies = policies; self.routesFilePolicies = routesFilePolicies; self.auditCheckpoint = auditCheckpoint
        }
    }

    /// A written pack.
    public struct Built: Sendable {
        public var archive: [UInt8]
        public var manifest: EvidencePackManifest
        /// Lower-case hex SHA-256 of `manifest.json`'s bytes.
        public var manifestSHA256: String
        public var files: [String] { ["manifest.json", "manifest.sig"] + manifest.files.map(\.path) }
    }

    // MARK: Building

    /// The pack of `contents`, signed with `key`. Throws when an attestation's
    /// evidence files do not match what the attestation records (missing, extra,
    /// other size or SHA-256), or a name is not a safe single path component.
    public static func build(_ contents: Contents, key: EvidencePackSigningKey) throws -> Built {
        let assessment = contents.assessment
        let encoder = jsonEncoder()
        func json(_ value: some Encodable) throws -> [UInt8] {
            do { return Array(try encoder.encode(value)) + [UInt8(ascii: "\n")] } catch {
                throw AssessmentError.evidencePack("cannot encode JSON: \(error)")
            }
        }
        var files: [String: [UInt8]] = [:]
        func add(_ path: String, _ bytes: [UInt8]) throws {
            try UstarArchive.validate(path: path)
            guard files.updateValue(bytes, forKey: path) == nil else { throw AssessmentError.evidencePack("two files at \(path)") }
        }

        try add("report.json", try json(assessment))
        if let html = contents.reportHTML { try add("report.html", Array(html.utf8)) }

        var attested: [EvidencePackAttestation] = []
        for item in contents.attestations {
            let a = item.attestation
            try component(a.id, what: "attestation id")
            var paths: [String] = []
            for file in a.files {
                try component(file.name, what: "attestation \(a.id): evidence file name")
                guard let bytes = item.files[file.name] else {
                    throw AssessmentError.attestation("\(a.id): evidence file \(file.name) is missing (unreadable or never stored)")
                }
                guard bytes.count == file.size, sha256Hex(bytes) == file.sha256.lowercased() else {
                    throw AssessmentError.attestation("\(a.id): evidence file \(file.name) does not match its recorded size and SHA-256")
                }
                let path = "attestations/\(a.id)/\(file.name)"
                try add(path, bytes)
                paths.append(path)
            }
            if let extra = item.files.keys.sorted().first(where: { name in !a.files.contains { $0.name == name } }) {
                throw AssessmentError.attestation("\(a.id): file \(extra) is not one of the attestation's evidence files")
            }
            attested.append(EvidencePackAttestation(attestation: a, state: a.state(at: assessment.generatedAt), paths: paths))
        }
        try add("attestations.json", try json(attested))

        for policy in contents.policies {
            try component(policy.id + ".cedar", what: "policy id")
            try add(PolicyIndexEntry.storePath(policy), Array(policy.text.utf8))
        }
        for (n, document) in contents.routesFilePolicies.enumerated() {
            try add(PolicyIndexEntry.routesFilePath(n), Array(document.text.utf8))
        }
        try add("policies.json", try json(contents.policies.map { p in PolicyIndexEntry(p) }
            + contents.routesFilePolicies.enumerated().map { PolicyIndexEntry($0.element, index: $0.offset) }))
        try add("audit-checkpoint.json", try json(CheckpointFile(checkpoint: contents.auditCheckpoint)))

        let listed = files.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { path in
            // Invariant: `path` is a key of `files`.
            let bytes = files[path] ?? []
            return EvidencePackManifest.File(path: path, size: bytes.count, sha256: sha256Hex(bytes))
        }
        let manifest = EvidencePackManifest(
            format: formatName, version: formatVersion, assessmentID: assessment.id, generatedAt: assessment.generatedAt,
            organisation: assessment.organisation,
            signer: .init(algorithm: "Ed25519", publicKey: key.publicKey.base64, fingerprint: key.publicKey.fingerprint), files: listed)
        let manifestBytes = try json(manifest)
        let signature = try key.signature(for: Array(signatureDomain.utf8) + manifestBytes)
        try add("manifest.json", manifestBytes)
        try add("manifest.sig", Array((Data(signature).base64EncodedString() + "\n").utf8))

        let archive = try UstarArchive.write(files.map { UstarArchive.Entry(path: $0.key, bytes: $0.value) },
                                             mtime: mtime(assessment.generatedAt))
        return Built(archive: archive, manifest: manifest, manifestSHA256: sha256Hex(manifestBytes))
    }

    /// An entry of `policies.json`: a store policy (id, version, author, comment, time) or a routes-file document (its name).
    struct PolicyIndexEntry: Encodable {
        var source: String, path: String
        var id: String?, version: Int?, author: String?, comment: String?, createdAt: Date?, document: String?
        init(_ p: EvidencePackPolicy) {
            source = "store"; path = Self.storePath(p)
            id = p.id; version = p.version; author = p.author; comment = p.comment; createdAt = p.createdAt
        }
        init(_ d: EvidencePackRoutesFilePolicy, index: Int) {
            source = "routes-file"; path = Self.routesFilePath(index); document = d.document
        }
        static func storePath(_ p: EvidencePackPolicy) -> String { "policies/store/\(p.id).cedar" }
        static func routesFilePath(_ index: Int) -> String { "policies/routes-file/\(index + 1).cedar" }
        enum CodingKeys: String, CodingKey { case source, path, id, version, author, comment, createdAt = "created_at", document }
    }

    struct CheckpointFile: Encodable {
        var checkpoint: EvidencePackAuditCheckpoint?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(checkpoint, forKey: .checkpoint)   // null when none: the absence is stated, not hidden
        }
        enum CodingKeys: String, CodingKey { case checkpoint }
    }

    /// Refuses a name that is not one safe path component.
    static func component(_ name: String, what: String) throws {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), name.utf8.count <= 100 else {
            throw AssessmentError.evidencePack("\(what) \(name.debugDescription) is not usable as a file name in the pack")
        }
        do { try UstarArchive.validate(path: name) } catch {
            throw AssessmentError.evidencePack("\(what) \(name.debugDescription) is not usable as a file name in the pack")
        }
    }

    static func mtime(_ date: Date) -> Int { max(0, Int(date.timeIntervalSince1970.rounded(.down))) }

    /// The pack's JSON: sorted keys, indented, ISO 8601 dates (whole seconds).
    public static func jsonEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    public static func jsonDecoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String { SecretHash.sha256Hex(bytes: bytes) }

    // MARK: Verifying

    /// What ``verify(_:trustedKeys:limits:)`` found: each check run, in order,
    /// with what it saw; the last one failed when the pack does not verify.
    public struct Verification: Sendable {
        public struct Check: Sendable, Equatable {
            /// `archive`, `canonical`, `manifest`, `files`, `signature`, `report`.
            public var name: String
            public var passed: Bool
            public var detail: String
        }
        public var checks: [Check] = []
        /// The manifest, once its signature verified with a trusted key.
        public var manifest: EvidencePackManifest?
        /// The signer's fingerprint as the manifest states it.
        public var statedSigner: String?
        /// The trusted key whose signature verified, if any.
        public var verifiedBy: EvidencePackPublicKey?
        public var valid: Bool { checks.count == 6 && checks.allSatisfy(\.passed) && verifiedBy != nil }
        /// The failed checks, one line each: `check: detail`.
        public var failures: [String] { checks.filter { !$0.passed }.map { "\($0.name): \($0.detail)" } }

        mutating func record(_ name: String, _ passed: Bool, _ detail: String) {
            checks.append(Check(name: name, passed: passed, detail: detail))
        }
    }

    /// Checks `archive` against `trustedKeys` (never against the key it
    /// carries alone). Never throws: the checks run in order — archive,
    /// canonical, manifest, files, signature, report — and stop at the first
    /// that fails, which says what failed (file and check).
    public static func verify(_ archive: [UInt8], trustedKeys: [EvidencePackPublicKey],
                              limits: UstarArchive.Limits = .default) -> Verification {
        var v = Verification()
        // 1. The archive is a strict ustar archive within the limits.
        let entries: [UstarArchive.Entry], mtime: Int
        do {
            (entries, mtime) = try UstarArchive.read(archive, limits: limits)
            v.record("archive", true, "\(entries.count) entries, \(archive.count) bytes, POSIX ustar")
        } catch {
            v.record("archive", false, "\(error)")
            return v
        }
        // 2. It is the one canonical form of those entries: in path order, and re-serialised byte for byte.
        if let i = entries.indices.dropFirst().first(where: { !entries[$0 - 1].path.utf8.lexicographicallyPrecedes(entries[$0].path.utf8) }) {
            v.record("canonical", false, "entries out of path order: \(entries[i - 1].path) before \(entries[i].path)")
            return v
        }
        guard let again = try? UstarArchive.write(entries, mtime: mtime), sameBytes(again, archive) else {
            v.record("canonical", false, "re-serialising the entries does not give the same bytes")
            return v
        }
        v.record("canonical", true, "entries in path order; re-serialising gives the same bytes")
        let byPath = Dictionary(entries.map { ($0.path, $0.bytes) }, uniquingKeysWith: { a, _ in a })

        // 3. The manifest: present, bounded, decodes, well-formed. Not trusted until the signature holds (step 5).
        guard let manifestBytes = byPath["manifest.json"] else { v.record("manifest", false, "manifest.json is missing"); return v }
        guard manifestBytes.count <= maxManifestBytes else {
            v.record("manifest", false, "manifest.json is over \(maxManifestBytes) bytes"); return v
        }
        guard let m = try? jsonDecoder().decode(EvidencePackManifest.self, from: Data(manifestBytes)) else {
            v.record("manifest", false, "manifest.json does not decode as a pack manifest"); return v
        }
        v.statedSigner = m.signer.fingerprint
        if let problem = manifestProblem(m) { v.record("manifest", false, "manifest.json: \(problem)"); return v }
        v.record("manifest", true, "format \(m.format) v\(m.version), assessment \(m.assessmentID), \(m.files.count) files listed")

        // 4. Every listed file is there with its size and SHA-256; nothing else is. (Before the signature only
        // because it is the cheaper check; a pack is valid only when both hold.)
        var problems: [String] = []
        let listed = Set(m.files.map(\.path))
        for f in m.files {
            guard let bytes = byPath[f.path] else { problems.append("\(f.path): listed but missing"); continue }
            if bytes.count != f.size { problems.append("\(f.path): \(bytes.count) bytes, the manifest says \(f.size)") }
            else if sha256Hex(bytes) != f.sha256 { problems.append("\(f.path): SHA-256 differs from the manifest") }
        }
        for e in entries where !listed.contains(e.path) && e.path != "manifest.json" && e.path != "manifest.sig" {
            problems.append("\(e.path): not listed in the manifest")
        }
        guard problems.isEmpty else { v.record("files", false, problems.joined(separator: "; ")); return v }
        v.record("files", true, "\(m.files.count) files match their size and SHA-256")

        // 5. The signature over the manifest's exact bytes, by a trusted key — the one the manifest names.
        guard let sig = byPath["manifest.sig"] else { v.record("signature", false, "manifest.sig is missing"); return v }
        let text = String(decoding: sig, as: UTF8.self)
        guard sig.count <= 200, text.hasSuffix("\n"), let raw = Data(base64Encoded: String(text.dropLast())), raw.count == 64,
              raw.base64EncodedString() + "\n" == text
        else {
            v.record("signature", false, "manifest.sig is not one line of canonical base64 of a 64-byte Ed25519 signature"); return v
        }
        let signed = Array(signatureDomain.utf8) + manifestBytes
        guard let key = trustedKeys.first(where: { $0.isValidSignature(Array(raw), for: signed) }) else {
            v.record("signature", false, "the signature over manifest.json does not verify with any trusted key "
                     + "(\(trustedKeys.map(\.fingerprint).joined(separator: ", "))); the manifest names \(m.signer.fingerprint)")
            return v
        }
        guard m.signer.publicKey == key.base64 else {
            v.record("signature", false, "signed by trusted key \(key.fingerprint), but the manifest names \(m.signer.fingerprint)"); return v
        }
        v.verifiedBy = key
        v.manifest = m
        v.record("signature", true, "Ed25519 signature by trusted key \(key.fingerprint)")

        // 6. The report is an assessment, the one the manifest names, made when the archive says.
        guard let bytes = byPath["report.json"] else { v.record("report", false, "report.json is missing"); return v }
        guard let report = try? jsonDecoder().decode(Assessment.self, from: Data(bytes)) else {
            v.record("report", false, "report.json does not decode as an assessment"); return v
        }
        if report.id != m.assessmentID { problems.append("report.json is assessment \(report.id), the manifest names \(m.assessmentID)") }
        if report.generatedAt != m.generatedAt { problems.append("report.json's generatedAt differs from the manifest's") }
        if Self.mtime(m.generatedAt) != mtime { problems.append("the archive's mtime is not the assessment's time") }
        v.record("report", problems.isEmpty, problems.isEmpty
                 ? "assessment \(report.id), \(report.principles.count) principles, overall level \(report.overallLevel)"
                 : problems.joined(separator: "; "))
        return v
    }

    /// Byte equality by `memcmp` (the element-wise `==` is slow on large packs in debug builds).
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return true }   // both empty
                return memcmp(p, q, x.count) == 0
            }
        }
    }

    /// What is wrong with a decoded manifest's own shape, if anything.
    static func manifestProblem(_ m: EvidencePackManifest) -> String? {
        guard m.format == formatName else { return "format is \(m.format.debugDescription), not \(formatName)" }
        guard m.version == formatVersion else { return "version \(m.version) is not supported (this menshen reads \(formatVersion))" }
        guard m.signer.algorithm == "Ed25519" else { return "signer algorithm \(m.signer.algorithm.debugDescription) is not Ed25519" }
        guard let key = try? EvidencePackPublicKey(base64: m.signer.publicKey), key.fingerprint == m.signer.fingerprint else {
            return "the signer's public key and fingerprint do not match"
        }
        var seen = Set<String>()
        for f in m.files {
            guard seen.insert(f.path).inserted else { return "\(f.path) is listed twice" }
            guard f.path != "manifest.json", f.path != "manifest.sig" else { return "\(f.path) lists itself" }
            guard f.size >= 0, f.sha256.utf8.count == 64, f.sha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                return "\(f.path): size or SHA-256 malformed"
            }
        }
        return nil
    }
}
