import Foundation
@testable import MenshenCore
import Testing

@Suite("Core vocabulary")
struct CoreTests {
    @Test("base64url round-trips and rejects padding and foreign characters")
    func base64url() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + n) & 0xFF) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(!Base64URL.encode([0xFB, 0xFF]).contains("+"))
        #expect(Base64URL.decode("ab=c") == nil)
        #expect(Base64URL.decode("a b") == nil)
    }

    @Test("base64url agrees with Foundation's base64 (RFC 4648 §5 alphabet, no padding) and accepts one text per byte string")
    func base64urlAgainstFoundation() {
        var generator = SystemRandomNumberGenerator()
        for n in 0..<300 {
            let bytes = (0..<(n % 70)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let reference = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == reference)
            #expect(Base64URL.decode(reference) == bytes)
        }
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("AA") == [0] && Base64URL.decode("AB") == nil, "unused bits must be zero")
        #expect(Base64URL.decode("AAE") == [0, 1] && Base64URL.decode("AAF") == nil)
        #expect(Base64URL.decode("A") == nil && Base64URL.decode("AAAAA") == nil, "no length leaves a single character")
        #expect(Base64URL.decode("+/8") == nil && Base64URL.decode("-_8") == [0xFB, 0xFF], "only the URL-safe alphabet")
        #expect(Base64URL.decode("QUJD\u{00E9}") == nil && Base64URL.decode("QU\nJD") == nil)
    }

    @Test("random tokens are distinct and of the requested strength")
    func tokens() {
        let r = SystemRandomSource()
        let a = r.token(), b = r.token()
        #expect(a != b)
        #expect(Base64URL.decode(a)?.count == 32)
        #expect(r.uuid().uuidString.dropFirst(14).first == "4")
    }

    @Test("system randomness: exactly the bytes asked for, all 256 values seen, from the kernel call and from the fallback")
    func systemRandomBytes() {
        let r = SystemRandomSource()
        for n in [-1, 0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 257, 4096] {
            #expect(r.bytes(n).count == max(0, n))
            #expect(SystemRandomSource.generatorBytes(max(0, n)).count == max(0, n))
        }
        // 64 KiB in one draw (the kernel may return it in parts) and through the fallback: a source stuck on a
        // value, or a buffer left unwritten, misses most byte values.
        for bytes in [r.bytes(65_536), SystemRandomSource.generatorBytes(65_536)] {
            #expect(bytes.count == 65_536)
            #expect(Set(bytes).count == 256)
        }
        #expect(r.bytes(32) != r.bytes(32))
        #if canImport(Glibc)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        #expect(buffer.withUnsafeMutableBufferPointer { SystemRandomSource.kernelFill($0) })
        #expect(buffer.suffix(4096).contains { $0 != 0 })   // the last part was written too
        #endif
    }

    @Test("SHA-256 hex matches the FIPS 180 'abc' vector")
    func sha() {
        #expect(SecretHash.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SecretHash.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SecretHash.sha256Hex("門神 door guardians") == "1f237bcf9b23595afed8031c82d9f8625a3878e560a5a9308c8c2f9629202e04")   // Python hashlib
        #expect(SecretHash.sha256Hex(String("x門神 door guardians".dropFirst())) == "1f237bcf9b23595afed8031c82d9f8625a3878e560a5a9308c8c2f9629202e04")
    }

    @Test("a fixed clock stays put until advanced")
    func clock() {
        let c = FixedClock(Date(timeIntervalSince1970: 100))
        #expect(c.now() == Date(timeIntervalSince1970: 100))
        c.advance(by: 5)
        #expect(c.now() == Date(timeIntervalSince1970: 105))
    }

    @Test("identifier syntax", arguments: [("alice", true), ("vendor.lee@corp", true), ("a-b_c", true), ("", false),
                                           ("-x", false), ("a b", false), ("名字", false), (String(repeating: "a", count: 129), false)])
    func identifiers(_ s: String, _ ok: Bool) { #expect(IdentifierSyntax.isValid(s) == ok) }
}
