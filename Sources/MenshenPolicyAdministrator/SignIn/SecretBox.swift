import Crypto
import Foundation
import MenshenCore

/// Encrypts the secrets the server must be able to read back (TOTP seeds) with
/// AES-256-GCM under a key kept outside the database, so a copy of the
/// database alone does not yield working second factors. Each value is bound
/// to a context (the user id) as associated data: a sealed secret moved to
/// another user's row does not open.
///
/// Format: `v1.` + base64url(nonce ‖ ciphertext ‖ tag).
public struct SecretBox: Sendable {
    let key: SymmetricKey

    public struct KeyError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(keyBytes: [UInt8]) throws {
        guard keyBytes.count == 32 else { throw KeyError(description: "the secrets key must be 32 bytes, not \(keyBytes.count)") }
        key = SymmetricKey(data: keyBytes)
    }

    public func seal(_ plaintext: [UInt8], context: String) throws -> String {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw KeyError(description: "AES-GCM produced no output") }
        return "v1." + Base64URL.encode(Array(combined))
    }

    /// The plaintext, or nil when the value is malformed, was sealed under another key or for another context.
    public func open(_ sealed: String, context: String) -> [UInt8]? {
        guard sealed.hasPrefix("v1."), sealed.utf8.count <= 4096, let bytes = Base64URL.decode(String(sealed.dropFirst(3))),
              let box = try? AES.GCM.SealedBox(combined: bytes),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
        else { return nil }
        return Array(plain)
    }

    /// Reads the key file (base64 of 32 bytes), or creates it (mode 0600) when it does not exist.
    public static func loadOrCreate(path: String, random: any RandomSource) throws -> SecretBox {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            let text = Data(random.bytes(32)).base64EncodedString() + "\n"
            guard fm.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw KeyError(description: "\(path): cannot create the secrets key file")
            }
        }
        guard let data = fm.contents(atPath: path), data.count <= 1024,
              let bytes = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw KeyError(description: "\(path): not a base64-encoded 32-byte key") }
        return try SecretBox(keyBytes: Array(bytes))
    }
}
