import Foundation
import JWTKit
import MenshenIdentity
import Testing

/// The pure id_token validator against tokens made here with JWTKit, one
/// check at a time: each case changes exactly one thing of a token that is
/// otherwise accepted (the first test shows it is).
struct IDTokenValidatorTests {
    static let issuer = "https://idp.partner.example"
    static let clientID = "menshen"
    static let nonce = "n-0S6_WzA2Mj"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A local signer with its public JWKS.
    struct LocalIssuer {
        let key = ES256PrivateKey()
        let kid = "local-es-1"

        var jwks: JSONWebKeySet {
            let parameters = key.publicKey.parameters!
            return JSONWebKeySet(keys: [.init(keyID: kid, keyType: "EC", use: "sig", algorithm: "ES256", curve: "P-256",
                                              x: parameters.x, y: parameters.y)])
        }

        func sign(_ claims: [String: JSONValue], header: JWTHeader = JWTHeader()) async throws -> String {
            let collection = JWTKeyCollection()
            await collection.add(ecdsa: key, kid: JWKIdentifier(string: kid))
            return try await collection.sign(RawClaims(values: claims), kid: JWKIdentifier(string: kid), header: header)
        }
    }

    static func claims(_ changes: [String: JSONValue?] = [:]) -> [String: JSONValue] {
        let t = now.timeIntervalSince1970
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "sub": .string("248289761001"), "aud": .string(clientID),
            "exp": .number(t + 300), "iat": .number(t - 5), "auth_time": .number(t - 30),
            "nonce": .string(nonce), "amr": .array([.string("pwd"), .string("otp")]),
            "email": .string("vendor@partner.example"), "email_verified": .bool(true), "name": .string("王小明"),
            "roles": .array([.string("maint"), .string("unmapped")]),
        ]
        for (name, value) in changes { claims[name] = value }
        return claims
    }

    static func provider(_ change: (inout OIDCProviderConfiguration) -> Void = { _ in }) -> OIDCProviderConfiguration {
        var provider = OIDCProviderConfiguration(
            id: "partner", displayNameZhTW: "合作機構", displayNameEnglish: "Partner", issuer: issuer,
            clientID: clientID, clientSecret: "s3cret-s3cret", redirectURI: "https://access.bank.example/oidc/callback",
            groupMappings: [.init(claim: "roles", groups: ["maint": "grp-maintenance"])],
            userKind: .partner, maximumLevelOfAssurance: .loa3)
        change(&provider)
        return provider
    }

    func validate(_ token: String, issuer local: LocalIssuer,
                  provider: OIDCProviderConfiguration = IDTokenValidatorTests.provider(),
                  expectations: IDTokenValidator.Expectations = .init(nonce: IDTokenValidatorTests.nonce),
                  now: Date = IDTokenValidatorTests.now) async throws
        -> FederatedIdentity
    {
        try await IDTokenValidator(provider: provider).validate(token, keys: local.jwks, expectations: expectations, now: now)
    }

    @Test("a well-formed token is accepted with every field mapped")
    func accepted() async throws {
        let local = LocalIssuer()
        let identity = try await validate(try await local.sign(Self.claims()), issuer: local)
        #expect(identity.issuer == Self.issuer)
        #expect(identity.subject == "248289761001")
        #expect(identity.groups == ["grp-maintenance"])
        #expect(identity.name == "王小明")
        #expect(identity.emailVerified)
        #expect(identity.levelOfAssurance == .loa3)
        #expect(identity.assuranceSource == .amr)
        #expect(identity.authTime == Self.now.addingTimeInterval(-30))
        #expect(identity.userKind == .partner)
        #expect(identity.authenticationMethods == [.otp, .pwd])
    }

    @Test("claims: each wrong value is refused with its own error")
    func claimRefusals() async throws {
        let local = LocalIssuer()
        let t = Self.now.timeIntervalSince1970
        let cases: [(String, [String: JSONValue?], OIDCError.Code)] = [
            ("other issuer", ["iss": .string("https://idp.partner.example/")], .issuerMismatch),
            ("issuer missing", ["iss": nil], .missingClaim),
            ("other audience", ["aud": .string("someone-else")], .audienceMismatch),
            ("extra untrusted audience", ["aud": .array([.string(Self.clientID), .string("other")])], .untrustedAudience),
            ("azp names another client", ["azp": .string("other")], .authorizedPartyMismatch),
            ("expired beyond skew", ["exp": .number(t - 61)], .expired),
            ("exp missing", ["exp": nil], .missingClaim),
            ("iat in the future beyond skew", ["iat": .number(t + 61)], .issuedInFuture),
            ("iat too old", ["iat": .number(t - 661), "exp": .number(t + 300)], .issuedTooLongAgo),
            ("nbf in the future", ["nbf": .number(t + 120)], .notYetValid),
            ("nonce differs", ["nonce": .string("n-other")], .nonceMismatch),
            ("nonce missing", ["nonce": nil], .nonceMismatch),
            ("sub missing", ["sub": nil], .missingClaim),
            ("sub too long", ["sub": .string(String(repeating: "x", count: 256))], .missingClaim),
            ("exp not a number", ["exp": .string("tomorrow")], .malformedClaim),
            ("amr not strings", ["amr": .array([.number(1)])], .malformedClaim),
            ("nothing maps to a level", ["amr": .array([.string("sms")])], .assuranceNotMapped),
            ("acr 0", ["acr": .string("0")], .assuranceNotMapped),
        ]
        for (name, changes, code) in cases {
            let token = try await local.sign(Self.claims(changes))
            await expectOIDCError(code) { try await validate(token, issuer: local) }
            _ = name
        }
    }

    @Test("skew: a token just inside the allowed clock difference is accepted")
    func skewBoundaries() async throws {
        let local = LocalIssuer()
        let t = Self.now.timeIntervalSince1970
        _ = try await validate(try await local.sign(Self.claims(["exp": .number(t - 59)])), issuer: local)
        _ = try await validate(try await local.sign(Self.claims(["iat": .number(t + 59)])), issuer: local)
        _ = try await validate(try await local.sign(Self.claims(["nbf": .number(t + 59)])), issuer: local)
        // A trusted extra audience with azp naming us is fine.
        let provider = Self.provider { $0.trustedAdditionalAudiences = ["api://reports"] }
        let multi = try await local.sign(Self.claims(["aud": .array([.string(Self.clientID), .string("api://reports")]),
                                                      "azp": .string(Self.clientID)]))
        _ = try await validate(multi, issuer: local, provider: provider)
    }

    @Test("max_age, acr_values and at_hash are enforced when requested")
    func requestedChecks() async throws {
        let local = LocalIssuer()
        let t = Self.now.timeIntervalSince1970
        let recent = try await local.sign(Self.claims())
        _ = try await validate(recent, issuer: local, expectations: .init(nonce: Self.nonce, maxAge: 300))
        let old = try await local.sign(Self.claims(["auth_time": .number(t - 1000)]))
        await expectOIDCError(.authenticationTooOld) {
            try await validate(old, issuer: local, expectations: .init(nonce: Self.nonce, maxAge: 300))
        }
        let noAuthTime = try await local.sign(Self.claims(["auth_time": nil]))
        await expectOIDCError(.missingClaim) {
            try await validate(noAuthTime, issuer: local, expectations: .init(nonce: Self.nonce, maxAge: 300))
        }
        // acr_values=phr requested; a token without acr, or another acr, is refused.
        await expectOIDCError(.acrNotSatisfied) {
            try await validate(recent, issuer: local, expectations: .init(nonce: Self.nonce, acrValues: ["phr"]))
        }
        let phr = try await local.sign(Self.claims(["acr": .string("phr")]))
        let strong = try await validate(phr, issuer: local, expectations: .init(nonce: Self.nonce, acrValues: ["phr"]))
        #expect(strong.levelOfAssurance == .loa3)
        #expect(strong.assuranceSource == .acr)

        // at_hash: SHA-256 left half of the access token, base64url.
        let accessToken = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        let atHash = try #require(IDTokenValidatorTests.atHash(accessToken))
        let bound = try await local.sign(Self.claims(["at_hash": .string(atHash)]))
        _ = try await validate(bound, issuer: local, expectations: .init(nonce: Self.nonce, accessToken: accessToken))
        await expectOIDCError(.accessTokenHashMismatch) {
            try await validate(bound, issuer: local, expectations: .init(nonce: Self.nonce, accessToken: accessToken + "x"))
        }
    }

    /// OIDC Core 1.0 Appendix A.3: this access token has at_hash
    /// "77QmUPtjPfzWtF2AnpK9RQ" under a SHA-256 algorithm (an independent vector).
    static func atHash(_ accessToken: String) -> String? {
        accessToken == "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" ? "77QmUPtjPfzWtF2AnpK9RQ" : nil
    }

    @Test("header: alg none, disallowed alg, typ at+jwt, crit, JWE, unknown kid, key/alg mismatch")
    func headerRefusals() async throws {
        let local = LocalIssuer()
        let good = try await local.sign(Self.claims())
        let parts = good.split(separator: ".").map(String.init)

        // alg none, signature stripped.
        let none = [encodeJSON(["alg": "none", "kid": local.kid]), parts[1], ""].joined(separator: ".")
        await expectOIDCError(.algorithmNotAllowed) { try await validate(none, issuer: local) }
        // ES256 not in this provider's allowlist.
        await expectOIDCError(.algorithmNotAllowed) {
            try await validate(good, issuer: local, provider: Self.provider { $0.allowedSigningAlgorithms = ["RS256"] })
        }
        // An access token presented as an id_token.
        var typed = JWTHeader()
        typed.typ = "at+jwt"
        let accessToken = try await local.sign(Self.claims(), header: typed)
        await expectOIDCError(.wrongTokenType) { try await validate(accessToken, issuer: local) }
        // Critical extensions are not understood.
        var critical = JWTHeader()
        critical.crit = ["exp"]
        let crit = try await local.sign(Self.claims(), header: critical)
        await expectOIDCError(.unsupportedCriticalHeader) { try await validate(crit, issuer: local) }
        // JWE (five segments).
        await expectOIDCError(.encryptedIDTokenUnsupported) { try await validate("a.b.c.d.e", issuer: local) }
        await expectOIDCError(.malformedIDToken) { try await validate("a.b", issuer: local) }
        await expectOIDCError(.malformedIDToken) { try await validate(parts[0] + ".pay load." + parts[2], issuer: local) }
        await expectOIDCError(.malformedIDToken) {
            try await validate(String(repeating: "a", count: IDTokenValidator.maximumTokenBytes + 1), issuer: local)
        }
        // A key the set does not have.
        let stranger = LocalIssuer()
        await expectOIDCError(.unknownKeyID) {
            try await IDTokenValidator(provider: Self.provider()).validate(
                try await LocalIssuerWithKid(base: stranger, kid: "rotated-2").sign(Self.claims()),
                keys: local.jwks, expectations: .init(nonce: Self.nonce), now: Self.now)
        }
        // Same kid, signed by another key: the signature fails.
        let impostor = try await stranger.sign(Self.claims())
        await expectOIDCError(.badSignature) { try await validate(impostor, issuer: local) }
        // The header says RS256 for an EC key.
        var lying = JWTHeader()
        lying.alg = "RS256"
        let rsOnEC = try await local.sign(Self.claims(), header: lying)
        await expectOIDCError(.keyMismatch) { try await validate(rsOnEC, issuer: local) }
        // Payload changed after signing.
        var payload = Array(parts[1].utf8)
        payload[10] = payload[10] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
        let tampered = [parts[0], String(decoding: payload, as: UTF8.self), parts[2]].joined(separator: ".")
        await expectOIDCError(.badSignature) { try await validate(tampered, issuer: local) }
        // Encryption keys and keys restricted to other operations are not used.
        let encKeys = JSONWebKeySet(keys: local.jwks.keys.map {
            .init(keyID: $0.keyID, keyType: $0.keyType, use: nil, algorithm: $0.algorithm, curve: $0.curve,
                  x: $0.x, y: $0.y, keyOperations: ["encrypt"])
        })
        await expectOIDCError(.keyMismatch) {
            try await IDTokenValidator(provider: Self.provider()).validate(good, keys: encKeys,
                                                                         expectations: .init(nonce: Self.nonce), now: Self.now)
        }
    }

    @Test("HS256 only when a client secret is configured and symmetric signing explicitly allowed")
    func symmetric() async throws {
        let local = LocalIssuer()
        let secret = "s3cret-s3cret-s3cret-s3cret-0123456789"
        let collection = JWTKeyCollection()
        await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let token = try await collection.sign(RawClaims(values: Self.claims()))
        await expectOIDCError(.algorithmNotAllowed) { try await validate(token, issuer: local) }
        let allowing = Self.provider {
            $0.clientSecret = secret
            $0.allowsSymmetricSigning = true
            $0.allowedSigningAlgorithms = ["ES256", "HS256"]
        }
        try allowing.validate()
        let identity = try await validate(token, issuer: local, provider: allowing)
        #expect(identity.subject == "248289761001")
        // A secret shorter than the hash output is never used as an HMAC key.
        var short = allowing
        short.clientSecret = "short-secret"
        #expect(throws: OIDCError(.invalidConfiguration)) { try short.validate() }
        await expectOIDCError(.algorithmNotAllowed) { try await validate(token, issuer: local, provider: short) }
        // Keyed with anything else, refused.
        let wrong = JWTKeyCollection()
        await wrong.add(hmac: HMACKey(from: "not-the-secret-not-the-secret-0123456789"), digestAlgorithm: .sha256)
        let forged = try await wrong.sign(RawClaims(values: Self.claims()))
        await expectOIDCError(.badSignature) { try await validate(forged, issuer: local, provider: allowing) }
    }

    @Test("EdDSA and RSA keys from a JWKS verify when allowed")
    func otherKeyTypes() async throws {
        let ed = try EdDSA.PrivateKey(curve: .ed25519)
        let edCollection = JWTKeyCollection()
        await edCollection.add(eddsa: ed, kid: "ed-1")
        let edToken = try await edCollection.sign(RawClaims(values: Self.claims()), kid: "ed-1")
        let edKeys = JSONWebKeySet(keys: [.init(keyID: "ed-1", keyType: "OKP", curve: "Ed25519",
                                                x: base64URL(ed.publicKey.rawRepresentation))])
        let provider = Self.provider { $0.allowedSigningAlgorithms = ["EdDSA"] }
        let identity = try await IDTokenValidator(provider: provider).validate(
            edToken, keys: edKeys, expectations: .init(nonce: Self.nonce), now: Self.now)
        #expect(identity.subject == "248289761001")

        let rsa = try Insecure.RSA.PrivateKey(pem: ForeignKeys.rsaPEM)
        let rsaCollection = JWTKeyCollection()
        await rsaCollection.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rs-1")
        let rsToken = try await rsaCollection.sign(RawClaims(values: Self.claims()), kid: "rs-1")
        let primitives = try rsa.publicKey.getKeyPrimitives()
        let rsKeys = JSONWebKeySet(keys: [.init(keyID: "rs-1", keyType: "RSA", algorithm: "RS256",
                                                modulus: base64URL(primitives.modulus),
                                                exponent: base64URL(primitives.publicExponent))])
        _ = try await IDTokenValidator(provider: Self.provider()).validate(
            rsToken, keys: rsKeys, expectations: .init(nonce: Self.nonce), now: Self.now)
        // PS256 on a key published for RS256 only: refused before any arithmetic.
        let psCollection = JWTKeyCollection()
        await psCollection.add(pss: rsa, digestAlgorithm: .sha256, kid: "rs-1")
        let psToken = try await psCollection.sign(RawClaims(values: Self.claims()), kid: "rs-1")
        await expectOIDCError(.keyMismatch) {
            try await IDTokenValidator(provider: Self.provider { $0.allowedSigningAlgorithms = ["RS256", "PS256"] })
                .validate(psToken, keys: rsKeys, expectations: .init(nonce: Self.nonce), now: Self.now)
        }
    }
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// A signer whose tokens name `kid` (for unknown-kid cases).
struct LocalIssuerWithKid {
    let base: IDTokenValidatorTests.LocalIssuer
    let kid: String
    func sign(_ claims: [String: JSONValue]) async throws -> String {
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: base.key, kid: JWKIdentifier(string: kid))
        return try await collection.sign(RawClaims(values: claims), kid: JWKIdentifier(string: kid))
    }
}

/// A throwaway RSA key made for these tests only (openssl genpkey, 2048 bits).
enum ForeignKeys {
    static let rsaPEM = """
    -----BEGIN RSA PRIVATE KEY-----
    MIIEpAIBAAKCAQEA6OFNK44QjKWcqURH8MnBFPILxGBdh8WDiC7WF9tUfUChGQ8O
    ZPRdKzH2sKIjhq3bM4NUHi+xKkZLXqIAd1DGdOrqGzNC42LTaJVcGkUO7wdOu6Rm
    ObVARro4rR6nw6IVi0wRvPaL/hoDNFABmzna0XIyG4DUjNPOTcFZYxVu7cukUalq
    rKujKUv2h1VgfGGhyQWre+0bZg82xEW0pq5XsSJcc3bDHbrYLU+zitfjv7hN0dIN
    XrFIp5MsO2sPeL3iUXR4AiIUWMlVwRRapJ1MaoDR5afHd0Du3+3ZniD3erS4hA6Z
    vOfEzN7enX3ujRAkI2JOC2ReKHEslxEDd7MLyQIDAQABAoIBABsasIxOMkI8ZZm/
    Ibm2XFZKFEaHNLuVqHO+3RoqY+YEEfvu/azlqBEGoACk47T2zS7CApX/f6486jlv
    FNYjkkWPWy9OmGK2C4b+Q0RSH0/WA5A2rSiFnkqHvWBLfhkjPJYEL4L/wFa9w6Zg
    ssnUl6bi6flmKtbihqi+xTQ8DWIi+vuzjHkoA5mwIi3/zHEvCgbveEOLlvIqDzop
    WFYgeFGjm9pnjwjSZ5UNGlLwIp8iTlrVEE5IkFO1ijxy/0ny/qDECF1gf0SRloR7
    JuSBDOfpHJPj0fcuvPewS12hYpBq6Go6PC98uImGTNx3lS8FpLa+1xbaihhKF3RC
    JsA61kUCgYEA9r07KODCGOiBXXPOZkQEA1qGOWKrYH4CKsq4Bed98/W+OBxnAJYW
    7otb6tDAdIfHZJMVQhoxGY2vPARDTetIBx3EiRVOe7O18AvmdG1s6VbZZVnp9feF
    QuALJSd1wnwo3dV+DF/XNsti4oS71CQTGoIAks4dNMS7nWud/5v2jxsCgYEA8Z7o
    FNJ2f2C3w03WH89sZsaDrdPPhj6kDTWN6XnKC0JBzXspFaC63d7gwMV3ABXpXZmZ
    JYEVphd9VHF3k0tyDjlnd+8XTYUEhsOWp/3vIPBBtBbA1SVcSJXuwHs1QJdOCeBz
    F99G/dOFXoImhXPkBTiBEpySs0paOSNzzx6d6usCgYEAwco0OdH1gHy0hkKbfGS1
    RjEGNPITKhEuAJABYtnDaiW7hfSAzcwULL0Vr2LPlXbDG3IOA0HxCGHonNm4Ru2h
    P72YjBZI8w1duzCNiyoanVYSHvE0uXPznWe8OS0550t/CWRRwMRRkv7BJqobn+3J
    d0tdye/KrpRJysUobgb/6rsCgYEAiiiVCCL4AwnoydJeF75he7sTXHf6+AYlhDAV
    P2WWdC2ktrwv1+AaOffRiCjhTLk6wXysp1dSa7COx5RCDYVcaGnGkjuylW70EaMR
    KGn5LFp1F2bTSI2eYRrqdEF/R7m8s8UVypavX0BtyIafRDvqLFoM4/mHoOFpCbcN
    52bYYZUCgYBqxWz6nTVvrXPOOJ2G+nd7XXSmbHKCjZzoLuRgmk/8s9W8NHh8h+J7
    4/nPKbCZyNZEylsp3lrj1YEmn08zpdn1hH5tI+16x/KUTWNnUnj6dod9juujN9kj
    KEQv2xIMDzvdKGGuE7FnAFnSu6My+kHhZbAY1q9tIwyMYBf1GLHlyQ==
    -----END RSA PRIVATE KEY-----
    """
}
