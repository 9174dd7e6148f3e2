/// Cedar `ipaddr` extension value: an IPv4 or IPv6 address plus a CIDR prefix length.
///
/// Parsing follows Cedar exactly: at most 43 characters; IPv4 octets are decimal without
/// leading zeros; IPv6 uses 1–4 hex digit groups with at most one `::`; IPv4-embedded IPv6
/// forms are rejected; the prefix is decimal without leading zeros, ≤ 32 (v4, ≤ 2 chars) or
/// ≤ 128 (v6, ≤ 3 chars). A missing prefix means /32 or /128.
/// Equality compares the address as written (not masked) and the prefix.
public struct IPAddr: Sendable, Hashable, CustomStringConvertible {
    /// True for IPv4 (then only the low 32 bits of `low` are used).
    public let isV4: Bool
    /// High 64 bits of an IPv6 address (0 for IPv4).
    public let high: UInt64
    /// Low 64 bits of an IPv6 address, or the IPv4 address.
    public let low: UInt64
    public let prefix: UInt8

    public init?(parsing s: String) {
        let bytes = Array(s.utf8)
        if bytes.count > 43 { return nil }
        let colons = bytes.filter { $0 == UInt8(ascii: ":") }.count
        let dots = bytes.filter { $0 == UInt8(ascii: ".") }.count
        if colons >= 2 && dots >= 2 { return nil }
        var addrPart = bytes[...]
        var prefixPart: ArraySlice<UInt8>? = nil
        if let slash = bytes.firstIndex(of: UInt8(ascii: "/")) {
            addrPart = bytes[..<slash]
            prefixPart = bytes[(slash + 1)...]
        }
        if let v4 = IPAddr.parseV4(addrPart) {
            var p: UInt8 = 32
            if let pp = prefixPart {
                guard let v = IPAddr.parsePrefix(pp, max: 32, maxLen: 2) else { return nil }
                p = v
            }
            isV4 = true; high = 0; low = UInt64(v4); prefix = p
        } else if let (h, l) = IPAddr.parseV6(addrPart) {
            var p: UInt8 = 128
            if let pp = prefixPart {
                guard let v = IPAddr.parsePrefix(pp, max: 128, maxLen: 3) else { return nil }
                p = v
            }
            isV4 = false; high = h; low = l; prefix = p
        } else {
            return nil
        }
    }

    private static func parsePrefix(_ s: ArraySlice<UInt8>, max: Int, maxLen: Int) -> UInt8? {
        if s.isEmpty || s.count > maxLen { return nil }
        if s.count > 1 && s.first == UInt8(ascii: "0") { return nil }
        var v = 0
        for b in s {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            v = v * 10 + Int(b - 0x30)
        }
        return v <= max ? UInt8(v) : nil
    }

    private static func parseV4(_ s: ArraySlice<UInt8>) -> UInt32? {
        let parts = s.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: UInt32 = 0
        for part in parts {
            if part.isEmpty || part.count > 3 { return nil }
            if part.count > 1 && part.first == UInt8(ascii: "0") { return nil }
            var v: UInt32 = 0
            for b in part {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                v = v * 10 + UInt32(b - 0x30)
            }
            if v > 255 { return nil }
            result = (result << 8) | v
        }
        return result
    }

    private static func parseGroups(_ s: ArraySlice<UInt8>) -> [UInt16]? {
        if s.isEmpty { return [] }
        var groups: [UInt16] = []
        for part in s.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
            if part.isEmpty || part.count > 4 { return nil }
            var v: UInt16 = 0
            for b in part {
                let d: UInt16
                switch b {
                case 0x30...0x39: d = UInt16(b - 0x30)
                case 0x61...0x66: d = UInt16(b - 0x61 + 10)
                case 0x41...0x46: d = UInt16(b - 0x41 + 10)
                default: return nil
                }
                v = v << 4 | d
            }
            groups.append(v)
        }
        return groups
    }

    private static func parseV6(_ s: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        var groups: [UInt16]
        // find "::"
        var dbl: Int? = nil
        var i = s.startIndex
        while i + 1 < s.endIndex {
            if s[i] == UInt8(ascii: ":") && s[i + 1] == UInt8(ascii: ":") { dbl = i; break }
            i += 1
        }
        if let d = dbl {
            guard let head = parseGroups(s[s.startIndex..<d]), let tail = parseGroups(s[(d + 2)...]) else { return nil }
            if head.count + tail.count > 7 { return nil }
            groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = parseGroups(s), g.count == 8 else { return nil }
            groups = g
        }
        // `groups` has exactly 8 elements here (checked above), so indices 0..<8 are valid.
        var h: UInt64 = 0, l: UInt64 = 0
        for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
        for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
        return (h, l)
    }

    public var isV6: Bool { !isV4 }

    public var isLoopback: Bool {
        if isV4 { return (low >> 24) == 127 && prefix >= 8 }
        return high == 0 && low == 1 && prefix >= 128
    }

    public var isMulticast: Bool {
        if isV4 { return (low >> 28) == 0xE && prefix >= 4 }
        return (high >> 56) == 0xFF && prefix >= 8
    }

    /// 128-bit network/broadcast helpers as (hi, lo) pairs.
    private func range() -> (netHi: UInt64, netLo: UInt64, bcHi: UInt64, bcLo: UInt64) {
        if isV4 {
            let p = Int(prefix)
            let mask: UInt64 = p == 0 ? 0 : (0xFFFF_FFFF << (32 - p)) & 0xFFFF_FFFF
            let net = low & mask
            let bc = low | (~mask & 0xFFFF_FFFF)
            return (0, net, 0, bc)
        }
        let p = Int(prefix)
        let hiMask: UInt64 = p >= 64 ? UInt64.max : (p == 0 ? 0 : UInt64.max << (64 - p))
        let loMask: UInt64 = p <= 64 ? 0 : (p >= 128 ? UInt64.max : UInt64.max << (128 - p))
        return (high & hiMask, low & loMask, high | ~hiMask, low | ~loMask)
    }

    /// `self.isInRange(other)`: the range of `self` lies inside the range of `other`
    /// (same address family required, otherwise false).
    public func isInRange(_ other: IPAddr) -> Bool {
        guard isV4 == other.isV4 else { return false }
        let a = range(), b = other.range()
        let netOK = (b.netHi, b.netLo) <= (a.netHi, a.netLo)
        let bcOK = (a.bcHi, a.bcLo) <= (b.bcHi, b.bcLo)
        return netOK && bcOK
    }

    public var description: String {
        if isV4 {
            let v = low
            return "\(v >> 24 & 255).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)/\(prefix)"
        }
        var groups: [UInt16] = []
        for k in (0..<4).reversed() { groups.append(UInt16(truncatingIfNeeded: high >> (UInt64(k) * 16))) }
        for k in (0..<4).reversed() { groups.append(UInt16(truncatingIfNeeded: low >> (UInt64(k) * 16))) }
        // RFC 5952: compress the longest run (length ≥ 2) of zero groups.
        var bestStart = -1, bestLen = 0, curStart = -1, curLen = 0
        for (i, g) in groups.enumerated() {
            if g == 0 {
                if curStart < 0 { curStart = i; curLen = 0 }
                curLen += 1
                if curLen > bestLen { bestLen = curLen; bestStart = curStart }
            } else { curStart = -1; curLen = 0 }
        }
        let hex = groups.map { String($0, radix: 16) }
        var text: String
        if bestLen >= 2 {
            let head = hex[0..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLen)...].joined(separator: ":")
            text = head + "::" + tail
        } else {
            text = hex.joined(separator: ":")
        }
        return "\(text)/\(prefix)"
    }
}
