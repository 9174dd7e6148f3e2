/// A Debian package version, `[epoch:]upstream_version[-debian_revision]`,
/// ordered as Debian Policy §5.6.12 describes (the order `dpkg` uses).
///
/// Syntax (refused with a ``DebianVersionError`` otherwise):
/// - `epoch`: decimal digits, at most 2³¹−1 (dpkg's limit); absent means 0.
/// - `upstream_version`: starts with a digit; letters, digits and `. + ~ -`
///   (a hyphen only when a revision follows, since the last hyphen starts it).
/// - `debian_revision`: letters, digits and `. + ~`; absent is the same as `0`.
/// - ASCII only, at most ``maxLength`` bytes, no white space.
///
/// This is stricter than `dpkg --compare-versions`, which only warns about a
/// non-digit start or an invalid character and compares anyway, and which
/// still accepts colons inside the upstream version (Policy no longer does).
/// Advisory data and device reports are untrusted, so we refuse instead.
///
/// Order: epochs compare as numbers; then upstream, then revision, each with
/// the Policy algorithm: the string is taken as alternating non-digit and
/// digit runs. Non-digit runs compare character by character where `~` sorts
/// before everything (even the end of the run), the end of the run comes
/// next, then letters (by ASCII value), then every other character (by ASCII
/// value). Digit runs compare as numbers (an empty run is 0); they are
/// compared by their digits, so a run of any length works without overflow.
///
/// Equality is the order's equality: `1.0` == `1.00`, `1.0-0` == `1.0`,
/// `0:1.0` == `1.0`. ``description`` keeps the text as given.
public struct DebianVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Longest version accepted, in bytes. Real versions are well under 100.
    public static let maxLength = 256

    /// The epoch (0 when absent).
    public let epoch: Int
    /// The upstream version.
    public let upstreamVersion: String
    /// The Debian revision, empty when absent.
    public let revision: String
    /// The text as given.
    public let description: String

    // UTF-8 bytes of the parts, kept for comparison.
    private let upstreamBytes: [UInt8]
    private let revisionBytes: [UInt8]

    /// Parses `text`; throws for anything that is not a Debian version.
    public init(_ text: String) throws(DebianVersionError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw DebianVersionError(.empty) }
        guard bytes.count <= Self.maxLength else {
            throw DebianVersionError(.tooLong, "\(bytes.count) bytes, at most \(Self.maxLength)")
        }
        guard bytes.allSatisfy({ $0 < 0x80 }) else { throw DebianVersionError(.nonASCII, Self.quoted(text)) }

        var rest = bytes[...]
        var epoch = 0
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            let digits = bytes[..<colon]
            guard !digits.isEmpty else { throw DebianVersionError(.emptyEpoch, Self.quoted(text)) }
            guard digits.allSatisfy(Self.isDigit) else { throw DebianVersionError(.epochNotNumber, Self.quoted(text)) }
            let significant = digits.drop(while: { $0 == UInt8(ascii: "0") })
            // Ten digits or fewer cannot overflow an Int64; longer runs are too big anyway.
            guard significant.count <= 10 else { throw DebianVersionError(.epochTooBig, Self.quoted(text)) }
            let value = significant.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
            guard value <= Int64(Int32.max) else { throw DebianVersionError(.epochTooBig, Self.quoted(text)) }
            epoch = Int(value)
            rest = bytes[(colon + 1)...]
        }

        var upstream = rest
        var revision: ArraySlice<UInt8> = []
        if let hyphen = rest.lastIndex(of: UInt8(ascii: "-")) {
            upstream = rest[..<hyphen]
            revision = rest[(hyphen + 1)...]
            guard !revision.isEmpty else { throw DebianVersionError(.emptyRevision, Self.quoted(text)) }
        }
        guard let first = upstream.first else { throw DebianVersionError(.emptyUpstreamVersion, Self.quoted(text)) }
        guard Self.isDigit(first) else { throw DebianVersionError(.upstreamMustStartWithDigit, Self.quoted(text)) }
        if let bad = upstream.first(where: { !(Self.isAlphanumeric($0) || Self.upstreamPunctuation.contains($0)) }) {
            throw DebianVersionError(.invalidCharacterInUpstreamVersion, "\(Self.quoted(text)): \(Self.quoted(String(decoding: [bad], as: UTF8.self)))")
        }
        if let bad = revision.first(where: { !(Self.isAlphanumeric($0) || Self.revisionPunctuation.contains($0)) }) {
            throw DebianVersionError(.invalidCharacterInRevision, "\(Self.quoted(text)): \(Self.quoted(String(decoding: [bad], as: UTF8.self)))")
        }

        self.epoch = epoch
        self.upstreamBytes = Array(upstream)
        self.revisionBytes = Array(revision)
        self.upstreamVersion = String(decoding: upstream, as: UTF8.self)
        self.revision = String(decoding: revision, as: UTF8.self)
        self.description = text
    }

    /// Whether `text` parses as a Debian version.
    public static func isValid(_ text: String) -> Bool { (try? DebianVersion(text)) != nil }

    /// -1, 0 or 1 as `lhs` sorts before, equal to or after `rhs`.
    public static func compare(_ lhs: DebianVersion, _ rhs: DebianVersion) -> Int {
        if lhs.epoch != rhs.epoch { return lhs.epoch < rhs.epoch ? -1 : 1 }
        let upstream = compareParts(lhs.upstreamBytes, rhs.upstreamBytes)
        if upstream != 0 { return upstream }
        return compareParts(lhs.revisionBytes, rhs.revisionBytes)
    }

    public static func < (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) < 0 }
    public static func == (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) == 0 }

    public func hash(into hasher: inout Hasher) {
        // Hash the canonical form, so that versions the order calls equal hash equally.
        hasher.combine(epoch)
        hasher.combine(Self.canonical(upstreamBytes))
        hasher.combine(Self.canonical(revisionBytes))
    }

    // MARK: - The Policy algorithm

    /// Compares two upstream versions or two revisions.
    static func compareParts(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0, j = 0
        while i < a.count || j < b.count {
            // Non-digit runs.
            let aEnd = runEnd(a, from: i, digits: false), bEnd = runEnd(b, from: j, digits: false)
            var k = 0
            while i + k < aEnd || j + k < bEnd {
                let wa = weight(i + k < aEnd ? a[i + k] : nil), wb = weight(j + k < bEnd ? b[j + k] : nil)
                if wa != wb { return wa < wb ? -1 : 1 }
                k += 1
            }
            i = aEnd
            j = bEnd
            // Digit runs, as numbers: drop leading zeros, then the longer is larger,
            // else the first differing digit decides.
            let aDigitsEnd = runEnd(a, from: i, digits: true), bDigitsEnd = runEnd(b, from: j, digits: true)
            while i < aDigitsEnd, a[i] == UInt8(ascii: "0") { i += 1 }
            while j < bDigitsEnd, b[j] == UInt8(ascii: "0") { j += 1 }
            let aLength = aDigitsEnd - i, bLength = bDigitsEnd - j
            if aLength != bLength { return aLength < bLength ? -1 : 1 }
            for offset in 0..<aLength where a[i + offset] != b[j + offset] {
                return a[i + offset] < b[j + offset] ? -1 : 1
            }
            i = aDigitsEnd
            j = bDigitsEnd
        }
        return 0
    }

    /// Sort weight of one character of a non-digit run; `nil` is the end of the run.
    private static func weight(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if c == UInt8(ascii: "~") { return -1 }
        if isLetter(c) { return Int(c) }
        return Int(c) + 256
    }

    private static func runEnd(_ s: [UInt8], from start: Int, digits: Bool) -> Int {
        var end = start
        while end < s.count, isDigit(s[end]) == digits { end += 1 }
        return end
    }

    /// A byte string that two parts share exactly when ``compareParts`` calls them equal:
    /// each (non-digit run, number without leading zeros) pair, with trailing
    /// pairs that equal the implicit ("", 0) removed.
    static func canonical(_ s: [UInt8]) -> [UInt8] {
        var pairs: [[UInt8]] = []
        var i = 0
        while i < s.count {
            let textEnd = runEnd(s, from: i, digits: false)
            var pair = Array(s[i..<textEnd])
            pair.append(0)
            var d = textEnd
            let digitsEnd = runEnd(s, from: d, digits: true)
            while d < digitsEnd, s[d] == UInt8(ascii: "0") { d += 1 }
            pair += s[d..<digitsEnd]
            pair.append(1)
            pairs.append(pair)
            i = digitsEnd
        }
        while let last = pairs.last, last == [0, 1] { pairs.removeLast() }
        return pairs.flatMap { $0 }
    }

    // MARK: - Characters

    private static let upstreamPunctuation: Set<UInt8> = [UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "~"), UInt8(ascii: "-")]
    private static let revisionPunctuation: Set<UInt8> = [UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "~")]

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    static func isLetter(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
    }
    static func isAlphanumeric(_ c: UInt8) -> Bool { isDigit(c) || isLetter(c) }

    /// The text in quotes, cut to 80 characters for error messages.
    static func quoted(_ text: String) -> String {
        let cut = text.count > 80 ? String(text.prefix(80)) + "…" : text
        return "\"\(cut)\""
    }
}
