import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("CBOR decoder")
struct CBORDecoderTests {
    let decoder = CBORDecoder()

    @Test("RFC 8949 Appendix A examples in the supported subset decode")
    func appendixA() throws {
        let cases: [(String, CBORValue)] = [
            ("00", .unsigned(0)), ("17", .unsigned(23)), ("1818", .unsigned(24)), ("1903e8", .unsigned(1000)),
            ("1b000000e8d4a51000", .unsigned(1_000_000_000_000)), ("1bffffffffffffffff", .unsigned(.max)),
            ("20", .negative(0)), ("3863", .negative(99)), ("3bffffffffffffffff", .negative(.max)),
            ("40", .bytes([])), ("4401020304", .bytes([1, 2, 3, 4])), ("60", .text("")), ("6449455446", .text("IETF")),
            ("62c3bc", .text("ü")), ("63e6b0b4", .text("水")), ("80", .array([])),
            ("83010203", .array([.unsigned(1), .unsigned(2), .unsigned(3)])), ("a0", .map([])),
            ("a201020304", TestCBOR.map([(.unsigned(1), .unsigned(2)), (.unsigned(3), .unsigned(4))])),
            ("f4", .bool(false)), ("f5", .bool(true)), ("f6", .null), ("f7", .undefined),
            ("c074323031332d30332d32315432303a30343a30305a", .tagged(0, .text("2013-03-21T20:04:00Z"))),
        ]
        for (hex, expected) in cases {
            #expect(try decoder.decode([UInt8](hex: hex)) == expected, "\(hex)")
        }
    }

    @Test("Our test encoder and the decoder round-trip a COSE key")
    func roundTrip() throws {
        let key = TestCBOR.map([(TestCBOR.int(1), TestCBOR.int(2)), (TestCBOR.int(3), TestCBOR.int(-7)), (TestCBOR.int(-1), TestCBOR.int(1)),
                                (TestCBOR.int(-2), .bytes(Array(repeating: 7, count: 32))), (TestCBOR.int(-3), .bytes(Array(repeating: 9, count: 32)))])
        let bytes = TestCBOR.encode(key)
        #expect(try decoder.decode(bytes) == key)
        #expect(try CBORDecoder(mapKeyOrder: .ctap2Canonical).decode(bytes) == key)
        #expect(try decoder.decode(bytes)[int: -2]?.bytesValue?.count == 32)
    }

    static let rejections: [(hex: String, code: CBORError.Code, offset: Int)] = [
        ("", .truncated, 0),
        ("18", .truncated, 1),
        ("1903", .truncated, 2),
        ("43010203ff", .trailingBytes, 4),
        ("0000", .trailingBytes, 1),
        ("5f4101ff", .indefiniteLength, 0),
        ("9f01ff", .indefiniteLength, 0),
        ("bf0102ff", .indefiniteLength, 0),
        ("1c", .reservedAdditionalInformation, 0),
        ("fc", .reservedAdditionalInformation, 0),
        ("1817", .nonCanonicalEncoding, 0),
        ("190017", .nonCanonicalEncoding, 0),
        ("1a0000ffff", .nonCanonicalEncoding, 0),
        ("1b00000000ffffffff", .nonCanonicalEncoding, 0),
        ("5801ff", .nonCanonicalEncoding, 0),
        ("820182021817", .nonCanonicalEncoding, 4),
        ("a201020103", .duplicateMapKey, 3),
        ("a2616101616102", .duplicateMapKey, 4),
        ("f93c00", .unsupportedType, 0),
        ("fb3ff199999999999a", .unsupportedType, 0),
        ("f0", .unsupportedType, 0),
        ("f820", .unsupportedType, 0),
        ("62c328", .invalidUTF8, 0),
        ("61ff", .invalidUTF8, 0),
        ("5bffffffffffffffff", .truncated, 9),
        ("9bffffffffffffffff", .truncated, 0),
        ("bbffffffffffffffff", .truncated, 0),
        ("a10102a1", .trailingBytes, 3),
    ]

    @Test("Malformed, non-canonical and truncated inputs fail with the right code and offset", arguments: rejections)
    func rejects(_ sample: (hex: String, code: CBORError.Code, offset: Int)) {
        do {
            let value = try decoder.decode([UInt8](hex: sample.hex))
            Issue.record("\(sample.hex) decoded as \(value)")
        } catch {
            #expect(error.code == sample.code, "\(sample.hex)")
            #expect(error.offset == sample.offset, "\(sample.hex): offset \(error.offset)")
        }
    }

    @Test("Depth, item count and size limits are enforced")
    func limits() {
        let deep = [UInt8](repeating: 0x81, count: 17) + [0x00]
        #expect(throws: CBORError(.tooDeep, offset: 16)) { try decoder.decode(deep) }
        #expect(throws: Never.self) { try decoder.decode(Array(deep.dropFirst(2))) }
        let hugeDepth = [UInt8](repeating: 0x81, count: 100_000) + [0x00]
        #expect(throws: CBORError(.tooLarge, offset: 0)) { try decoder.decode(hugeDepth) }
        #expect(throws: CBORError(.tooDeep, offset: 16)) { try CBORDecoder(limits: .init(maxBytes: 200_000)).decode(hugeDepth) }
        let manyItems = TestCBOR.encode(.array(Array(repeating: .unsigned(1), count: 5000)))
        #expect(throws: CBORError(.tooManyItems, offset: 4097)) { try decoder.decode(manyItems) }
        let nestedTags = [UInt8](repeating: 0xC6, count: 20) + [0x00]
        #expect(throws: CBORError(.tooDeep, offset: 16)) { try decoder.decode(nestedTags) }
    }

    @Test("CTAP2 canonical key order is enforced only when asked")
    func keyOrder() throws {
        let unsorted = [UInt8](hex: "a2030401 02".replacingOccurrences(of: " ", with: ""))
        #expect(throws: Never.self) { try decoder.decode(unsorted) }
        #expect(throws: CBORError(.unsortedMapKeys, offset: 3)) { try CBORDecoder(mapKeyOrder: .ctap2Canonical).decode(unsorted) }
        // Shorter encodings sort first: 0x17 (23) before 0x1818 (24), "z" before "aa".
        let sorted = [UInt8](hex: "a4" + "1700" + "181800" + "617a01" + "62616102")
        #expect(throws: Never.self) { try CBORDecoder(mapKeyOrder: .ctap2Canonical).decode(sorted) }
    }

    @Test("Random and mutated inputs never crash the decoder")
    func fuzz() {
        var generator = SeededGenerator(seed: 8949)
        let seedInput = TestCBOR.encode(TestCBOR.map([(.text("fmt"), .text("none")), (.text("attStmt"), .map([])), (.text("authData"), .bytes(Array(repeating: 1, count: 40)))]))
        for _ in 0..<20_000 {
            var input = seedInput
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0..<input.count, using: &generator)
                input[position] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { input = Array(input.prefix(Int.random(in: 0...input.count, using: &generator))) }
            _ = try? decoder.decode(input)
            let random = (0..<Int.random(in: 0...24, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? decoder.decode(random)
        }
    }
}
