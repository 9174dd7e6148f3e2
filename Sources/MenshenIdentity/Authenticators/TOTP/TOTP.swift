import Crypto
import Foundation

/// The HMAC hash of an OTP (RFC 6238 §1.2).
public enum OTPAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha1 = "SHA1"
    case sha256 = "SHA256"
    case sha512 = "SHA512"
}

/// A shared TOTP secret. Random, at least 160 bits when generated here
/// (RFC 4226 §4 recommends 160); decoding refuses fewer than 128 bits.
public struct TOTPSecret: Sendable, Hashable {
    /// The minimum accepted when importing a secret (RFC 4226 R6: 128 bits).
    public static let minimumByteCount = 16

    public let bytes: [UInt8]

    /// Wraps raw secret bytes; throws `secretTooShort` below 128 bits.
    public init(bytes: [UInt8]) throws(OTPError) {
        guard bytes.count >= Self.minimumByteCount else {
            throw OTPError(.secretTooShort, "\(bytes.count * 8) bits")
        }
        self.bytes = bytes
    }

    /// Decodes an RFC 4648 base32 secret.
    public init(base32: String) throws(OTPError) {
        guard let decoded = Base32.decode(base32) else { throw OTPError(.invalidBase32) }
        try self.init(bytes: decoded)
    }

    /// Draws a new secret from the injected generator (use a CSPRNG such as
    /// `SystemRandomNumberGenerator` in production). 20 bytes by default.
    public static func generate(byteCount: Int = 20, using generator: inout some RandomNumberGenerator) -> TOTPSecret {
        let count = max(byteCount, 20)
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        // Invariant: count >= 20 > minimumByteCount, so this cannot fail.
        return TOTPSecret(uncheckedBytes: bytes)
    }

    private init(uncheckedBytes: [UInt8]) { self.bytes = uncheckedBytes }

    /// Base32 without padding, as placed in the `secret` parameter.
    public var base32: String { Base32.encode(bytes) }
}

/// TOTP parameters (RFC 6238): algorithm, 6 or 8 digits, period in seconds.
public struct TOTPConfiguration: Sendable, Hashable {
    public let algorithm: OTPAlgorithm
    public let digits: Int
    public let period: Int
    /// Steps of clock drift accepted on either side (RFC 6238 §5.2; at most 1).
    public let allowedDrift: Int

    public init(algorithm: OTPAlgorithm = .sha1, digits: Int = 6, period: Int = 30, allowedDrift: Int = 1) throws(OTPError) {
        guard digits == 6 || digits == 8 else { throw OTPError(.unsupportedDigits, "\(digits)") }
        guard (15...120).contains(period) else { throw OTPError(.unsupportedPeriod, "\(period)") }
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
        self.allowedDrift = min(max(allowedDrift, 0), 1)
    }

    /// SHA-1, 6 digits, 30 s, ±1 step: what every authenticator app supports.
    public static let standard = TOTPConfiguration(uncheckedAlgorithm: .sha1, digits: 6, period: 30, allowedDrift: 1)

    private init(uncheckedAlgorithm: OTPAlgorithm, digits: Int, period: Int, allowedDrift: Int) {
        self.algorithm = uncheckedAlgorithm
        self.digits = digits
        self.period = period
        self.allowedDrift = allowedDrift
    }

    /// The time-step counter T = floor((t − T0) / X), T0 = 0. Nil before 1970.
    public func counter(at date: Date) -> UInt64? {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, seconds >= 0, seconds < 1e15 else { return nil }
        return UInt64(seconds.rounded(.down)) / UInt64(period)
    }
}

/// HOTP (RFC 4226) code computation.
public enum HOTP {
    public static func code(secret: TOTPSecret, counter: UInt64, algorithm: OTPAlgorithm = .sha1, digits: Int = 6) -> String {
        var message = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { message[index] = UInt8((counter >> UInt64(56 - 8 * index)) & 0xFF) }
        let key = SymmetricKey(data: secret.bytes)
        let mac: [UInt8]
        switch algorithm {
        case .sha1: mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
        case .sha256: mac = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha512: mac = Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
        // Dynamic truncation (RFC 4226 §5.3). Invariant: mac is 20, 32 or 64 bytes
        // and offset ≤ 15, so offset + 3 is in range.
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16)
            | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        let modulus: UInt32 = digits == 8 ? 100_000_000 : 1_000_000
        let value = String(binary % modulus)
        return String(repeating: "0", count: max(0, digits - value.count)) + value
    }
}

/// The outcome of checking a TOTP code. Rejections are values, not errors.
public enum TOTPVerification: Sendable, Hashable {
    /// The code matched time step `counter`. Store it as the new
    /// `lastAcceptedCounter`; later codes for this or earlier steps are replays.
    case accepted(counter: UInt64)
    case rejected(TOTPRejection)

    public var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }
}

public enum TOTPRejection: String, Sendable, Hashable {
    /// Not digits, or the wrong number of digits.
    case malformed
    /// No code in the drift window matched.
    case invalidCode
    /// The code matched a time step at or before the last accepted one.
    case replay
    /// The date is outside the representable range.
    case invalidTime
}

/// Verifies TOTP codes. Pure: time and the replay state come in as arguments.
public struct TOTPVerifier: Sendable {
    public let configuration: TOTPConfiguration

    public init(configuration: TOTPConfiguration = .standard) {
        self.configuration = configuration
    }

    /// The code for `date` (for enrolment confirmation screens and tests).
    public func code(secret: TOTPSecret, at date: Date) -> String? {
        guard let counter = configuration.counter(at: date) else { return nil }
        return HOTP.code(secret: secret, counter: counter, algorithm: configuration.algorithm, digits: configuration.digits)
    }

    /// Checks `code` against the steps `T−drift … T+drift` at `date`.
    ///
    /// - Parameter lastAcceptedCounter: the counter returned by the previous
    ///   accepted verification for this secret (nil if none). A code whose
    ///   step is ≤ it is refused as `.replay`, so a code is never accepted twice.
    /// - Returns: `.accepted(counter:)` with the step to store, or a rejection.
    ///   Every candidate step is compared in constant time, whatever matches.
    public func verify(code: String, secret: TOTPSecret, at date: Date, lastAcceptedCounter: UInt64?) -> TOTPVerification {
        let trimmed = code.filter { $0 != " " }
        guard trimmed.utf8.count == configuration.digits, trimmed.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .rejected(.malformed)
        }
        guard let current = configuration.counter(at: date) else { return .rejected(.invalidTime) }
        let drift = UInt64(configuration.allowedDrift)
        let lowest = current >= drift ? current - drift : 0
        var matched: UInt64?
        for candidate in lowest...(current + drift) {
            let expected = HOTP.code(secret: secret, counter: candidate, algorithm: configuration.algorithm, digits: configuration.digits)
            // Prefer the newest match; keep looping so timing does not reveal which step matched.
            if ConstantTime.equals(expected, trimmed) { matched = candidate }
        }
        guard let counter = matched else { return .rejected(.invalidCode) }
        if let last = lastAcceptedCounter, counter <= last { return .rejected(.replay) }
        return .accepted(counter: counter)
    }
}
