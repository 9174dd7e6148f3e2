import Foundation
import Testing
@testable import MenshenCore

@Suite("UUID text and time-ordered event ids")
struct UUIDTextTests {
    @Test("the text is Foundation's uuidString (upper) and its lower-cased form, for every byte value")
    func agreesWithFoundation() {
        var uuids = (0..<2_000).map { _ in UUID() }
        // Every byte value in every position at least once.
        for v in 0...255 {
            let b = UInt8(v)
            uuids.append(UUID(uuid: (b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b)))
        }
        for u in uuids {
            #expect(UUIDText.upper(u) == u.uuidString)
            #expect(UUIDText.lower(u) == u.uuidString.lowercased())
            #expect(UUIDText.parse(UUIDText.upper(u)) == u)
            #expect(UUIDText.parse(UUIDText.lower(u)) == u)
        }
    }

    @Test("parsing accepts the canonical form in either case, as UUID(uuidString:) does, and nothing else", arguments: [
        "", "0", "E621E1F8-C36C-495A-93FC-0C247A3E6E5F", "e621e1f8-c36c-495a-93fc-0c247a3e6e5f", "E621E1F8C36C495A93FC0C247A3E6E5F",
        "E621E1F8-C36C-495A-93FC-0C247A3E6E5", "E621E1F8-C36C-495A-93FC-0C247A3E6E5F0", "E621E1F8-C36C-495A-93FC_0C247A3E6E5F",
        "G621E1F8-C36C-495A-93FC-0C247A3E6E5F", "E621E1F8-C36C-495A-93FC-0C247A3E6E5é", "{E621E1F8-C36C-495A-93FC-0C247A3E6E5F}",
        "E621E1F-8C36C-495A-93FC-0C247A3E6E5F", "e621e1f8-c36c-495a-93fc-0c247a3E6E5F",
    ])
    func parseAgrees(text: String) {
        #expect(UUIDText.parse(text) == UUID(uuidString: text), "\(text)")
    }

    @Test("stricter than Foundation: a space and 35 digits, which uuid_parse reads, is refused")
    func stricter() {
        let lenient = " E621E1F8-C36C-495A-93FC-0C247A3E6E5"
        #expect(UUID(uuidString: lenient) != nil)   // if Foundation ever tightens this, the test below still holds
        #expect(UUIDText.parse(lenient) == nil)
    }

    @Test("event ids are UUID version 7: the time in the first 48 bits, version and variant set, the rest random")
    func eventIDs() {
        let random = SystemRandomSource()
        let t = Date(timeIntervalSince1970: 1_795_000_000.123)
        let a = random.eventID(at: t), b = random.eventID(at: t)
        #expect(a != b)
        for id in [a, b] {
            let u = withUnsafeBytes(of: id.uuid) { Array($0) }
            let millis = u[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(millis == 1_795_000_000_123)
            #expect(u[6] >> 4 == 7)
            #expect(u[8] >> 6 == 0b10)
        }
        // Later events sort after earlier ones, as text too (what the store's unique index orders by).
        var previous = UUIDText.upper(random.eventID(at: t))
        for step in 1...500 {
            let next = UUIDText.upper(random.eventID(at: t.addingTimeInterval(Double(step) / 1000)))
            #expect(next > previous, "\(next) after \(previous)")
            previous = next
        }
        // Times outside what 48 bits hold are clamped, never a crash.
        _ = random.eventID(at: Date(timeIntervalSince1970: -5))
        _ = random.eventID(at: .distantFuture)
    }
}
