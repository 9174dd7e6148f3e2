import AsyncHTTPClient
import Foundation
import Logging
import MenshenCore
import MenshenIdentity

/// An OpenID Connect relying party for several providers at once.
///
/// The web layer calls `beginSignIn` (redirect the browser to the returned
/// URL, store the `PendingAuthorization` server-side), then on the callback
/// `completeSignIn` with the stored pending authorization (deleted first:
/// single use) and the callback's query string. Times are passed in so the
/// caller's clock decides expiry, cache lifetimes and the JWKS refresh limit.
public actor OIDCRelyingParty {
    public struct Configuration: Sendable {
        /// How long a fetched discovery document is used before it is fetched
        /// again, when its response has no Cache-Control max-age (which is
        /// honoured within 1 minute to 24 hours).
        public var discoveryLifetime: TimeInterval = 3600
        /// The same for the key set.
        public var jwksLifetime: TimeInterval = 3600
        /// The shortest time between two key-set fetches forced by an unknown `kid`
        /// (a token naming random kids must not turn us into a fetch amplifier).
        public var jwksMinimumRefreshInterval: TimeInterval = 30
        /// When a refetch fails, a cached document up to this old is still used.
        public var staleDocumentLimit: TimeInterval = 24 * 3600
        /// Each HTTP exchange (connect, send, receive the whole body) must finish within this.
        public var requestTimeout: TimeInterval = 10
        public var maximumDiscoveryBytes = OIDCProviderMetadata.maximumDocumentBytes
        public var maximumJWKSBytes = JSONWebKeySet.maximumBytes
        public var maximumTokenResponseBytes = OIDCTokenResponse.maximumBytes

        public init() {}
    }

    private struct Cached<Value: Sendable>: Sendable {
        let value: Value
        let fetchedAt: Date
        /// From the response's Cache-Control, bounded (`OIDCCacheLifetime`).
        let lifetime: TimeInterval

        func isFresh(at now: Date) -> Bool {
            now >= fetchedAt && now.timeIntervalSince(fetchedAt) < lifetime
        }
    }

    private let providersByID: [String: OIDCProviderConfiguration]
    public nonisolated let providers: [OIDCProviderConfiguration]
    private let configuration: Configuration
    private let httpClient: HTTPClient
    private let ownsHTTPClient: Bool
    private let random: any RandomSource
    private let logger: Logger

    private var metadataCache: [String: Cached<OIDCProviderMetadata>] = [:]
    private var jwksCache: [String: Cached<JSONWebKeySet>] = [:]
    private var lastForcedJWKSFetch: [String: Date] = [:]
    private var metadataInFlight: [String: Task<(OIDCProviderMetadata, TimeInterval), any Error>] = [:]
    private var jwksInFlight: [String: Task<(JSONWebKeySet, TimeInterval), any Error>] = [:]
    private var isShutDown = false

    /// - Parameters:
    ///   - providers: validated here; duplicate ids are refused.
    ///   - httpClient: a shared client (not shut down by `shutdown()`); nil
    ///     creates one with redirects disallowed, owned and shut down here.
    ///   - random: the source of `state`, `nonce` and PKCE verifiers (the
    ///     system CSPRNG in production).
    public init(providers: [OIDCProviderConfiguration], configuration: Configuration = Configuration(),
                httpClient: HTTPClient? = nil, random: any RandomSource = SystemRandomSource(),
                logger: Logger = Logger(label: "menshen.federation")) throws {
        var byID: [String: OIDCProviderConfiguration] = [:]
        for provider in providers {
            try provider.validate()
            guard byID[provider.id] == nil else {
                throw OIDCError(.invalidConfiguration, "provider id \(provider.id) used twice")
            }
            byID[provider.id] = provider
        }
        self.providersByID = byID
        self.providers = providers
        self.configuration = configuration
        if let httpClient {
            self.httpClient = httpClient
            self.ownsHTTPClient = false
        } else {
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.redirectConfiguration = .disallow
            clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(max(1, configuration.requestTimeout))))
            clientConfiguration.decompression = .disabled
            self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            self.ownsHTTPClient = true
        }
        self.random = random
        self.logger = logger
    }

    /// Starts a sign-in at provider `idp`: the URL to redirect the browser to,
    /// and the pending authorization to store server-side until the callback.
    /// `returnURL` must already be checked against the configured applications.
    public func beginSignIn(idp: String, returnURL: String, now: Date, maxAge: Int? = nil,
                            acrValues: [String]? = nil, prompt: String? = nil, loginHint: String? = nil)
        async throws -> (authorizationURL: URL, pending: PendingAuthorization)
    {
        let provider = try provider(idp)
        let metadata = try await metadata(for: provider, now: now)
        var generator = RandomSourceGenerator(source: random)
        let request = try OIDCAuthorizationRequest.make(
            provider: provider, metadata: metadata, returnURL: returnURL, now: now, maxAge: maxAge,
            acrValues: acrValues, prompt: prompt, loginHint: loginHint, using: &generator)
        return (request.url, request.pending)
    }

    /// Starts a step-up at provider `idp` for a session that came from it: the user signs in there again
    /// (`prompt=login`, `max_age=0`), asked for the `acr` values that reach `level` when the provider lists them
    /// (``OIDCAuthorizationRequest/stepUpACRValues(for:provider:metadata:)``; sent, not required — the level the
    /// answer maps to is what counts).
    public func beginStepUp(idp: String, level: LevelOfAssurance, returnURL: String, now: Date)
        async throws -> (authorizationURL: URL, pending: PendingAuthorization)
    {
        let provider = try provider(idp)
        let metadata = try await metadata(for: provider, now: now)
        var generator = RandomSourceGenerator(source: random)
        let request = try OIDCAuthorizationRequest.make(
            provider: provider, metadata: metadata, returnURL: returnURL, now: now, maxAge: 0,
            acrHint: OIDCAuthorizationRequest.stepUpACRValues(for: level, provider: provider, metadata: metadata),
            prompt: "login", using: &generator)
        return (request.url, request.pending)
    }

    /// Completes a sign-in: checks the callback query (the part after `?`)
    /// against `pending`, exchanges the code (PKCE verifier, client
    /// authentication as configured or discovered), validates the id_token
    /// (refreshing the JWKS once if its `kid` is unknown and the last forced
    /// refresh is older than `jwksMinimumRefreshInterval`) and returns the identity.
    public func completeSignIn(pending: PendingAuthorization, callbackQuery: String, now: Date) async throws
        -> FederatedIdentity
    {
        let provider = try provider(pending.providerID)
        let metadata = try await metadata(for: provider, now: now)
        let code = try OIDCCallback.authorizationCode(
            query: callbackQuery, pending: pending, provider: provider, metadata: metadata, now: now)
        let tokens = try await exchangeCode(code, pending: pending, now: now)
        return try await validateIDToken(tokens.idToken, pending: pending, accessToken: tokens.accessToken, now: now)
    }

    /// The token request alone (part of `completeSignIn`; public for tests and diagnostics).
    public func exchangeCode(_ code: String, pending: PendingAuthorization, now: Date) async throws -> OIDCTokenResponse {
        let provider = try provider(pending.providerID)
        let metadata = try await metadata(for: provider, now: now)
        let tokenRequest = try OIDCTokenRequest.make(code: code, pending: pending, provider: provider, metadata: metadata)
        var request = HTTPClientRequest(url: tokenRequest.url.absoluteString)
        request.method = .POST
        for (name, value) in tokenRequest.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(Array(tokenRequest.body.utf8))
        let (status, body, _) = try await send(request, limit: configuration.maximumTokenResponseBytes, what: "token response")
        return try OIDCTokenResponse.parse(status: status, body: body)
    }

    /// The id_token checks alone (part of `completeSignIn`), with the JWKS
    /// refresh on an unknown `kid`.
    public func validateIDToken(_ idToken: String, pending: PendingAuthorization, accessToken: String?, now: Date)
        async throws -> FederatedIdentity
    {
        let provider = try provider(pending.providerID)
        let metadata = try await metadata(for: provider, now: now)
        let validator = IDTokenValidator(provider: provider)
        let expectations = IDTokenValidator.Expectations(pending: pending, accessToken: accessToken)
        let keys = try await jwks(for: provider, metadata: metadata, now: now, forced: false)
        do {
            return try await validator.validate(idToken, keys: keys, expectations: expectations, now: now)
        } catch let error as OIDCError where error.code == .unknownKeyID {
            if let last = lastForcedJWKSFetch[provider.id], now.timeIntervalSince(last) < configuration.jwksMinimumRefreshInterval {
                logger.notice("id_token names an unknown key; key set refreshed recently, not again",
                              metadata: ["provider": "\(provider.id)"])
                throw error
            }
            logger.info("id_token names an unknown key; refreshing the key set", metadata: ["provider": "\(provider.id)"])
            let refreshed = try await jwks(for: provider, metadata: metadata, now: now, forced: true)
            return try await validator.validate(idToken, keys: refreshed, expectations: expectations, now: now)
        }
    }

    /// The provider's discovery document, from cache or fetched (public so the
    /// web layer can, e.g., check providers at start-up or find `end_session_endpoint`).
    public func metadata(forProvider idp: String, now: Date) async throws -> OIDCProviderMetadata {
        try await metadata(for: provider(idp), now: now)
    }

    /// Shuts the HTTP client down if this relying party created it.
    public func shutdown() async throws {
        guard !isShutDown else { return }
        isShutDown = true
        metadataInFlight.values.forEach { $0.cancel() }
        jwksInFlight.values.forEach { $0.cancel() }
        if ownsHTTPClient { try await httpClient.shutdown() }
    }

    // MARK: - Documents

    private func provider(_ id: String) throws -> OIDCProviderConfiguration {
        guard let provider = providersByID[id] else { throw OIDCError(.unknownProvider, "no provider \(id.prefix(64))") }
        return provider
    }

    private func metadata(for provider: OIDCProviderConfiguration, now: Date) async throws -> OIDCProviderMetadata {
        let cached = metadataCache[provider.id]
        if let cached, cached.isFresh(at: now) {
            return cached.value
        }
        if let task = metadataInFlight[provider.id] { return try await task.value.0 }
        let limit = configuration.maximumDiscoveryBytes
        let defaultLifetime = configuration.discoveryLifetime
        let task = Task { () async throws -> (OIDCProviderMetadata, TimeInterval) in
            let (body, cacheControl) = try await self.fetchDocument(provider.discoveryURL, limit: limit,
                                                                    what: "discovery document")
            return (try OIDCProviderMetadata.parse(body, for: provider),
                    OIDCCacheLifetime.seconds(cacheControl: cacheControl, default: defaultLifetime))
        }
        metadataInFlight[provider.id] = task
        defer { metadataInFlight[provider.id] = nil }
        do {
            let (metadata, lifetime) = try await task.value
            metadataCache[provider.id] = Cached(value: metadata, fetchedAt: now, lifetime: lifetime)
            return metadata
        } catch {
            if let cached, abs(now.timeIntervalSince(cached.fetchedAt)) < configuration.staleDocumentLimit {
                logger.warning("discovery refetch failed; using the cached document",
                               metadata: ["provider": "\(provider.id)", "error": "\(error)"])
                return cached.value
            }
            throw error
        }
    }

    private func jwks(for provider: OIDCProviderConfiguration, metadata: OIDCProviderMetadata, now: Date, forced: Bool)
        async throws -> JSONWebKeySet
    {
        let cached = jwksCache[provider.id]
        if !forced, let cached, cached.isFresh(at: now) {
            return cached.value
        }
        if forced { lastForcedJWKSFetch[provider.id] = now }
        if let task = jwksInFlight[provider.id] { return try await task.value.0 }
        let limit = configuration.maximumJWKSBytes
        let url = metadata.jwksURI.absoluteString
        let defaultLifetime = configuration.jwksLifetime
        let task = Task { () async throws -> (JSONWebKeySet, TimeInterval) in
            let (body, cacheControl) = try await self.fetchDocument(url, limit: limit, what: "JWKS")
            return (try JSONWebKeySet.parse(body), OIDCCacheLifetime.seconds(cacheControl: cacheControl, default: defaultLifetime))
        }
        jwksInFlight[provider.id] = task
        defer { jwksInFlight[provider.id] = nil }
        do {
            let (keys, lifetime) = try await task.value
            jwksCache[provider.id] = Cached(value: keys, fetchedAt: now, lifetime: lifetime)
            logger.debug("key set fetched", metadata: ["provider": "\(provider.id)", "kids": "\(keys.keyIDs)"])
            return keys
        } catch {
            if !forced, let cached, abs(now.timeIntervalSince(cached.fetchedAt)) < configuration.staleDocumentLimit {
                logger.warning("JWKS refetch failed; using the cached key set",
                               metadata: ["provider": "\(provider.id)", "error": "\(error)"])
                return cached.value
            }
            throw error
        }
    }

    // MARK: - HTTP

    /// GETs a JSON document; returns its body and its Cache-Control header.
    private func fetchDocument(_ url: String, limit: Int, what: String) async throws -> ([UInt8], String?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let (status, body, cacheControl) = try await send(request, limit: limit, what: what)
        guard status == 200 else { throw OIDCError(.unexpectedHTTPStatus, "\(what) answered HTTP \(status)") }
        return (body, cacheControl)
    }

    /// Sends one request and reads at most `limit` body bytes; redirects are
    /// not followed (the client is configured so), the whole exchange has a deadline.
    private func send(_ request: HTTPClientRequest, limit: Int, what: String) async throws -> (Int, [UInt8], String?) {
        guard !isShutDown else { throw OIDCError(.network, "the relying party is shut down") }
        let timeout = configuration.requestTimeout
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            if let declared = response.headers.first(name: "Content-Length").flatMap(Int.init), declared > limit {
                throw OIDCError(.documentTooLarge, "\(what) declares \(declared) bytes (limit \(limit))")
            }
            var bytes: [UInt8] = []
            for try await chunk in response.body {
                guard bytes.count + chunk.readableBytes <= limit else {
                    throw OIDCError(.documentTooLarge, "\(what) over \(limit) bytes")
                }
                bytes.append(contentsOf: chunk.readableBytesView)
            }
            return (Int(response.status.code), bytes, response.headers.first(name: "Cache-Control"))
        } catch let error as OIDCError {
            throw error
        } catch {
            throw OIDCError(.network, "\(what): \(String(describing: error).prefix(200))")
        }
    }
}

/// Adapts `MenshenCore.RandomSource` to `RandomNumberGenerator`.
struct RandomSourceGenerator: RandomNumberGenerator {
    let source: any RandomSource

    mutating func next() -> UInt64 {
        let bytes = source.bytes(8)
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
