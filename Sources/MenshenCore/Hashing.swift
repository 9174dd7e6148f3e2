import Crypto
import Foundation

/// Hashing helpers used wherever a secret must be stored only as its hash
/// (session ids, enrolment tokens, recovery codes).
public enum SecretHash {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `secret`.
    public static func sha256Hex(_ secret: String) -> String {
        hex(SHA256.hash(data: Data(secret.utf8)))
    }

    /// Lower-case hex SHA-256 of raw bytes.
    public static func sha256Hex(bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: bytes))
    }

    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
