import Foundation

/// `manifest.json` of an evidence pack: what the pack holds, each file with
/// its size and SHA-256, and who signed it. `manifest.sig` is the Ed25519
/// signature over `EvidencePack.signatureDomain` followed by these exact bytes,
/// so a verifier checks the signature first and then every file against it.
public struct EvidencePackManifest: Sendable, Equatable, Codable {
    /// Always `menshen-evidence-pack`.
    public var format: String
    /// The pack layout's version (``EvidencePack/formatVersion``).
    public var version: Int
    public var assessmentID: String
    public var generatedAt: Date
    public var organisation: String
    public var signer: Signer
    /// Every file of the pack except `manifest.json` and `manifest.sig`, in path order.
    public var files: [File]

    public struct Signer: Sendable, Equatable, Codable {
        /// Always `Ed25519`.
        public var algorithm: String
        /// The raw 32-byte public key, base64. Stated, not trusted: the verifier is given the key to trust.
        public var publicKey: String
        public var fingerprint: String
        enum CodingKeys: String, CodingKey { case algorithm, publicKey = "public_key", fingerprint }
    }

    public struct File: Sendable, Equatable, Codable {
        public var path: String
        public var size: Int
        /// Lower-case hex SHA-256 of the file's bytes.
        public var sha256: String
    }

    enum CodingKeys: String, CodingKey {
        case format, version, assessmentID = "assessment_id", generatedAt = "generated_at", organisation, signer, files
    }
}

/// `attestations.json` entry: an attestation, its state when the assessment
/// was made, and where its evidence files are in the pack.
public struct EvidencePackAttestation: Sendable, Equatable, Codable {
    public var attestation: Attestation
    public var state: Attestation.State
    /// `attestations/<id>/<name>` for each evidence file, in the attestation's order.
    public var paths: [String]
}

/// `policies.json` entry: one policy in force when the pack was made.
public struct EvidencePackPolicy: Sendable, Equatable, Codable {
    public var id: String
    public var version: Int
    public var author: String
    public var comment: String
    public var createdAt: Date
    /// Cedar text; written to `policies/store/<id>.cedar` (not repeated in policies.json).
    public var text: String
    public init(id: String, version: Int, author: String, comment: String, createdAt: Date, text: String) {
        self.id = id; self.version = version; self.author = author; self.comment = comment; self.createdAt = createdAt; self.text = text
    }
    enum CodingKeys: String, CodingKey { case id, version, author, comment, createdAt = "created_at", text }
}

/// One Cedar document of the routes file in force (`gateway.routes_file`): a route's compiled `require:`
/// permit or a listed Cedar file, as the gateway loads it; written to `policies/routes-file/<n>.cedar`.
public struct EvidencePackRoutesFilePolicy: Sendable, Equatable, Codable {
    /// The document's name as the gateway reports it (`routes.yaml route payments`, or the Cedar file's path).
    public var document: String
    public var text: String
    public init(document: String, text: String) { self.document = document; self.text = text }
}

/// `audit-checkpoint.json`: the newest signed checkpoint of the audit event
/// chain when the pack was made, which ties the report to the tamper-evident
/// log (`menshen audit verify` checks the chain up to it).
public struct EvidencePackAuditCheckpoint: Sendable, Equatable, Codable {
    public var sequence: Int64
    public var eventID: String
    /// The chain hash of the event at `sequence` (the chain head then).
    public var chainHash: String
    public var time: Date
    public var keyID: String
    /// Ed25519 signature of the checkpoint (base64), as stored.
    public var signature: String
    /// The audit key's public key (base64), when the deployment's key file was readable.
    public var publicKey: String?
    public init(sequence: Int64, eventID: String, chainHash: String, time: Date, keyID: String, signature: String, publicKey: String?) {
        self.sequence = sequence; self.eventID = eventID; self.chainHash = chainHash; self.time = time; self.keyID = keyID
        self.signature = signature; self.publicKey = publicKey
    }
    enum CodingKeys: String, CodingKey {
        case sequence, eventID = "event_id", chainHash = "chain_hash", time, keyID = "key_id", signature, publicKey = "public_key"
    }
}
