import Foundation
import MenshenCore
import MenshenStorage
import MenshenVisibility
import Testing

/// RFC 5424 messages, octet-counted frames and CEF as the SIEM export writes them.
@Suite("Syslog and CEF formatting")
struct SyslogFormatTests {
    static let formatter = SyslogEventFormatter(hostname: "gw01.bank.example", productVersion: "0.1.0")

    static func stored(_ json: String, sequence: Int64 = 7, classUID: Int = 3002, severity: Int = 3, user: UserID? = nil,
                       time: Date = Date(timeIntervalSince1970: 1_736_904_612.345)) -> StoredEvent {
        StoredEvent(sequence: sequence, event: NewEvent(id: UUID(uuidString: "3F2504E0-4F89-11D3-9A0C-0305E82C3301")!, time: time,
                                                        classUID: classUID, severityID: severity, userID: user, payloadJSON: json),
                    previousHash: String(repeating: "0", count: 64), hash: String(repeating: "ab", count: 32))
    }

    @Test("the header, structured data and CEF body of an event are exactly as specified")
    func exactMessage() throws {
        let json = #"{"class_uid":3002,"class_name":"Authentication","activity_name":"Logon","type_uid":300201,"status":"Failure","status_detail":"wrong password","src_endpoint":{"ip":"203.0.113.7"},"user":{"name":"alice"},"message":"Logon failed: wrong password","metadata":{"uid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"}}"#
        let m = Self.formatter.message(Self.stored(json))
        let text = String(decoding: m.bytes, as: UTF8.self)
        #expect(text == "<108>1 2025-01-15T01:30:12.345Z gw01.bank.example menshen - 3002 "
            + "[menshen@32473 seq=\"7\" id=\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\" class=\"3002\" hash=\"\(String(repeating: "ab", count: 32))\"] "
            + "CEF:0|Menshen|Menshen|0.1.0|300201|Authentication: Logon|5|rt=1736904612345 externalId=3f2504e0-4f89-11d3-9a0c-0305e82c3301 "
            + "cat=Authentication act=Logon outcome=Failure src=203.0.113.7 suser=alice reason=wrong password "
            + "cn1Label=menshenSequence cn1=7 cs1Label=ocsfClassUid cs1=3002 cs2Label=menshenEventHash cs2=\(String(repeating: "ab", count: 32)) "
            + "msg=Logon failed: wrong password")
        // facility 13 (log audit) × 8 + severity 4 (warning, from OCSF Medium)
        #expect(m.facility * 8 + m.severity == 108)
    }

    @Test("the octet-counted frame counts bytes, not characters")
    func frame() {
        let msg = Array("<110>1 - - - - - - 門神 é".utf8)
        let f = SyslogMessage.octetCountedFrame(msg)
        #expect(String(decoding: f, as: UTF8.self) == "\(msg.count) <110>1 - - - - - - 門神 é")
        #expect(msg.count == 28)   // 18 ASCII header bytes, " 門神" 7, " é" 3
    }

    @Test("CEF header fields escape | and \\ and flatten line breaks; extension values escape =, \\, CR and LF")
    func escaping() throws {
        let r = CEFRecord(vendor: #"Bank|A\B"#, product: "P\nQ", version: "1", classID: "x|y", name: "a=b|c\\d", severity: 5,
                          extensions: [("msg", "line1\nline2\r\nk=v \\ back | pipe"), ("suser", "王小明 émile 🙂"), ("cs1", "a=b=c"), ("cs2", "")])
        let text = r.text()
        #expect(text == #"CEF:0|Bank\|A\\B|P Q|1|x\|y|a=b\|c\\d|5|msg=line1\nline2\r\nk\=v \\ back | pipe suser=王小明 émile 🙂 cs1=a\=b\=c cs2="#)
        #expect(!text.contains("\n") && !text.contains("\r"))
        let back = try #require(CEFRecord.parse(text))
        #expect(back.vendor == #"Bank|A\B"# && back.product == "P Q" && back.classID == "x|y" && back.name == "a=b|c\\d")
        #expect(back.extensions.map(\.key) == ["msg", "suser", "cs1", "cs2"])
        #expect(back.extensions.map(\.value) == ["line1\nline2\r\nk=v \\ back | pipe", "王小明 émile 🙂", "a=b=c", ""])
    }

    @Test("the reader takes the CEF example of the standards notes as written by someone else")
    func foreignExample() throws {
        let text = #"CEF:0|ExampleBank|ZTGW|1.4.2|AUTH_FAIL|Primary authentication failed|5|rt=1736904612345 src=203.0.113.7 suser=alice act=deny outcome=failure cs1Label=policy cs1=teller\=branch msg=line1\nline2"#
        let r = try #require(CEFRecord.parse(text))
        #expect(r.vendor == "ExampleBank" && r.product == "ZTGW" && r.version == "1.4.2" && r.classID == "AUTH_FAIL")
        #expect(r.name == "Primary authentication failed" && r.severity == 5)
        #expect(r.extensions.map(\.key) == ["rt", "src", "suser", "act", "outcome", "cs1Label", "cs1", "msg"])
        #expect(r.extensions.first { $0.key == "cs1" }?.value == "teller=branch")
        #expect(r.extensions.first { $0.key == "msg" }?.value == "line1\nline2")
    }

    @Test("random nasty values survive writing and reading back")
    func randomRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [String] = ["a", "Z", "0", " ", "=", "\\", "|", "\n", "\r", "門", "神", "é", "🙂", "\"", "]", "k=", " x=", "\\n", "\\="]
        for _ in 0..<2000 {
            func value() -> String { (0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined() }
            let header = value().replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
            let r = CEFRecord(vendor: header, product: "Menshen", version: "1", classID: "3002", name: value().replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " "),
                              severity: Int.random(in: 0...10, using: &rng), extensions: [("msg", value()), ("suser", value()), ("cs1", value())])
            let back = try #require(CEFRecord.parse(r.text()), "\(r.text())")
            #expect(back == r, "\(r.text())")
        }
    }

    @Test("long values are cut to their caps on a character boundary, and the message to max_message_bytes")
    func limits() throws {
        let long = String(repeating: "門", count: 5000)   // 3 bytes each
        let json = #"{"class_uid":3002,"message":"\#(long)","status_detail":"\#(long)","user":{"name":"\#(long)"},"src_endpoint":{"ip":"10.0.0.1"}}"#
        let s = Self.stored(json)
        let cef = Self.formatter.cef(s)
        let msg = try #require(cef.extensions.first { $0.key == "msg" }?.value)
        #expect(msg.utf8.count <= 1023 && msg.utf8.count >= 1020 && msg.allSatisfy { $0 == "門" })
        #expect(cef.extensions.first { $0.key == "suser" }?.value.utf8.count ?? 0 <= 255)
        for max in [2048, 4096, 8192] {
            var f = Self.formatter
            f.maxMessageBytes = max
            let m = f.message(s)
            #expect(m.bytes.count <= max)
            let body = String(decoding: m.message, as: UTF8.self)
            let back = try #require(CEFRecord.parse(body))
            #expect(back.extensions.contains { $0.key == "externalId" }, "the event's id always fits")
        }
        // JSON too large for the message becomes a JSON stub naming the event.
        var jf = Self.formatter
        jf.body = .json
        let big = jf.message(s)
        #expect(big.bytes.count <= jf.maxMessageBytes)
        let stub = try JSONSerialization.jsonObject(with: Data(big.message)) as? [String: Any]
        #expect(stub?["menshen_truncated"] as? Bool == true && stub?["sequence"] as? Int == 7 && stub?["uid"] as? String == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        // A small one is the stored JSON byte for byte.
        let small = jf.message(Self.stored(#"{"class_uid":3002,"message":"hi 門神"}"#))
        #expect(small.message == Array(#"{"class_uid":3002,"message":"hi 門神"}"#.utf8))
    }

    @Test("header fields keep only printable ASCII within their lengths; SD values escape quote, backslash and bracket")
    func headerFields() {
        var f = Self.formatter
        f.hostname = "gw 01\n門"
        f.appName = String(repeating: "a", count: 60)
        f.procID = ""
        f.structuredDataID = "menshen@32473"
        let text = String(decoding: f.message(Self.stored("{}")).headerBytes, as: UTF8.self)
        #expect(text.hasPrefix("<108>1 2025-01-15T01:30:12.345Z gw_01_\("___") \(String(repeating: "a", count: 48)) - 3002 [menshen@32473 "))
        let sd = SyslogMessage(facility: 1, severity: 1, timeMillis: 0, hostname: "h", appName: "a", procID: "p", msgID: "m",
                               structuredData: .init(id: "x@1", parameters: [("k", #"a"b\c]d"#), ("bad name=", "v")]), message: [])
        #expect(String(decoding: sd.headerBytes, as: UTF8.self) == #"<9>1 1970-01-01T00:00:00.000Z h a p m [x@1 k="a\"b\\c\]d" bad_name_="v"] "#)
        f.structuredDataID = nil
        #expect(String(decoding: f.message(Self.stored("{}")).headerBytes, as: UTF8.self).hasSuffix(" 3002 - "))
    }

    @Test("timestamps agree with Foundation's ISO 8601 formatter")
    func timestamps() {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        iso.timeZone = TimeZone(identifier: "UTC")
        var rng = SystemRandomNumberGenerator()
        let fixed: [Int64] = [0, 951_782_400_000, 1_709_251_199_999, 4_102_444_800_000]
        for ms in fixed + (0..<2000).map({ _ in Int64.random(in: 0...4_102_444_800_000, using: &rng) }) {
            let expected = iso.string(from: Date(timeIntervalSince1970: Double(ms) / 1000 + 0.0002))
            #expect(SyslogMessage.timestamp(millis: ms) == expected, "\(ms)")
        }
    }

    @Test("OCSF severities map to syslog and CEF severities")
    func severities() {
        #expect([0, 1, 2, 3, 4, 5, 6, 99].map(SyslogEventFormatter.syslogSeverity) == [5, 6, 5, 4, 3, 2, 1, 5])
        #expect([0, 1, 2, 3, 4, 5, 6, 99].map(SyslogEventFormatter.cefSeverity) == [5, 1, 3, 5, 7, 9, 10, 5])
    }

    @Test("a payload that is not JSON still gives a message from the stored columns")
    func badPayload() throws {
        for payload in ["not json", "[1,2]", String(repeating: "[", count: 100_000), ""] {
            let m = Self.formatter.message(Self.stored(payload, user: "bob"))
            let r = try #require(CEFRecord.parse(String(decoding: m.message, as: UTF8.self)))
            #expect(r.classID == "3002" && r.name == "Authentication")
            #expect(r.extensions.first { $0.key == "suser" }?.value == "bob")
        }
    }

    @Test("the reader refuses what is not CEF")
    func parseRefuses() {
        #expect(CEFRecord.parse("hello") == nil)
        #expect(CEFRecord.parse("CEF:0|a|b|c|d|e|11|") == nil)
        #expect(CEFRecord.parse("CEF:0|a|b|c|d|e|5") == nil)
        #expect(CEFRecord.parse("CEF:0|a|b|c|d|e|5|junk before key=v") == nil)
        #expect(CEFRecord.parse("CEF:0|a|b|c|d|e|5|" + String(repeating: "k=v ", count: 70_000)) == nil)
        #expect(CEFRecord.parse("CEF:0|a|b|c|d|e|5|k=v")?.extensions.first?.value == "v")
    }
}
