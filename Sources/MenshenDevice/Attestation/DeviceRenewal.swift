import Crypto
import Foundation

/// A renewal request (`POST /device/renew`): a PKCS#10 request for the device's
/// next certificate — for the same key or a new one — and a signature over it
/// by the key of the device's **current** certificate, so only the holder of
/// that key can renew. The signed bytes are ``domain`` followed by the CSR text
/// exactly as sent (the domain keeps the signature from ever being read as a
/// posture report's or anything else's). The server revokes the current
/// certificate (superseded) once the new one is stored, so a captured request
/// cannot be replayed.
public enum DeviceRenewal {
    /// Prefixed to the CSR bytes before signing.
    public static let domain = Array("menshen device renewal v1\n".utf8)

    /// The bytes the current key signs.
    public static func signedBytes(csr: [UInt8]) -> [UInt8] { domain + csr }

    /// The signature (DER) of `csr` by the current device key.
    public static func sign(csr: [UInt8], with key: P256.Signing.PrivateKey) throws -> [UInt8] {
        Array(try key.signature(for: signedBytes(csr: csr)).derRepresentation)
    }

    /// Whether `signature` (DER, or raw r‖s as a TPM gives it) over `csr` verifies with the current certificate's key.
    public static func isValid(signature: [UInt8], csr: [UInt8], key: P256.Signing.PublicKey) -> Bool {
        guard signature.count <= 256 else { return false }
        return PostureVerifier.signatureIsValid(signature, over: signedBytes(csr: csr), key: key)
    }
}
