import Crypto
import Foundation
import MenshenCore
import MenshenDevice
import Testing
import X509

/// The TPM structures Menshen reads from agents, without a TPM: the parser's
/// limits and refusals, no crash on mutated or random input, and the CSR made
/// with an external signer. (The cryptography is checked against a real TPM in
/// `IntegrationTests/TPMAttestationTests`.)
@Suite("TPM structures: TPMT_PUBLIC parsing, limits, key attributes, external-signer CSRs")
struct TPMStructureTests {
    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// A TPMT_PUBLIC for `key` with `attributes` (default fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign).
    static func area(_ key: P256.Signing.PublicKey, attributes: UInt32 = 0x0004_0072, policy: [UInt8] = []) -> [UInt8] {
        let x963 = Array(key.x963Representation)
        let a = [UInt8(attributes >> 24), UInt8((attributes >> 16) & 0xFF), UInt8((attributes >> 8) & 0xFF), UInt8(attributes & 0xFF)]
        return u16(0x0023) + u16(0x000B) + a + u16(UInt16(policy.count)) + policy + u16(0x0010) + u16(0x0018) + u16(0x000B) + u16(0x0003)
            + u16(0x0010) + u16(32) + Array(x963[1...32]) + u16(32) + Array(x963[33...64])
    }

    @Test("a device key's public area parses; its Name is nameAlg ‖ SHA-256(TPMT_PUBLIC); the point is the key")
    func parses() throws {
        let key = P256.Signing.PrivateKey().publicKey
        let bytes = Self.area(key)
        let parsed = try TPMECCPublicArea.parse(bytes)
        #expect(parsed.deviceKeyRefusal == nil)
        #expect(parsed.x963 == Array(key.x963Representation))
        #expect(parsed.name == [0x00, 0x0B] + Array(SHA256.hash(data: bytes)))
        #expect(try TPMECCPublicArea.parse(Self.u16(UInt16(bytes.count)) + bytes, sized: true) == parsed)
    }

    @Test("keys that could leave the TPM, decrypt or are restricted are refused, each with its reason")
    func attributes() throws {
        let key = P256.Signing.PrivateKey().publicKey
        let cases: [(UInt32, String)] = [
            (0x0004_0070, "fixedTPM"), (0x0004_0062, "fixedParent"), (0x0004_0052, "sensitiveDataOrigin"),
            (0x0000_0072, "sign"), (0x0006_0072, "decrypt"), (0x0005_0072, "restricted"),
        ]
        for (attributes, word) in cases {
            let refusal = try TPMECCPublicArea.parse(Self.area(key, attributes: attributes)).deviceKeyRefusal
            #expect(refusal?.contains(word) == true, "\(String(attributes, radix: 16)): \(refusal ?? "accepted")")
        }
    }

    @Test("sizes over the limits, truncation and trailing bytes are errors")
    func limits() {
        let key = P256.Signing.PrivateKey().publicKey
        let good = Self.area(key)
        #expect(throws: TPMError(.trailingBytes)) { try TPMECCPublicArea.parse(good + [0]) }
        #expect(throws: TPMError(.truncated)) { try TPMECCPublicArea.parse(Array(good.dropLast())) }
        #expect(throws: TPMError(.tooLarge)) { try TPMECCPublicArea.parse(Self.area(key, policy: [UInt8](repeating: 1, count: 65))) }
        #expect(throws: TPMError(.tooLarge)) { try TPMECCPublicArea.parse([UInt8](repeating: 0, count: 2000)) }
        var bigX = good
        bigX[20] = 0x00; bigX[21] = 67   // unique.x declared 67 bytes
        #expect(throws: TPMError(.tooLarge)) { try TPMECCPublicArea.parse(bigX) }
        var rsa = good
        rsa[1] = 0x01   // TPM_ALG_RSA
        #expect(throws: TPMError(.unsupportedAlgorithm)) { try TPMECCPublicArea.parse(rsa) }
        #expect(throws: TPMError(.trailingBytes)) { try TPMECCPublicArea.parse(Self.u16(UInt16(good.count)) + good + [0], sized: true) }
    }

    @Test("mutated and random input never traps: 30,000 inputs parse or throw")
    func noTrap() {
        var generator = SystemRandomNumberGenerator()
        let good = Self.area(P256.Signing.PrivateKey().publicKey)
        var accepted = 0
        for i in 0..<30_000 {
            var input = good
            switch i % 4 {
            case 0: for _ in 0..<Int.random(in: 1...6, using: &generator) { input[Int.random(in: 0..<input.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            case 1: input = Array(input.prefix(Int.random(in: 0..<input.count, using: &generator)))
            case 2: input.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0...input.count, using: &generator))
            default: input = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            if let parsed = try? TPMECCPublicArea.parse(input, sized: i % 8 == 7) {
                accepted += 1
                _ = parsed.name; _ = parsed.x963; _ = parsed.deviceKeyRefusal
            }
        }
        #expect(accepted < 30_000)
    }

    @Test("MakeCredential refuses an empty or oversized credential and a Name of the wrong size")
    func credentialInput() throws {
        let ek = try #require(TPMEndorsementKey(x963: Array(P256.KeyAgreement.PrivateKey().publicKey.x963Representation)))
        let name = [0x00, 0x0B] + [UInt8](repeating: 7, count: 32)
        #expect(throws: TPMError(.invalidField)) { try TPMCredentialMaker.make(credential: [], objectName: name, for: ek, random: SystemRandomSource()) }
        #expect(throws: TPMError(.invalidField)) { try TPMCredentialMaker.make(credential: [UInt8](repeating: 1, count: 33), objectName: name, for: ek, random: SystemRandomSource()) }
        #expect(throws: TPMError(.invalidField)) { try TPMCredentialMaker.make(credential: [1], objectName: Array(name.dropLast()), for: ek, random: SystemRandomSource()) }
        let made = try TPMCredentialMaker.make(credential: [UInt8](repeating: 1, count: 32), objectName: name, for: ek, random: SystemRandomSource())
        // TPM2B_ID_OBJECT: size, HMAC (SHA-256), encrypted TPM2B_DIGEST of 32; TPM2B_ENCRYPTED_SECRET: the P-256 point.
        #expect(made.credentialBlob.count == 2 + 2 + 32 + 34 && made.encryptedSecret.count == 2 + 2 + 32 + 2 + 32)
        #expect(TPMEndorsementKey(x963: [0x04] + [UInt8](repeating: 0, count: 64)) == nil, "not a point on the curve")
    }

    @Test("a CSR signed by an external signer verifies and is accepted by the device CA's check; a signature by another key is refused")
    func externalSigner() throws {
        let key = P256.Signing.PrivateKey()
        let csr = try ExternalSignerCSR.make(publicKey: key.publicKey, subject: try DistinguishedName { CommonName("menshen-agent") }) { digest in
            Array(try key.signature(for: SHA256Digest(bytes: digest)).derRepresentation)
        }
        #expect(try DeviceCA.requestedPublicKey(csr: Array(csr.serializeAsPEM().pemString.utf8)) == Certificate.PublicKey(key.publicKey))
        let other = P256.Signing.PrivateKey()
        #expect(throws: (any Error).self) {
            try ExternalSignerCSR.make(publicKey: key.publicKey, subject: try DistinguishedName { CommonName("menshen-agent") }) { digest in
                Array(try other.signature(for: SHA256Digest(bytes: digest)).derRepresentation)
            }
        }
    }
}

extension SHA256Digest {
    /// A digest from its 32 bytes (to sign a precomputed hash, as a TPM does).
    init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw TPMError(.invalidField, "digest size") }
        // A SHA256Digest cannot be built from bytes directly; hashing is not an option (the signer gets a digest).
        var copy = SHA256.hash(data: [])
        withUnsafeMutableBytes(of: &copy) { $0.copyBytes(from: bytes) }
        self = copy
    }
}
