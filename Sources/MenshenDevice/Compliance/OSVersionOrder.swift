/// How an operating system's version strings are ordered, chosen by OS name:
/// Debian and Ubuntu (case-insensitive) use the Debian order
/// (``DebianVersion``: `12.5` < `12.10`, `22.04` < `24.04`); every other OS
/// uses dotted numbers (`10.0.19045.3930`, `14.4.1`): each component compared
/// as a number of any length, missing components are 0, and a version with
/// anything but digits and dots is unreadable.
public enum OSVersionOrder: Sendable, Hashable {
    case debian
    case dottedNumeric

    public init(osName: String) {
        switch osName.lowercased() {
        case "debian", "ubuntu": self = .debian
        default: self = .dottedNumeric
        }
    }

    /// -1, 0 or 1; nil when either version is unreadable in this order.
    public func compare(_ a: String, _ b: String) -> Int? {
        switch self {
        case .debian:
            guard let x = try? DebianVersion(a), let y = try? DebianVersion(b) else { return nil }
            return DebianVersion.compare(x, y)
        case .dottedNumeric:
            guard let x = Self.components(a), let y = Self.components(b) else { return nil }
            for i in 0..<max(x.count, y.count) {
                let p = i < x.count ? x[i] : [], q = i < y.count ? y[i] : []
                if p.count != q.count { return p.count < q.count ? -1 : 1 }
                if p != q { return p.lexicographicallyPrecedes(q) ? -1 : 1 }
            }
            return 0
        }
    }

    /// Whether `version` is readable in this order.
    public func isReadable(_ version: String) -> Bool { compare(version, version) != nil }

    /// Digits of each component without leading zeros (so equal length means
    /// comparable digit by digit); nil unless `1.2.3`-shaped, at most 64 bytes.
    private static func components(_ text: String) -> [[UInt8]]? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var out: [[UInt8]] = []
        for part in text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            out.append(Array(part.drop { $0 == UInt8(ascii: "0") }))
        }
        return out
    }
}
