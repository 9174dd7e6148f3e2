import Foundation
import MenshenCore
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

    @Test("random tokens are distinct and of the requested strength")
    func tokens() {
        let r = SystemRandomSource()
        let a = r.token(), b = r.token()
        #expect(a != b)
        #expect(Base64URL.decode(a)?.count == 32)
        #expect(r.uuid().uuidString.dropFirst(14).first == "4")
    }

    @Test("SHA-256 hex matches the FIPS 180 'abc' vector")
    func sha() {
        #expect(SecretHash.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
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
