import Crypto
import Foundation
import MenshenCore
import _CryptoExtras

/// The TPM 2.0 key derivation functions (Part 1: Architecture, §11.4.10):
/// KDFa (SP 800-108 counter mode with HMAC) and KDFe (SP 800-56A §5.8.1
/// concatenation KDF for ECDH).
///
/// Written by hand: swift-crypto has HKDF but neither of these framings
/// (counter first, the label's terminating zero, the bit count last).
/// Checked by the only oracle that matters: a real TPM (swtpm) accepts
/// credentials made with them in `TPM2_ActivateCredential`.
enum TPMKDF {
    /// KDFa(hash, key, label, contextU, contextV, bits): HMAC(key, counter ‖ label ‖ 0 ‖ contextU ‖ contextV ‖ bits).
    static func a<H: HashFunction>(_: H.Type, key: [UInt8], label: String, contextU: [UInt8], contextV: [UInt8], bits: Int) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt32 = 1
        let symmetricKey = SymmetricKey(data: key)
        while out.count * 8 < bits {
            let message = TPMWriter.u32(counter) + Array(label.utf8) + [0] + contextU + contextV + TPMWriter.u32(UInt32(bits))
            out += Array(HMAC<H>.authenticationCode(for: message, using: symmetricKey))
            counter += 1
        }
        return Array(out.prefix((bits + 7) / 8))
    }

    /// KDFe(hash, Z, use, partyUInfo, partyVInfo, bits): H(counter ‖ Z ‖ use ‖ 0 ‖ partyUInfo ‖ partyVInfo).
    static func e<H: HashFunction>(_: H.Type, z: [UInt8], use: String, partyU: [UInt8], partyV: [UInt8], bits: Int) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt32 = 1
        while out.count * 8 < bits {
            out += Array(H.hash(data: TPMWriter.u32(counter) + z + Array(use.utf8) + [0] + partyU + partyV))
            counter += 1
        }
        return Array(out.prefix((bits + 7) / 8))
    }
}

/// An endorsement key (EK) Menshen can make credentials for: ECC P-256 (TCG
/// templates L-2 and H-2: name algorithm SHA-256, AES-128-CFB) or ECC P-384
/// (template H-3: SHA-384, AES-256-CFB; what swtpm provisions). The name
/// algorithm and symmetric scheme follow from the curve by those templates:
/// an EK made otherwise simply fails to activate (fail closed).
public enum TPMEndorsementKey: Sendable, Hashable {
    case p256(P256.KeyAgreement.PublicKey)
    case p384(P384.KeyAgreement.PublicKey)

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.x963 == rhs.x963 }
    public func hash(into hasher: inout Hasher) { hasher.combine(x963) }

    /// The EK of a certificate's public key, or nil when it is not ECC P-256 or P-384.
    public init?(x963 bytes: [UInt8]) {
        if bytes.count == 65, let key = try? P256.KeyAgreement.PublicKey(x963Representation: bytes) { self = .p256(key) }
        else if bytes.count == 97, let key = try? P384.KeyAgreement.PublicKey(x963Representation: bytes) { self = .p384(key) }
        else { return nil }
    }

    public var x963: [UInt8] {
        switch self {
        case .p256(let key): Array(key.x963Representation)
        case .p384(let key): Array(key.x963Representation)
        }
    }
    /// The curve's coordinate size in bytes.
    var coordinateSize: Int { if case .p256 = self { 32 } else { 48 } }
    /// The EK's x coordinate (KDFe's partyVInfo).
    var x: [UInt8] { Array(x963[1...coordinateSize]) }
    public var curveName: String { if case .p256 = self { "P-256" } else { "P-384" } }
}

/// A credential made for one key in one TPM, as `TPM2_MakeCredential` returns it.
public struct TPMMadeCredential: Sendable, Hashable {
    /// `TPM2B_ID_OBJECT`: the integrity HMAC and the encrypted credential, with its size.
    public let credentialBlob: [UInt8]
    /// `TPM2B_ENCRYPTED_SECRET`: the ephemeral ECDH point, with its size.
    public let encryptedSecret: [UInt8]

    /// The file `tpm2_activatecredential -i` reads (tpm2-tools: magic `BADCC0DE`, version 1, then the two structures).
    public var tpm2ToolsFile: [UInt8] { TPMWriter.u32(0xBADC_C0DE) + TPMWriter.u32(1) + credentialBlob + encryptedSecret }
}

/// `TPM2_MakeCredential` done in software for an ECC endorsement key (TPM 2.0
/// Part 1 §24 "Credential Protection", Part 3 §12.6, Part 1 Annex C.6.4 for
/// the ECDH secret): only the TPM holding the EK's private key can recover the
/// seed, and it releases the credential only for a loaded object whose Name
/// equals `objectName`.
///
/// 1. an ephemeral key pair on the EK's curve; Z = x(ephemeral × EK);
///    seed = KDFe(nameAlg, Z, "IDENTITY", x(ephemeral), x(EK), digest bits);
///    the encrypted secret is the ephemeral point (`TPMS_ECC_POINT`);
/// 2. symKey = KDFa(nameAlg, seed, "STORAGE", objectName, ∅, AES key bits);
///    encIdentity = AES-CFB(symKey, IV = 0, `TPM2B_DIGEST`(credential));
/// 3. hmacKey = KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest bits);
///    integrity = HMAC(hmacKey, encIdentity ‖ objectName).
///
/// Written by hand (no package does TPM credential protection); the AES-CFB,
/// HMAC, hashes and ECDH are swift-crypto's. Randomness for the ephemeral key
/// comes from the injected `RandomSource`.
public enum TPMCredentialMaker {
    public static func make(credential: [UInt8], objectName: [UInt8], for ek: TPMEndorsementKey,
                            random: any RandomSource) throws(TPMError) -> TPMMadeCredential {
        guard !credential.isEmpty, credential.count <= 32 else { throw TPMError(.invalidField, "credential: 1–32 bytes") }
        guard objectName.count == 34 || objectName.count == 50 else { throw TPMError(.invalidField, "object name: a SHA-256 or SHA-384 Name") }
        do {
            switch ek {
            case .p256(let ekKey):
                var ephemeral: P256.KeyAgreement.PrivateKey? = nil
                for _ in 0..<8 where ephemeral == nil { ephemeral = try? P256.KeyAgreement.PrivateKey(rawRepresentation: random.bytes(32)) }
                guard let ephemeral else { throw TPMError(.cryptoFailure, "no ephemeral key") }
                let z = try ephemeral.sharedSecretFromKeyAgreement(with: ekKey).withUnsafeBytes { Array($0) }
                return try finish(SHA256.self, aesBits: 128, z: z, ephemeralX963: Array(ephemeral.publicKey.x963Representation),
                                  ek: ek, credential: credential, objectName: objectName)
            case .p384(let ekKey):
                var ephemeral: P384.KeyAgreement.PrivateKey? = nil
                for _ in 0..<8 where ephemeral == nil { ephemeral = try? P384.KeyAgreement.PrivateKey(rawRepresentation: random.bytes(48)) }
                guard let ephemeral else { throw TPMError(.cryptoFailure, "no ephemeral key") }
                let z = try ephemeral.sharedSecretFromKeyAgreement(with: ekKey).withUnsafeBytes { Array($0) }
                return try finish(SHA384.self, aesBits: 256, z: z, ephemeralX963: Array(ephemeral.publicKey.x963Representation),
                                  ek: ek, credential: credential, objectName: objectName)
            }
        } catch let error as TPMError {
            throw error
        } catch {
            throw TPMError(.cryptoFailure, "\(error)")
        }
    }

    private static func finish<H: HashFunction>(_ hash: H.Type, aesBits: Int, z: [UInt8], ephemeralX963: [UInt8], ek: TPMEndorsementKey,
                                                credential: [UInt8], objectName: [UInt8]) throws -> TPMMadeCredential {
        let size = ek.coordinateSize
        let ex = Array(ephemeralX963[1...size]), ey = Array(ephemeralX963[(size + 1)...(2 * size)])
        let digestBits = H.Digest.byteCount * 8
        let seed = TPMKDF.e(H.self, z: z, use: "IDENTITY", partyU: ex, partyV: ek.x, bits: digestBits)
        let symKey = TPMKDF.a(H.self, key: seed, label: "STORAGE", contextU: objectName, contextV: [], bits: aesBits)
        let encIdentity = Array(try AES._CFB.encrypt(TPMWriter.sized(credential), using: SymmetricKey(data: symKey),
                                                     iv: AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16))))
        let hmacKey = TPMKDF.a(H.self, key: seed, label: "INTEGRITY", contextU: [], contextV: [], bits: digestBits)
        let integrity = Array(HMAC<H>.authenticationCode(for: encIdentity + objectName, using: SymmetricKey(data: hmacKey)))
        let idObject = TPMWriter.sized(integrity) + encIdentity
        return TPMMadeCredential(credentialBlob: TPMWriter.sized(idObject),
                                 encryptedSecret: TPMWriter.sized(TPMWriter.sized(ex) + TPMWriter.sized(ey)))
    }
}
