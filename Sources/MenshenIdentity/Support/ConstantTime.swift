/// Constant-time comparison for secrets (OTP codes, hashes). The running time
/// depends only on the lengths, never on where the first difference is.
enum ConstantTime {
    static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        // Compare over the longer length so a short input does not shorten the loop.
        var ia = a.makeIterator()
        var ib = b.makeIterator()
        for _ in 0..<max(a.count, b.count) {
            let x = ia.next() ?? 0
            let y = ib.next() ?? 0
            difference |= x ^ y
        }
        return difference == 0
    }

    static func equals(_ a: String, _ b: String) -> Bool {
        equals(Array(a.utf8), Array(b.utf8))
    }
}
