import Foundation

/// URL-safe base64 without padding (RFC 4648 §5), as WebAuthn uses for
/// challenges and credential ids.
enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url; tolerates padding (some clients send it), refuses
    /// characters outside the URL-safe alphabet. Returns nil when malformed.
    static func decode(_ text: String) -> [UInt8]? {
        var core = Substring(text)
        while core.hasSuffix("=") { core = core.dropLast() }
        guard core.utf8.allSatisfy({ byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        var standard = core.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if standard.count % 4 == 1 { return nil }
        while standard.count % 4 != 0 { standard.append("=") }
        guard let data = Data(base64Encoded: standard) else { return nil }
        return Array(data)
    }
}
