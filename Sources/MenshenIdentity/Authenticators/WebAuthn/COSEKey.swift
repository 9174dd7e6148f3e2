import Crypto
import _CryptoExtras

/// COSE algorithm identifiers supported for WebAuthn credentials.
public enum COSEAlgorithm: Int, Sendable, Hashable, CaseIterable, Codable {
    /// ECDSA P-256 with SHA-256; signatures are ASN.1 DER.
    case es256 = -7
    /// Ed25519; signatures are 64 raw bytes.
    case eddsa = -8
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Windows Hello); modulus ≥ 2048 bits.
    case rs256 = -257
    /// RFC 9864 fully-specified ECDSA P-256 with SHA-256 (same key and signature as ES256).
    case esp256 = -9
    /// RFC 9864 fully-specified Ed25519 (same key and signature as EdDSA on Ed25519).
    case ed25519 = -19
}

/// A credential public key parsed from its COSE_Key form (RFC 9052/9053).
public struct COSEPublicKey: Sendable {
    public enum Key: Sendable {
        case p256(P256.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    public let algorithm: COSEAlgorithm
    public let key: Key

    /// Parses the CBOR bytes of a COSE_Key (as stored in a credential record).
    public init(bytes: [UInt8]) throws(WebAuthnError) {
        let value: CBORValue
        do {
            value = try CBORDecoder().decode(bytes)
        } catch {
            throw WebAuthnError(.malformedCBOR, "COSE key: \(error)")
        }
        try self.init(cbor: value)
    }

    public init(cbor: CBORValue) throws(WebAuthnError) {
        guard cbor.mapValue != nil else { throw WebAuthnError(.malformedCOSEKey, "not a map") }
        guard let kty = cbor[int: 1]?.intValue else { throw WebAuthnError(.malformedCOSEKey, "kty missing") }
        guard let algValue = cbor[int: 3]?.intValue else { throw WebAuthnError(.malformedCOSEKey, "alg missing") }
        guard let algorithm = COSEAlgorithm(rawValue: algValue) else {
            throw WebAuthnError(.unsupportedAlgorithm, "COSE alg \(algValue)")
        }
        self.algorithm = algorithm
        switch algorithm {
        case .es256, .esp256:
            guard kty == 2, cbor[int: -1]?.intValue == 1,
                  let x = cbor[int: -2]?.bytesValue, let y = cbor[int: -3]?.bytesValue,
                  x.count == 32, y.count == 32
            else { throw WebAuthnError(.malformedCOSEKey, "EC2 P-256 parameters") }
            do {
                key = .p256(try P256.Signing.PublicKey(x963Representation: [0x04] + x + y))
            } catch {
                throw WebAuthnError(.malformedCOSEKey, "point not on P-256")
            }
        case .eddsa, .ed25519:
            guard kty == 1, cbor[int: -1]?.intValue == 6, let x = cbor[int: -2]?.bytesValue, x.count == 32 else {
                throw WebAuthnError(.malformedCOSEKey, "OKP Ed25519 parameters")
            }
            do {
                key = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            } catch {
                throw WebAuthnError(.malformedCOSEKey, "Ed25519 key")
            }
        case .rs256:
            guard kty == 3, let n = cbor[int: -1]?.bytesValue, let e = cbor[int: -2]?.bytesValue,
                  !n.isEmpty, !e.isEmpty, e.count <= 8
            else { throw WebAuthnError(.malformedCOSEKey, "RSA parameters") }
            do {
                key = .rsa(try _RSA.Signing.PublicKey(n: n, e: e))
            } catch {
                throw WebAuthnError(.malformedCOSEKey, "RSA key refused (size < 2048 bits?)")
            }
        }
    }

    /// Verifies `signature` over `data` with this key and its algorithm.
    public func isValidSignature(_ signature: [UInt8], for data: [UInt8]) -> Bool {
        switch key {
        case .p256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: data)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: data)
        case .rsa(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
        }
    }
}
