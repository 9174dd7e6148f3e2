import Foundation

/// `clientDataJSON` parsed as JSON (WebAuthn §5.8.1). Browsers may add keys
/// (e.g. `other_keys_can_be_added_here`), so this is never a byte comparison.
public struct CollectedClientData: Sendable, Hashable, Decodable {
    public static let maxBytes = 16 * 1024

    public let type: String
    /// base64url of the challenge.
    public let challenge: String
    public let origin: String
    public let crossOrigin: Bool?
    public let topOrigin: String?

    public init(json: [UInt8]) throws(WebAuthnError) {
        guard json.count <= Self.maxBytes else { throw WebAuthnError(.malformedClientData, "larger than \(Self.maxBytes) bytes") }
        do {
            self = try JSONDecoder().decode(CollectedClientData.self, from: Data(json))
        } catch {
            throw WebAuthnError(.malformedClientData, "not the expected JSON object")
        }
    }

    /// Checks type, challenge, origin, crossOrigin and topOrigin.
    func check(type expectedType: String, challenge expected: [UInt8], configuration: RelyingPartyConfiguration) throws(WebAuthnError) {
        guard type == expectedType else { throw WebAuthnError(.wrongType, "\(type)") }
        guard let received = Base64URL.decode(challenge), !expected.isEmpty, ConstantTime.equals(received, expected) else {
            throw WebAuthnError(.challengeMismatch)
        }
        guard configuration.allowedOrigins.contains(origin) else { throw WebAuthnError(.wrongOrigin, origin) }
        if crossOrigin == true && !configuration.allowCrossOrigin {
            throw WebAuthnError(.crossOriginNotAllowed)
        }
        if let topOrigin {
            guard configuration.allowCrossOrigin, configuration.allowedTopOrigins.contains(topOrigin) else {
                throw WebAuthnError(.wrongTopOrigin, topOrigin)
            }
        }
    }
}
