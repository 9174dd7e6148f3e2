import X509

/// The `packed` attestation statement format (WebAuthn §8.2).
enum PackedAttestation {

    static func verify(statement: CBORValue, signedData: [UInt8], attested: AuthenticatorData.AttestedCredential) throws(WebAuthnError) -> AttestationResult {
        guard let algValue = statement[text: "alg"]?.intValue, let signature = statement[text: "sig"]?.bytesValue else {
            throw WebAuthnError(.malformedAttestationStatement, "packed needs alg and sig")
        }
        for entry in statement.mapValue ?? [] {
            guard let key = entry.key.textValue, ["alg", "sig", "x5c"].contains(key) else {
                throw WebAuthnError(.malformedAttestationStatement, "unexpected key in packed attStmt")
            }
        }
        guard let x5c = statement[text: "x5c"] else {
            // Self attestation: the credential key signs.
            guard algValue == attested.publicKey.algorithm.rawValue else {
                throw WebAuthnError(.attestationAlgorithmMismatch, "attStmt alg \(algValue) vs key \(attested.publicKey.algorithm.rawValue)")
            }
            guard attested.publicKey.isValidSignature(signature, for: signedData) else {
                throw WebAuthnError(.badSignature, "packed self attestation")
            }
            return .selfAttestation
        }
        guard let entries = x5c.arrayValue, !entries.isEmpty, entries.count <= 8 else {
            throw WebAuthnError(.malformedAttestationStatement, "x5c must be a non-empty array")
        }
        var certificates: [Certificate] = []
        for entry in entries {
            guard let der = entry.bytesValue, let certificate = try? Certificate(derEncoded: der) else {
                throw WebAuthnError(.invalidAttestationCertificate, "x5c entry is not a DER certificate")
            }
            certificates.append(certificate)
        }
        // Invariant: entries is non-empty and every entry produced a certificate.
        guard let leaf = certificates.first else { throw WebAuthnError(.malformedAttestationStatement) }
        let signatureAlgorithm: Certificate.SignatureAlgorithm
        switch COSEAlgorithm(rawValue: algValue) {
        case .es256, .esp256: signatureAlgorithm = .ecdsaWithSHA256
        case .rs256: signatureAlgorithm = .sha256WithRSAEncryption
        default: throw WebAuthnError(.unsupportedAlgorithm, "packed x5c alg \(algValue)")
        }
        guard leaf.publicKey.isValidSignature(signature, for: signedData, signatureAlgorithm: signatureAlgorithm) else {
            throw WebAuthnError(.badSignature, "packed attestation certificate signature")
        }
        try checkRequirements(leaf, aaguid: attested.aaguid)
        return .basic(UnverifiedAttestationChain(certificates: certificates))
    }

    /// WebAuthn §8.2.1 packed attestation certificate requirements.
    static func checkRequirements(_ certificate: Certificate, aaguid: [UInt8]) throws(WebAuthnError) {
        guard certificate.version == .v3 else { throw WebAuthnError(.invalidAttestationCertificate, "not X.509 v3") }
        var seen: Set<String> = []
        var organizationalUnit: String?
        for rdn in certificate.subject {
            for attribute in rdn {
                seen.insert(attribute.type.description)
                if attribute.type == .RDNAttributeType.organizationalUnitName {
                    organizationalUnit = attribute.value.description
                }
            }
        }
        // C, O, OU, CN (id-at 6, 10, 11, 3).
        let required = ["2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.4.3"]
        guard required.allSatisfy(seen.contains) else {
            throw WebAuthnError(.invalidAttestationCertificate, "subject needs C, O, OU and CN")
        }
        guard organizationalUnit == "Authenticator Attestation" else {
            throw WebAuthnError(.invalidAttestationCertificate, "OU must be \"Authenticator Attestation\"")
        }
        let constraints: BasicConstraints?
        do {
            constraints = try certificate.extensions.basicConstraints
        } catch {
            throw WebAuthnError(.invalidAttestationCertificate, "basic constraints malformed")
        }
        if case .isCertificateAuthority = constraints {
            throw WebAuthnError(.invalidAttestationCertificate, "attestation certificate must not be a CA")
        }
        if let extensionValue = certificate.extensions[oid: [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4]] {  // id-fido-gen-ce-aaguid
            guard !extensionValue.critical else {
                throw WebAuthnError(.invalidAttestationCertificate, "AAGUID extension must not be critical")
            }
            guard Array(extensionValue.value) == [0x04, 0x10] + aaguid else {
                throw WebAuthnError(.attestationAAGUIDMismatch)
            }
        }
    }
}
