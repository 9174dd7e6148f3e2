import Foundation

/// A successful token endpoint response (OIDC Core §3.1.3.3). The access and
/// refresh tokens are kept only so the caller can check `at_hash` or call the
/// provider; Menshen's own session never depends on them.
public struct OIDCTokenResponse: Sendable, Hashable {
    /// The largest token response accepted, in bytes.
    public static let maximumBytes = 256 * 1024

    public let idToken: String
    public let accessToken: String
    public let tokenType: String
    public let expiresIn: Int?
    public let scope: String?

    private struct Success: Decodable {
        let access_token: String?
        let token_type: String?
        let id_token: String?
        let expires_in: Int?
        let scope: String?
    }

    private struct Failure: Decodable {
        let error: String
        let error_description: String?
    }

    /// Parses the body the token endpoint answered with `status`. An OAuth
    /// error answer becomes `.tokenEndpointError` with its error code.
    public static func parse(status: Int, body: some Collection<UInt8>) throws -> OIDCTokenResponse {
        guard body.count <= maximumBytes else {
            throw OIDCError(.documentTooLarge, "token response of \(body.count) bytes (limit \(maximumBytes))")
        }
        let data = Data(body)
        guard status == 200 else {
            if let failure = try? JSONDecoder().decode(Failure.self, from: data) {
                let description = failure.error_description.map { ": " + OIDCCallback.sanitised($0, limit: 200) } ?? ""
                throw OIDCError(.tokenEndpointError, OIDCCallback.sanitised(failure.error, limit: 64) + description)
            }
            throw OIDCError(.unexpectedHTTPStatus, "token endpoint answered HTTP \(status)")
        }
        let success: Success
        do {
            success = try JSONDecoder().decode(Success.self, from: data)
        } catch {
            throw OIDCError(.malformedTokenResponse, "not a JSON object of the expected shape")
        }
        guard let accessToken = success.access_token, !accessToken.isEmpty else {
            throw OIDCError(.malformedTokenResponse, "access_token missing")
        }
        guard let tokenType = success.token_type, tokenType.lowercased() == "bearer" else {
            throw OIDCError(.unsupportedTokenType, "token_type is not Bearer")
        }
        guard let idToken = success.id_token, !idToken.isEmpty else {
            throw OIDCError(.missingIDToken, "the token response has no id_token (was the openid scope granted?)")
        }
        return OIDCTokenResponse(idToken: idToken, accessToken: accessToken, tokenType: tokenType,
                                 expiresIn: success.expires_in, scope: success.scope)
    }

    public init(idToken: String, accessToken: String, tokenType: String, expiresIn: Int?, scope: String?) {
        self.idToken = idToken
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.scope = scope
    }
}
