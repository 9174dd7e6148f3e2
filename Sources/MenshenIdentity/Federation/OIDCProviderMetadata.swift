import Foundation

/// The parts of an OpenID Provider's discovery document
/// (`/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §3)
/// that the relying party uses, checked on parse.
public struct OIDCProviderMetadata: Sendable, Hashable {
    /// The largest discovery document accepted, in bytes.
    public static let maximumDocumentBytes = 64 * 1024

    public let issuer: String
    public let authorizationEndpoint: URL
    public let tokenEndpoint: URL
    public let jwksURI: URL
    public let userinfoEndpoint: URL?
    public let endSessionEndpoint: URL?
    public let idTokenSigningAlgorithms: [String]
    /// As published; nil means the default `client_secret_basic` (Discovery §3).
    public let tokenEndpointAuthMethods: [String]?
    public let codeChallengeMethods: [String]?
    public let acrValuesSupported: [String]?
    /// RFC 9207: the provider adds `iss` to every authorization response.
    public let authorizationResponseIssuerParameterSupported: Bool

    private struct Document: Decodable {
        let issuer: String?
        let authorization_endpoint: String?
        let token_endpoint: String?
        let jwks_uri: String?
        let userinfo_endpoint: String?
        let end_session_endpoint: String?
        let response_types_supported: [String]?
        let id_token_signing_alg_values_supported: [String]?
        let token_endpoint_auth_methods_supported: [String]?
        let code_challenge_methods_supported: [String]?
        let acr_values_supported: [String]?
        let authorization_response_iss_parameter_supported: Bool?
    }

    /// Parses and checks a discovery document for `provider`: size, JSON
    /// shape, the issuer (exactly the configured one: Discovery §4.3), https
    /// endpoints, the code flow, S256 when methods are listed, and at least
    /// one signing algorithm in common with the provider's allowlist.
    public static func parse(_ bytes: some Collection<UInt8>, for provider: OIDCProviderConfiguration) throws -> Self {
        guard bytes.count <= maximumDocumentBytes else {
            throw OIDCError(.documentTooLarge, "discovery document of \(bytes.count) bytes (limit \(maximumDocumentBytes))")
        }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw OIDCError(.malformedDiscovery, "not a JSON object of the expected shape")
        }
        guard let issuer = document.issuer else { throw OIDCError(.malformedDiscovery, "issuer missing") }
        guard issuer == provider.issuer else {
            throw OIDCError(.issuerMismatch, "discovery names issuer \(issuer.prefix(200)), configured \(provider.issuer)")
        }
        let loopback = provider.allowsInsecureLoopback
        func required(_ value: String?, _ name: String) throws -> URL {
            guard let value else { throw OIDCError(.malformedDiscovery, "\(name) missing") }
            return try OIDCURLRules.endpoint(value, allowsInsecureLoopback: loopback, name: name)
        }
        func optional(_ value: String?, _ name: String) throws -> URL? {
            guard let value else { return nil }
            return try OIDCURLRules.endpoint(value, allowsInsecureLoopback: loopback, name: name)
        }
        let authorization = try required(document.authorization_endpoint, "authorization_endpoint")
        let token = try required(document.token_endpoint, "token_endpoint")
        let jwks = try required(document.jwks_uri, "jwks_uri")
        let userinfo = try optional(document.userinfo_endpoint, "userinfo_endpoint")
        let endSession = try optional(document.end_session_endpoint, "end_session_endpoint")

        if let responseTypes = document.response_types_supported, !responseTypes.contains("code") {
            throw OIDCError(.providerUnsupported, "the provider does not offer response_type=code")
        }
        if let methods = document.code_challenge_methods_supported, !methods.contains("S256") {
            throw OIDCError(.providerUnsupported, "the provider does not offer PKCE S256")
        }
        let algorithms = document.id_token_signing_alg_values_supported ?? ["RS256"]
        guard algorithms.contains(where: { provider.allowedSigningAlgorithms.contains($0) }) else {
            throw OIDCError(.providerUnsupported,
                            "no id_token signing algorithm in common (provider: \(algorithms.prefix(10).joined(separator: ",")))")
        }
        return OIDCProviderMetadata(
            issuer: issuer, authorizationEndpoint: authorization, tokenEndpoint: token, jwksURI: jwks,
            userinfoEndpoint: userinfo, endSessionEndpoint: endSession, idTokenSigningAlgorithms: algorithms,
            tokenEndpointAuthMethods: document.token_endpoint_auth_methods_supported,
            codeChallengeMethods: document.code_challenge_methods_supported,
            acrValuesSupported: document.acr_values_supported,
            authorizationResponseIssuerParameterSupported: document.authorization_response_iss_parameter_supported ?? false)
    }

    /// The client authentication to use at the token endpoint: the provider's
    /// configured choice, else `client_secret_basic` when the provider offers
    /// it (the default when it lists nothing), else `client_secret_post`;
    /// `none` for a client without a secret.
    public func clientAuthentication(for provider: OIDCProviderConfiguration) throws
        -> OIDCProviderConfiguration.ClientAuthentication
    {
        let offered = tokenEndpointAuthMethods ?? ["client_secret_basic"]
        if let chosen = provider.tokenEndpointAuthentication {
            guard offered.contains(chosen.rawValue) else {
                throw OIDCError(.providerUnsupported, "the provider does not offer \(chosen.rawValue)")
            }
            return chosen
        }
        guard provider.clientSecret != nil else {
            guard offered.contains("none") else {
                throw OIDCError(.providerUnsupported, "no client secret configured and the provider does not offer none")
            }
            return .none
        }
        if offered.contains("client_secret_basic") { return .clientSecretBasic }
        if offered.contains("client_secret_post") { return .clientSecretPost }
        throw OIDCError(.providerUnsupported,
                        "the provider offers no secret-based client authentication (\(offered.prefix(10).joined(separator: ",")))")
    }
}

/// How long to keep a fetched discovery document or key set, from the
/// response's `Cache-Control` (RFC 9111 `max-age`), bounded so that a
/// provider can neither make us refetch on every sign-in nor pin a key set
/// for days. `no-store`/`no-cache` mean the lower bound.
public enum OIDCCacheLifetime {
    public static func seconds(cacheControl: String?, default defaultLifetime: TimeInterval,
                               minimum: TimeInterval = 60, maximum: TimeInterval = 24 * 3600) -> TimeInterval {
        guard let cacheControl else { return defaultLifetime }
        var lifetime = defaultLifetime
        for directive in cacheControl.lowercased().split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            switch parts.first {
            case "no-store", "no-cache":
                return minimum
            case "max-age":
                guard parts.count == 2, let value = Int(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))),
                      value >= 0 else { continue }
                lifetime = TimeInterval(value)
            default:
                continue
            }
        }
        return min(max(lifetime, minimum), maximum)
    }
}
