import Crypto
import Foundation
import JWTKit

/// The id_token checks of OIDC Core §3.1.3.7 and RFC 8725, for one provider.
/// Pure: no I/O; time, keys and the expected nonce come from the caller.
/// (It is `async` only because JWTKit's key collection is an actor.)
///
/// Hand-written here: parsing the JOSE header, the algorithm allowlist
/// (`none` never; HS* only when configured), choosing the key by `kid`, key
/// type, curve, `use` and `alg` (JWTKit would fall back to a default key for
/// an unknown kid, which would hide a rotation), and every claim check with
/// the injected time. JWTKit does the signature arithmetic: the one chosen key
/// is put in a fresh `JWTKeyCollection` and `verify` is called.
public struct IDTokenValidator: Sendable {
    /// The largest id_token accepted, in bytes.
    public static let maximumTokenBytes = 64 * 1024
    static let maximumHeaderBytes = 4 * 1024

    public let provider: OIDCProviderConfiguration

    public init(provider: OIDCProviderConfiguration) {
        self.provider = provider
    }

    /// What the caller expects of the token.
    public struct Expectations: Sendable, Hashable {
        public var nonce: String
        /// `max_age` sent in the authorization request, if any.
        public var maxAge: Int?
        /// `acr_values` sent, if any.
        public var acrValues: [String]?
        /// The access token issued with the id_token, to check `at_hash` against.
        public var accessToken: String?

        public init(nonce: String, maxAge: Int? = nil, acrValues: [String]? = nil, accessToken: String? = nil) {
            self.nonce = nonce
            self.maxAge = maxAge
            self.acrValues = acrValues
            self.accessToken = accessToken
        }

        public init(pending: PendingAuthorization, accessToken: String?) {
            self.init(nonce: pending.nonce, maxAge: pending.maxAge, acrValues: pending.acrValues, accessToken: accessToken)
        }
    }

    /// The protected header fields that matter.
    public struct Header: Sendable, Hashable {
        public let algorithm: String
        public let keyID: String?
        public let type: String?
    }

    /// Reads the header without verifying anything (to decide whether the
    /// key set must be refreshed for an unknown `kid`).
    public static func header(of token: String) throws -> Header {
        let parts = try split(token)
        return try parseHeader(parts.header)
    }

    /// Verifies `token` and returns the identity it asserts, or throws the
    /// first failed check. `.unknownKeyID` means the key set lacks the
    /// token's key: refresh the JWKS (rate-limited) and call again.
    public func validate(_ token: String, keys: JSONWebKeySet, expectations: Expectations, now: Date) async throws
        -> FederatedIdentity
    {
        let parts = try Self.split(token)
        let header = try Self.parseHeader(parts.header)
        let alg = header.algorithm
        guard alg.lowercased() != "none", provider.allowedSigningAlgorithms.contains(alg),
              OIDCProviderConfiguration.supportedSigningAlgorithms.contains(alg)
        else { throw OIDCError(.algorithmNotAllowed, "id_token signed with \(alg.prefix(20)), not allowed for \(provider.id)") }

        let collection = JWTKeyCollection()
        if OIDCProviderConfiguration.symmetricAlgorithms.contains(alg) {
            // OIDC Core §10.1: HS* keyed with the client secret, only when configured.
            guard provider.allowsSymmetricSigning, let secret = provider.clientSecret else {
                throw OIDCError(.algorithmNotAllowed, "symmetric id_token signature not allowed")
            }
            let digest: DigestAlgorithm = alg == "HS256" ? .sha256 : alg == "HS384" ? .sha384 : .sha512
            // RFC 7518 §3.2: the key must be at least as long as the hash output.
            guard secret.utf8.count >= OIDCProviderConfiguration.minimumSecretBytes(for: alg) else {
                throw OIDCError(.algorithmNotAllowed, "client secret too short for \(alg)")
            }
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
        } else {
            let key = try selectKey(keys, header: header)
            let jwk = try Self.jwk(for: key, algorithm: alg)
            do {
                try await collection.add(jwk: jwk, isDefault: true)
            } catch {
                throw OIDCError(.malformedJWKS, "key \(key.keyID?.prefix(80) ?? "(no kid)") is not a usable \(alg) key")
            }
        }

        let payload: IDTokenPayload
        do {
            payload = try await collection.verify(token, as: IDTokenPayload.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw OIDCError(.badSignature, "id_token signature does not verify")
        } catch let error as OIDCError {
            throw error
        } catch {
            throw OIDCError(.badSignature, "id_token could not be verified: \(String(describing: error).prefix(160))")
        }
        return try checkClaims(payload.claims, algorithm: alg, expectations: expectations, now: now)
    }

    // MARK: - Structure

    struct Parts {
        let header: Substring
        let payload: Substring
        let signature: Substring
    }

    static func split(_ token: String) throws -> Parts {
        guard token.utf8.count <= maximumTokenBytes else {
            throw OIDCError(.malformedIDToken, "id_token over \(maximumTokenBytes) bytes")
        }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        if segments.count == 5 { throw OIDCError(.encryptedIDTokenUnsupported, "encrypted id_tokens (JWE) are not accepted") }
        guard segments.count == 3, !segments[0].isEmpty, !segments[1].isEmpty else {
            throw OIDCError(.malformedIDToken, "not a compact JWS")
        }
        for segment in segments where !segment.utf8.allSatisfy(isBase64URLByte) {
            throw OIDCError(.malformedIDToken, "a segment is not base64url")
        }
        return Parts(header: segments[0], payload: segments[1], signature: segments[2])
    }

    private static func isBase64URLByte(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x5F
    }

    static func parseHeader(_ segment: Substring) throws -> Header {
        guard segment.utf8.count <= maximumHeaderBytes * 4 / 3 + 4, let bytes = Base64URL.decode(String(segment)) else {
            throw OIDCError(.malformedIDToken, "header is not base64url")
        }
        let members: [String: JSONValue]
        do {
            members = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch {
            throw OIDCError(.malformedIDToken, "header is not a JSON object")
        }
        guard case .string(let alg)? = members["alg"] else { throw OIDCError(.malformedIDToken, "header has no alg") }
        var kid: String?
        switch members["kid"] {
        case nil: kid = nil
        case .string(let value)?: kid = value
        default: throw OIDCError(.malformedIDToken, "kid is not a string")
        }
        var type: String?
        switch members["typ"] {
        case nil: type = nil
        case .string(let value)?:
            type = value
            // RFC 8725 §3.11: an access token (at+jwt) or other typed JWT is not an id_token.
            guard ["jwt", "application/jwt"].contains(value.lowercased()) else {
                throw OIDCError(.wrongTokenType, "typ \(value.prefix(40)) is not an id_token type")
            }
        default: throw OIDCError(.malformedIDToken, "typ is not a string")
        }
        if members["crit"] != nil {
            throw OIDCError(.unsupportedCriticalHeader, "the header lists critical extensions")
        }
        // jku, x5u, jwk and x5c are never followed or trusted: keys come only
        // from the provider's discovered JWKS.
        return Header(algorithm: alg, keyID: kid, type: type)
    }

    // MARK: - Key choice

    func selectKey(_ keys: JSONWebKeySet, header: Header) throws -> JSONWebKeySet.Key {
        let alg = header.algorithm
        if let kid = header.keyID {
            let named = keys.keys.filter { $0.keyID == kid }
            guard !named.isEmpty else {
                throw OIDCError(.unknownKeyID, "no key \(kid.prefix(80)) in the provider's key set")
            }
            guard let key = named.first(where: { $0.canVerify(alg) }) else {
                throw OIDCError(.keyMismatch, "key \(kid.prefix(80)) cannot verify \(alg)")
            }
            return key
        }
        let candidates = keys.keys.filter { $0.canVerify(alg) }
        switch candidates.count {
        case 1: return candidates[0]
        case 0: throw OIDCError(.unknownKeyID, "no kid and no key for \(alg) in the provider's key set")
        default: throw OIDCError(.keyMismatch, "no kid and \(candidates.count) keys could verify \(alg)")
        }
    }

    static func jwk(for key: JSONWebKeySet.Key, algorithm: String) throws -> JWK {
        guard let alg = JWK.Algorithm(rawValue: algorithm) else {
            throw OIDCError(.algorithmNotAllowed, "\(algorithm) has no JWK form")
        }
        let identifier = JWKIdentifier(string: key.keyID ?? "selected")
        switch key.keyType {
        case "RSA":
            return .rsa(alg, identifier: identifier, modulus: key.modulus, exponent: key.exponent)
        case "EC":
            let curve: ECDSACurve = key.curve == "P-384" ? .p384 : key.curve == "P-521" ? .p521 : .p256
            return .ecdsa(alg, identifier: identifier, x: key.x, y: key.y, curve: curve)
        case "OKP":
            return .octetKeyPair(alg, identifier: identifier, x: key.x, y: nil, curve: .ed25519)
        default:
            throw OIDCError(.keyMismatch, "key type \(key.keyType.prefix(10)) cannot verify")
        }
    }

    // MARK: - Claims

    func checkClaims(_ claims: [String: JSONValue], algorithm: String, expectations: Expectations, now: Date) throws
        -> FederatedIdentity
    {
        let skew = provider.clockSkew
        let nowSeconds = now.timeIntervalSince1970

        func string(_ name: String) throws -> String? {
            switch claims[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw OIDCError(.malformedClaim, "\(name) is not a string")
            }
        }
        func number(_ name: String) throws -> Double? {
            switch claims[name] {
            case nil, .null?: return nil
            case .number(let value)? where value.isFinite: return value
            default: throw OIDCError(.malformedClaim, "\(name) is not a number")
            }
        }
        func strings(_ name: String) throws -> [String]? {
            switch claims[name] {
            case nil, .null?: return nil
            case .string(let value)?: return [value]
            case .array(let values)?:
                return try values.map {
                    guard case .string(let s) = $0 else { throw OIDCError(.malformedClaim, "\(name) holds a non-string") }
                    return s
                }
            default: throw OIDCError(.malformedClaim, "\(name) is neither a string nor an array of strings")
            }
        }

        // 1. Issuer, exactly.
        guard let issuer = try string("iss") else { throw OIDCError(.missingClaim, "iss missing") }
        guard issuer == provider.issuer else {
            throw OIDCError(.issuerMismatch, "id_token issuer \(issuer.prefix(200)) is not \(provider.issuer)")
        }
        // 2. Audience and authorized party.
        guard let audiences = try strings("aud"), !audiences.isEmpty else { throw OIDCError(.missingClaim, "aud missing") }
        guard audiences.contains(provider.clientID) else {
            throw OIDCError(.audienceMismatch, "id_token is not for client \(provider.clientID)")
        }
        if let extra = audiences.first(where: { $0 != provider.clientID && !provider.trustedAdditionalAudiences.contains($0) }) {
            throw OIDCError(.untrustedAudience, "id_token also names untrusted audience \(extra.prefix(80))")
        }
        if let azp = try string("azp"), azp != provider.clientID {
            throw OIDCError(.authorizedPartyMismatch, "azp names another client")
        }
        // 4. Times.
        guard let exp = try number("exp") else { throw OIDCError(.missingClaim, "exp missing") }
        guard nowSeconds < exp + skew else { throw OIDCError(.expired, "id_token expired") }
        guard let iat = try number("iat") else { throw OIDCError(.missingClaim, "iat missing") }
        guard iat <= nowSeconds + skew else { throw OIDCError(.issuedInFuture, "id_token issued in the future") }
        guard nowSeconds - iat <= provider.maximumTokenAge + skew else {
            throw OIDCError(.issuedTooLongAgo, "id_token issued more than \(Int(provider.maximumTokenAge)) s ago")
        }
        if let nbf = try number("nbf"), nowSeconds + skew < nbf {
            throw OIDCError(.notYetValid, "id_token not valid yet")
        }
        // 5. Nonce.
        guard let nonce = try string("nonce") else { throw OIDCError(.nonceMismatch, "nonce missing") }
        guard ConstantTime.equals(nonce, expectations.nonce) else {
            throw OIDCError(.nonceMismatch, "nonce is not the one sent")
        }
        // Subject (≤ 255 ASCII characters, OIDC Core §2).
        guard let subject = try string("sub"), !subject.isEmpty, subject.utf8.count <= 255 else {
            throw OIDCError(.missingClaim, "sub missing or longer than 255 bytes")
        }
        // 6. auth_time, max_age and acr.
        let authTime = try number("auth_time")
        if let authTime, authTime > nowSeconds + skew {
            throw OIDCError(.malformedClaim, "auth_time is in the future")
        }
        if let maxAge = expectations.maxAge {
            guard let authTime else { throw OIDCError(.missingClaim, "auth_time missing although max_age was sent") }
            guard nowSeconds - authTime <= Double(maxAge) + skew else {
                throw OIDCError(.authenticationTooOld, "the user authenticated longer ago than max_age \(maxAge)")
            }
        }
        let acr = try string("acr")
        if let requested = expectations.acrValues, !requested.isEmpty {
            guard let acr, requested.contains(acr) else {
                throw OIDCError(.acrNotSatisfied, "acr \(acr?.prefix(60) ?? "(none)") is not among those requested")
            }
        }
        let amr = try strings("amr") ?? []
        // 7. at_hash, when both it and the access token are there.
        if let atHash = try string("at_hash"), let accessToken = expectations.accessToken {
            guard let expected = Self.halfHash(accessToken, algorithm: algorithm),
                  ConstantTime.equals(atHash, expected)
            else { throw OIDCError(.accessTokenHashMismatch, "at_hash does not match the access token") }
        }

        // Assurance.
        guard let assurance = FederatedAssurance.evaluate(acr: acr, amr: amr, provider: provider) else {
            throw OIDCError(.assuranceNotMapped,
                            "neither acr \(acr?.prefix(60) ?? "(none)") nor amr \(amr.prefix(8).joined(separator: ",")) maps to a level")
        }

        // Profile and groups.
        var groups = Set<String>()
        for mapping in provider.groupMappings {
            for value in try strings(mapping.claim) ?? [] {
                if let group = mapping.groups[value] { groups.insert(group) }
            }
        }
        var emailVerified = false
        if case .bool(let verified)? = claims["email_verified"] { emailVerified = verified }

        return FederatedIdentity(
            providerID: provider.id, issuer: issuer, subject: subject, email: try string("email"),
            emailVerified: emailVerified, name: try string("name"), groups: groups.sorted(),
            userKind: provider.userKind, acr: acr, amr: amr, authTime: authTime.map(Date.init(timeIntervalSince1970:)),
            issuedAt: Date(timeIntervalSince1970: iat), expiresAt: Date(timeIntervalSince1970: exp),
            levelOfAssurance: assurance.level, authenticatorAssuranceLevel: assurance.level.approximateAAL,
            assuranceSource: assurance.source)
    }

    /// OIDC Core §3.1.3.6: base64url of the left half of the hash of the
    /// ASCII token, the hash being the one of the signature algorithm.
    static func halfHash(_ value: String, algorithm: String) -> String? {
        let data = Array(value.utf8)
        let digest: [UInt8]
        switch algorithm {
        case "RS256", "PS256", "ES256", "HS256": digest = Array(SHA256.hash(data: data))
        case "RS384", "PS384", "ES384", "HS384": digest = Array(SHA384.hash(data: data))
        case "RS512", "PS512", "ES512", "HS512", "EdDSA": digest = Array(SHA512.hash(data: data))
        default: return nil
        }
        return Base64URL.encode(digest.prefix(digest.count / 2))
    }
}

/// The id_token payload as raw claims; every check is done by
/// `IDTokenValidator.checkClaims` with the injected time.
struct IDTokenPayload: JWTPayload {
    let claims: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
