extension CEFRecord {
    /// Longest CEF text ``parse(_:)`` reads, in bytes, and most extension fields.
    public static let maxParseBytes = 256 * 1024
    public static let maxParseExtensions = 256

    /// Reads CEF text back (`CEF:0|…|…|…|…|…|sev|k=v …`), undoing the escapes ``text(maxBytes:)`` writes.
    /// Written for checking exports (and, later, reading CEF from other sources); returns nil for anything
    /// that is not CEF within ``maxParseBytes`` and ``maxParseExtensions``, never traps.
    public static func parse(_ text: String) -> CEFRecord? {
        guard text.utf8.count <= maxParseBytes, text.hasPrefix("CEF:") else { return nil }
        var scalars = Array(text.unicodeScalars.dropFirst(4))
        // Header: seven `|`-terminated fields (version and six more); `\|` and `\\` are escapes.
        var fields: [String] = []
        var current = ""
        var i = 0
        while i < scalars.count, fields.count < 7 {
            let c = scalars[i]
            if c == "\\", i + 1 < scalars.count, scalars[i + 1] == "|" || scalars[i + 1] == "\\" {
                current.unicodeScalars.append(scalars[i + 1]); i += 2; continue
            }
            if c == "|" { fields.append(current); current = ""; i += 1; continue }
            current.unicodeScalars.append(c); i += 1
        }
        guard fields.count == 7, let severity = Int(fields[6]), (0...10).contains(severity) else { return nil }
        scalars = Array(scalars[i...])
        // Extension: `key=value` pairs; a value runs until the space before the next `key=` (an unescaped `=`).
        var pairs: [(key: String, value: String)] = []
        var keyStart = 0
        var j = 0
        var pendingKey: String?
        var valueStart = 0
        func isKeyChar(_ s: Unicode.Scalar) -> Bool {
            (s.value >= 0x30 && s.value <= 0x39) || (s.value >= 0x41 && s.value <= 0x5A) || (s.value >= 0x61 && s.value <= 0x7A) || s == "_"
        }
        func unescape(_ part: ArraySlice<Unicode.Scalar>) -> String {
            var out = ""
            var k = part.startIndex
            while k < part.endIndex {
                let c = part[k]
                if c == "\\", k + 1 < part.endIndex {
                    switch part[k + 1] {
                    case "\\": out += "\\"; k += 2; continue
                    case "=": out += "="; k += 2; continue
                    case "n": out += "\n"; k += 2; continue
                    case "r": out += "\r"; k += 2; continue
                    default: break
                    }
                }
                out.unicodeScalars.append(c); k += 1
            }
            return out
        }
        while j < scalars.count {
            let c = scalars[j]
            if c == "\\" { j += 2; continue }
            if c == "=" {
                // The key is the run of key characters right before this `=`, after a space or the start.
                var k = j
                while k > keyStart, isKeyChar(scalars[k - 1]) { k -= 1 }
                guard k < j, k == 0 || scalars[k - 1] == " " else { j += 1; continue }
                if let key = pendingKey {
                    let end = k > valueStart ? k - 1 : k    // drop the separating space
                    pairs.append((key, unescape(scalars[valueStart..<max(valueStart, end)])))
                    guard pairs.count <= maxParseExtensions else { return nil }
                } else if k != 0 { return nil }             // text before the first key
                pendingKey = String(String.UnicodeScalarView(scalars[k..<j]))
                valueStart = j + 1
                keyStart = j + 1
            }
            j += 1
        }
        if let key = pendingKey { pairs.append((key, unescape(scalars[valueStart..<scalars.count]))) }
        else if !scalars.isEmpty { return nil }
        guard pairs.count <= maxParseExtensions else { return nil }
        return CEFRecord(vendor: fields[1], product: fields[2], version: fields[3], classID: fields[4], name: fields[5],
                         severity: severity, extensions: pairs)
    }
}
