import Crypto
import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// The TPM manufacturers' CAs an endorsement key (EK) certificate must chain
/// to (`device.tpm_ca_file`): self-signed certificates in the bundle are the
/// trust anchors, the others intermediates used only to build a path.
public struct TPMTrustAnchors: Sendable {
    /// Largest bundle read.
    public static let maxBundleBytes = 1 << 20
    public let roots: [Certificate]
    public let intermediates: [Certificate]

    public init(roots: [Certificate], intermediates: [Certificate] = []) {
        self.roots = roots; self.intermediates = intermediates
    }

    /// A PEM bundle; at least one self-signed certificate.
    public init(pemBundle text: String) throws(TPMError) {
        guard text.utf8.count <= Self.maxBundleBytes else { throw TPMError(.tooLarge, "the TPM CA bundle is larger than 1 MiB") }
        let certificates: [Certificate]
        do { certificates = try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) } } catch {
            throw TPMError(.invalidField, "the TPM CA bundle is not PEM certificates: \(error)")
        }
        let roots = certificates.filter { $0.issuer == $0.subject && $0.publicKey.isValidSignature($0.signature, for: $0) }
        guard !roots.isEmpty else { throw TPMError(.invalidField, "the TPM CA bundle holds no self-signed (root) certificate") }
        self.init(roots: roots, intermediates: certificates.filter { c in !roots.contains(c) })
    }
}

/// What an agent sends to claim its device key lives in a TPM: the TPM's EK
/// certificate (DER) and the device key's `TPMT_PUBLIC`. Nothing in it is
/// trusted; ``TPMEvidenceVerifier`` checks it, and only a successful
/// `TPM2_ActivateCredential` afterwards proves the key is in that TPM.
public struct UnverifiedTPMEvidence: Sendable, Hashable {
    public static let maxCertificateBytes = 8 * 1024
    public let ekCertificateDER: [UInt8]
    public let keyPublic: [UInt8]
    public init(ekCertificateDER: [UInt8], keyPublic: [UInt8]) {
        self.ekCertificateDER = ekCertificateDER; self.keyPublic = keyPublic
    }
}

/// Evidence that passed every check short of activation: an EK certified by a
/// trusted manufacturer, and a device key whose public area says it cannot
/// leave its TPM and whose point is the CSR's key. Only ``TPMEvidenceVerifier`` makes one.
public struct CheckedTPMEvidence: Sendable, Hashable {
    public let endorsementKey: TPMEndorsementKey
    /// Lower-case hex SHA-256 of the EK certificate's DER (what the inventory and events show).
    public let ekCertificateFingerprint: String
    public let ekCertificate: Certificate
    public let keyPublic: TPMECCPublicArea
    /// The device key's TPM Name, which the credential is made for.
    public var keyName: [UInt8] { keyPublic.name }
}

/// Why TPM evidence was refused.
public enum TPMEvidenceRefusal: Sendable, Hashable, CustomStringConvertible {
    case malformedEKCertificate(String)
    /// No path to a configured TPM manufacturer CA (the reasons are swift-certificates').
    case untrustedEKCertificate([String])
    /// The EK certificate's key is not ECC P-256 or P-384.
    case unsupportedEndorsementKey
    case malformedKeyPublic(String)
    /// The key's public area allows it to leave the TPM, or is not a P-256 signing key.
    case keyAttributes(String)
    /// The `TPMT_PUBLIC` point is not the CSR's public key.
    case keyMismatch

    public var code: String {
        switch self {
        case .malformedEKCertificate: "malformed_ek_certificate"
        case .untrustedEKCertificate: "untrusted_ek_certificate"
        case .unsupportedEndorsementKey: "unsupported_endorsement_key"
        case .malformedKeyPublic: "malformed_key_public"
        case .keyAttributes: "key_attributes"
        case .keyMismatch: "key_mismatch"
        }
    }
    public var description: String {
        switch self {
        case .malformedEKCertificate(let d): "the EK certificate is malformed: \(d)"
        case .untrustedEKCertificate(let r): "the EK certificate does not chain to a trusted TPM manufacturer CA: \(r.joined(separator: "; "))"
        case .unsupportedEndorsementKey: "the endorsement key is not ECC P-256 or P-384"
        case .malformedKeyPublic(let d): "the key's TPMT_PUBLIC is malformed: \(d)"
        case .keyAttributes(let d): "the key is not bound to its TPM: \(d)"
        case .keyMismatch: "the TPM key is not the key of the certificate request"
        }
    }
}

public enum TPMEvidenceVerdict: Sendable, Hashable {
    case checked(CheckedTPMEvidence)
    case refused(TPMEvidenceRefusal)
}

/// Checks TPM evidence against the trusted manufacturer CAs and the CSR's key,
/// at a given time: the EK certificate must chain (RFC 5280, swift-certificates'
/// `Verifier`) to one of ``TPMTrustAnchors``; the key's `TPMT_PUBLIC` must be
/// a P-256 signing key with fixedTPM, fixedParent and sensitiveDataOrigin and
/// neither decrypt nor restricted; its point must equal the CSR's key.
public struct TPMEvidenceVerifier: Sendable {
    public let anchors: TPMTrustAnchors
    public init(anchors: TPMTrustAnchors) { self.anchors = anchors }

    public func check(_ evidence: UnverifiedTPMEvidence, requestKey: Certificate.PublicKey, at time: Date) async -> TPMEvidenceVerdict {
        guard !evidence.ekCertificateDER.isEmpty, evidence.ekCertificateDER.count <= UnverifiedTPMEvidence.maxCertificateBytes else {
            return .refused(.malformedEKCertificate("\(evidence.ekCertificateDER.count) bytes (1 to \(UnverifiedTPMEvidence.maxCertificateBytes))"))
        }
        let ekCertificate: Certificate
        do { ekCertificate = try Certificate(derEncoded: evidence.ekCertificateDER) } catch {
            return .refused(.malformedEKCertificate("not an X.509 certificate: \(error)"))
        }
        let keyPublic: TPMECCPublicArea
        do { keyPublic = try TPMECCPublicArea.parse(evidence.keyPublic) } catch {
            return .refused(.malformedKeyPublic(error.description))
        }
        if let refusal = keyPublic.deviceKeyRefusal { return .refused(.keyAttributes(refusal)) }
        guard let point = keyPublic.x963, let requested = P256.Signing.PublicKey(requestKey),
              Array(requested.x963Representation) == point else { return .refused(.keyMismatch) }

        var verifier = Verifier(rootCertificates: CertificateStore(anchors.roots)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            EndorsementCertificatePolicy()
        }
        switch await verifier.validate(leaf: ekCertificate, intermediates: CertificateStore(anchors.intermediates)) {
        case .couldNotValidate(let failures):
            return .refused(.untrustedEKCertificate(failures.isEmpty ? ["no chain"] : failures.map { "\($0.policyFailureReason)" }))
        case .validCertificate:
            break
        }
        guard let x963 = Self.x963(of: ekCertificate.publicKey), let ek = TPMEndorsementKey(x963: x963) else {
            return .refused(.unsupportedEndorsementKey)
        }
        let der = (try? DeviceCA.der(ekCertificate)) ?? evidence.ekCertificateDER
        return .checked(CheckedTPMEvidence(endorsementKey: ek, ekCertificateFingerprint: DeviceCA.hex(SHA256.hash(data: der)),
                                           ekCertificate: ekCertificate, keyPublic: keyPublic))
    }

    static func x963(of key: Certificate.PublicKey) -> [UInt8]? {
        if let k = P256.Signing.PublicKey(key) { return Array(k.x963Representation) }
        if let k = P384.Signing.PublicKey(key) { return Array(k.x963Representation) }
        return nil
    }
}

/// The path policy for EK certificates (TCG EK Credential Profile): their
/// subject alternative name (the TPM manufacturer, model and version as a
/// directory name) is critical when the subject is empty; Menshen does not
/// match on it, so it declares it handled. The key must be ECC.
public struct EndorsementCertificatePolicy: VerifierPolicy, Sendable {
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.subjectAlternativeName]
    public init() {}
    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        TPMEvidenceVerifier.x963(of: chain.leaf.publicKey) == nil
            ? .failsToMeetPolicy(reason: "EK certificate: the key is not ECC P-256 or P-384") : .meetsPolicy
    }
}

/// A PKCS#10 request signed by a key the caller cannot hand over (a TPM key):
/// the `CertificationRequestInfo` DER is made with swift-certificates' own
/// types, the caller signs its SHA-256 digest (ECDSA P-256, DER signature), and
/// the request is assembled and checked with swift-certificates'
/// `CertificateSigningRequest` before it is returned.
public enum ExternalSignerCSR {
    public static func make(publicKey: P256.Signing.PublicKey, subject: DistinguishedName,
                            signDigest: ([UInt8]) throws -> [UInt8]) throws -> CertificateSigningRequest {
        let key = Certificate.PublicKey(publicKey)
        // A placeholder signature only to serialise the request info: the info's DER does not depend on it.
        let placeholder = try Certificate.Signature(signatureAlgorithm: .ecdsaWithSHA256,
                                                    signatureBytes: ASN1BitString(bytes: [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]))
        let draft = try CertificateSigningRequest(version: .v1, subject: subject, publicKey: key, attributes: .init(),
                                                  signatureAlgorithm: .ecdsaWithSHA256, signature: placeholder)
        var serializer = DER.Serializer()
        try serializer.serialize(draft)
        guard case .constructed(let children) = try DER.parse(serializer.serializedBytes).content,
              let info = children.first(where: { _ in true }) else { throw TPMError(.invalidField, "the request does not re-parse") }
        let infoDER = Array(info.encodedBytes)
        let signature = try signDigest(Array(SHA256.hash(data: infoDER)))
        let csr = try CertificateSigningRequest(version: .v1, subject: subject, publicKey: key, attributes: .init(),
                                                signatureAlgorithm: .ecdsaWithSHA256,
                                                signature: Certificate.Signature(signatureAlgorithm: .ecdsaWithSHA256, signatureBytes: ASN1BitString(bytes: signature[...])))
        // Read back from its DER, as the server will, and verified.
        var out = DER.Serializer()
        try out.serialize(csr)
        let parsed = try CertificateSigningRequest(derEncoded: out.serializedBytes)
        guard parsed.publicKey.isValidSignature(parsed.signature, for: parsed) else {
            throw TPMError(.cryptoFailure, "the signer's signature does not verify with the request's key")
        }
        return parsed
    }
}

extension DeviceCA {
    /// The public key of a CSR (PEM or DER), after the checks ``issue(csr:for:now:validity:random:)`` makes
    /// (size, syntax, P-256, signature by that key).
    public static func requestedPublicKey(csr: [UInt8]) throws(DeviceCAError) -> Certificate.PublicKey {
        try CSRCheck.publicKey(of: csr)
    }
}
