import Foundation
import MenshenAssessment
import MenshenConfig
import MenshenStorage
#if canImport(Glibc)
import Glibc
#endif

/// Gathers what an evidence pack holds from the running deployment (the
/// policies in force — the store's and the routes file's —, the newest audit
/// checkpoint, the signing key) and writes
/// the pack file atomically: the I/O around MenshenAssessment's pure
/// ``EvidencePack``.
public enum EvidencePackAssembler {
    /// What was written.
    public struct Summary: Sendable {
        public var path: String
        /// Every file in the pack, in archive order.
        public var files: [String]
        public var bytes: Int
        /// Lower-case hex SHA-256 of `manifest.json`.
        public var manifestSHA256: String
        public var keyFingerprint: String
    }

    // MARK: The signing key

    /// The key file's path: `assessment.signing_key_file`, or `assessment.key` next to the
    /// SQLite file. Nil with PostgreSQL when none is configured.
    public static func keyPath(_ config: MenshenConfiguration) -> String? {
        AuditFiles.path(config.assessment.signingKeyFile, default: "assessment.key", config: config)
    }

    /// The deployment's evidence-pack signing key, created (mode 0600) when missing and
    /// `mayCreate` — by the audit key's loader, same file format and checks.
    public static func signingKey(_ config: MenshenConfiguration, mayCreate: Bool) throws -> EvidencePackSigningKey {
        guard let path = keyPath(config) else {
            throw AssessmentError.evidencePack("no assessment.signing_key_file configured (required with PostgreSQL)")
        }
        let key = try AuditFiles.loadOrCreateKey(path: path, mayCreate: mayCreate, what: "evidence-pack signing key",
                                                 missingHint: "run `menshen assess key` on the deployment that signs")
        return try EvidencePackSigningKey(rawRepresentation: key.rawRepresentation)
    }

    // MARK: Writing a pack

    /// Writes the evidence pack of `assessment` to `path` (atomically: a temporary file
    /// in the same directory, fsync, rename; mode 0600). `attestations` carry each
    /// attestation's evidence files by name; one missing or not matching its recorded
    /// SHA-256 is refused and nothing is written. The policies in force (the store's current
    /// ones and the routes file's Cedar documents) and the newest audit checkpoint are read
    /// from `store` and `gateway.routes_file`; a routes file that does not load is refused.
    public static func write(assessment: Assessment, reportHTML: String?, attestations: [(Attestation, [String: Data])],
                             configuration: MenshenConfiguration, store: any MenshenStore, key: EvidencePackSigningKey,
                             to path: String) async throws -> Summary {
        let policies = try await store.currentPolicies().sorted { $0.policyID.rawValue < $1.policyID.rawValue }.map {
            EvidencePackPolicy(id: $0.policyID.rawValue, version: $0.version, author: $0.author, comment: $0.comment,
                               createdAt: $0.createdAt, text: $0.text)
        }
        // The routes file's documents, read as the gateway and the assessment read them; one that does not load is refused.
        var routesFilePolicies: [EvidencePackRoutesFilePolicy] = []
        if !configuration.gateway.routesFile.isEmpty {
            let contents: RoutesFile.Contents
            do { contents = try RoutesFile.load(path: configuration.gateway.routesFile, at: assessment.generatedAt) } catch {
                throw AssessmentError.evidencePack("the routes file \(configuration.gateway.routesFile) does not load, so the policies in force cannot be packed: \(error)")
            }
            routesFilePolicies = contents.documents.map { EvidencePackRoutesFilePolicy(document: $0.name, text: $0.text) }
        }
        var checkpoint: EvidencePackAuditCheckpoint?
        if let c = try await store.lastCheckpoint() {
            // The audit public key is added when its file is readable here; the checkpoint's key id names it either way.
            let auditKey = AuditFiles.keyPath(configuration).flatMap { try? AuditFiles.loadOrCreateKey(path: $0, mayCreate: false) }
            checkpoint = EvidencePackAuditCheckpoint(
                sequence: c.sequence, eventID: c.eventID.uuidString.lowercased(), chainHash: c.hash, time: c.time, keyID: c.keyID,
                signature: c.signature, publicKey: auditKey.flatMap { $0.verifyKey.keyID == c.keyID ? $0.verifyKey.base64 : nil })
        }
        let contents = EvidencePack.Contents(
            assessment: assessment, reportHTML: reportHTML,
            attestations: attestations.map { EvidencePack.AttestedEvidence(attestation: $0.0, files: $0.1.mapValues { Array($0) }) },
            policies: policies, routesFilePolicies: routesFilePolicies, auditCheckpoint: checkpoint)
        let built = try EvidencePack.build(contents, key: key)
        try writeAtomically(built.archive, to: path)
        return Summary(path: path, files: built.files.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, bytes: built.archive.count,
                       manifestSHA256: built.manifestSHA256, keyFingerprint: key.publicKey.fingerprint)
    }

    /// `bytes` to `path` via a new temporary file next to it (mode 0600), fsync and rename
    /// (``AtomicFile``), so a reader never sees half a pack and a failure leaves nothing behind.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        do {
            try AtomicFile.write(bytes, to: path, mode: 0o600)
        } catch {
            switch error {
            case .noDirectory(let dir): throw AssessmentError.evidencePack("\(dir): no such directory for the pack")
            case .cannotCreate(let dir): throw AssessmentError.evidencePack("\(path): cannot create a file in \(dir)")
            case .writeFailed(let e): throw AssessmentError.evidencePack("\(path): write failed (errno \(e))")
            case .fsyncFailed(let e): throw AssessmentError.evidencePack("\(path): fsync failed (errno \(e))")
            case .renameFailed(let e): throw AssessmentError.evidencePack("\(path): cannot replace it (errno \(e))")
            }
        }
    }
}
