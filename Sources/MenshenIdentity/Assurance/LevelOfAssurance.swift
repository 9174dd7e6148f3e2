/// ISO/IEC 29115 (ITU-T X.1254) level of assurance.
public enum LevelOfAssurance: Int, Sendable, Hashable, Comparable, CaseIterable, Codable {
    /// Little or no confidence: self-asserted, single factor (password).
    case loa1 = 1
    /// Some confidence: single factor protected against replay, eavesdropping and online guessing.
    case loa2 = 2
    /// High confidence: multi-factor with cryptographic protection.
    case loa3 = 3
    /// Very high confidence: multi-factor with hardware cryptography, MITM-resistant,
    /// in-person proofing and controlled credential issuance.
    case loa4 = 4

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The approximate NIST SP 800-63 authenticator assurance level (standards §7 table).
    public var approximateAAL: AuthenticatorAssuranceLevel {
        switch self {
        case .loa1, .loa2: return .aal1
        case .loa3: return .aal2
        case .loa4: return .aal3
        }
    }
}

/// NIST SP 800-63B authenticator assurance level.
public enum AuthenticatorAssuranceLevel: Int, Sendable, Hashable, Comparable, CaseIterable, Codable {
    case aal1 = 1, aal2 = 2, aal3 = 3
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// RFC 8176 authentication method reference values.
public enum AuthenticationMethodReference: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case face, fpt, geo, hwk, iris, kba, mca, mfa, otp, pin, pwd, rba, retina, sc, sms, swk, tel, user, vbm, wia

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
