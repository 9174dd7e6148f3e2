/// Strongly typed identifiers: a `UserID` can never be passed where a
/// `GroupID` is expected. Each is a short, printable string.
public protocol MenshenIdentifier: Hashable, Sendable, Codable, Comparable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    var rawValue: String { get }
    init(_ rawValue: String)
}

extension MenshenIdentifier {
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A user account (internal staff or external: vendor, partner institution).
public struct UserID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }
/// A group of users.
public struct GroupID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }
/// A role, carrying a risk tier.
public struct RoleID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }
/// A protected application (a route of the enforcement point).
public struct ApplicationID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }
/// An enrolled device (a laptop, a phone, a vendor's workstation).
public struct DeviceID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }
/// A named Cedar policy document.
public struct PolicyID: MenshenIdentifier { public let rawValue: String; public init(_ rawValue: String) { self.rawValue = rawValue } }

/// Validation of identifier syntax for operator-supplied names: 1–128
/// characters from `[A-Za-z0-9._@-]`, starting with a letter or digit.
public enum IdentifierSyntax {
    public static func isValid(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 128 else { return false }
        func ok(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
        }
        guard ok(first) else { return false }
        return s.unicodeScalars.allSatisfy { ok($0) || $0 == "." || $0 == "_" || $0 == "@" || $0 == "-" }
    }
}
