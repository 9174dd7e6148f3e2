import Crypto
import Foundation
import HummingbirdBcrypt

/// Hashes and verifies passwords with bcrypt (HummingbirdBcrypt).
///
/// The password is NFKC-normalised, then pre-hashed: bcrypt reads only 72
/// bytes and stops at NUL, while NIST asks us to accept at least 64 code
/// points (up to 256 UTF-8 bytes in Chinese). So bcrypt's input is
/// base64(SHA-256(NFKC(password))) — 44 ASCII bytes, no NUL. Stored hashes
/// carry the prefix `bcrypt-sha256$` so the scheme can change later.
///
/// With a `pepper` (a secret key kept outside the database, e.g. in an HSM or
/// the secrets store), the pre-hash is HMAC-SHA-256 keyed by the pepper and
/// the prefix is `bcrypt-hmac-sha256$`. This also defeats "password
/// shucking" (testing unsalted SHA-256 hashes leaked elsewhere against our
/// bcrypt hashes), so deployments should set one.
public struct PasswordHasher: Sendable {
    public static let defaultCost: UInt8 = 12
    static let plainPrefix = "bcrypt-sha256$"
    static let pepperedPrefix = "bcrypt-hmac-sha256$"

    /// bcrypt cost (log2 rounds), 4…31. Production: 12 or more.
    public let cost: UInt8
    private let pepper: SymmetricKey?

    public init(cost: UInt8 = PasswordHasher.defaultCost, pepper: SymmetricKey? = nil) {
        self.cost = min(max(cost, 4), 31)
        self.pepper = pepper
    }

    private var prefix: String { pepper == nil ? Self.plainPrefix : Self.pepperedPrefix }

    /// The string to store. Salt comes from HummingbirdBcrypt's own CSPRNG.
    public func hash(_ password: String) -> String {
        prefix + Bcrypt.hash(prepared(password), cost: cost)
    }

    /// Whether `password` matches `storedHash`. A malformed stored hash is a
    /// non-match, never a crash or throw.
    public func verify(_ password: String, against storedHash: String) -> PasswordVerification {
        // A peppered hasher verifies only peppered hashes and vice versa.
        guard storedHash.hasPrefix(prefix) else { return .mismatch }
        let bcryptHash = String(storedHash.dropFirst(prefix.count))
        guard bcryptHash.utf8.count == 60, bcryptHash.hasPrefix("$2") else { return .mismatch }
        guard Bcrypt.verify(prepared(password), hash: bcryptHash) else { return .mismatch }
        // Tell the caller to re-hash when the stored cost is below ours.
        let parts = bcryptHash.split(separator: "$")
        if parts.count >= 2, let storedCost = UInt8(parts[1]), storedCost < cost { return .matchNeedsRehash }
        return .match
    }

    func prepared(_ password: String) -> String {
        let normalized = Array(PasswordPolicy.normalize(password).utf8)
        if let pepper {
            return Data(HMAC<SHA256>.authenticationCode(for: normalized, using: pepper)).base64EncodedString()
        }
        return Data(SHA256.hash(data: normalized)).base64EncodedString()
    }
}

public enum PasswordVerification: Sendable, Hashable {
    case match
    /// Correct, but hashed with a lower cost than configured: store a new hash.
    case matchNeedsRehash
    case mismatch

    public var isMatch: Bool { self != .mismatch }
}
