import Crypto
import Foundation

/// The Ed25519 key that signs evidence packs (swift-crypto's
/// `Curve25519.Signing`). The deployment keeps it in
/// `assessment.signing_key_file`, loaded and created by the same code as the
/// audit checkpoint key (MenshenServer's `AuditFiles.loadOrCreateKey`).
public struct EvidencePackSigningKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey
    public let publicKey: EvidencePackPublicKey

    /// A new random key.
    public init() {
        key = Curve25519.Signing.PrivateKey()
        publicKey = EvidencePackPublicKey(unchecked: Array(key.publicKey.rawRepresentation))
    }

    /// The key from its raw 32 bytes (what the key file holds, base64).
    public init(rawRepresentation bytes: [UInt8]) throws {
        do { key = try Curve25519.Signing.PrivateKey(rawRepresentation: bytes) } catch {
            throw AssessmentError.evidencePack("a signing key is 32 raw bytes, got \(bytes.count)")
        }
        publicKey = EvidencePackPublicKey(unchecked: Array(key.publicKey.rawRepresentation))
    }

    func signature(for bytes: [UInt8]) throws -> [UInt8] {
        do { return Array(try key.signature(for: bytes)) } catch {
            throw AssessmentError.evidencePack("cannot sign the manifest: \(error)")
        }
    }
}

/// A public key that verifies evidence packs: what `menshen assess key`
/// prints and a regulator is given out of band. The fingerprint
/// (`ed25519:` and the first 16 hex digits of the SHA-256 of the raw key, the
/// same form as the audit key ids) names it; trust comes from the whole key.
public struct EvidencePackPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The raw 32-byte Ed25519 public key.
    public let rawRepresentation: [UInt8]
    public let fingerprint: String

    init(unchecked raw: [UInt8]) {
        rawRepresentation = raw
        fingerprint = "ed25519:" + EvidencePack.sha256Hex(raw).prefix(16)
    }

    /// The key from its 32 raw bytes.
    public init(rawRepresentation raw: [UInt8]) throws {
        guard (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw AssessmentError.evidencePack("not an Ed25519 public key (32 bytes)")
        }
        self.init(unchecked: raw)
    }

    /// The key from its base64 text (as `menshen assess key` prints it).
    public init(base64 text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count <= 128, let data = Data(base64Encoded: trimmed) else {
            throw AssessmentError.evidencePack("not a base64 Ed25519 public key (32 bytes)")
        }
        try self.init(rawRepresentation: Array(data))
    }

    public var base64: String { Data(rawRepresentation).base64EncodedString() }
    public var description: String { "\(fingerprint) \(base64)" }

    func isValidSignature(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else { return false }
        return key.isValidSignature(signature, for: bytes)
    }
}
