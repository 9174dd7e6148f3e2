import Crypto
import Foundation

/// Hashing helpers used wherever a secret must be stored only as its hash
/// (session ids, enrolment tokens, recovery codes).
public enum SecretHash {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `secret`.
    public static func sha256Hex(_ secret: String) -> String {
        // Over the string's own UTF-8 storage (no `Data` copy: the gateway hashes a session cookie per request).
        var text = secret
        var hasher = SHA256()
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return hex(hasher.finalize())
    }

    /// Lower-case hex SHA-256 of raw bytes.
    public static func sha256Hex(bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// Lower-case hex of a SHA-256 digest (not through the generic version below, which is not
    /// specialised across modules: the event chain hashes every event on write and on every check).
    public static func hex(_ digest: SHA256.Digest) -> String {
        digest.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { out in
                for (i, byte) in raw.enumerated() {
                    out[2 * i] = hexDigits[Int(byte >> 4)]
                    out[2 * i + 1] = hexDigits[Int(byte & 0x0F)]
                }
                return raw.count * 2
            }
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
