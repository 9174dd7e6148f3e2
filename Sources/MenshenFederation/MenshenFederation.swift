/// # MenshenFederation
///
/// The OpenID Connect relying party's network half (identity principles 1.3
/// and 1.4: external users federated from their own institution's IdP, held
/// to the same assurance scale as internal users). `OIDCRelyingParty` fetches
/// and caches each provider's discovery document and JWKS, starts sign-ins
/// (authorization code + PKCE S256, state, nonce) and completes them (callback
/// checks, code exchange, id_token validation, JWKS refresh on an unknown
/// `kid` so a provider's key rotation needs no restart).
///
/// What is hand-written, and why:
/// - everything protocol-specific: no maintained Swift OpenID Connect
///   relying-party package is available to this project, and the checks are
///   the security boundary, so they are small, explicit and tested against a
///   real provider (tests start Authlib's OP, `scripts/oidc-op/op.py`);
/// - the pure parts (configuration, discovery and JWKS parsing, the
///   authorization URL, callback and token-response parsing, id_token and
///   claim checks, `acr`/`amr` → level of assurance) live in
///   `MenshenIdentity/Federation`; this module only moves bytes.
///
/// What comes from libraries: HTTP (AsyncHTTPClient, with redirects off,
/// timeouts and bounded bodies), JWS signature arithmetic and JWK key import
/// (JWTKit), hashing and randomness (swift-crypto, the system CSPRNG through
/// `MenshenCore.RandomSource`).
public enum MenshenFederation {}
