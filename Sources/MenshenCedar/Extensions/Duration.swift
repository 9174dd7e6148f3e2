/// Cedar `duration` extension value: a signed number of milliseconds.
///
/// Syntax: `-?(Nd)?(Nh)?(Nm)?(Ns)?(Nms)?` with at least one component, units in that
/// order; overflow of Int64 milliseconds is an error.
public struct CedarDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public init?(parsing s: String) {
        let b = Array(s.utf8)
        if b.isEmpty { return nil }
        var i = 0
        // `b` is non-empty (checked above); loops below check `< b.count` before indexing.
        let negative = b[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        if i == b.count { return nil }
        // units in order: d, h, m, s, ms
        let units: [(String, Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
        var amounts: [UInt64?] = [nil, nil, nil, nil, nil]
        var nextUnit = 0
        while i < b.count {
            var j = i
            while j < b.count, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
            if j == i { return nil }
            var n: UInt64 = 0
            var overflow = false
            for k in i..<j {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(b[k] - 0x30))
                if o1 || o2 { overflow = true }
                n = a
            }
            // unit
            var unitText = ""
            var k = j
            while k < b.count, !(b[k] >= 0x30 && b[k] <= 0x39) { k += 1 }
            unitText = String(decoding: b[j..<k], as: UTF8.self)
            guard let u = units.firstIndex(where: { $0.0 == unitText }), u >= nextUnit else { return nil }
            if overflow { return nil }
            amounts[u] = n
            nextUnit = u + 1
            i = k
        }
        // accumulate: ms, s, m, h, d (as the reference does), with overflow checks
        // The millisecond amount may be 2^63 when negative (Int64.min), as in Cedar.
        var total: Int64 = 0
        if let ms = amounts[4] {
            if negative {
                guard ms <= UInt64(Int64.max) + 1 else { return nil }
                total = ms == UInt64(Int64.max) + 1 ? Int64.min : -Int64(ms)
            } else {
                guard ms <= UInt64(Int64.max) else { return nil }
                total = Int64(ms)
            }
        }
        for u in [3, 2, 1, 0] {
            guard let un = amounts[u] else { continue }
            guard un <= UInt64(Int64.max) else { return nil }
            let n = Int64(un)
            let (p, o1) = n.multipliedReportingOverflow(by: units[u].1)
            if o1 { return nil }
            let (t, o2) = negative ? total.subtractingReportingOverflow(p) : total.addingReportingOverflow(p)
            if o2 { return nil }
            total = t
        }
        milliseconds = total
    }

    public static func < (a: CedarDuration, b: CedarDuration) -> Bool { a.milliseconds < b.milliseconds }

    public var toMilliseconds: Int64 { milliseconds }
    public var toSeconds: Int64 { milliseconds / 1000 }
    public var toMinutes: Int64 { toSeconds / 60 }
    public var toHours: Int64 { toMinutes / 60 }
    public var toDays: Int64 { toHours / 24 }

    public var description: String {
        if milliseconds == 0 { return "0ms" }
        var out = milliseconds < 0 ? "-" : ""
        var m = milliseconds.magnitude
        let parts: [(UInt64, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")]
        for (size, unit) in parts where m >= size {
            out += "\(m / size)\(unit)"
            m %= size
        }
        return out
    }
}
