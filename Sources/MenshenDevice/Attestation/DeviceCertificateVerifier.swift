import MenshenCore
import Crypto
import Foundation
import SwiftASN1
// The SPI is swift-certificates' supported way to validate at an injected time
// (its public `init()` reads the clock at validation, which rule 11 forbids here).
@_spi(FixedExpiryValidationTime) import X509

/// A device certificate that chains to our CA, is current, is not revoked,
/// allows client authentication and names a device. Only
/// ``DeviceCertificateVerifier`` makes one.
public struct VerifiedDeviceCertificate: Sendable, Hashable {
    public let deviceID: DeviceID
    public let certificate: Certificate
    /// Lower-case hex of the serial number.
    public let serialNumber: String
    /// Lower-case hex SHA-256 of the certificate's DER (what the gateway logs).
    public let fingerprint: String
    /// The CA certificate it was verified against.
    public let caCertificate: Certificate
    /// The device key (P-256), which also signs posture reports.
    public let signingKey: P256.Signing.PublicKey
    public var notValidAfter: Date { certificate.notValidAfter }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.certificate == rhs.certificate && lhs.caCertificate == rhs.caCertificate
    }
    public func hash(into hasher: inout Hasher) { hasher.combine(fingerprint) }
}

/// Why a presented certificate was refused. The cases are checked in this
/// order, so the first that applies is the one reported.
public enum DeviceCertificateRefusal: Sendable, Hashable, CustomStringConvertible {
    /// Not a certificate (or over the size limit).
    case malformed(String)
    /// Issued by another CA (issuer name or authority key identifier differ).
    case otherCA
    /// Names our CA as issuer, but our CA's key did not sign it.
    case badSignature
    case notYetValid(notValidBefore: Date)
    case expired(notValidAfter: Date)
    case revoked(serialNumber: String, revokedAt: Date)
    /// No extended key usage, or one without clientAuth.
    case wrongExtendedKeyUsage
    /// keyUsage missing digitalSignature, or the certificate is a CA.
    case wrongKeyUsage
    /// No `urn:menshen:device:` SAN URI, or more than one.
    case noDeviceIdentity
    /// The key is not P-256.
    case unsupportedKeyAlgorithm
    /// Everything above passed but RFC 5280 path validation did not (for
    /// example an unknown critical extension); the reasons are swift-certificates'.
    case pathValidationFailed([String])

    /// A stable code for events and logs.
    public var code: String {
        switch self {
        case .malformed: "malformed"
        case .otherCA: "other_ca"
        case .badSignature: "bad_signature"
        case .notYetValid: "not_yet_valid"
        case .expired: "expired"
        case .revoked: "revoked"
        case .wrongExtendedKeyUsage: "wrong_extended_key_usage"
        case .wrongKeyUsage: "wrong_key_usage"
        case .noDeviceIdentity: "no_device_identity"
        case .unsupportedKeyAlgorithm: "unsupported_key_algorithm"
        case .pathValidationFailed: "path_validation_failed"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed: \(detail)"
        case .notYetValid(let date): "not yet valid (from \(date))"
        case .expired(let date): "expired (at \(date))"
        case .revoked(let serial, let date): "revoked: serial \(serial) at \(date)"
        case .pathValidationFailed(let reasons): "path validation failed: \(reasons.joined(separator: "; "))"
        default: code
        }
    }
}

public enum DeviceCertificateVerdict: Sendable, Hashable {
    case accepted(VerifiedDeviceCertificate)
    case refused(DeviceCertificateRefusal)
}

/// Verifies a device's client certificate (as the gateway received it in the
/// TLS handshake) against one device CA and a revocation list, at a given
/// time. Precise checks first, so a refusal says why; then swift-certificates'
/// `Verifier` with RFC 5280 path validation and ``DeviceClientPolicy`` decides.
public struct DeviceCertificateVerifier: Sendable {
    /// Largest certificate accepted, in bytes.
    public static let maxCertificateBytes = 16 * 1024

    public let caCertificate: Certificate
    public var revocations: DeviceRevocationList

    public init(caCertificate: Certificate, revocations: DeviceRevocationList = DeviceRevocationList()) {
        self.caCertificate = caCertificate
        self.revocations = revocations
    }

    /// A certificate as PEM text or DER bytes.
    public func verify(_ presented: [UInt8], at time: Date) async -> DeviceCertificateVerdict {
        guard !presented.isEmpty, presented.count <= Self.maxCertificateBytes else {
            return .refused(.malformed("\(presented.count) bytes (1 to \(Self.maxCertificateBytes) accepted)"))
        }
        do {
            let certificate = presented.starts(with: Array("-----BEGIN".utf8))
                ? try Certificate(pemEncoded: String(decoding: presented, as: UTF8.self))
                : try Certificate(derEncoded: presented)
            return await verify(certificate, at: time)
        } catch {
            return .refused(.malformed("not an X.509 certificate: \(error)"))
        }
    }

    public func verify(_ leaf: Certificate, at time: Date) async -> DeviceCertificateVerdict {
        if let refusal = precheck(leaf, at: time) { return .refused(refusal) }
        guard let deviceID = Self.deviceID(of: leaf) else { return .refused(.noDeviceIdentity) }
        guard let key = P256.Signing.PublicKey(leaf.publicKey) else { return .refused(.unsupportedKeyAlgorithm) }

        var verifier = Verifier(rootCertificates: CertificateStore([caCertificate])) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            DeviceClientPolicy(revocations: revocations)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore()) {
        case .validCertificate:
            let der = (try? DeviceCA.der(leaf)) ?? []
            return .accepted(VerifiedDeviceCertificate(
                deviceID: deviceID, certificate: leaf, serialNumber: DeviceCA.hex(leaf.serialNumber.bytes),
                fingerprint: DeviceCA.hex(SHA256.hash(data: der)), caCertificate: caCertificate, signingKey: key))
        case .couldNotValidate(let failures):
            return .refused(.pathValidationFailed(failures.isEmpty ? ["no chain to the device CA"] : failures.map { "\($0.policyFailureReason)" }))
        }
    }

    /// The checks that give a refusal its precise reason.
    private func precheck(_ leaf: Certificate, at time: Date) -> DeviceCertificateRefusal? {
        guard leaf.issuer == caCertificate.subject else { return .otherCA }
        if let aki = try? leaf.extensions.authorityKeyIdentifier?.keyIdentifier,
           let ski = try? caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier, aki != ski {
            return .otherCA
        }
        guard caCertificate.publicKey.isValidSignature(leaf.signature, for: leaf) else { return .badSignature }
        if time < leaf.notValidBefore { return .notYetValid(notValidBefore: leaf.notValidBefore) }
        if time > leaf.notValidAfter { return .expired(notValidAfter: leaf.notValidAfter) }
        let serial = DeviceCA.hex(leaf.serialNumber.bytes)
        if let entry = revocations.entry(serialNumber: serial) { return .revoked(serialNumber: serial, revokedAt: entry.revokedAt) }
        return DeviceClientPolicy.usageRefusal(leaf)
    }

    /// The device named by the certificate's single `urn:menshen:device:` SAN URI.
    static func deviceID(of certificate: Certificate) -> DeviceID? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        let devices = names.compactMap { name -> DeviceID? in
            if case .uniformResourceIdentifier(let uri) = name { return DeviceID.fromURI(uri) }
            return nil
        }
        return devices.count == 1 ? devices.first : nil
    }
}

/// A swift-certificates policy for device client certificates: the leaf
/// must allow client authentication (EKU clientAuth, keyUsage
/// digitalSignature, not a CA), name exactly one device, and not be revoked.
/// It enforces the EKU and SAN extensions, so it declares them handled.
public struct DeviceClientPolicy: VerifierPolicy, Sendable {
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName,
    ]
    public let revocations: DeviceRevocationList

    public init(revocations: DeviceRevocationList) { self.revocations = revocations }

    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let leaf = chain.leaf
        if let refusal = Self.usageRefusal(leaf) { return .failsToMeetPolicy(reason: "device certificate: \(refusal.code)") }
        guard DeviceCertificateVerifier.deviceID(of: leaf) != nil else {
            return .failsToMeetPolicy(reason: "device certificate: no single urn:menshen:device: SAN")
        }
        if revocations.entry(serialNumber: DeviceCA.hex(leaf.serialNumber.bytes)) != nil {
            return .failsToMeetPolicy(reason: "device certificate: revoked")
        }
        return .meetsPolicy
    }

    static func usageRefusal(_ leaf: Certificate) -> DeviceCertificateRefusal? {
        guard let eku = try? leaf.extensions.extendedKeyUsage, eku.contains(.clientAuth) else { return .wrongExtendedKeyUsage }
        guard let usage = try? leaf.extensions.keyUsage, usage.digitalSignature else { return .wrongKeyUsage }
        if case .isCertificateAuthority? = try? leaf.extensions.basicConstraints { return .wrongKeyUsage }
        return nil
    }
}
