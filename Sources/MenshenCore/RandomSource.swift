import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A source of random bytes. Secrets (session ids, tokens) are drawn from an
/// injected `RandomSource` so tests can be deterministic where they need to be.
public protocol RandomSource: Sendable {
    /// Returns `count` random bytes.
    func bytes(_ count: Int) -> [UInt8]
}

/// Cryptographically secure randomness from the operating system: on Linux
/// one `getrandom(2)` call per draw (the gateway draws an event id per
/// request; `SystemRandomNumberGenerator` makes one call per eight bytes),
/// elsewhere, or if that call is unavailable, `SystemRandomNumberGenerator`.
/// Nothing is buffered: every byte comes from the kernel when it is asked for.
public struct SystemRandomSource: RandomSource {
    public init() {}
    public func bytes(_ count: Int) -> [UInt8] {
        let n = max(0, count)
        guard n > 0 else { return [] }
        #if canImport(Glibc)
        let filled = [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
            initialized = Self.kernelFill(buffer) ? n : 0
        }
        if filled.count == n { return filled }
        #endif
        return Self.generatorBytes(n)
    }

    #if canImport(Glibc)
    /// Fills the buffer from the kernel CSPRNG (blocking only before the pool is first seeded); false when
    /// the call is unavailable or fails.
    static func kernelFill(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        guard let getrandom = Self.getrandom else { return false }
        var done = 0
        while done < buffer.count {
            let got = getrandom(base + done, buffer.count - done, 0)
            if got > 0 { done += got; continue }
            if got < 0, errno == EINTR { continue }
            return false
        }
        return true
    }

    private typealias GetRandom = @convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int
    /// glibc's `getrandom` (2.25 and later), looked up once: Swift's Glibc module does not declare it.
    private static let getrandom: GetRandom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getrandom")
        .map { unsafeBitCast($0, to: GetRandom.self) }
    #endif

    /// Eight bytes per draw from `SystemRandomNumberGenerator`.
    static func generatorBytes(_ n: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(n + 7)
        while out.count < n {
            withUnsafeBytes(of: generator.next() as UInt64) { out.append(contentsOf: $0) }
        }
        out.removeLast(out.count - n)
        return out
    }
}

extension RandomSource {
    /// A URL-safe base64 token (no padding) of `byteCount` random bytes.
    public func token(byteCount: Int = 32) -> String {
        Base64URL.encode(bytes(byteCount))
    }

    /// A new random identifier (UUID version 4 layout).
    public func uuid() -> UUID {
        var b = bytes(16)
        if b.count < 16 { b += [UInt8](repeating: 0, count: 16 - b.count) }
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                           b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// URL-safe base64 without padding (RFC 4648 §5). Written here rather than
/// through Foundation's base64 (with character replacement and padding) because
/// session cookies are decoded on every request, and because decoding must be
/// strict: only the URL-safe alphabet, no padding, and unused trailing bits zero,
/// so each byte string has exactly one accepted text.
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Six-bit value of each ASCII byte, 0xFF for bytes outside the alphabet.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (n, c) in alphabet.enumerated() { table[Int(c)] = UInt8(n) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)]); out.append(alphabet[Int(v & 63)])
            i += 3
        }
        switch bytes.count - i {
        case 1:
            let v = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
        case 2:
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)]); out.append(alphabet[Int(v >> 6 & 63)])
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes, returning nil for anything that is not canonical base64url
    /// (a character outside the alphabet, padding, an impossible length, or
    /// non-zero unused bits in the last character).
    public static func decode(_ text: String) -> [UInt8]? {
        if let fast = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return fast }
        return decode(bytes: Array(text.utf8))
    }

    static func decode<C: Collection>(bytes input: C) -> [UInt8]? where C.Element == UInt8, C.Index == Int {
        let count = input.count
        guard count % 4 != 1 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(count * 3 / 4)
        var acc: UInt32 = 0, bits = 0
        for i in input.indices {
            let v = values[Int(input[i])]
            guard v != 0xFF else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        // Left-over bits must be zero, or two texts would decode to the same bytes.
        guard acc == 0 else { return nil }
        return out
    }
}
