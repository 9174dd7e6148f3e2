/// Cedar `decimal` extension value: a fixed-point number with 4 fractional digits,
/// stored as an `Int64` count of 1/10000ths.
///
/// Accepted syntax is `-?[0-9]+\.[0-9]+` with 1 to 4 fractional digits; values outside
/// the Int64 range are errors. Decimals support `lessThan` & co. but not `<`.
public struct CedarDecimal: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value times 10 000.
    public let scaled: Int64
    public init(scaled: Int64) { self.scaled = scaled }

    public init?(parsing s: String) {
        let b = Array(s.utf8)
        var i = 0
        let negative = b.first == UInt8(ascii: "-")
        if negative { i = 1 }
        guard let dot = b.firstIndex(of: UInt8(ascii: ".")), dot > i else { return nil }
        let intDigits = b[i..<dot], fracDigits = b[(dot + 1)...]
        if fracDigits.isEmpty || fracDigits.count > 4 { return nil }
        for d in intDigits where !(d >= 0x30 && d <= 0x39) { return nil }
        for d in fracDigits where !(d >= 0x30 && d <= 0x39) { return nil }
        var intPart: Int64 = 0
        for d in intDigits {
            let (m, o1) = intPart.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(d - 0x30)) : m.addingReportingOverflow(Int64(d - 0x30))
            if o1 || o2 { return nil }
            intPart = a
        }
        var frac: Int64 = 0
        for d in fracDigits { frac = frac * 10 + Int64(d - 0x30) }
        for _ in fracDigits.count..<4 { frac *= 10 }
        let (scaledInt, o3) = intPart.multipliedReportingOverflow(by: 10_000)
        if o3 { return nil }
        let (v, o4) = negative ? scaledInt.subtractingReportingOverflow(frac) : scaledInt.addingReportingOverflow(frac)
        if o4 { return nil }
        scaled = v
    }

    public static func < (a: CedarDecimal, b: CedarDecimal) -> Bool { a.scaled < b.scaled }

    public var description: String {
        let mag = scaled.magnitude
        let fracText = String(mag % 10_000)
        return (scaled < 0 ? "-" : "") + String(mag / 10_000) + "." + String(repeating: "0", count: 4 - fracText.count) + fracText
    }
}
