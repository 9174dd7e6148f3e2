import Crypto
import Foundation
import MenshenCore
import MenshenStorage

/// The Ed25519 key that signs audit checkpoints (swift-crypto's
/// `Curve25519.Signing`). Only the signed-bytes layout below is ours.
///
/// A checkpoint signs, length-prefixed like ``EventChain/hash(previous:event:)``:
/// `menshen-checkpoint-v1`, the sequence, the event id, the chain hash, the time
/// in milliseconds and the key id. The key id is `ed25519:` and the first 16 hex
/// digits of the SHA-256 of the raw 32-byte public key, so a verifier can tell
/// which of several trusted keys (one per node) to use without trusting anything
/// stored next to the checkpoint.
public struct AuditSigningKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey
    public let verifyKey: AuditVerifyKey

    /// A new random key.
    public init() {
        key = Curve25519.Signing.PrivateKey()
        // Invariant: swift-crypto's public key is always 32 bytes, which AuditVerifyKey accepts.
        verifyKey = AuditVerifyKey(unchecked: key.publicKey)
    }

    /// The key from its raw 32 bytes. Throws `invalidAuditKey` for any other length.
    public init(rawRepresentation bytes: [UInt8]) throws {
        do { key = try Curve25519.Signing.PrivateKey(rawRepresentation: bytes) } catch {
            throw VisibilityError(.invalidAuditKey, "an audit signing key is 32 raw bytes (base64), got \(bytes.count)")
        }
        verifyKey = AuditVerifyKey(unchecked: key.publicKey)
    }

    /// The raw private key (what the key file holds, base64).
    public var rawRepresentation: [UInt8] { Array(key.rawRepresentation) }

    /// Signs the chain head `sequence` (event `eventID`, chain hash `hash`) at `time`
    /// (kept to the millisecond, as the stores keep it).
    public func checkpoint(sequence: Int64, eventID: UUID, hash: String, time: Date) throws -> AuditCheckpointRecord {
        let at = StoreCoding.date(millis: StoreCoding.millis(time))
        let bytes = AuditCheckpointEncoding.signedBytes(sequence: sequence, eventID: eventID, hash: hash, time: at, keyID: verifyKey.keyID)
        let signature = try key.signature(for: bytes)
        return AuditCheckpointRecord(sequence: sequence, eventID: eventID, hash: hash, time: at, keyID: verifyKey.keyID,
                                     signature: Data(signature).base64EncodedString())
    }
}

/// A public key that checks checkpoints; exportable (`menshen audit key`) so a
/// regulator can verify a copy of the log offline.
public struct AuditVerifyKey: Sendable, Hashable, CustomStringConvertible {
    public let keyID: String
    /// The raw 32-byte Ed25519 public key.
    public let rawRepresentation: [UInt8]

    init(unchecked key: Curve25519.Signing.PublicKey) {
        rawRepresentation = Array(key.rawRepresentation)
        keyID = AuditCheckpointEncoding.keyID(rawPublicKey: rawRepresentation)
    }

    /// The key from its base64 text (as `menshen audit key` prints it). Throws `invalidAuditKey`.
    public init(base64 text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count <= 128, let data = Data(base64Encoded: trimmed),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: data)
        else { throw VisibilityError(.invalidAuditKey, "not a base64 Ed25519 public key (32 bytes)") }
        self.init(unchecked: key)
    }

    public var base64: String { Data(rawRepresentation).base64EncodedString() }
    public var description: String { "\(keyID) \(base64)" }

    /// Whether `checkpoint` carries this key's id and a valid signature over its fields.
    public func isValidSignature(of checkpoint: AuditCheckpointRecord) -> Bool {
        guard checkpoint.keyID == keyID, checkpoint.signature.utf8.count <= 128,
              let signature = Data(base64Encoded: checkpoint.signature),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        else { return false }
        let bytes = AuditCheckpointEncoding.signedBytes(sequence: checkpoint.sequence, eventID: checkpoint.eventID, hash: checkpoint.hash,
                                                        time: checkpoint.time, keyID: checkpoint.keyID)
        return key.isValidSignature(signature, for: bytes)
    }
}

/// The bytes a checkpoint signature covers, and key ids.
public enum AuditCheckpointEncoding {
    public static func signedBytes(sequence: Int64, eventID: UUID, hash: String, time: Date, keyID: String) -> [UInt8] {
        var bytes: [UInt8] = []
        func field(_ s: String) {
            let u = Array(s.utf8)
            bytes += "\(u.count):".utf8
            bytes += u
        }
        field("menshen-checkpoint-v1")
        field(String(sequence))
        field(eventID.uuidString)
        field(hash)
        field(String(StoreCoding.millis(time)))
        field(keyID)
        return bytes
    }

    public static func keyID(rawPublicKey: [UInt8]) -> String {
        "ed25519:" + SecretHash.sha256Hex(bytes: rawPublicKey).prefix(16)
    }
}
