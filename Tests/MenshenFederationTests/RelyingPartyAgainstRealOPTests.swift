import Foundation
import JWTKit
import MenshenFederation
import MenshenIdentity
import Testing

/// The relying party against a real OpenID Provider that this project did
/// not write: Authlib's authorization server (scripts/oidc-op/op.py), started
/// per test as a subprocess on a free loopback port.
@Suite(.enabled(if: OPAvailability.shouldRun, "the test OpenID Provider (Authlib in .venv-test) is not installed"))
struct RelyingPartyAgainstRealOPTests {
    /// begin → browser at the provider's login page → callback → complete.
    private func signIn(_ rp: OIDCRelyingParty, idp: String = "partner", username: String, now: Date = Date(),
                        maxAge: Int? = nil, acrValues: [String]? = nil) async throws -> FederatedIdentity {
        let start = try await rp.beginSignIn(idp: idp, returnURL: "https://app.bank.example/reports", now: now,
                                             maxAge: maxAge, acrValues: acrValues)
        let query = try await Browser.shared.signIn(at: start.authorizationURL, username: username)
        return try await rp.completeSignIn(pending: start.pending, callbackQuery: query, now: now)
    }

    @Test("sign-in with client_secret_basic and RS256: subject, profile, mapped groups, LoA from amr")
    func signInBasic() async throws {
        try await withTestOP { op in
            let identity = try await withRelyingParty([testProvider(op: op)]) { rp in
                try await signIn(rp, username: "alice")
            }
            #expect(identity.issuer == op.issuer)
            #expect(identity.subject == "alice-0001")
            #expect(identity.providerID == "partner")
            #expect(identity.email == "alice@partner.example")
            #expect(identity.emailVerified)
            #expect(identity.name == "Alice Chen")
            #expect(identity.groups == ["grp-maintenance", "grp-vendors"])
            #expect(identity.userKind == .vendor)
            #expect(identity.amr == ["pwd"])
            #expect(identity.levelOfAssurance == .loa1)
            #expect(identity.assuranceSource == .amr)
            #expect(identity.authTime != nil)
            #expect(try await op.count("token") == 1)
            #expect(try await op.count("discovery") == 1)
            #expect(try await op.count("jwks") == 1)
        }
    }

    @Test("sign-in with client_secret_post and ES256; acr phrh capped at the provider's maximum")
    func signInPostES256() async throws {
        try await withTestOP { op in
            var uncapped = testProvider(op: op, id: "uncapped", clientID: TestClients.post.id,
                                        clientSecret: TestClients.post.secret, maximumLevelOfAssurance: .loa4)
            uncapped.tokenEndpointAuthentication = .clientSecretPost
            var capped = uncapped
            capped.id = "capped"
            capped.maximumLevelOfAssurance = .loa3
            // Discovery lists basic first, so without an explicit method the RP
            // sends basic, which the provider refuses for this client.
            var automatic = uncapped
            automatic.id = "automatic"
            automatic.tokenEndpointAuthentication = nil
            try await withRelyingParty([uncapped, capped, automatic]) { rp in
                await expectOIDCError(.tokenEndpointError) { try await signIn(rp, idp: "automatic", username: "bob") }

                let bob = try await signIn(rp, idp: "uncapped", username: "bob")
                #expect(bob.subject == "bob-0002")
                #expect(bob.acr == "phrh")
                #expect(bob.levelOfAssurance == .loa4)
                #expect(bob.authenticatorAssuranceLevel == .aal3)
                #expect(bob.assuranceSource == .acr)
                #expect(bob.groups == ["grp-staff"])

                let cappedBob = try await signIn(rp, idp: "capped", username: "bob")
                #expect(cappedBob.levelOfAssurance == .loa3)
            }
        }
    }

    @Test("public client (no secret, token endpoint auth none) with PKCE")
    func signInPublicClient() async throws {
        try await withTestOP { op in
            let provider = testProvider(op: op, clientID: TestClients.publicClient, clientSecret: nil)
            let identity = try await withRelyingParty([provider]) { rp in try await signIn(rp, username: "alice") }
            #expect(identity.subject == "alice-0001")
        }
    }

    @Test("acr and amr from the provider map to the expected level of assurance")
    func assuranceMapping() async throws {
        try await withTestOP { op in
            var provider = testProvider(op: op, maximumLevelOfAssurance: .loa4)
            provider.acrLevels["urn:partner:loa:substantial"] = .loa3
            var cappedProvider = testProvider(op: op, id: "capped", maximumLevelOfAssurance: .loa2)
            cappedProvider.acrLevels = [:]
            try await withRelyingParty([provider, cappedProvider]) { rp in

                let cases: [(user: String, acr: String?, amr: [String]?, idp: String,
                             expected: (LevelOfAssurance, FederatedIdentity.AssuranceSource)?)] = [
                    ("pwd-only", nil, ["pwd"], "partner", (.loa1, .amr)),
                    ("otp-only", nil, ["otp"], "partner", (.loa2, .amr)),
                    ("pwd-otp", nil, ["pwd", "otp"], "partner", (.loa3, .amr)),
                    ("hwk-pin", nil, ["hwk", "pin"], "partner", (.loa4, .amr)),
                    ("swk-fpt", nil, ["swk", "fpt"], "partner", (.loa3, .amr)),
                    ("hwk-fpt-capped", nil, ["hwk", "fpt"], "capped", (.loa2, .amr)),
                    ("acr-phr", "phr", ["pwd"], "partner", (.loa3, .acr)),
                    ("acr-custom", "urn:partner:loa:substantial", ["pwd"], "partner", (.loa3, .acr)),
                    ("acr-unknown-falls-back", "urn:unknown", ["pwd", "otp"], "partner", (.loa3, .amr)),
                    ("sms-only", nil, ["sms"], "partner", nil),
                    ("acr-zero", "0", ["pwd", "otp"], "partner", nil),
                    ("nothing", nil, nil, "partner", nil),
                ]
                for item in cases {
                    try await op.addUser(item.user, acr: item.acr, amr: item.amr, groups: ["vendors"])
                    if let expected = item.expected {
                    let (level, source) = expected
                        let identity = try await signIn(rp, idp: item.idp, username: item.user)
                        #expect(identity.levelOfAssurance == level, "\(item.user)")
                        #expect(identity.assuranceSource == source, "\(item.user)")
                        #expect(identity.subject == "sub-\(item.user)")
                    } else {
                        await expectOIDCError(.assuranceNotMapped) { try await signIn(rp, idp: item.idp, username: item.user) }
                    }
                }
            }
        }
    }

    @Test("key rotation at the provider: unknown kid refreshes the JWKS (rate-limited) without restarting the RP")
    func keyRotation() async throws {
        try await withTestOP { op in
            try await withRelyingParty([testProvider(op: op)]) { rp in
                let t0 = Date()

                _ = try await signIn(rp, username: "alice", now: t0)
                #expect(try await op.count("jwks") == 1)

                // New key, old one no longer published: the RP's cached set lacks the kid.
                try await op.rotateKeys(keepOld: false)
                let afterRotation = try await signIn(rp, username: "alice", now: t0.addingTimeInterval(1))
                #expect(afterRotation.subject == "alice-0001")
                #expect(try await op.count("jwks") == 2)

                // A second rotation within the refresh interval: no new fetch, refused.
                try await op.rotateKeys(keepOld: false)
                await expectOIDCError(.unknownKeyID) { try await signIn(rp, username: "alice", now: t0.addingTimeInterval(2)) }
                #expect(try await op.count("jwks") == 2)

                // Once the interval has passed the RP fetches again and accepts.
                let later = try await signIn(rp, username: "alice", now: t0.addingTimeInterval(32))
                #expect(later.subject == "alice-0001")
                #expect(try await op.count("jwks") == 3)

                // Rotation that keeps the old key published: tokens keep verifying.
                try await op.rotateKeys(keepOld: true)
                _ = try await signIn(rp, username: "alice", now: t0.addingTimeInterval(64))
                #expect(try await op.count("jwks") == 4)
            }
        }
    }

    @Test("the key set is cached for the provider's Cache-Control max-age, then fetched again")
    func jwksCacheLifetime() async throws {
        try await withTestOP { op in
            try await op.control("/control/cache", ["jwks": "public, max-age=120"])
            try await withRelyingParty([testProvider(op: op)]) { rp in
                let t0 = Date()
                _ = try await signIn(rp, username: "alice", now: t0)
                #expect(try await op.count("jwks") == 1)
                _ = try await signIn(rp, username: "alice", now: t0.addingTimeInterval(100))
                #expect(try await op.count("jwks") == 1)
                _ = try await signIn(rp, username: "alice", now: t0.addingTimeInterval(121))
                #expect(try await op.count("jwks") == 2)
                // The discovery document had no Cache-Control: the default hour applies.
                #expect(try await op.count("discovery") == 1)
            }
        }
    }

    @Test("a real id_token from the provider, tampered, is refused")
    func tamperedIDToken() async throws {
        try await withTestOP { op in
            try await withRelyingParty([testProvider(op: op)]) { rp in
                let now = Date()
                let start = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                let query = try await Browser.shared.signIn(at: start.authorizationURL, username: "alice")
                let code = try #require(URLComponents(string: "?" + query)?.queryItems?.first { $0.name == "code" }?.value)
                let tokens = try await rp.exchangeCode(code, pending: start.pending, now: now)
                let token = tokens.idToken
                let pending = start.pending

                // The untouched token is accepted (so the refusals below are about the tampering).
                let genuine = try await rp.validateIDToken(token, pending: pending, accessToken: tokens.accessToken, now: now)
                #expect(genuine.subject == "alice-0001")

                let parts = token.split(separator: ".").map(String.init)
                let header = try #require(decodeJSON(parts[0]))
                var claims = try #require(decodeJSON(parts[1]))
                let kid = try #require(header["kid"] as? String)

                // 1. Payload changed (another subject), original signature kept.
                claims["sub"] = "mallory"
                let forged = [parts[0], encodeJSON(claims), parts[2]].joined(separator: ".")
                await expectOIDCError(.badSignature) {
                    try await rp.validateIDToken(forged, pending: pending, accessToken: nil, now: now)
                }
                // 2. One byte of the payload flipped.
                var bytes = Array(parts[1].utf8)
                bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                let flipped = [parts[0], String(decoding: bytes, as: UTF8.self), parts[2]].joined(separator: ".")
                await expectOIDCError(.badSignature) {
                    try await rp.validateIDToken(flipped, pending: pending, accessToken: nil, now: now)
                }
                // 3. alg=none with the signature stripped.
                let none = [encodeJSON(["alg": "none", "kid": kid]), encodeJSON(claims), ""].joined(separator: ".")
                await expectOIDCError(.algorithmNotAllowed) {
                    try await rp.validateIDToken(none, pending: pending, accessToken: nil, now: now)
                }
                // 4. Re-signed with a foreign RSA key under the provider's kid.
                let foreign = JWTKeyCollection()
                await foreign.add(rsa: try Insecure.RSA.PrivateKey(pem: ForeignKeys.rsaPEM), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
                let resigned = try await foreign.sign(RawClaims(claims), kid: JWKIdentifier(string: kid))
                await expectOIDCError(.badSignature) {
                    try await rp.validateIDToken(resigned, pending: pending, accessToken: nil, now: now)
                }
                // 5. Re-signed with a foreign P-256 key, claiming ES256 under the RSA kid.
                let foreignEC = JWTKeyCollection()
                await foreignEC.add(ecdsa: ES256PrivateKey(), kid: JWKIdentifier(string: kid))
                let resignedEC = try await foreignEC.sign(RawClaims(claims), kid: JWKIdentifier(string: kid))
                await expectOIDCError(.keyMismatch) {
                    try await rp.validateIDToken(resignedEC, pending: pending, accessToken: nil, now: now)
                }
                // 6. Key confusion: HS256 keyed with the provider's published key set.
                let publicKeys = try await Browser.shared.send(op.issuer + "/jwks").body
                let confused = JWTKeyCollection()
                await confused.add(hmac: HMACKey(from: publicKeys), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
                let hmacToken = try await confused.sign(RawClaims(claims), kid: JWKIdentifier(string: kid))
                await expectOIDCError(.algorithmNotAllowed) {
                    try await rp.validateIDToken(hmacToken, pending: pending, accessToken: nil, now: now)
                }
                // 7. at_hash binds the id_token to its access token.
                await expectOIDCError(.accessTokenHashMismatch) {
                    try await rp.validateIDToken(token, pending: pending, accessToken: tokens.accessToken + "x", now: now)
                }
                // 8. The same token for a sign-in with another nonce.
                let other = PendingAuthorization(providerID: pending.providerID, state: pending.state, nonce: "another-nonce",
                                                 codeVerifier: pending.codeVerifier, redirectURI: pending.redirectURI,
                                                 returnURL: pending.returnURL, createdAt: pending.createdAt)
                await expectOIDCError(.nonceMismatch) {
                    try await rp.validateIDToken(token, pending: other, accessToken: nil, now: now)
                }
                // 9. Presented long after it was issued.
                await expectOIDCError(.expired) {
                    try await rp.validateIDToken(token, pending: pending, accessToken: nil, now: now.addingTimeInterval(7200))
                }
            }
        }
    }

    @Test("callback checks: wrong state, provider error, mix-up iss, replayed code, wrong PKCE verifier")
    func callbackRefusals() async throws {
        try await withTestOP { op in
            try await withRelyingParty([testProvider(op: op)]) { rp in
                let now = Date()

                // Wrong state: refused before the code is redeemed.
                let first = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                let firstQuery = try await Browser.shared.signIn(at: first.authorizationURL, username: "alice")
                let second = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                await expectOIDCError(.stateMismatch) {
                    try await rp.completeSignIn(pending: second.pending, callbackQuery: firstQuery, now: now)
                }
                #expect(try await op.count("token") == 0)

                // The user cancels at the provider.
                let denied = try await Browser.shared.signIn(at: second.authorizationURL, username: "alice", decision: "deny")
                do {
                    _ = try await rp.completeSignIn(pending: second.pending, callbackQuery: denied, now: now)
                    Issue.record("a denied sign-in completed")
                } catch let error as OIDCError {
                    #expect(error.code == .providerError)
                    #expect(error.detail.hasPrefix("access_denied"))
                }

                // A callback claiming another issuer (RFC 9207 mix-up defence).
                let mixedUp = firstQuery.replacingOccurrences(of: "iss=http%3A%2F%2F127.0.0.1", with: "iss=https%3A%2F%2Fevil.example")
                #expect(mixedUp != firstQuery)
                await expectOIDCError(.responseIssuerMismatch) {
                    try await rp.completeSignIn(pending: first.pending, callbackQuery: mixedUp, now: now)
                }
                // The provider announces iss, so a callback without it is refused too.
                let withoutIss = firstQuery.split(separator: "&").filter { !$0.hasPrefix("iss=") }.joined(separator: "&")
                await expectOIDCError(.responseIssuerMismatch) {
                    try await rp.completeSignIn(pending: first.pending, callbackQuery: withoutIss, now: now)
                }

                // The genuine callback works once; the same code again is refused by the provider.
                _ = try await rp.completeSignIn(pending: first.pending, callbackQuery: firstQuery, now: now)
                await expectOIDCError(.tokenEndpointError) {
                    try await rp.completeSignIn(pending: first.pending, callbackQuery: firstQuery, now: now)
                }

                // A wrong PKCE verifier makes the provider refuse the code.
                let third = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                let thirdQuery = try await Browser.shared.signIn(at: third.authorizationURL, username: "alice")
                let p = third.pending
                let wrongVerifier = PendingAuthorization(
                    providerID: p.providerID, state: p.state, nonce: p.nonce,
                    codeVerifier: String(repeating: "v", count: 43), redirectURI: p.redirectURI,
                    returnURL: p.returnURL, createdAt: p.createdAt)
                do {
                    _ = try await rp.completeSignIn(pending: wrongVerifier, callbackQuery: thirdQuery, now: now)
                    Issue.record("a wrong PKCE verifier was accepted")
                } catch let error as OIDCError {
                    #expect(error.code == .tokenEndpointError)
                    #expect(error.detail.hasPrefix("invalid_grant"))
                }

                // A pending sign-in older than its lifetime.
                let fourth = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                let fourthQuery = try await Browser.shared.signIn(at: fourth.authorizationURL, username: "alice")
                await expectOIDCError(.pendingAuthorizationExpired) {
                    try await rp.completeSignIn(pending: fourth.pending, callbackQuery: fourthQuery, now: now.addingTimeInterval(601))
                }
            }
        }
    }

    @Test("discovery: issuer must match exactly; oversized discovery and JWKS documents are refused")
    func documentLimits() async throws {
        try await withTestOP { op in
            // The provider calls itself 127.0.0.1; configured as localhost it is another issuer.
            let misnamed = testProvider(op: op, id: "misnamed", issuer: "http://localhost:\(op.port)")
            try await withRelyingParty([misnamed, testProvider(op: op)]) { rp in
                let now = Date()
                await expectOIDCError(.issuerMismatch) { try await rp.beginSignIn(idp: "misnamed", returnURL: "/", now: now) }

                // Oversized JWKS: discovery is fetched and cached first, then the key set is padded.
                let start = try await rp.beginSignIn(idp: "partner", returnURL: "/", now: now)
                let query = try await Browser.shared.signIn(at: start.authorizationURL, username: "alice")
                try await op.control("/control/pad", ["jwks": JSONWebKeySet.maximumBytes + 1000])
                await expectOIDCError(.documentTooLarge) {
                    try await rp.completeSignIn(pending: start.pending, callbackQuery: query, now: now)
                }

                // Oversized discovery document (a fresh relying party has nothing cached).
                try await op.control("/control/pad", ["discovery": OIDCProviderMetadata.maximumDocumentBytes + 1000, "jwks": 0])
                try await withRelyingParty([testProvider(op: op)]) { fresh in
                    await expectOIDCError(.documentTooLarge) { try await fresh.beginSignIn(idp: "partner", returnURL: "/", now: now) }
                }

                // Just under the limits both are accepted.
                try await op.control("/control/pad", ["discovery": OIDCProviderMetadata.maximumDocumentBytes - 100,
                                                      "jwks": JSONWebKeySet.maximumBytes - 100])
                let identity = try await withRelyingParty([testProvider(op: op)]) { fine in
                    try await signIn(fine, username: "alice")
                }
                #expect(identity.subject == "alice-0001")
            }
        }
    }
}

// MARK: - Helpers

private func decodeJSON(_ segment: String) -> [String: Any]? {
    var base64 = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    guard let data = Data(base64Encoded: base64) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

func encodeJSON(_ object: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// Claims re-encoded as they were decoded.
struct RawClaims: JWTPayload {
    let values: [String: JSONValue]

    init(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        values = (try? JSONDecoder().decode([String: JSONValue].self, from: data)) ?? [:]
    }

    init(values: [String: JSONValue]) { self.values = values }

    init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
