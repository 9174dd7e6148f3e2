import Crypto

/// Single-use recovery codes (NIST SP 800-63B "look-up secrets").
///
/// A code is 10 characters from Crockford's base32 alphabet
/// (`0-9 a-z` without i, l, o, u): 10 × 5 = 50 random bits, shown as
/// `xxxxx-xxxxx`. Input is forgiving: case, spaces and hyphens are ignored,
/// `o` reads as `0`, `i`/`l` as `1`.
///
/// Only SHA-256 hashes are stored. A fast hash is enough here (unlike for
/// passwords) because each code carries 50 bits of uniform randomness: an
/// offline attacker with a stolen hash set must still search 2^50 per code,
/// and verification is online-throttled by the caller.
public enum RecoveryCodes {
    static let alphabet: [Character] = Array("0123456789abcdefghjkmnpqrstvwxyz")
    public static let codeLength = 10

    /// Generates `count` codes (10 by default) from the injected generator.
    /// Returns the codes to show once, and the set to store.
    public static func generate(count: Int = 10, using generator: inout some RandomNumberGenerator) -> (codes: [String], stored: RecoveryCodeSet) {
        var codes: [String] = []
        while codes.count < max(1, count) {
            var raw = ""
            for _ in 0..<codeLength {
                // 32 divides 256, so masking the low 5 bits is unbiased.
                let index = Int(UInt8.random(in: .min ... .max, using: &generator) & 0x1F)
                raw.append(alphabet[index])
            }
            let display = String(raw.prefix(5)) + "-" + String(raw.suffix(5))
            if !codes.contains(display) { codes.append(display) }
        }
        return (codes, RecoveryCodeSet(hashes: codes.compactMap { hash(of: $0) }))
    }

    /// The canonical form of user input, or nil when it cannot be a code.
    static func canonical(_ input: String) -> String? {
        var out = ""
        for character in input.lowercased() {
            switch character {
            case " ", "-": continue
            case "o": out.append("0")
            case "i", "l": out.append("1")
            default:
                guard alphabet.contains(character) else { return nil }
                out.append(character)
            }
        }
        return out.count == codeLength ? out : nil
    }

    static func hash(of input: String) -> [UInt8]? {
        guard let canonical = canonical(input) else { return nil }
        return Array(SHA256.hash(data: Array(canonical.utf8)))
    }
}

/// The stored, hashed recovery codes of one user.
public struct RecoveryCodeSet: Sendable, Hashable, Codable {
    /// SHA-256 of each remaining code's canonical form.
    public let hashes: [[UInt8]]

    public init(hashes: [[UInt8]]) { self.hashes = hashes }

    public var remaining: Int { hashes.count }

    /// Checks `input` against every stored hash (constant time per entry, no
    /// early exit) and, on a match, returns the set without that code.
    public func redeem(_ input: String) -> RecoveryCodeRedemption {
        guard let candidate = RecoveryCodes.hash(of: input) else { return .rejected }
        var matchIndex: Int?
        for (index, stored) in hashes.enumerated() where ConstantTime.equals(stored, candidate) {
            matchIndex = index
        }
        guard let index = matchIndex else { return .rejected }
        var rest = hashes
        rest.remove(at: index)
        return .accepted(remaining: RecoveryCodeSet(hashes: rest))
    }
}

public enum RecoveryCodeRedemption: Sendable, Hashable {
    /// Store `remaining` in place of the old set: the code is consumed.
    case accepted(remaining: RecoveryCodeSet)
    case rejected
}
