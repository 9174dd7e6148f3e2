/// Builds `otpauth://totp/…` key URIs for authenticator apps (Google
/// Authenticator key-URI format). Issuer and account are percent-encoded as
/// UTF-8, so Traditional Chinese issuer names survive.
public struct OTPAuthURI: Sendable, Hashable {
    public let issuer: String
    public let accountName: String
    public let secret: TOTPSecret
    public let configuration: TOTPConfiguration

    /// Throws `invalidLabel` when issuer or account is empty or contains ':'
    /// (the label separator, which apps cannot disambiguate).
    public init(issuer: String, accountName: String, secret: TOTPSecret, configuration: TOTPConfiguration = .standard) throws(OTPError) {
        guard !issuer.isEmpty, !accountName.isEmpty, !issuer.contains(":"), !accountName.contains(":") else {
            throw OTPError(.invalidLabel, "issuer and account must be non-empty and contain no ':'")
        }
        self.issuer = issuer
        self.accountName = accountName
        self.secret = secret
        self.configuration = configuration
    }

    /// The URI text. Parameters always include algorithm, digits and period,
    /// so apps do not fall back to defaults silently.
    public var uri: String {
        let label = Self.percentEncode(issuer) + ":" + Self.percentEncode(accountName)
        return "otpauth://totp/\(label)?secret=\(secret.base32)&issuer=\(Self.percentEncode(issuer))"
            + "&algorithm=\(configuration.algorithm.rawValue)&digits=\(configuration.digits)&period=\(configuration.period)"
    }

    /// Percent-encodes everything except RFC 3986 unreserved characters.
    static func percentEncode(_ text: String) -> String {
        let hex: [Character] = Array("0123456789ABCDEF")
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E:
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out.append("%")
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }
}
