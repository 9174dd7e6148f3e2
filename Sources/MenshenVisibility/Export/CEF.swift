/// ArcSight Common Event Format text: `CEF:0|Vendor|Product|Version|Class ID|Name|Severity|key=value …`.
///
/// Written by hand (no dependency writes CEF). Header fields escape `\` and
/// `|`; extension values escape `\`, `=`, CR and LF (as `\r`, `\n`); other
/// control characters become a space in both, so no field can start a new
/// line or a new key. Values keep non-ASCII text as UTF-8 and are cut to a
/// byte limit on a character boundary before escaping.
public struct CEFRecord: Sendable, Equatable {
    public var vendor: String
    public var product: String
    public var version: String
    public var classID: String
    public var name: String
    /// 0–10.
    public var severity: Int
    /// Extension keys in output order. Keys are CEF key names (ASCII letters and digits).
    public var extensions: [(key: String, value: String)]

    public init(vendor: String, product: String, version: String, classID: String, name: String, severity: Int,
                extensions: [(key: String, value: String)]) {
        self.vendor = vendor; self.product = product; self.version = version; self.classID = classID
        self.name = name; self.severity = severity; self.extensions = extensions
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.vendor == r.vendor && l.product == r.product && l.version == r.version && l.classID == r.classID && l.name == r.name
            && l.severity == r.severity && l.extensions.map(\.key) == r.extensions.map(\.key)
            && l.extensions.map(\.value) == r.extensions.map(\.value)
    }

    /// The header up to and including the `|` before the extension.
    public var header: String {
        "CEF:0|\(Self.escapeHeader(vendor))|\(Self.escapeHeader(product))|\(Self.escapeHeader(version))|"
            + "\(Self.escapeHeader(classID))|\(Self.escapeHeader(name))|\(min(max(severity, 0), 10))|"
    }

    /// The whole text, with at most `maxBytes` bytes: extensions that would not fit are left out (in order; later, smaller ones may still fit).
    public func text(maxBytes: Int = Int.max) -> String {
        var out = header
        var used = out.utf8.count
        var first = true
        for (key, value) in extensions where Self.isKey(key) {
            let pair = (first ? "" : " ") + key + "=" + Self.escapeExtension(value)
            let n = pair.utf8.count
            if used + n > maxBytes { continue }
            out += pair; used += n; first = false
        }
        return out
    }

    /// A CEF key: 1–64 ASCII letters and digits.
    static func isKey(_ k: String) -> Bool {
        !k.isEmpty && k.utf8.count <= 64 && k.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }
    }

    public static func escapeHeader(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "|": out += "\\|"
            case _ where c.value < 0x20 || c.value == 0x7F: out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    public static func escapeExtension(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "=": out += "\\="
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case _ where c.value < 0x20 || c.value == 0x7F: out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `s` with every control character (line breaks included) replaced by a space, as header fields are written.
    public static func flatten(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars { if c.value < 0x20 || c.value == 0x7F { out += " " } else { out.unicodeScalars.append(c) } }
        return out
    }

    /// The longest prefix of `s` of at most `maxBytes` UTF-8 bytes that ends on a character boundary.
    public static func cut(_ s: String, maxBytes: Int) -> String {
        if s.utf8.count <= maxBytes { return s }
        var out = ""
        var used = 0
        for c in s {
            let n = c.utf8.count
            if used + n > maxBytes { break }
            out.append(c); used += n
        }
        return out
    }
}
