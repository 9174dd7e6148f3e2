/// Cedar `datetime` extension value: milliseconds since the Unix epoch (UTC).
///
/// Accepted forms: `YYYY-MM-DD`, `YYYY-MM-DDThh:mm:ssZ`, `YYYY-MM-DDThh:mm:ss.SSSZ`,
/// `YYYY-MM-DDThh:mm:ss(+|-)hhmm`, `YYYY-MM-DDThh:mm:ss.SSS(+|-)hhmm`. Dates must exist
/// (proleptic Gregorian, years 0000–9999), hours < 24, minutes < 60, seconds < 60,
/// offsets with hh < 24 and mm < 60. `+hhmm` means local time ahead of UTC.
public struct CedarDatetime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let epochMilliseconds: Int64
    public init(epochMilliseconds: Int64) { self.epochMilliseconds = epochMilliseconds }

    static let dayMillis: Int64 = 86_400_000

    public init?(parsing s: String) {
        let b = Array(s.utf8)
        // All byte accesses below go through `digits`/`at`, which check bounds first.
        func digits(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= b.count else { return nil }
            var v = 0
            for k in from..<(from + n) {
                guard b[k] >= 0x30 && b[k] <= 0x39 else { return nil }
                v = v * 10 + Int(b[k] - 0x30)
            }
            return v
        }
        func at(_ i: Int, _ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue }
        guard let year = digits(0, 4), at(4, "-"), let month = digits(5, 2), at(7, "-"), let day = digits(8, 2) else { return nil }
        guard month >= 1 && month <= 12, day >= 1, day <= CedarDatetime.daysInMonth(year, month) else { return nil }
        let days = CedarDatetime.daysFromCivil(year, month, day)
        var ms = Int64(days) * CedarDatetime.dayMillis
        if b.count == 10 { epochMilliseconds = ms; return }
        guard at(10, "T"), let hh = digits(11, 2), at(13, ":"), let mm = digits(14, 2), at(16, ":"), let ss = digits(17, 2) else { return nil }
        var i = 19
        var millis = 0
        if at(i, ".") {
            guard let v = digits(i + 1, 3) else { return nil }
            millis = v; i += 4
        }
        var offsetSeconds = 0
        if at(i, "Z") {
            i += 1
        } else if at(i, "+") || at(i, "-") {
            let positive = at(i, "+")
            guard let oh = digits(i + 1, 2), let om = digits(i + 3, 2) else { return nil }
            i += 5
            guard i == b.count else { return nil }
            guard oh < 24 && om < 60 else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (positive ? 1 : -1)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        guard hh < 24 && mm < 60 && ss < 60 else { return nil }
        ms += Int64(hh * 3600 + mm * 60 + ss) * 1000 + Int64(millis)
        ms -= Int64(offsetSeconds) * 1000
        epochMilliseconds = ms
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return isLeap(y) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public static func < (a: CedarDatetime, b: CedarDatetime) -> Bool { a.epochMilliseconds < b.epochMilliseconds }

    /// `offset`: adds a duration; nil on overflow.
    public func offset(by d: CedarDuration) -> CedarDatetime? {
        let (v, o) = epochMilliseconds.addingReportingOverflow(d.milliseconds)
        return o ? nil : CedarDatetime(epochMilliseconds: v)
    }
    /// `durationSince`: self − other; nil on overflow.
    public func durationSince(_ other: CedarDatetime) -> CedarDuration? {
        let (v, o) = epochMilliseconds.subtractingReportingOverflow(other.epochMilliseconds)
        return o ? nil : CedarDuration(milliseconds: v)
    }
    /// `toDate`: truncates to midnight UTC (towards negative infinity); nil on overflow.
    public func toDate() -> CedarDatetime? {
        var r = epochMilliseconds % CedarDatetime.dayMillis
        if r < 0 { r += CedarDatetime.dayMillis }
        let (v, o) = epochMilliseconds.subtractingReportingOverflow(r)
        return o ? nil : CedarDatetime(epochMilliseconds: v)
    }
    /// `toTime`: the time of day as a duration (always ≥ 0).
    public func toTime() -> CedarDuration {
        var r = epochMilliseconds % CedarDatetime.dayMillis
        if r < 0 { r += CedarDatetime.dayMillis }
        return CedarDuration(milliseconds: r)
    }

    public var description: String {
        let days = Int(epochMilliseconds >= 0 ? epochMilliseconds / CedarDatetime.dayMillis : (epochMilliseconds - CedarDatetime.dayMillis + 1) / CedarDatetime.dayMillis)
        let rem = Int(epochMilliseconds - Int64(days) * CedarDatetime.dayMillis)
        let (y, m, d) = CedarDatetime.civilFromDays(days)
        func p(_ v: Int, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
        let h = rem / 3_600_000, mi = rem / 60_000 % 60, s = rem / 1000 % 60, ms = rem % 1000
        return "\(p(y, 4))-\(p(m, 2))-\(p(d, 2))T\(p(h, 2)):\(p(mi, 2)):\(p(s, 2)).\(p(ms, 3))Z"
    }
}
