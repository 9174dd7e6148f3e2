import Foundation
import MenshenIdentity
import MenshenTestSupport
import Testing

enum Fixtures {
    static let issuer = "https://login.partner.example/tenant-1"

    static func provider(_ change: (inout OIDCProviderConfiguration) -> Void = { _ in }) -> OIDCProviderConfiguration {
        var provider = OIDCProviderConfiguration(
            id: "partner", displayNameZhTW: "合作機構", displayNameEnglish: "Partner", issuer: issuer,
            clientID: "menshen client", clientSecret: "s3cret:with&odd=chars", redirectURI: "https://access.bank.example/oidc/callback",
            scopes: ["openid", "profile", "email"], userKind: .vendor, maximumLevelOfAssurance: .loa3)
        change(&provider)
        return provider
    }

    static func discovery(_ changes: [String: Any?] = [:]) -> [UInt8] {
        var document: [String: Any] = [
            "issuer": issuer,
            "authorization_endpoint": "https://login.partner.example/tenant-1/authorize?ui=zh-TW",
            "token_endpoint": "https://login.partner.example/tenant-1/token",
            "jwks_uri": "https://login.partner.example/tenant-1/keys",
            "response_types_supported": ["code", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["plain", "S256"],
        ]
        for (key, value) in changes { document[key] = value }
        return Array(try! JSONSerialization.data(withJSONObject: document))
    }

    static func metadata(_ changes: [String: Any?] = [:], provider: OIDCProviderConfiguration = provider()) throws
        -> OIDCProviderMetadata
    {
        try OIDCProviderMetadata.parse(discovery(changes), for: provider)
    }
}

struct PKCEAndAuthorizationRequestTests {
    @Test("RFC 7636 Appendix B: verifier → S256 challenge")
    func rfc7636Vector() {
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.isValidVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
        #expect(!PKCE.isValidVerifier("short"))
        #expect(!PKCE.isValidVerifier(String(repeating: "a", count: 42) + "+"))
    }

    @Test("the authorization URL carries every parameter once, percent-encoded, with fresh state/nonce/verifier")
    func authorizationURL() throws {
        let provider = Fixtures.provider()
        let metadata = try Fixtures.metadata()
        var generator = SeededGenerator(seed: 7)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let (url, pending) = try OIDCAuthorizationRequest.make(
            provider: provider, metadata: metadata, returnURL: "https://app.bank.example/x?y=1", now: now,
            maxAge: 900, acrValues: ["phr", "phrh"], loginHint: "王@partner.example", using: &generator)

        let text = url.absoluteString
        #expect(text.hasPrefix("https://login.partner.example/tenant-1/authorize?ui=zh-TW&response_type=code&"))
        #expect(text.contains("&client_id=menshen%20client&"))
        #expect(text.contains("&redirect_uri=https%3A%2F%2Faccess.bank.example%2Foidc%2Fcallback&"))
        #expect(text.contains("&scope=openid%20profile%20email&"))
        #expect(text.contains("&acr_values=phr%20phrh"))
        #expect(text.contains("&login_hint=%E7%8E%8B%40partner.example"))
        #expect(text.contains("&max_age=900"))

        let items = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems)
        var values: [String: [String]] = [:]
        for item in items { values[item.name, default: []].append(item.value ?? "") }
        for name in ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                     "code_challenge_method", "max_age", "acr_values", "login_hint"] {
            #expect(values[name]?.count == 1, "\(name) once")
        }
        #expect(values["code_challenge_method"] == ["S256"])
        #expect(values["state"] == [pending.state])
        #expect(values["nonce"] == [pending.nonce])
        #expect(values["code_challenge"] == [PKCE.challenge(for: pending.codeVerifier)])
        #expect(values["client_id"] == ["menshen client"])
        #expect(pending.state.count == 43 && pending.nonce.count == 43) // 256 bits each
        #expect(Set([pending.state, pending.nonce, pending.codeVerifier]).count == 3)
        #expect(PKCE.isValidVerifier(pending.codeVerifier))
        #expect(pending.createdAt == now && pending.maxAge == 900 && pending.acrValues == ["phr", "phrh"])
        #expect(pending.returnURL == "https://app.bank.example/x?y=1")

        // Another draw gives other values.
        let second = try OIDCAuthorizationRequest.make(provider: provider, metadata: metadata, returnURL: "/", now: now,
                                                       using: &generator)
        #expect(second.pending.state != pending.state && second.pending.nonce != pending.nonce)
    }

    @Test("step-up acr_values: the listed acr values that reach the level, weakest first; sent, not required")
    func stepUpACR() throws {
        let provider = Fixtures.provider { $0.acrLevels = ["phr": .loa3, "phrh": .loa4, "urn:partner:mfa": .loa2, "urn:partner:pwd": .loa1] }
        let listed = try Fixtures.metadata(["acr_values_supported": ["phrh", "phr", "urn:partner:mfa", "urn:partner:other"]])
        #expect(OIDCAuthorizationRequest.stepUpACRValues(for: .loa2, provider: provider, metadata: listed) == ["urn:partner:mfa", "phr", "phrh"])
        #expect(OIDCAuthorizationRequest.stepUpACRValues(for: .loa3, provider: provider, metadata: listed) == ["phr", "phrh"])
        #expect(OIDCAuthorizationRequest.stepUpACRValues(for: .loa1, provider: provider, metadata: listed) == ["urn:partner:mfa", "phr", "phrh"],
                "urn:partner:pwd reaches LoA 1 but the provider does not list it")
        // A provider that lists none, or none that reaches the level: nothing asked (its amr decides).
        #expect(OIDCAuthorizationRequest.stepUpACRValues(for: .loa2, provider: provider, metadata: try Fixtures.metadata()) == nil)
        let weakOnly = try Fixtures.metadata(["acr_values_supported": ["urn:partner:pwd"]])
        #expect(OIDCAuthorizationRequest.stepUpACRValues(for: .loa2, provider: provider, metadata: weakOnly) == nil)

        // A hint is sent but not required of the answer; values the operator requires stay required and win.
        var generator = SeededGenerator(seed: 7)
        let hinted = try OIDCAuthorizationRequest.make(provider: provider, metadata: listed, returnURL: "/", now: Date(), maxAge: 0,
                                                       acrHint: ["phr", "phrh"], prompt: "login", using: &generator)
        #expect(hinted.url.absoluteString.contains("&acr_values=phr%20phrh&"), "\(hinted.url)")
        #expect(hinted.pending.acrValues == nil)
        let strict = Fixtures.provider { $0.requestedACRValues = ["phrh"] }
        let required = try OIDCAuthorizationRequest.make(provider: strict, metadata: listed, returnURL: "/", now: Date(),
                                                         acrHint: ["phr"], using: &generator)
        #expect(required.url.absoluteString.contains("acr_values=phrh") && !required.url.absoluteString.contains("acr_values=phr&"))
        #expect(required.pending.acrValues == ["phrh"])
        #expect(throws: OIDCError(.invalidConfiguration)) {
            try OIDCAuthorizationRequest.make(provider: provider, metadata: listed, returnURL: "/", now: Date(), acrHint: ["a b"], using: &generator)
        }
    }

    @Test("PendingAuthorization round-trips through JSON for server-side storage")
    func pendingCodable() throws {
        var generator = SeededGenerator(seed: 1)
        let (_, pending) = try OIDCAuthorizationRequest.make(
            provider: Fixtures.provider(), metadata: try Fixtures.metadata(), returnURL: "/", now: Date(), using: &generator)
        let decoded = try JSONDecoder().decode(PendingAuthorization.self, from: JSONEncoder().encode(pending))
        #expect(decoded == pending)
    }
}

struct CallbackTests {
    let provider = Fixtures.provider()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func pending() -> PendingAuthorization {
        PendingAuthorization(providerID: "partner", state: "state-abc", nonce: "nonce-abc",
                             codeVerifier: String(repeating: "v", count: 43), redirectURI: provider.redirectURI,
                             returnURL: "/", createdAt: now)
    }

    @Test("a good callback yields the code; the order of checks is state, iss, error, code")
    func cases() async throws {
        let metadata = try Fixtures.metadata()
        let announcing = try Fixtures.metadata(["authorization_response_iss_parameter_supported": true])
        func code(_ query: String, _ metadata: OIDCProviderMetadata, at time: Date? = nil) throws -> String {
            try OIDCCallback.authorizationCode(query: query, pending: pending(), provider: provider, metadata: metadata,
                                               now: time ?? now)
        }
        #expect(try code("code=abc%2F123&state=state-abc", metadata) == "abc/123")
        #expect(try code("?state=state-abc&code=x&iss=https%3A%2F%2Flogin.partner.example%2Ftenant-1", announcing) == "x")

        await expectOIDCError(.stateMismatch) { try code("code=abc&state=state-abd", metadata) }
        await expectOIDCError(.stateMismatch) { try code("code=abc", metadata) }
        await expectOIDCError(.malformedCallback) { try code("code=abc&state=state-abc&state=state-abc", metadata) }
        await expectOIDCError(.malformedCallback) { try code("code=%zz&state=state-abc", metadata) }
        await expectOIDCError(.malformedCallback) { try code("state=state-abc", metadata) }
        await expectOIDCError(.malformedCallback) {
            try code("state=state-abc&code=" + String(repeating: "a", count: OIDCCallback.maximumQueryBytes), metadata)
        }
        await expectOIDCError(.providerError) { try code("error=login_required&state=state-abc", metadata) }
        await expectOIDCError(.stateMismatch) { try code("error=login_required&state=other", metadata) }
        await expectOIDCError(.responseIssuerMismatch) { try code("code=x&state=state-abc", announcing) }
        await expectOIDCError(.responseIssuerMismatch) {
            try code("code=x&state=state-abc&iss=https%3A%2F%2Fevil.example", metadata)
        }
        await expectOIDCError(.pendingAuthorizationExpired) {
            try code("code=x&state=state-abc", metadata, at: now.addingTimeInterval(601))
        }
        // The provider's error text is kept printable.
        do {
            _ = try code("error=access_denied&error_description=%0D%0Abad%00&state=state-abc", metadata)
        } catch let error as OIDCError {
            #expect(error.detail == "access_denied: ??bad?")
        }
    }
}

struct TokenEndpointTests {
    let pending = PendingAuthorization(providerID: "partner", state: "s", nonce: "n",
                                       codeVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                                       redirectURI: "https://access.bank.example/oidc/callback", returnURL: "/",
                                       createdAt: Date())

    @Test("client_secret_basic: id and secret form-encoded, then base64 (RFC 6749 §2.3.1)")
    func basic() throws {
        let request = try OIDCTokenRequest.make(code: "c o+de", pending: pending, provider: Fixtures.provider(),
                                                metadata: try Fixtures.metadata())
        // "menshen client" → "menshen+client"; "s3cret:with&odd=chars" → "s3cret%3Awith%26odd%3Dchars"
        let expected = "Basic " + Data("menshen+client:s3cret%3Awith%26odd%3Dchars".utf8).base64EncodedString()
        #expect(request.headers["Authorization"] == expected)
        #expect(request.body == "grant_type=authorization_code&code=c+o%2Bde&redirect_uri=https%3A%2F%2Faccess.bank.example%2Foidc%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(request.url.absoluteString == "https://login.partner.example/tenant-1/token")
    }

    @Test("client_secret_post when configured or when it is all the provider offers; none for a public client")
    func postAndNone() throws {
        let postOnly = try Fixtures.metadata(["token_endpoint_auth_methods_supported": ["client_secret_post"]])
        let post = try OIDCTokenRequest.make(code: "c", pending: pending, provider: Fixtures.provider(), metadata: postOnly)
        #expect(post.headers["Authorization"] == nil)
        #expect(post.body.hasSuffix("&client_id=menshen+client&client_secret=s3cret%3Awith%26odd%3Dchars"))

        let unlisted = try Fixtures.metadata(["token_endpoint_auth_methods_supported": nil])
        #expect(try unlisted.clientAuthentication(for: Fixtures.provider()) == .clientSecretBasic)
        let chosen = Fixtures.provider { $0.tokenEndpointAuthentication = .clientSecretPost }
        #expect(try Fixtures.metadata().clientAuthentication(for: chosen) == .clientSecretPost)
        #expect(throws: OIDCError(.providerUnsupported)) { try unlisted.clientAuthentication(for: chosen) }

        let publicClient = Fixtures.provider { $0.clientSecret = nil }
        let withNone = try Fixtures.metadata(["token_endpoint_auth_methods_supported": ["client_secret_basic", "none"]])
        let none = try OIDCTokenRequest.make(code: "c", pending: pending, provider: publicClient, metadata: withNone)
        #expect(none.headers["Authorization"] == nil)
        #expect(none.body.hasSuffix("&client_id=menshen+client"))
        #expect(!none.body.contains("client_secret"))
        #expect(throws: OIDCError(.providerUnsupported)) { try Fixtures.metadata().clientAuthentication(for: publicClient) }
    }

    @Test("token responses: success, OAuth error, wrong type, missing id_token, oversize")
    func responses() throws {
        let ok = #"{"access_token":"at","token_type":"bearer","id_token":"a.b.c","expires_in":3600,"scope":"openid"}"#
        let parsed = try OIDCTokenResponse.parse(status: 200, body: Array(ok.utf8))
        #expect(parsed.idToken == "a.b.c" && parsed.accessToken == "at" && parsed.expiresIn == 3600)

        #expect(throws: OIDCError(.tokenEndpointError)) {
            try OIDCTokenResponse.parse(status: 400, body: Array(#"{"error":"invalid_grant"}"#.utf8))
        }
        #expect(throws: OIDCError(.unexpectedHTTPStatus)) {
            try OIDCTokenResponse.parse(status: 502, body: Array("<html>".utf8))
        }
        #expect(throws: OIDCError(.unsupportedTokenType)) {
            try OIDCTokenResponse.parse(status: 200, body: Array(#"{"access_token":"a","token_type":"DPoP","id_token":"x"}"#.utf8))
        }
        #expect(throws: OIDCError(.missingIDToken)) {
            try OIDCTokenResponse.parse(status: 200, body: Array(#"{"access_token":"a","token_type":"Bearer"}"#.utf8))
        }
        #expect(throws: OIDCError(.malformedTokenResponse)) {
            try OIDCTokenResponse.parse(status: 200, body: Array(#"["not an object"]"#.utf8))
        }
        #expect(throws: OIDCError(.documentTooLarge)) {
            try OIDCTokenResponse.parse(status: 200, body: [UInt8](repeating: 0x20, count: OIDCTokenResponse.maximumBytes + 1))
        }
    }
}

struct DiscoveryAndJWKSTests {
    @Test("discovery: accepted document and each refusal")
    func discovery() throws {
        let metadata = try Fixtures.metadata()
        #expect(metadata.issuer == Fixtures.issuer)
        #expect(metadata.jwksURI.absoluteString == "https://login.partner.example/tenant-1/keys")
        #expect(!metadata.authorizationResponseIssuerParameterSupported)

        #expect(throws: OIDCError(.issuerMismatch)) { try Fixtures.metadata(["issuer": Fixtures.issuer + "/"]) }
        #expect(throws: OIDCError(.issuerMismatch)) { try Fixtures.metadata(["issuer": "https://evil.example/tenant-1"]) }
        #expect(throws: OIDCError(.malformedDiscovery)) { try Fixtures.metadata(["issuer": nil]) }
        #expect(throws: OIDCError(.malformedDiscovery)) { try Fixtures.metadata(["jwks_uri": nil]) }
        #expect(throws: OIDCError(.malformedDiscovery)) { try Fixtures.metadata(["token_endpoint": 42]) }
        #expect(throws: OIDCError(.insecureEndpoint)) {
            try Fixtures.metadata(["token_endpoint": "http://login.partner.example/token"])
        }
        #expect(throws: OIDCError(.insecureEndpoint)) {
            try Fixtures.metadata(["jwks_uri": "https://user:pw@login.partner.example/keys"])
        }
        #expect(throws: OIDCError(.providerUnsupported)) { try Fixtures.metadata(["code_challenge_methods_supported": ["plain"]]) }
        #expect(throws: OIDCError(.providerUnsupported)) { try Fixtures.metadata(["response_types_supported": ["id_token"]]) }
        #expect(throws: OIDCError(.providerUnsupported)) {
            try Fixtures.metadata(["id_token_signing_alg_values_supported": ["HS256", "none"]])
        }
        #expect(throws: OIDCError(.malformedDiscovery)) { try OIDCProviderMetadata.parse(Array("{".utf8), for: Fixtures.provider()) }
        let big = Fixtures.discovery(["x_padding": String(repeating: "x", count: OIDCProviderMetadata.maximumDocumentBytes)])
        #expect(throws: OIDCError(.documentTooLarge)) { try OIDCProviderMetadata.parse(big, for: Fixtures.provider()) }

        // http only on loopback and only when the provider is marked as a test provider.
        let local = Fixtures.provider {
            $0.issuer = "http://127.0.0.1:9999"
            $0.allowsInsecureLoopback = true
        }
        let localDocument = Fixtures.discovery(["issuer": "http://127.0.0.1:9999",
                                                "authorization_endpoint": "http://127.0.0.1:9999/a",
                                                "token_endpoint": "http://127.0.0.1:9999/t",
                                                "jwks_uri": "http://localhost:9999/k"])
        _ = try OIDCProviderMetadata.parse(localDocument, for: local)
        var strict = local
        strict.allowsInsecureLoopback = false
        #expect(throws: OIDCError(.insecureEndpoint)) { try OIDCProviderMetadata.parse(localDocument, for: strict) }
    }

    @Test("JWKS: keys kept and dropped, limits, duplicate kid")
    func jwks() throws {
        let document = #"""
        {"keys":[
          {"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB","d":"secret-never-read"},
          {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
          {"kty":"oct","kid":"sym","k":"c2VjcmV0"},
          {"kty":"EC","kid":"e1","crv":"P-256","x":"AA","y":"AA"},
          {"kty":"OKP","kid":"o1","crv":"Ed25519","x":"AA","key_ops":["verify"]}
        ]}
        """#
        let set = try JSONWebKeySet.parse(Array(document.utf8))
        #expect(set.keyIDs == ["r1", "e1", "o1"])
        #expect(set.keys[0].canVerify("RS256") && !set.keys[0].canVerify("PS256") && !set.keys[0].canVerify("ES256"))
        #expect(set.keys[1].canVerify("ES256") && !set.keys[1].canVerify("ES384"))
        #expect(set.keys[2].canVerify("EdDSA"))

        #expect(throws: OIDCError(.malformedJWKS)) { try JSONWebKeySet.parse(Array(#"{"keys":{}}"#.utf8)) }
        #expect(throws: OIDCError(.malformedJWKS)) { try JSONWebKeySet.parse(Array(#"{"keys":[{"kid":"x"}]}"#.utf8)) }
        #expect(throws: OIDCError(.malformedJWKS)) {
            try JSONWebKeySet.parse(Array(#"{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"A","y":"A"},{"kty":"RSA","kid":"a","n":"A","e":"A"}]}"#.utf8))
        }
        let many = "{\"keys\":[" + (0...JSONWebKeySet.maximumKeys).map { #"{"kty":"EC","kid":"k\#($0)","crv":"P-256","x":"A","y":"A"}"# }
            .joined(separator: ",") + "]}"
        #expect(throws: OIDCError(.malformedJWKS)) { try JSONWebKeySet.parse(Array(many.utf8)) }
        let big = #"{"keys":[],"x":""# + String(repeating: "x", count: JSONWebKeySet.maximumBytes) + #""}"#
        #expect(throws: OIDCError(.documentTooLarge)) { try JSONWebKeySet.parse(Array(big.utf8)) }
    }
}

struct ProviderConfigurationTests {
    @Test("validate(): good configuration passes, each bad one names its problem")
    func validation() throws {
        try Fixtures.provider().validate()
        let bad: [(String, (inout OIDCProviderConfiguration) -> Void)] = [
            ("http issuer", { $0.issuer = "http://login.partner.example" }),
            ("loopback http without the test flag", { $0.issuer = "http://127.0.0.1:8080" }),
            ("relative redirect", { $0.redirectURI = "/oidc/callback" }),
            ("no openid scope", { $0.scopes = ["profile"] }),
            ("alg none", { $0.allowedSigningAlgorithms = ["RS256", "none"] }),
            ("unknown alg", { $0.allowedSigningAlgorithms = ["RS1"] }),
            ("HS256 not explicitly allowed", { $0.allowedSigningAlgorithms = ["HS256"] }),
            ("HS256 without a secret", {
                $0.allowedSigningAlgorithms = ["HS256"]
                $0.allowsSymmetricSigning = true
                $0.clientSecret = nil
            }),
            ("acr 0 mapped", { $0.acrLevels["0"] = .loa1 }),
            ("huge skew", { $0.clockSkew = 3600 }),
            ("bad id", { $0.id = "Partner IdP" }),
            ("empty name", { $0.displayNameZhTW = "" }),
            ("post without secret", {
                $0.clientSecret = nil
                $0.tokenEndpointAuthentication = .clientSecretPost
            }),
        ]
        for (name, change) in bad {
            #expect(throws: OIDCError(.invalidConfiguration), "\(name)") { try Fixtures.provider(change).validate() }
        }
        #expect(Fixtures.provider().displayName(forLanguage: "zh-TW") == "合作機構")
        #expect(Fixtures.provider().displayName(forLanguage: "en-GB") == "Partner")
        #expect(Fixtures.provider { $0.issuer = "https://x.example/" }.discoveryURL == "https://x.example/.well-known/openid-configuration")
    }
}

struct FederatedAssuranceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let acr: String?
        let amr: [String]
        let maximum: LevelOfAssurance
        let expected: LevelOfAssurance?
        init(_ acr: String?, _ amr: [String], max maximum: LevelOfAssurance = .loa4, _ expected: LevelOfAssurance?) {
            self.acr = acr
            self.amr = amr
            self.maximum = maximum
            self.expected = expected
        }
        var testDescription: String { "acr \(acr ?? "-") amr \(amr) max \(maximum) → \(expected.map { "\($0)" } ?? "nil")" }
    }

    static let cases: [Case] = [
        Case(nil, ["pwd"], .loa1),
        Case(nil, ["otp"], .loa2),
        Case(nil, ["pwd", "otp"], .loa3),
        Case(nil, ["pwd", "otp", "mfa"], .loa3),
        Case(nil, ["mfa"], nil),
        Case(nil, ["hwk", "pin"], .loa4),
        Case(nil, ["hwk"], .loa2),
        Case(nil, ["swk", "face"], .loa3),
        Case(nil, ["sc", "pin"], .loa4),
        Case(nil, ["hwk", "pin"], max: .loa3, .loa3),
        Case(nil, ["pwd", "sms"], .loa1),
        Case(nil, ["sms", "tel"], nil),
        Case(nil, ["kba"], nil),
        Case(nil, ["geo", "rba", "wia", "user"], nil),
        Case(nil, [], nil),
        Case("phrh", ["pwd"], .loa4),
        Case("phrh", ["pwd"], max: .loa2, .loa2),
        Case("phr", [], .loa3),
        Case("urn:unmapped", ["pwd", "otp"], .loa3),
        Case("0", ["hwk", "pin"], nil),
    ]

    @Test("acr first, then amr; capped at the provider's maximum; nothing mapped → nil", arguments: FederatedAssuranceTests.cases)
    func mapping(_ item: Case) {
        let provider = Fixtures.provider { $0.maximumLevelOfAssurance = item.maximum }
        let result = FederatedAssurance.evaluate(acr: item.acr, amr: item.amr, provider: provider)
        #expect(result?.level == item.expected)
        if let result {
            let viaACR = item.acr.map { provider.acrLevels[$0] != nil } ?? false
            #expect(result.source == (viaACR ? .acr : .amr))
        }
    }

    @Test("a provider may map its own acr and amr values")
    func customMapping() {
        let provider = Fixtures.provider {
            $0.acrLevels = ["http://idmanagement.gov/ns/assurance/aal/2": .loa3]
            $0.amrFactors["sms"] = .totp // a deployment that accepts SMS as a one-time password
        }
        #expect(FederatedAssurance.evaluate(acr: "http://idmanagement.gov/ns/assurance/aal/2", amr: [], provider: provider)?.level == .loa3)
        #expect(FederatedAssurance.evaluate(acr: "phr", amr: ["sms"], provider: provider)?.level == .loa2)
    }
}

struct CacheLifetimeTests {
    @Test("Cache-Control max-age is honoured within bounds; no-store and no-cache mean the minimum")
    func lifetimes() {
        #expect(OIDCCacheLifetime.seconds(cacheControl: nil, default: 3600) == 3600)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "public, max-age=7200", default: 3600) == 7200)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=\"600\"", default: 3600) == 600)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=5", default: 3600) == 60)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=31536000", default: 3600) == 24 * 3600)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "no-store", default: 3600) == 60)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=900, No-Cache", default: 3600) == 60)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=-1", default: 3600) == 3600)
        #expect(OIDCCacheLifetime.seconds(cacheControl: "max-age=abc", default: 3600) == 3600)
    }
}
