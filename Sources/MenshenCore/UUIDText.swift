import Foundation

/// UUID text without Foundation's `uuidString` (which formats through `sprintf`) and without a
/// `lowercased()` copy: the audit pipeline writes and reads the text of every event's id, several
/// times per event. The output is the RFC 9562 §4 form, byte for byte what `uuidString` (upper case)
/// or `uuidString.lowercased()` give.
public enum UUIDText {
    static let upperDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
    static let lowerDigits = SecretHash.hexDigits

    /// `uuid.uuidString` (upper case).
    public static func upper(_ uuid: UUID) -> String { text(uuid, digits: upperDigits) }

    /// `uuid.uuidString.lowercased()`.
    public static func lower(_ uuid: UUID) -> String { text(uuid, digits: lowerDigits) }

    /// Parses the 36-character `8-4-4-4-12` form in either case (what `UUID(uuidString:)` accepts),
    /// nil for anything else.
    public static func parse(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { u -> UUID? in
            guard u.count == 36 else { return nil }
            var b = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                     UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
            let ok = withUnsafeMutableBytes(of: &b) { out -> Bool in
                var i = 0
                for k in 0..<16 {
                    if k == 4 || k == 6 || k == 8 || k == 10 {
                        guard u[i] == UInt8(ascii: "-") else { return false }
                        i += 1
                    }
                    guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return false }
                    out[k] = hi << 4 | lo
                    i += 2
                }
                return true
            }
            return ok ? UUID(uuid: b) : nil
        }
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func text(_ uuid: UUID, digits: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: 36) { out in write(uuid, digits: digits, into: out) }
    }

    /// The upper-case text's 36 bytes, lent to `body` without building a `String` (the event chain hashes it).
    public static func withUpperBytes<R>(_ uuid: UUID, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { out in
            let n = write(uuid, digits: upperDigits, into: out)
            return try body(UnsafeBufferPointer(rebasing: out[0..<n]))
        }
    }

    private static func write(_ uuid: UUID, digits: [UInt8], into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        withUnsafeBytes(of: uuid.uuid) { raw in
            var o = 0
            for i in 0..<16 {
                if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                out[o] = digits[Int(raw[i] >> 4)]; out[o + 1] = digits[Int(raw[i] & 0x0F)]
                o += 2
            }
            return o
        }
    }
}

extension RandomSource {
    /// A new identifier for an event written at `time`: a UUID version 7 (RFC 9562 §5.7) — the
    /// first 48 bits are the Unix time in milliseconds, the other 74 bits random.
    ///
    /// Ids that grow with time are appended at the end of the event log's unique index instead
    /// of landing on a random page of it: a batch of appends then rewrites a few index pages,
    /// not one page per event (on SQLite each page changed is written whole to the WAL). The id
    /// only needs to be unique and unguessable enough for de-duplication; it is never a secret,
    /// and the time it carries is the event's own `time`.
    public func eventID(at time: Date) -> UUID {
        var b = bytes(16)
        if b.count < 16 { b += [UInt8](repeating: 0, count: 16 - b.count) }
        // Rounded as the store rounds the event's time (`StoreCoding.millis`), so the two agree.
        let millis = UInt64(max(0, min((time.timeIntervalSince1970 * 1000).rounded(), Double(UInt64(1) << 48 - 1))))
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: millis >> UInt64(8 * (5 - i))) }
        b[6] = (b[6] & 0x0F) | 0x70
        b[8] = (b[8] & 0x3F) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                           b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}
