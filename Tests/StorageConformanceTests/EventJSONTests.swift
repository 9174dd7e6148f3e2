import Foundation
import MenshenStorage
import Testing

/// EventJSON against Foundation's JSONSerialization as the oracle: the same
/// JSON value, keys in order, and bad values refused.
@Suite("Event JSON")
struct EventJSONTests {
    static var sample: [String: Any] { [
        "class_uid": 6001, "severity_id": 4, "time": Int64(1_795_000_000_123), "is_alert": true, "ratio": 0.25, "whole": 3.0,
        "metadata": ["version": "1.8.0", "product": ["name": "Menshen", "vendor_name": "Menshen project"], "profiles": ["security_control", "host"]],
        "message": "allow GET apps.bank.example/a/b?x=\"1\"\\2\n\t\u{1}行員 /path/",
        "unmapped": ["decision": ["policies": [] as [String], "errors": [:] as [String: String], "device": ["known": false],
                                  "nothing": NSNull()]],
        "list": [1, "two", false, ["three": 3]] as [Any],
    ] }

    @Test("the same JSON value as JSONSerialization, with sorted keys, no spaces and unescaped slashes")
    func matchesFoundation() throws {
        let ours = try EventJSON.encode(Self.sample)
        let theirs = String(decoding: try JSONSerialization.data(withJSONObject: Self.sample, options: [.sortedKeys, .withoutEscapingSlashes]),
                            as: UTF8.self)
        let a = try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(theirs.utf8)) as? NSDictionary
        #expect(a == b)
        #expect(ours.hasPrefix(#"{"class_uid":6001,"is_alert":true,"list":[1,"two",false,{"three":3}],"message":"#))
        #expect(ours.hasSuffix(#""whole":3}"#) && ours.contains(#""ratio":0.25"#) && ours.contains("/path/") && ours.contains("\\u0001"))
        #expect(!ours.contains(" :") && !ours.contains(", "))
    }

    @Test("line separators, bidirectional controls and DEL are written as escapes that decode to the same text")
    func misleadingCharactersEscaped() throws {
        let tricky = "/pay\u{202E}fdp.exe\u{2028}next\u{2029}\u{2066}x\u{2069}\u{200F}\u{7F}/行員 é"
        let text = try EventJSON.encode(["path": tricky, "\u{202E}key": "v"])
        for escape in ["\\u202e", "\\u2028", "\\u2029", "\\u2066", "\\u2069", "\\u200f", "\\u007f"] {
            #expect(text.contains(escape), "\(escape)")
        }
        #expect(!text.unicodeScalars.contains { [0x202E, 0x2028, 0x2029, 0x2066, 0x2069, 0x200F, 0x7F].contains($0.value) })
        #expect(text.contains("行員 é"), "other non-ASCII text stays as it is")
        let back = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(back["path"] == tricky && back["\u{202E}key"] == "v", "Foundation decodes the escapes to the original text")
    }

    @Test("typed values encode to exactly the text the untyped encoder writes for the same object")
    func typedMatchesUntyped() throws {
        let typed: EventJSON.Value = [
            "class_uid": 6001, "is_alert": true, "message": "allow GET /a\"b\\c\n\u{202E}行員", "nothing": .null,
            "metadata": ["product": ["name": "Menshen"], "profiles": .strings(["security_control", "host"])],
            "list": [1, "two", false, ["three": 3]], "empty": [:], "none": [], "big": .int(Int64.max), "neg": -7,
        ]
        let untyped: [String: Any] = [
            "class_uid": 6001, "is_alert": true, "message": "allow GET /a\"b\\c\n\u{202E}行員", "nothing": NSNull(),
            "metadata": ["product": ["name": "Menshen"], "profiles": ["security_control", "host"]],
            "list": [1, "two", false, ["three": 3]] as [Any], "empty": [String: Any](), "none": [Any](), "big": Int64.max, "neg": -7,
        ]
        let text = try EventJSON.encode(typed)
        #expect(text == (try EventJSON.encode(untyped)))
        #expect(text.hasPrefix(#"{"big":9223372036854775807,"class_uid":6001,"empty":{},"is_alert":true,"list":[1,"two",false,{"three":3}]"#))
        var deep: EventJSON.Value = "leaf"
        for _ in 0..<40 { deep = ["d": deep] }
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(deep) }
    }

    @Test("non-finite numbers, unsupported types and runaway nesting are refused")
    func refusals() {
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(["x": Double.nan]) }
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(["x": Date()]) }
        var deep: Any = "leaf"
        for _ in 0..<40 { deep = ["d": deep] }
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(deep) }
    }
}
