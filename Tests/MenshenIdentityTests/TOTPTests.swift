import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("TOTP")
struct TOTPTests {
    static let seed20 = Array("12345678901234567890".utf8)
    static let vectors: [(time: Double, sha1: String, sha256: String, sha512: String)] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ]

    static func seed(_ length: Int) -> [UInt8] {
        (0..<length).map { seed20[$0 % seed20.count] }
    }

    @Test("The RFC 6238 Appendix B table is reproduced for all three algorithms at every time")
    func rfc6238Vectors() throws {
        for vector in Self.vectors {
            for (algorithm, seedLength, expected) in [(OTPAlgorithm.sha1, 20, vector.sha1), (.sha256, 32, vector.sha256), (.sha512, 64, vector.sha512)] {
                let secret = try TOTPSecret(bytes: Self.seed(seedLength))
                let verifier = TOTPVerifier(configuration: try TOTPConfiguration(algorithm: algorithm, digits: 8))
                let date = Date(timeIntervalSince1970: vector.time)
                #expect(verifier.code(secret: secret, at: date) == expected, "\(algorithm) at \(vector.time)")
                #expect(verifier.verify(code: expected, secret: secret, at: date, lastAcceptedCounter: nil).isAccepted)
            }
        }
    }

    @Test("The RFC 4226 HOTP vectors are reproduced")
    func rfc4226Vectors() throws {
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
        let secret = try TOTPSecret(bytes: Self.seed20)
        for (counter, code) in expected.enumerated() {
            #expect(HOTP.code(secret: secret, counter: UInt64(counter)) == code)
        }
    }

    @Test("A code is accepted one step early or late but not two")
    func driftWindow() throws {
        let secret = try TOTPSecret(bytes: Self.seed20)
        let verifier = TOTPVerifier()
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let counter = UInt64(1_700_000_000 / 30)
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = HOTP.code(secret: secret, counter: UInt64(Int64(counter) + Int64(offset)))
            let result = verifier.verify(code: code, secret: secret, at: now, lastAcceptedCounter: nil)
            #expect(result.isAccepted == accepted, "offset \(offset)")
            if accepted { #expect(result == .accepted(counter: UInt64(Int64(counter) + Int64(offset)))) }
        }
    }

    @Test("A code is never accepted twice, and older steps are replays too")
    func replayIsRefused() throws {
        let secret = try TOTPSecret(bytes: Self.seed20)
        let verifier = TOTPVerifier()
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let code = try #require(verifier.code(secret: secret, at: now))
        guard case .accepted(let counter) = verifier.verify(code: code, secret: secret, at: now, lastAcceptedCounter: nil) else {
            Issue.record("first use refused"); return
        }
        #expect(verifier.verify(code: code, secret: secret, at: now, lastAcceptedCounter: counter) == .rejected(.replay))
        let previous = HOTP.code(secret: secret, counter: counter - 1)
        #expect(verifier.verify(code: previous, secret: secret, at: now, lastAcceptedCounter: counter) == .rejected(.replay))
        let next = HOTP.code(secret: secret, counter: counter + 1)
        #expect(verifier.verify(code: next, secret: secret, at: now, lastAcceptedCounter: counter) == .accepted(counter: counter + 1))
    }

    @Test("Malformed and wrong codes are rejected as values")
    func malformedCodes() throws {
        let secret = try TOTPSecret(bytes: Self.seed20)
        let verifier = TOTPVerifier()
        let now = Date(timeIntervalSince1970: 59)
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "-12345"] {
            #expect(verifier.verify(code: bad, secret: secret, at: now, lastAcceptedCounter: nil) == .rejected(.malformed))
        }
        #expect(verifier.verify(code: "000000", secret: secret, at: now, lastAcceptedCounter: nil) == .rejected(.invalidCode))
        #expect(verifier.verify(code: "287082", secret: secret, at: Date(timeIntervalSince1970: -100), lastAcceptedCounter: nil) == .rejected(.invalidTime))
    }

    @Test("Base32 round-trips and matches RFC 4648 test vectors")
    func base32() {
        let vectors = [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
            #expect(Base32.decode(encoded.lowercased()) == Array(plain.utf8))
        }
        #expect(Base32.decode("MZXW6===") == Array("foo".utf8))
        #expect(Base32.decode("MZXW6YQ1") == nil)
        #expect(Base32.decode("M") == nil)
        #expect(Base32.decode("MZ=X") == nil)
        #expect(Base32.decode("MY") == Array("f".utf8))
        #expect(Base32.decode("MZ") == nil)  // non-zero trailing bits
                var generator = SeededGenerator(seed: 7)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Base32.decode(Base32.encode(bytes)) == bytes)
        }
    }

    @Test("Generated secrets are at least 160 bits and short imports are refused")
    func secrets() throws {
        var generator = SeededGenerator(seed: 1)
        #expect(TOTPSecret.generate(using: &generator).bytes.count == 20)
        #expect(TOTPSecret.generate(byteCount: 8, using: &generator).bytes.count == 20)
        #expect(TOTPSecret.generate(byteCount: 32, using: &generator).base32.count == 52)
        #expect(throws: OTPError(.secretTooShort)) { try TOTPSecret(base32: "MZXW6YTBOI") }
        #expect(throws: OTPError(.invalidBase32)) { try TOTPSecret(base32: "not base32!") }
        #expect(throws: OTPError(.unsupportedDigits)) { try TOTPConfiguration(digits: 7) }
    }

    @Test("The otpauth URI percent-encodes a Traditional Chinese issuer and the account")
    func otpauthURI() throws {
        let secret = try TOTPSecret(base32: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        let example = try OTPAuthURI(issuer: "Example Bank", accountName: "alice@example.com", secret: secret,
                                     configuration: try TOTPConfiguration(algorithm: .sha256, digits: 8, period: 60))
        #expect(example.uri == "otpauth://totp/Example%20Bank:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Bank&algorithm=SHA256&digits=8&period=60")
        let zh = try OTPAuthURI(issuer: "臺灣銀行", accountName: "王小明", secret: secret)
        #expect(zh.uri == "otpauth://totp/%E8%87%BA%E7%81%A3%E9%8A%80%E8%A1%8C:%E7%8E%8B%E5%B0%8F%E6%98%8E?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=%E8%87%BA%E7%81%A3%E9%8A%80%E8%A1%8C&algorithm=SHA1&digits=6&period=30")
        #expect(throws: OTPError(.invalidLabel)) { try OTPAuthURI(issuer: "A:B", accountName: "x", secret: secret) }
    }

    @Test("Codes agree with pyotp for 200 random secrets, times, algorithms and digit counts")
    func pyotpCrossCheck() throws {
        if let message = Oracle.missing(Oracle.pythonHas("pyotp"), "python3 with pyotp") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        var generator = SeededGenerator(seed: 6238)
        var lines: [String] = []
        var expected: [String] = []
        for _ in 0..<200 {
            let secret = TOTPSecret.generate(byteCount: Int.random(in: 20...64, using: &generator), using: &generator)
            let algorithm = OTPAlgorithm.allCases.randomElement(using: &generator) ?? .sha1
            let digits = Bool.random(using: &generator) ? 6 : 8
            let time = UInt64.random(in: 0...4_102_444_800, using: &generator)
            let verifier = TOTPVerifier(configuration: try TOTPConfiguration(algorithm: algorithm, digits: digits))
            expected.append(verifier.code(secret: secret, at: Date(timeIntervalSince1970: Double(time))) ?? "")
            lines.append("\(secret.base32) \(algorithm.rawValue.lowercased()) \(digits) \(time)")
        }
        let script = """
        import sys, hashlib, pyotp
        for line in sys.stdin.read().split("\\n"):
            if not line: continue
            s, a, d, t = line.split(" ")
            print(pyotp.TOTP(s, digits=int(d), digest=getattr(hashlib, a), interval=30).at(int(t)))
        """
        let output = try Oracle.run(["python3", "-c", script], stdin: lines.joined(separator: "\n") + "\n")
        #expect(output.status == 0, "\(output.stderr)")
        let got = output.stdout.split(separator: "\n").map(String.init)
        #expect(got.count == 200)
        #expect(got == expected)
    }
}
