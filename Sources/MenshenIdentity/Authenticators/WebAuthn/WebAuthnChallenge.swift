/// A one-time WebAuthn challenge. The caller stores it with the pending
/// ceremony, sends `base64URL` to the browser, and deletes it on first use.
public struct WebAuthnChallenge: Sendable, Hashable {
    public let bytes: [UInt8]

    /// 32 random bytes from the injected generator (use a CSPRNG in production).
    public static func generate(using generator: inout some RandomNumberGenerator) -> WebAuthnChallenge {
        WebAuthnChallenge(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// base64url without padding, as `PublicKeyCredentialCreationOptionsJSON` expects.
    public var base64URL: String { Base64URL.encode(bytes) }
}
