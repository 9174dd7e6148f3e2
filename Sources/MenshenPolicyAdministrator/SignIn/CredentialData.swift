import Foundation
import MenshenCore
import MenshenIdentity
import MenshenStorage

/// The JSON stored in `CredentialRecord.data` for each kind. Decoding failures
/// are treated as "no usable credential" (fail closed), never as a match.
enum CredentialData {
    struct Password: Codable { var hash: String }

    /// A TOTP credential; the seed is sealed with the ``SecretBox`` for its user.
    struct TOTP: Codable {
        var sealedSecret: String
        var algorithm: String
        var digits: Int
        var period: Int
        var counter: UInt64?

        enum CodingKeys: String, CodingKey { case sealedSecret = "secret_sealed", algorithm, digits, period, counter }

        init(_ c: TOTPCredential, box: SecretBox, user: UserID) throws {
            sealedSecret = try box.seal(c.secret.bytes, context: "totp:" + user.rawValue)
            algorithm = c.configuration.algorithm.rawValue
            digits = c.configuration.digits; period = c.configuration.period; counter = c.lastAcceptedCounter
        }

        func credential(box: SecretBox, user: UserID) -> TOTPCredential? {
            guard let algorithm = OTPAlgorithm(rawValue: algorithm),
                  let bytes = box.open(sealedSecret, context: "totp:" + user.rawValue),
                  let secret = try? TOTPSecret(bytes: bytes),
                  let configuration = try? TOTPConfiguration(algorithm: algorithm, digits: digits, period: period)
            else { return nil }
            return TOTPCredential(secret: secret, configuration: configuration, lastAcceptedCounter: counter)
        }
    }

    struct WebAuthn: Codable {
        var publicKey: String
        var algorithm: Int
        var signCount: UInt32
        var backupEligible: Bool
        var backupState: Bool
        var userHandle: String
        var aaguid: String
        var transports: [String]
        var attestation: String
        /// Set once a sign-count regression was seen (a possible clone).
        var cloneWarning: Bool

        enum CodingKeys: String, CodingKey {
            case publicKey = "public_key", algorithm = "alg", signCount = "sign_count", backupEligible = "be", backupState = "bs"
            case userHandle = "user_handle", aaguid, transports, attestation, cloneWarning = "clone_warning"
        }

        func stored(credentialID: [UInt8]) -> StoredCredential? {
            guard let key = Base64URL.decode(publicKey), let handle = Base64URL.decode(userHandle) else { return nil }
            return StoredCredential(credentialID: credentialID, publicKeyCOSE: key, signCount: signCount,
                                    backupEligible: backupEligible, backupState: backupState, userHandle: handle)
        }
    }

    struct Recovery: Codable {
        var hashes: [String]
        init(_ set: RecoveryCodeSet) { hashes = set.hashes.map(Base64URL.encode) }
        var set: RecoveryCodeSet? {
            let decoded = hashes.compactMap(Base64URL.decode)
            return decoded.count == hashes.count ? RecoveryCodeSet(hashes: decoded) : nil
        }
    }

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder.sorted.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// WebAuthn responses as the browser script posts them (base64url fields,
/// the shape of `PublicKeyCredential.toJSON()`), with a size limit.
public enum WebAuthnJSON {
    /// Largest response accepted (attestation objects with certificate chains fit easily).
    public static let maximumBytes = 64 * 1024

    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    static func object(_ text: String) throws(Malformed) -> [String: Any] {
        guard text.utf8.count <= maximumBytes else { throw Malformed(description: "response larger than \(maximumBytes) bytes") }
        guard let any = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let object = any as? [String: Any] else {
            throw Malformed(description: "response is not a JSON object")
        }
        guard object["type"] as? String == "public-key" else { throw Malformed(description: "type must be public-key") }
        return object
    }

    static func bytes(_ object: [String: Any], _ key: String) throws(Malformed) -> [UInt8] {
        guard let text = object[key] as? String, let bytes = Base64URL.decode(text) else {
            throw Malformed(description: "\(key) missing or not base64url")
        }
        return bytes
    }

    public static func registration(_ text: String) throws(Malformed) -> RegistrationResponse {
        let o = try object(text)
        guard let r = o["response"] as? [String: Any] else { throw Malformed(description: "response missing") }
        let transports = (r["transports"] as? [Any])?.compactMap { $0 as? String }.filter { $0.utf8.count <= 32 }.prefix(8) ?? []
        return RegistrationResponse(credentialID: try bytes(o, "rawId"), clientDataJSON: try bytes(r, "clientDataJSON"),
                                    attestationObject: try bytes(r, "attestationObject"), transports: Array(transports))
    }

    public static func authentication(_ text: String) throws(Malformed) -> AuthenticationResponse {
        let o = try object(text)
        guard let r = o["response"] as? [String: Any] else { throw Malformed(description: "response missing") }
        var handle: [UInt8]?
        if let h = r["userHandle"] as? String, !h.isEmpty {
            guard let decoded = Base64URL.decode(h) else { throw Malformed(description: "userHandle not base64url") }
            handle = decoded
        }
        return AuthenticationResponse(credentialID: try bytes(o, "rawId"), clientDataJSON: try bytes(r, "clientDataJSON"),
                                      authenticatorData: try bytes(r, "authenticatorData"), signature: try bytes(r, "signature"),
                                      userHandle: handle)
    }
}
