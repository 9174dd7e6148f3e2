import Crypto
import Foundation

/// RFC 7636 proof key: a 43-character verifier from 32 random bytes and its
/// S256 challenge. `plain` is never used.
public struct PKCE: Sendable, Hashable {
    public let verifier: String
    public var challenge: String { Self.challenge(for: verifier) }

    public static func generate(using generator: inout some RandomNumberGenerator) -> PKCE {
        PKCE(verifier: OIDCRandom.token(using: &generator))
    }

    public init(verifier: String) { self.verifier = verifier }

    /// BASE64URL(SHA256(ASCII(verifier))).
    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(data: Array(verifier.utf8)))
    }

    /// RFC 7636 §4.1: 43-128 characters of `[A-Za-z0-9-._~]`.
    public static func isValidVerifier(_ text: String) -> Bool {
        (43...128).contains(text.utf8.count) && text.utf8.allSatisfy(FormEncoding.isUnreserved)
    }
}

enum OIDCRandom {
    /// 32 random bytes (256 bits), base64url: 43 characters.
    static func token(using generator: inout some RandomNumberGenerator) -> String {
        Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}

/// A started sign-in. The web layer stores it server-side (bound to the
/// browser's pre-sign-in session), hands it back with the callback, and
/// deletes it on first use: that makes `state` and `nonce` single-use.
///
/// `returnURL` is kept as given: checking it against the configured
/// applications (no open redirect) is the web layer's job, before and after.
public struct PendingAuthorization: Sendable, Hashable, Codable {
    public let providerID: String
    /// ≥ 256 random bits; compared in constant time with the callback's.
    public let state: String
    public let nonce: String
    public let codeVerifier: String
    public let redirectURI: String
    public let returnURL: String
    public let createdAt: Date
    /// `max_age` sent, if any: `auth_time` is then required and checked.
    public let maxAge: Int?
    /// `acr_values` sent, if any: the id_token's `acr` must be one of them.
    public let acrValues: [String]?

    public init(providerID: String, state: String, nonce: String, codeVerifier: String, redirectURI: String,
                returnURL: String, createdAt: Date, maxAge: Int? = nil, acrValues: [String]? = nil) {
        self.providerID = providerID
        self.state = state
        self.nonce = nonce
        self.codeVerifier = codeVerifier
        self.redirectURI = redirectURI
        self.returnURL = returnURL
        self.createdAt = createdAt
        self.maxAge = maxAge
        self.acrValues = acrValues
    }

    public func isExpired(now: Date, lifetime: TimeInterval) -> Bool {
        now.timeIntervalSince(createdAt) > lifetime || now.timeIntervalSince(createdAt) < -lifetime
    }
}

/// The authorization request (OIDC Core §3.1.2.1 with RFC 7636 PKCE).
public enum OIDCAuthorizationRequest {
    /// Builds the URL to send the browser to, and the pending authorization to
    /// keep: fresh `state`, `nonce` and PKCE verifier from `generator` (a
    /// CSPRNG in production), `response_type=code`, S256.
    ///
    /// `acrValues` (else the provider's configured `requestedACRValues`) are required: the id_token's `acr` must be
    /// one of them. `acrHint` is sent as `acr_values` only when nothing is required and is not required of the
    /// answer (OpenID Connect Core §5.5.1.1: a voluntary claim) — the caller judges the level the answer maps to.
    public static func make(
        provider: OIDCProviderConfiguration,
        metadata: OIDCProviderMetadata,
        returnURL: String,
        now: Date,
        maxAge: Int? = nil,
        acrValues: [String]? = nil,
        acrHint: [String]? = nil,
        prompt: String? = nil,
        loginHint: String? = nil,
        using generator: inout some RandomNumberGenerator
    ) throws -> (url: URL, pending: PendingAuthorization) {
        if let maxAge, maxAge < 0 { throw OIDCError(.invalidConfiguration, "max_age must not be negative") }
        let requestedACR = acrValues ?? provider.requestedACRValues
        for list in [requestedACR, requestedACR == nil ? acrHint : nil] {
            if let list, list.isEmpty || list.contains(where: { $0.isEmpty || $0.contains(" ") }) {
                throw OIDCError(.invalidConfiguration, "acr_values must be non-empty values without spaces")
            }
        }
        // Required values win; a hint is only sent, its answer judged by the level it maps to.
        let sentACR = requestedACR ?? acrHint
        if let prompt, !Set(prompt.split(separator: " ").map(String.init)).isSubset(of: ["none", "login", "consent", "select_account"]) {
            throw OIDCError(.invalidConfiguration, "unknown prompt value")
        }
        let state = OIDCRandom.token(using: &generator)
        let nonce = OIDCRandom.token(using: &generator)
        let pkce = PKCE.generate(using: &generator)

        var parameters: [(String, String)] = [
            ("response_type", "code"),
            ("client_id", provider.clientID),
            ("redirect_uri", provider.redirectURI),
            ("scope", provider.scopes.joined(separator: " ")),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", pkce.challenge),
            ("code_challenge_method", "S256"),
        ]
        if let maxAge { parameters.append(("max_age", String(maxAge))) }
        if let sentACR { parameters.append(("acr_values", sentACR.joined(separator: " "))) }
        if let prompt { parameters.append(("prompt", prompt)) }
        if let loginHint { parameters.append(("login_hint", loginHint)) }

        let endpoint = metadata.authorizationEndpoint.absoluteString
        let query = FormEncoding.encode(parameters, spaceAsPlus: false)
        let separator = endpoint.contains("?") ? (endpoint.hasSuffix("?") || endpoint.hasSuffix("&") ? "" : "&") : "?"
        guard let url = URL(string: endpoint + separator + query) else {
            throw OIDCError(.malformedDiscovery, "authorization endpoint cannot take a query")
        }
        let pending = PendingAuthorization(
            providerID: provider.id, state: state, nonce: nonce, codeVerifier: pkce.verifier,
            redirectURI: provider.redirectURI, returnURL: returnURL, createdAt: now, maxAge: maxAge,
            acrValues: requestedACR)
        return (url, pending)
    }
}

extension OIDCAuthorizationRequest {
    /// The `acr_values` to ask a provider for when a session steps up to `level` there: the provider's mapped `acr`
    /// values (``OIDCProviderConfiguration/acrLevels``) that reach `level`, weakest first (the order of preference),
    /// and only those the provider says it supports (`acr_values_supported`). Nil when the provider publishes no
    /// such list or none of them reaches the level: then its `amr` is what the level is judged from.
    ///
    /// Providers such as Keycloak choose the authentication flow's strength from `acr_values`; without them a
    /// re-authentication runs at the provider's default strength and a step-up above it could never succeed.
    public static func stepUpACRValues(for level: LevelOfAssurance, provider: OIDCProviderConfiguration,
                                       metadata: OIDCProviderMetadata) -> [String]? {
        guard let supported = metadata.acrValuesSupported.map(Set.init) else { return nil }
        let values = provider.acrLevels
            .filter { $0.value >= level && supported.contains($0.key) && !$0.key.isEmpty && !$0.key.contains(" ") }
            .sorted { ($0.value, $0.key) < ($1.value, $1.key) }
            .map(\.key)
        return values.isEmpty ? nil : values
    }
}

/// The browser's return to the redirect URI (OIDC Core §3.1.2.5/6, RFC 9207).
public enum OIDCCallback {
    /// The largest callback query accepted, in bytes.
    public static let maximumQueryBytes = 8 * 1024

    /// Checks the callback query (the part after `?`) against the pending
    /// authorization and returns the authorization code. In order: lifetime
    /// of the pending authorization, well-formed query (no repeated
    /// parameter), `state` (constant time), the provider's `error`, the RFC
    /// 9207 `iss` (required when the provider announces it), the code.
    public static func authorizationCode(
        query: String,
        pending: PendingAuthorization,
        provider: OIDCProviderConfiguration,
        metadata: OIDCProviderMetadata,
        now: Date
    ) throws -> String {
        guard pending.providerID == provider.id else {
            throw OIDCError(.stateMismatch, "the pending sign-in belongs to another provider")
        }
        if pending.isExpired(now: now, lifetime: provider.pendingAuthorizationLifetime) {
            throw OIDCError(.pendingAuthorizationExpired, "the sign-in was started too long ago")
        }
        let parameters = try FormEncoding.decodeUnique(query, limit: maximumQueryBytes)
        guard let state = parameters["state"], ConstantTime.equals(state, pending.state) else {
            throw OIDCError(.stateMismatch, "the callback's state is missing or not this browser's")
        }
        if let issuer = parameters["iss"] {
            guard issuer == metadata.issuer else {
                throw OIDCError(.responseIssuerMismatch, "the callback names another issuer (mix-up attack?)")
            }
        } else if metadata.authorizationResponseIssuerParameterSupported {
            throw OIDCError(.responseIssuerMismatch, "the callback lacks the iss parameter its provider announces")
        }
        if let error = parameters["error"] {
            let description = parameters["error_description"].map { ": " + sanitised($0, limit: 200) } ?? ""
            throw OIDCError(.providerError, sanitised(error, limit: 64) + description)
        }
        guard let code = parameters["code"], !code.isEmpty, code.utf8.count <= 2048 else {
            throw OIDCError(.malformedCallback, "no authorization code")
        }
        return code
    }

    /// Printable ASCII only (RFC 6749 error and description characters), cut to `limit`.
    static func sanitised(_ text: String, limit: Int) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit).map {
            ($0.value >= 0x20 && $0.value <= 0x7E) ? $0 : "?"
        }))
    }
}

/// The token request (OIDC Core §3.1.3.1, RFC 7636 §4.5) as plain data for
/// the network half to send.
public struct OIDCTokenRequest: Sendable, Hashable {
    public let url: URL
    /// Header name → value (Content-Type, Accept, and Authorization for client_secret_basic).
    public let headers: [String: String]
    /// application/x-www-form-urlencoded body.
    public let body: String

    public static func make(code: String, pending: PendingAuthorization, provider: OIDCProviderConfiguration,
                            metadata: OIDCProviderMetadata) throws -> OIDCTokenRequest {
        var parameters: [(String, String)] = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirectURI),
            ("code_verifier", pending.codeVerifier),
        ]
        var headers = ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"]
        switch try metadata.clientAuthentication(for: provider) {
        case .clientSecretBasic:
            // RFC 6749 §2.3.1: both parts form-encoded before base64.
            let pair = FormEncoding.encodeComponent(provider.clientID, spaceAsPlus: true) + ":"
                + FormEncoding.encodeComponent(provider.clientSecret ?? "", spaceAsPlus: true)
            headers["Authorization"] = "Basic " + Data(pair.utf8).base64EncodedString()
        case .clientSecretPost:
            parameters.append(("client_id", provider.clientID))
            parameters.append(("client_secret", provider.clientSecret ?? ""))
        case .none:
            parameters.append(("client_id", provider.clientID))
        }
        return OIDCTokenRequest(url: metadata.tokenEndpoint, headers: headers,
                                body: FormEncoding.encode(parameters, spaceAsPlus: true))
    }
}

/// application/x-www-form-urlencoded and RFC 3986 query encoding.
enum FormEncoding {
    /// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
    static func isUnreserved(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
    }

    static func encodeComponent(_ text: String, spaceAsPlus: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else if byte == 0x20 && spaceAsPlus {
                out.append("+")
            } else {
                out.append("%")
                out.append(String(format: "%02X", byte))
            }
        }
        return out
    }

    static func encode(_ parameters: [(String, String)], spaceAsPlus: Bool) -> String {
        parameters.map { encodeComponent($0.0, spaceAsPlus: spaceAsPlus) + "=" + encodeComponent($0.1, spaceAsPlus: spaceAsPlus) }
            .joined(separator: "&")
    }

    /// Decodes a query; refuses oversize input, bad percent escapes, invalid
    /// UTF-8 and any parameter given twice (RFC 6749 §3.1).
    static func decodeUnique(_ query: String, limit: Int) throws -> [String: String] {
        guard query.utf8.count <= limit else {
            throw OIDCError(.malformedCallback, "callback query over \(limit) bytes")
        }
        var result: [String: String] = [:]
        var trimmed = Substring(query)
        if trimmed.hasPrefix("?") { trimmed = trimmed.dropFirst() }
        for pair in trimmed.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decodeComponent(parts[0]),
                  let value = parts.count == 2 ? decodeComponent(parts[1]) : ""
            else { throw OIDCError(.malformedCallback, "malformed percent-encoding") }
            guard result[name] == nil else { throw OIDCError(.malformedCallback, "parameter \(CallbackName(name)) repeated") }
            result[name] = value
        }
        return result
    }

    private struct CallbackName: CustomStringConvertible {
        let name: String
        init(_ name: String) { self.name = name }
        var description: String { OIDCCallback.sanitised(name, limit: 40) }
    }

    static func decodeComponent(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case 0x2B: bytes.append(0x20)
            case 0x25:
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
