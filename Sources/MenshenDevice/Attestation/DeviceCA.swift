import Crypto
import _CryptoExtras
import Foundation
import MenshenCore
import SwiftASN1
import X509

/// The signature algorithm of a device CA. One case today; the enum is the
/// seam for crypto agility: a post-quantum algorithm (ML-DSA, FIPS 204) is a
/// new case here and in ``CAPrivateKey`` once swift-certificates can put its
/// signatures in certificates. Sealed CAs record their algorithm, so CAs of
/// different algorithms can coexist during a migration.
public enum DeviceCAAlgorithm: String, Sendable, Hashable, Codable, CaseIterable {
    /// ECDSA on P-256 with SHA-256 (FIPS 186-5), what TPM 2.0 chips and
    /// platform key stores all support.
    case ecdsaP256 = "ecdsa-p256"
}

/// The distinguished name of a device CA.
public struct DeviceCAName: Sendable, Hashable, Codable {
    public var commonName: String
    public var organization: String?
    public init(commonName: String, organization: String? = nil) {
        self.commonName = commonName
        self.organization = organization
    }
}

/// What the caller stores for a CA: the certificate (public) and the private
/// key sealed with AES-256-GCM under the caller's 32-byte key-encryption key.
/// The associated data binds the sealed key to this CA (format, algorithm and
/// the SHA-256 of the CA certificate), so a sealed key moved into another
/// CA's record does not open.
public struct SealedDeviceCA: Sendable, Hashable, Codable {
    public static let currentFormat = 1
    public var format: Int
    public var algorithm: DeviceCAAlgorithm
    /// The CA certificate, PEM.
    public var certificatePEM: String
    /// base64 of nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
    public var sealedPrivateKey: String

    public init(format: Int = SealedDeviceCA.currentFormat, algorithm: DeviceCAAlgorithm, certificatePEM: String, sealedPrivateKey: String) {
        self.format = format; self.algorithm = algorithm; self.certificatePEM = certificatePEM; self.sealedPrivateKey = sealedPrivateKey
    }

    enum CodingKeys: String, CodingKey {
        case format, algorithm
        case certificatePEM = "certificate_pem"
        case sealedPrivateKey = "sealed_private_key"
    }
}

/// A certificate the CA issued, with the values a caller stores or sends.
public struct IssuedDeviceCertificate: Sendable, Hashable {
    public let deviceID: DeviceID
    public let certificate: Certificate
    /// Lower-case hex of the serial number (the key of ``DeviceRevocationList``).
    public let serialNumber: String
    public var notValidBefore: Date { certificate.notValidBefore }
    public var notValidAfter: Date { certificate.notValidAfter }
    public let der: [UInt8]
    public let pem: String
}

/// The private key of a CA, by algorithm.
enum CAPrivateKey: Sendable {
    case p256(P256.Signing.PrivateKey)

    static func generate(_ algorithm: DeviceCAAlgorithm) -> CAPrivateKey {
        switch algorithm {
        // swift-crypto draws the key from the system CSPRNG; key generation is
        // the one place randomness cannot be injected (rule 11's exception).
        case .ecdsaP256: .p256(P256.Signing.PrivateKey())
        }
    }

    init(algorithm: DeviceCAAlgorithm, raw: [UInt8]) throws(DeviceCAError) {
        switch algorithm {
        case .ecdsaP256:
            do { self = .p256(try P256.Signing.PrivateKey(rawRepresentation: raw)) } catch {
                throw DeviceCAError(.invalidSealedKey, "the opened key is not a P-256 key")
            }
        }
    }

    var raw: [UInt8] {
        switch self {
        case .p256(let key): Array(key.rawRepresentation)
        }
    }
    var certificateKey: Certificate.PrivateKey {
        switch self {
        case .p256(let key): Certificate.PrivateKey(key)
        }
    }
    var publicKey: Certificate.PublicKey { certificateKey.publicKey }
    var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .p256: .ecdsaWithSHA256
        }
    }
}

/// The device certificate authority: issues short-lived client certificates
/// for enrolled devices from their CSRs, renews them for the same key, and
/// hands out the verifier the gateway uses. Pure: storage of the sealed CA,
/// of issued certificates and of the revocation list is the caller's.
///
/// Device certificates: subject `CN=<device id>` (plus the CA's `O`), SAN
/// URI `urn:menshen:device:<device id>`, EKU clientAuth, keyUsage
/// digitalSignature (critical), basicConstraints CA:FALSE (critical),
/// subject and authority key identifiers, a random 159-bit serial, valid
/// from five minutes before issue (clock skew) for ``defaultCertificateValidity``.
/// Whatever the CSR asks for beyond its key is ignored: the CA decides.
public struct DeviceCA: Sendable {
    /// Device certificates live one day unless the caller says otherwise.
    public static let defaultCertificateValidity: TimeInterval = 24 * 3600
    /// CA certificates live five years unless the caller says otherwise.
    public static let defaultCAValidity: TimeInterval = 5 * 365 * 24 * 3600
    /// notBefore is set this far before the issue time, so a relying party
    /// whose clock is a little behind accepts a fresh certificate.
    public static let backdating: TimeInterval = 300
    /// Largest CSR accepted, in bytes (a P-256 CSR is about 250 DER bytes).
    public static let maxCSRBytes = 16 * 1024
    /// Longest device certificate validity the CA will issue: 30 days.
    public static let maxCertificateValidity: TimeInterval = 30 * 24 * 3600

    public let certificate: Certificate
    public let algorithm: DeviceCAAlgorithm
    private let privateKey: CAPrivateKey

    private init(certificate: Certificate, algorithm: DeviceCAAlgorithm, privateKey: CAPrivateKey) {
        self.certificate = certificate
        self.algorithm = algorithm
        self.privateKey = privateKey
    }

    /// The CA certificate, DER.
    public var certificateDER: [UInt8] { (try? Self.der(certificate)) ?? [] }

    /// Signs a certificate status statement (``DeviceCertificateStatus``) with
    /// the CA's key: DER ECDSA over SHA-256 of `bytes`, verifiable with the CA
    /// certificate's public key, so relying parties outside Menshen can trust a
    /// status they fetched over any channel (as with OCSP responses).
    public func signStatement(_ bytes: [UInt8]) throws -> [UInt8] {
        switch privateKey {
        case .p256(let key): Array(try key.signature(for: bytes).derRepresentation)
        }
    }
    /// The CA certificate, PEM (what the gateway's `tls.client_ca` file holds).
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    // MARK: - Creating and opening

    /// Creates a CA with a new key and a self-signed certificate (CA:TRUE,
    /// path length 0, keyCertSign and cRLSign), and returns it with its
    /// sealed form for the caller to store.
    public static func create(name: DeviceCAName, algorithm: DeviceCAAlgorithm = .ecdsaP256, now: Date,
                              validity: TimeInterval = defaultCAValidity, keyEncryptionKey: [UInt8],
                              random: any RandomSource = SystemRandomSource()) throws(DeviceCAError) -> (ca: DeviceCA, sealed: SealedDeviceCA) {
        guard !name.commonName.isEmpty, name.commonName.count <= 64, (name.organization?.count ?? 1) <= 64, name.organization?.isEmpty != true else {
            throw DeviceCAError(.invalidCADescription, "common name and organization must be 1–64 characters")
        }
        guard validity > 0, validity.isFinite else { throw DeviceCAError(.invalidValidity, "validity must be positive") }
        guard keyEncryptionKey.count == 32 else {
            throw DeviceCAError(.invalidKeyEncryptionKey, "the key-encryption key must be 32 bytes, got \(keyEncryptionKey.count)")
        }
        let key = CAPrivateKey.generate(algorithm)
        let certificate: Certificate
        do {
            let subject = try distinguishedName(commonName: name.commonName, organization: name.organization)
            certificate = try Certificate(
                version: .v3, serialNumber: serial(random), publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-backdating), notValidAfter: now.addingTimeInterval(validity),
                issuer: subject, subject: subject, signatureAlgorithm: key.signatureAlgorithm,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                },
                issuerPrivateKey: key.certificateKey)
        } catch {
            throw DeviceCAError(.certificateCreationFailed, "\(error)")
        }
        let ca = DeviceCA(certificate: certificate, algorithm: algorithm, privateKey: key)
        return (ca, try ca.sealed(keyEncryptionKey: keyEncryptionKey, random: random))
    }

    /// Seals this CA's key again (for example under a new key-encryption key).
    public func sealed(keyEncryptionKey: [UInt8], random: any RandomSource = SystemRandomSource()) throws(DeviceCAError) -> SealedDeviceCA {
        guard keyEncryptionKey.count == 32 else {
            throw DeviceCAError(.invalidKeyEncryptionKey, "the key-encryption key must be 32 bytes, got \(keyEncryptionKey.count)")
        }
        let nonceBytes = random.bytes(12)
        do {
            let pem = try certificate.serializeAsPEM().pemString
            let nonce = try AES.GCM.Nonce(data: nonceBytes)
            let box = try AES.GCM.seal(privateKey.raw, using: SymmetricKey(data: keyEncryptionKey), nonce: nonce,
                                       authenticating: Self.associatedData(format: SealedDeviceCA.currentFormat, algorithm: algorithm,
                                                                           certificateDER: try Self.der(certificate)))
            guard let combined = box.combined else { throw DeviceCAError(.certificateCreationFailed, "AES-GCM produced no combined form") }
            return SealedDeviceCA(algorithm: algorithm, certificatePEM: pem, sealedPrivateKey: Data(combined).base64EncodedString())
        } catch let error as DeviceCAError {
            throw error
        } catch {
            throw DeviceCAError(.certificateCreationFailed, "sealing the CA key: \(error)")
        }
    }

    /// Opens a stored CA. Fails when the key-encryption key is wrong, the
    /// blob was altered, or it belongs to another CA (its associated data is
    /// this CA's certificate), and when the opened key does not match the
    /// certificate's public key.
    public init(sealed: SealedDeviceCA, keyEncryptionKey: [UInt8]) throws(DeviceCAError) {
        guard keyEncryptionKey.count == 32 else {
            throw DeviceCAError(.invalidKeyEncryptionKey, "the key-encryption key must be 32 bytes, got \(keyEncryptionKey.count)")
        }
        guard sealed.format == SealedDeviceCA.currentFormat else {
            throw DeviceCAError(.invalidSealedKey, "unknown sealed CA format \(sealed.format)")
        }
        let certificate: Certificate
        do { certificate = try Certificate(pemEncoded: sealed.certificatePEM) } catch {
            throw DeviceCAError(.invalidSealedKey, "the CA certificate does not parse: \(error)")
        }
        guard let combined = Data(base64Encoded: sealed.sealedPrivateKey), combined.count > 28, combined.count < 4096 else {
            throw DeviceCAError(.invalidSealedKey, "the sealed key is not base64 of a sealed box")
        }
        let raw: Data
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            raw = try AES.GCM.open(box, using: SymmetricKey(data: keyEncryptionKey),
                                   authenticating: Self.associatedData(format: sealed.format, algorithm: sealed.algorithm,
                                                                       certificateDER: try Self.der(certificate)))
        } catch {
            throw DeviceCAError(.sealedKeyDoesNotOpen, "wrong key-encryption key, altered blob, or another CA's key")
        }
        let key = try CAPrivateKey(algorithm: sealed.algorithm, raw: Array(raw))
        guard key.publicKey == certificate.publicKey else {
            throw DeviceCAError(.invalidSealedKey, "the opened key does not match the CA certificate")
        }
        self.init(certificate: certificate, algorithm: sealed.algorithm, privateKey: key)
    }

    static func associatedData(format: Int, algorithm: DeviceCAAlgorithm, certificateDER: [UInt8]) -> [UInt8] {
        Array("menshen-device-ca-key/\(format)/\(algorithm.rawValue)/".utf8) + Array(SHA256.hash(data: certificateDER))
    }

    // MARK: - Issuing

    /// Issues a certificate for `device` to the key in `csr` (PEM or DER
    /// PKCS#10). The CSR's signature must verify (proof of possession) and
    /// its key must be P-256 — RSA and other curves are refused, because the
    /// same key signs posture reports and TPM 2.0 and platform key stores all
    /// offer P-256. The CSR's subject and requested extensions are ignored.
    public func issue(csr: [UInt8], for device: DeviceID, now: Date, validity: TimeInterval = defaultCertificateValidity,
                      random: any RandomSource = SystemRandomSource()) throws(DeviceCAError) -> IssuedDeviceCertificate {
        let publicKey = try CSRCheck.publicKey(of: csr)
        return try issue(publicKey: publicKey, for: device, now: now, validity: validity, random: random)
    }

    /// Renewal: a new certificate for the same device and key, from a
    /// certificate this CA's verifier accepted (so it is current, not revoked
    /// and ours). The mTLS handshake it arrived on proved possession of the key.
    public func renew(_ current: VerifiedDeviceCertificate, now: Date, validity: TimeInterval = defaultCertificateValidity,
                      random: any RandomSource = SystemRandomSource()) throws(DeviceCAError) -> IssuedDeviceCertificate {
        guard current.caCertificate == certificate else {
            throw DeviceCAError(.certificateFromAnotherCA, "the certificate was verified against another CA")
        }
        return try issue(publicKey: current.certificate.publicKey, for: current.deviceID, now: now, validity: validity, random: random)
    }

    private func issue(publicKey: Certificate.PublicKey, for device: DeviceID, now: Date, validity: TimeInterval,
                       random: any RandomSource) throws(DeviceCAError) -> IssuedDeviceCertificate {
        guard DeviceID.validated(device.rawValue) != nil else {
            throw DeviceCAError(.invalidDeviceID, "\"\(device.rawValue.prefix(64))\" is not a device id")
        }
        guard validity > 0, validity <= Self.maxCertificateValidity else {
            throw DeviceCAError(.invalidValidity, "device certificate validity must be more than 0 and at most \(Int(Self.maxCertificateValidity)) s")
        }
        guard now >= certificate.notValidBefore, now < certificate.notValidAfter else {
            throw DeviceCAError(.invalidValidity, "the CA certificate is not valid at \(now) (\(certificate.notValidBefore) to \(certificate.notValidAfter))")
        }
        let notAfter = min(now.addingTimeInterval(validity), certificate.notValidAfter)
        do {
            let organization = certificate.subject.flatMap { $0 }.first { $0.type == .RDNAttributeType.organizationName }
                .flatMap { String($0.value) }
            let subject = try Self.distinguishedName(commonName: device.rawValue, organization: organization)
            let issued = try Certificate(
                version: .v3, serialNumber: Self.serial(random), publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: notAfter,
                issuer: certificate.subject, subject: subject, signatureAlgorithm: privateKey.signatureAlgorithm,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.clientAuth])
                    SubjectAlternativeNames([.uniformResourceIdentifier(device.uri)])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: privateKey.certificateKey)
            return IssuedDeviceCertificate(deviceID: device, certificate: issued, serialNumber: Self.hex(issued.serialNumber.bytes),
                                           der: try Self.der(issued), pem: try issued.serializeAsPEM().pemString)
        } catch {
            throw DeviceCAError(.certificateCreationFailed, "\(error)")
        }
    }

    /// A verifier for certificates of this CA with the given revocations.
    public func verifier(revocations: DeviceRevocationList = DeviceRevocationList()) -> DeviceCertificateVerifier {
        DeviceCertificateVerifier(caCertificate: certificate, revocations: revocations)
    }

    // MARK: - Helpers

    static func distinguishedName(commonName: String, organization: String?) throws -> DistinguishedName {
        if let organization {
            return try DistinguishedName {
                OrganizationName(organization)
                CommonName(commonName)
            }
        }
        return try DistinguishedName { CommonName(commonName) }
    }

    /// 20 random bytes with the top bit clear (a positive INTEGER of at most
    /// 20 octets, RFC 5280 §4.1.2.2) and the next bit set (so it is never
    /// shortened by DER's minimal encoding): 158 random bits.
    static func serial(_ random: any RandomSource) -> Certificate.SerialNumber {
        var bytes = random.bytes(20)
        if bytes.count < 20 { bytes += [UInt8](repeating: 0, count: 20 - bytes.count) }
        bytes[0] = (bytes[0] & 0x3F) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// Reading and checking a PKCS#10 request.
enum CSRCheck {
    static func publicKey(of bytes: [UInt8]) throws(DeviceCAError) -> Certificate.PublicKey {
        guard !bytes.isEmpty else { throw DeviceCAError(.malformedCSR, "empty") }
        guard bytes.count <= DeviceCA.maxCSRBytes else {
            throw DeviceCAError(.csrTooLarge, "\(bytes.count) bytes, at most \(DeviceCA.maxCSRBytes)")
        }
        let csr: CertificateSigningRequest
        do {
            if bytes.starts(with: Array("-----BEGIN".utf8)) {
                csr = try CertificateSigningRequest(pemEncoded: String(decoding: bytes, as: UTF8.self))
            } else {
                csr = try CertificateSigningRequest(derEncoded: bytes)
            }
        } catch {
            throw DeviceCAError(.malformedCSR, "not a PKCS#10 certificate request: \(error)")
        }
        guard P256.Signing.PublicKey(csr.publicKey) != nil else {
            throw DeviceCAError(.unsupportedKeyAlgorithm, "device keys must be ECDSA P-256; the request has \(keyKind(csr.publicKey))")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw DeviceCAError(.csrSignatureInvalid, "the request is not signed by the key it carries")
        }
        return csr.publicKey
    }

    static func keyKind(_ key: Certificate.PublicKey) -> String {
        if P384.Signing.PublicKey(key) != nil { return "an ECDSA P-384 key" }
        if P521.Signing.PublicKey(key) != nil { return "an ECDSA P-521 key" }
        if Curve25519.Signing.PublicKey(key) != nil { return "an Ed25519 key" }
        if _RSA.Signing.PublicKey(key) != nil { return "an RSA key" }
        return "an unknown key type"
    }
}
