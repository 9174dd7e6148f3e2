import Foundation
import MenshenCore
import MenshenStorage
import MenshenTestSupport
import Testing

/// The event chain's hash format, checked against an independent implementation (Python's `hashlib`) written
/// from the documented format: SHA-256 over `len:bytes` for the tag `menshen-event-v1`, the previous hash, the
/// upper-case event id, the time in milliseconds, the class, the severity, the user (empty when none) and the
/// payload, lengths in bytes as ASCII decimal. Logs written by earlier builds must keep verifying, so the format
/// may never drift.
@Suite struct EventChainFormatTests {
    @Test func hashesAgreeWithAnIndependentImplementation() throws {
        var generator = SeededGenerator(seed: 0x6d65_6e73_6865_6e)
        let alphabet = Array("abcXYZ019 -_.:\"\\/{}[]\n\t é台灣門神🙂\u{0}\u{1F}")
        func text(_ maxLength: Int) -> String {
            String((0..<Int.random(in: 0...maxLength, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        var lines: [String] = []
        var expected: [String] = []
        var previous = genesisEventHash
        for i in 0..<300 {
            var bytes = [UInt8](repeating: 0, count: 16)
            for k in 0..<16 { bytes[k] = UInt8.random(in: 0...255, using: &generator) }
            let id = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                 bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
            // Times before 1970 (negative milliseconds) and far ahead; classes and severities of any sign.
            let millis = Int64.random(in: -4_000_000_000_000...40_000_000_000_000, using: &generator)
            let event = NewEvent(id: id, time: StoreCoding.date(millis: millis),
                                 classUID: i % 7 == 0 ? -Int.random(in: 1...99, using: &generator) : Int.random(in: 0...999_999, using: &generator),
                                 severityID: i % 11 == 0 ? Int.max : Int.random(in: 0...99, using: &generator),
                                 userID: i % 3 == 0 ? nil : UserID(text(40)),
                                 payloadJSON: i % 5 == 0 ? "" : text(i % 13 == 0 ? 5000 : 300))
            let hash = EventChain.hash(previous: previous, event: event)
            expected.append(hash)
            let fields = ["menshen-event-v1", previous, id.uuidString, String(StoreCoding.millis(event.time)), String(event.classUID),
                          String(event.severityID), event.userID?.rawValue ?? "", event.payloadJSON]
            lines.append(fields.map { Data($0.utf8).base64EncodedString() }.joined(separator: " "))
            // Every other event chains on the one before; the rest on a made-up previous hash.
            previous = i % 2 == 0 ? hash : SecretHash.sha256Hex(bytes: Array(String(i).utf8))
        }
        let script = """
        import sys, hashlib, base64
        for line in sys.stdin.read().split("\\n"):
            if not line: continue
            h = hashlib.sha256()
            for field in line.split(" "):
                raw = base64.b64decode(field)
                h.update(str(len(raw)).encode("ascii") + b":" + raw)
            print(h.hexdigest())
        """
        // posix_spawn, not Foundation's Process (see `spawnAndWait`).
        let r = try spawnAndWait("/usr/bin/env", ["python3", "-c", script], input: Array((lines.joined(separator: "\n") + "\n").utf8))
        let got = r.stdoutText.split(separator: "\n").map(String.init)
        #expect(r.status == 0, "\(r.stderrText)")
        #expect(got.count == 300)
        #expect(got == expected)
    }

    @Test func aChangedFieldChangesTheHash() {
        let id = UUID(uuidString: "0190F0E4-1A2B-7C3D-8E4F-A0B1C2D3E4F5")!
        let base = NewEvent(id: id, time: StoreCoding.date(millis: 1_790_000_000_123), classUID: 6001, severityID: 1,
                            userID: UserID("alice"), payloadJSON: #"{"a":1}"#)
        let h = EventChain.hash(previous: genesisEventHash, event: base)
        var variants: [NewEvent] = []
        variants.append(NewEvent(id: UUID(), time: base.time, classUID: 6001, severityID: 1, userID: base.userID, payloadJSON: base.payloadJSON))
        variants.append(NewEvent(id: id, time: StoreCoding.date(millis: 1_790_000_000_124), classUID: 6001, severityID: 1, userID: base.userID,
                                 payloadJSON: base.payloadJSON))
        variants.append(NewEvent(id: id, time: base.time, classUID: 6002, severityID: 1, userID: base.userID, payloadJSON: base.payloadJSON))
        variants.append(NewEvent(id: id, time: base.time, classUID: 6001, severityID: 2, userID: base.userID, payloadJSON: base.payloadJSON))
        variants.append(NewEvent(id: id, time: base.time, classUID: 6001, severityID: 1, userID: nil, payloadJSON: base.payloadJSON))
        variants.append(NewEvent(id: id, time: base.time, classUID: 6001, severityID: 1, userID: base.userID, payloadJSON: #"{"a":2}"#))
        for v in variants { #expect(EventChain.hash(previous: genesisEventHash, event: v) != h) }
        #expect(EventChain.hash(previous: String(repeating: "f", count: 64), event: base) != h)
        #expect(EventChain.hash(previous: genesisEventHash, event: base) == h)
    }
}
