import Foundation
// The SPI is swift-certificates' supported way to validate at an injected time
// (its public `init()` reads the clock at validation, which rule 11 forbids here).
@_spi(FixedExpiryValidationTime) import X509

/// An attestation chain that builds to one of the caller's trust anchors.
public struct TrustedAttestationChain: Sendable, Hashable {
    /// The x5c certificates as sent (leaf first).
    public let certificates: [Certificate]
}

public enum AttestationTrustResult: Sendable, Hashable {
    case trusted(TrustedAttestationChain)
    /// No chain to the given roots satisfied RFC 5280 at the given time.
    case untrusted(reasons: [String])
}

extension UnverifiedAttestationChain {
    /// Validates the chain against `roots` (for example the FIDO MDS
    /// attestation roots for this AAGUID) with RFC 5280 path validation at
    /// `time`. No network: no OCSP or CRL fetches, so revocation is the
    /// metadata service's job (check the MDS status reports).
    ///
    /// Async only because swift-certificates' `Verifier` is; it does no I/O.
    public func validate(roots: [Certificate], at time: Date) async -> AttestationTrustResult {
        guard let leaf = certificates.first else { return .untrusted(reasons: ["empty chain"]) }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
        switch result {
        case .validCertificate:
            return .trusted(TrustedAttestationChain(certificates: certificates))
        case .couldNotValidate(let failures):
            return .untrusted(reasons: failures.map { "\($0.policyFailureReason)" })
        }
    }
}
