import Foundation

/// NIST SP 800-63B §3.1.1.2 password rules: length only, no composition
/// rules, NFKC normalisation, a blocklist, and no user name inside.
public struct PasswordPolicy: Sendable, Hashable {
    /// Minimum length when the password is one factor of MFA (SP 800-63B-4: 8).
    public static let minimumLengthWithMFA = 8
    /// Minimum length when the password is the only factor (SP 800-63B-4: 15).
    public static let minimumLengthSingleFactor = 15

    /// Minimum length in Unicode code points, after NFKC.
    public var minimumLength: Int
    /// Maximum length in code points (NIST: at least 64 must be allowed).
    public var maximumLength: Int

    public init(minimumLength: Int = PasswordPolicy.minimumLengthWithMFA, maximumLength: Int = 128) {
        self.minimumLength = max(minimumLength, PasswordPolicy.minimumLengthWithMFA)
        self.maximumLength = max(maximumLength, 64)
    }

    /// For accounts where the password is used together with a second factor.
    public static let withMultiFactor = PasswordPolicy()
    /// For accounts where the password is the only factor.
    public static let singleFactor = PasswordPolicy(minimumLength: PasswordPolicy.minimumLengthSingleFactor)

    /// NFKC normalisation applied before length checks and hashing.
    public static func normalize(_ password: String) -> String {
        password.precomposedStringWithCompatibilityMapping
    }

    /// Checks a proposed new password; returns every problem found (empty = acceptable).
    public func problems(password: String, userName: String? = nil, otherContext: [String] = []) -> [PasswordProblem] {
        let normalized = Self.normalize(password)
        let length = normalized.unicodeScalars.count
        var problems: [PasswordProblem] = []
        if length < minimumLength { problems.append(.tooShort(minimum: minimumLength)) }
        if length > maximumLength { problems.append(.tooLong(maximum: maximumLength)) }
        let folded = normalized.lowercased()
        if PasswordBlocklist.contains(folded) { problems.append(.commonPassword) }
        if Set(folded.unicodeScalars).count == 1 && length > 0 { problems.append(.commonPassword) }
        for context in ([userName].compactMap { $0 } + otherContext) {
            let needle = Self.normalize(context).lowercased()
            // Very short names would match too much; 3+ code points is the usual bar.
            if needle.unicodeScalars.count >= 3 && folded.contains(needle) {
                problems.append(.containsUserName)
                break
            }
        }
        var unique: [PasswordProblem] = []
        for problem in problems where !unique.contains(problem) { unique.append(problem) }
        return unique
    }
}

public enum PasswordProblem: Sendable, Hashable {
    case tooShort(minimum: Int)
    case tooLong(maximum: Int)
    /// On the blocklist of common, expected or breached passwords.
    case commonPassword
    /// Contains the user name (or another context word given by the caller).
    case containsUserName
}
