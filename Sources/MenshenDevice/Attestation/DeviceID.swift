import MenshenCore

/// An enrolled device. Syntax as every operator-supplied name in Menshen
/// (``IdentifierSyntax``: 1–128 characters from `[A-Za-z0-9._@-]`, starting
/// with a letter or digit), so it can sit in a URN and a file name unescaped.
/// (The type itself is `MenshenCore.DeviceID`, shared with the store; `init(_:)`
/// is unchecked, for values from our own store — untrusted text goes through
/// ``validated(_:)``.)
extension DeviceID {
    /// The id when `text` is a well-formed device id, nil otherwise.
    public static func validated(_ text: String) -> DeviceID? {
        IdentifierSyntax.isValid(text) ? DeviceID(text) : nil
    }

    /// The certificate SAN that names this device: `urn:menshen:device:<id>`.
    public var uri: String { Self.uriPrefix + rawValue }

    static let uriPrefix = "urn:menshen:device:"

    /// The device named by a SAN URI, nil when it is not one of ours.
    static func fromURI(_ uri: String) -> DeviceID? {
        guard uri.hasPrefix(uriPrefix) else { return nil }
        return validated(String(uri.dropFirst(uriPrefix.count)))
    }
}
