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

    @Test("non-finite numbers, unsupported types and runaway nesting are refused")
    func refusals() {
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(["x": Double.nan]) }
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(["x": Date()]) }
        var deep: Any = "leaf"
        for _ in 0..<40 { deep = ["d": deep] }
        #expect(throws: EventJSON.Unsupported.self) { try EventJSON.encode(deep) }
    }
}
