#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import JWTKit
import MenshenCore
import Synchronization

/// The signed identity assertion the gateway gives each upstream: a
/// short-lived ES256 JWT (JWTKit) in `X-Menshen-Assertion` with who the user
/// is and how strongly that was proven, for one application (`aud`), so an
/// application can verify identity cryptographically instead of trusting a
/// plain header. Keys are published as a JWKS at `/.menshen/jwks.json` on the
/// gateway listener; `kid` is the RFC 7638 thumbprint of the public key.
///
/// Claims: `iss` (gateway public URL), `sub` (user id), `aud` (application
/// id), `iat`, `nbf`, `exp` (60 s), `jti`, `groups`, `roles`, `loa`, `amr`,
/// `sid` (a prefix of the session's hash, never the session id) and
/// `device` (the id of the enrolled device whose client certificate the request came
/// with; null without one). An assertion is reused for the same session, application,
/// identity and device while more than half of its life
/// remains (signing on every request would dominate the data path); the
/// gateway still decides every request.
public final class IdentityAssertionSigner: Sendable {
    public static let lifetime: TimeInterval = 60
    public static let header = "X-Menshen-Assertion"

    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var sub: SubjectClaim
        var aud: AudienceClaim
        var iat: IssuedAtClaim
        var nbf: NotBeforeClaim
        var exp: ExpirationClaim
        var jti: IDClaim
        var groups: [String]
        var roles: [String]
        var loa: Int
        var amr: [String]
        var sid: String
        var device: String?
        func verify(using algorithm: some JWTAlgorithm) async throws { try exp.verifyNotExpired() }
    }

    struct CacheKey: Hashable { var session: String; var application: String; var identity: String }

    let issuer: String
    let keyID: String
    let keys: JWTKeyCollection
    let publicJWK: [String: String]
    /// Other public keys the JWKS lists (a rotation's previous or next key), after the signing key's.
    let publishedJWKs: [[String: String]]
    let clock: any WallClock
    let random: any RandomSource
    private let cache = Mutex<[CacheKey: (token: String, expires: Date)]>([:])
    static let cacheLimit = 10_000

    /// - Parameter publishedPublicKeysPEM: P-256 public keys (PEM) the JWKS lists besides the signing key's, for a key
    ///   rotation: the next key before the nodes switch to it, the previous one while assertions it signed may still be
    ///   checked. Never used to sign.
    public init(privateKeyPEM: String, issuer: String, clock: any WallClock, random: any RandomSource = SystemRandomSource(),
                publishedPublicKeysPEM: [String] = []) async throws {
        let key = try ES256PrivateKey(pem: privateKeyPEM)
        guard let (x, y) = key.publicKey.parameters else { throw IdentityAssertionError(message: "the assertion key has no public parameters") }
        publicJWK = Self.jwk(x: x, y: y)
        keyID = publicJWK["kid"] ?? ""
        var published: [[String: String]] = []
        for pem in publishedPublicKeysPEM {
            guard let (px, py) = try ES256PublicKey(pem: pem).parameters else {
                throw IdentityAssertionError(message: "a published assertion key has no public parameters")
            }
            let jwk = Self.jwk(x: px, y: py)
            if jwk["kid"] != keyID, !published.contains(where: { $0["kid"] == jwk["kid"] }) { published.append(jwk) }
        }
        publishedJWKs = published
        keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: keyID))
        self.issuer = issuer; self.clock = clock; self.random = random
    }

    /// Reads the key file (refusing one that others may read), or creates it (P-256, PEM, mode
    /// 0600, never over an existing file) when missing and `mayCreate` — several nodes must share
    /// one key, so a PostgreSQL deployment passes false and the operator distributes the file.
    public static func loadOrCreateKey(path: String, mayCreate: Bool = true) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            if let mode = (try? fm.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw IdentityAssertionError(message: "\(path): the assertion key must not be readable by group or others (chmod 600)")
            }
            guard let data = fm.contents(atPath: path), data.count < 16 * 1024, let text = String(data: data, encoding: .utf8) else {
                throw IdentityAssertionError(message: "\(path): cannot read the assertion key (a PEM P-256 private key)")
            }
            return text
        }
        guard mayCreate else {
            throw IdentityAssertionError(message: """
                \(path): no assertion key. Create it once and give every node the same file: \
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \(path) && chmod 600 \(path)
                """)
        }
        let pem = P256.Signing.PrivateKey().pemRepresentation
        // O_EXCL: two processes starting at once never overwrite each other's key.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return try loadOrCreateKey(path: path, mayCreate: false) }
            throw IdentityAssertionError(message: "\(path): cannot create the assertion key file")
        }
        defer { close(fd) }
        let bytes = Array(pem.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw IdentityAssertionError(message: "\(path): cannot write the assertion key file")
        }
        return pem
    }

    /// The public JWK of a P-256 key; `kid` is its RFC 7638 thumbprint (SHA-256 over the required members in
    /// lexicographic order, no spaces).
    static func jwk(x: String, y: String) -> [String: String] {
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
        let kid = Data(SHA256.hash(data: Data(canonical.utf8))).base64URLEncodedStringNoPadding()
        return ["kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"]
    }

    /// The JWKS document (`{"keys":[…]}`): the signing key, then the published ones.
    public var jwks: [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: ["keys": [publicJWK] + publishedJWKs], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    /// Most keys a published-keys file may hold.
    public static let maxPublishedKeys = 8

    /// The PEM public keys in a file (`-----BEGIN PUBLIC KEY-----` blocks, as `openssl ec -pubout` writes them), at most
    /// ``maxPublishedKeys``; the file must exist, be under 64 KB and hold at least one key.
    public static func loadPublishedKeys(path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityAssertionError(message: "\(path): cannot read the published assertion keys")
        }
        guard data.count <= 64 * 1024, let text = String(data: data, encoding: .utf8) else {
            throw IdentityAssertionError(message: "\(path): not a PEM file of at most 64 KB")
        }
        let begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----"
        var blocks: [String] = []
        var rest = Substring(text)
        while let b = rest.range(of: begin) {
            guard let e = rest.range(of: end, range: b.upperBound..<rest.endIndex) else {
                throw IdentityAssertionError(message: "\(path): a public key block is not closed")
            }
            blocks.append(String(rest[b.lowerBound..<e.upperBound]) + "\n")
            rest = rest[e.upperBound...]
            guard blocks.count <= maxPublishedKeys else {
                throw IdentityAssertionError(message: "\(path): more than \(maxPublishedKeys) public keys")
            }
        }
        guard !blocks.isEmpty else {
            throw IdentityAssertionError(message: "\(path): no public key (make one with: openssl ec -in next.key -pubout)")
        }
        for (i, block) in blocks.enumerated() {
            do { _ = try ES256PublicKey(pem: block) } catch {
                throw IdentityAssertionError(message: "\(path): key \(i + 1) is not a P-256 public key")
            }
        }
        return blocks
    }

    private static func cacheKey(application: String, sessionHash: String, groups: [String], roles: [String], loa: Int,
                                 amr: [String], device: String?) -> CacheKey {
        CacheKey(session: sessionHash, application: application,
                 identity: "\(groups.joined(separator: ","))|\(roles.joined(separator: ","))|\(loa)|\(amr.joined(separator: " "))|\(device ?? "")")
    }

    private func cached(_ key: CacheKey, now: Date) -> String? {
        guard let hit = cache.withLock({ $0[key] }), hit.expires.timeIntervalSince(now) > Self.lifetime / 2 else { return nil }
        return hit.token
    }

    /// The cached assertion for exactly these claims while it has more than half its lifetime
    /// left, without signing; nil when a new one must be signed (``assertion(user:application:sessionHash:groups:roles:loa:amr:device:)``).
    public func cachedAssertion(application: String, sessionHash: String, groups: [String], roles: [String], loa: Int,
                                amr: [String], device: String?) -> String? {
        cached(Self.cacheKey(application: application, sessionHash: sessionHash, groups: groups, roles: roles, loa: loa, amr: amr,
                             device: device),
               now: clock.now())
    }

    /// An assertion for one user and application (cached while fresh).
    public func assertion(user: String, application: String, sessionHash: String, groups: [String], roles: [String], loa: Int,
                          amr: [String], device: String?) async throws -> String {
        let now = clock.now()
        let key = Self.cacheKey(application: application, sessionHash: sessionHash, groups: groups, roles: roles, loa: loa, amr: amr,
                                device: device)
        if let hit = cached(key, now: now) { return hit }
        let claims = Claims(iss: IssuerClaim(value: issuer), sub: SubjectClaim(value: user), aud: AudienceClaim(value: [application]),
                            iat: IssuedAtClaim(value: now), nbf: NotBeforeClaim(value: now.addingTimeInterval(-5)),
                            exp: ExpirationClaim(value: now.addingTimeInterval(Self.lifetime)),
                            jti: IDClaim(value: random.bytes(16).base64URLEncodedStringNoPadding()),
                            groups: groups, roles: roles, loa: loa, amr: amr, sid: String(sessionHash.prefix(16)), device: device)
        let token = try await keys.sign(claims, kid: JWKIdentifier(string: keyID))
        cache.withLock { c in
            if c.count >= Self.cacheLimit { c.removeAll(keepingCapacity: true) }
            c[key] = (token, now.addingTimeInterval(Self.lifetime))
        }
        return token
    }
}

public struct IdentityAssertionError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Sequence where Element == UInt8 {
    func base64URLEncodedStringNoPadding() -> String {
        Data(self).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
