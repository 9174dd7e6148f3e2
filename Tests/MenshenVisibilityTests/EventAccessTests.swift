import Foundation
import MenshenCore
@testable import MenshenVisibility
import Testing

@Suite("Event access: bounded JSON and OCSF field paths")
struct EventAccessTests {
    static let signIn = """
        {"class_uid":3002,"activity_id":1,"status_id":2,"status_detail":"wrong password","time":1736904612345,
         "user":{"name":"alice","uid":"alice"},"src_endpoint":{"ip":"203.0.113.7"},
         "auth_factors":[{"factor_type":"pwd"},{"factor_type":"totp"}],"is_mfa":true,"ratio":0.5,
         "unmapped":{"idp":"local","loa":2,"decision":{"device":{"managed":false}}},"message":"caf\\u00e9 \\ud83d\\ude00 \\"q\\""}
        """

    @Test("paths read nested members, look into arrays of objects, and yield array elements")
    func paths() throws {
        let e = try DetectionEvent(id: "e1", time: Date(timeIntervalSince1970: 0), json: Self.signIn)
        #expect(e["actor.user.name"] == nil)
        #expect(e["user.name"] == "alice")
        #expect(e["src_endpoint.ip"] == "203.0.113.7")
        #expect(e["unmapped.loa"] == 2)
        #expect(e["unmapped.decision.device.managed"] == false)
        #expect(e["ratio"] == .double(0.5))
        #expect(e["message"]?.stringValue == "café 😀 \"q\"")
        #expect(e.values(try FieldPath("auth_factors.factor_type")) == ["pwd", "totp"])
        #expect(e.values(try FieldPath("auth_factors")).count == 2)
        #expect(e.values(try FieldPath("user.name.first")).isEmpty, "a path through a string finds nothing")
        #expect(e.userName == "alice" && e.sourceIP == "203.0.113.7" && e.isFailedSignIn && !e.isSuccessfulSignIn)
        #expect(e.classUID == 3002 && e.statusID == 2)
    }

    @Test("decision events name their user under actor")
    func actorUser() throws {
        let e = try DetectionEvent(id: "d1", time: Date(), json: #"{"class_uid":6001,"action_id":1,"actor":{"user":{"name":"bob"},"session":{"uid":"abc"}}}"#)
        #expect(e.userName == "bob" && e.sessionUID == "abc" && e.isAllowedAccess)
    }

    @Test("malformed JSON is refused with a position, never crashes")
    func malformed() {
        for bad in ["", "{", "{\"a\":}", "{\"a\":1,}", "[1,2", "{\"a\":01}", "{\"a\":1}x", "\"\\ud800\"", "{\"a\":\"\u{01}\"}",
                    "{\"a\":1,\"a\":2}", "nul", "-", "1e", "{\"a\":1e999}", "\"\\x\""] {
            #expect(throws: VisibilityError.self, "\(bad)") { _ = try EventValue.parse(bad) }
        }
        #expect(throws: VisibilityError.self) { _ = try DetectionEvent(id: "x", time: Date(), json: "[1]") }
    }

    @Test("depth and size limits are enforced")
    func limits() throws {
        let deep = String(repeating: "[", count: EventLimits.maxDepth + 1) + String(repeating: "]", count: EventLimits.maxDepth + 1)
        #expect(throws: VisibilityError(.invalidEvent, "")) { _ = try EventValue.parse(deep) }
        let okDepth = String(repeating: "[", count: EventLimits.maxDepth) + String(repeating: "]", count: EventLimits.maxDepth)
        _ = try EventValue.parse(okDepth)
        let big = "\"" + String(repeating: "a", count: EventLimits.maxBytes) + "\""
        #expect(throws: VisibilityError.self) { _ = try EventValue.parse(big) }
        // A lookup through a huge array returns at most the cap.
        let many = "{\"a\":[" + Array(repeating: "{\"b\":1}", count: 1000).joined(separator: ",") + "]}"
        #expect(try FieldPath("a.b").values(in: EventValue.parse(many)).count == EventLimits.maxLookupValues)
    }

    @Test("field paths refuse empty segments, spaces and excess length")
    func badPaths() {
        for bad in ["", ".", "a..b", "a.", "a b", "a|b", String(repeating: "a.", count: 20) + "a", String(repeating: "x", count: 300)] {
            #expect(throws: VisibilityError(.invalidFieldPath, ""), "\(bad)") { _ = try FieldPath(bad) }
        }
    }

    @Test("the quick member walk of event[path] answers exactly as FieldPath does, valid path or not")
    func quickWalkAgrees() throws {
        let e = try DetectionEvent(id: "e1", time: Date(timeIntervalSince1970: 0), json: Self.signIn)
        let paths = ["user.name", "user", "user.name.first", "auth_factors", "auth_factors.factor_type", "unmapped.decision.device.managed",
                     "unmapped.decision.device", "nope", "user.nope", "", ".", "a..b", "user.", ".user", "user name", "user|name",
                     "ratio", "message", "is_mfa.x", String(repeating: "a.", count: 20) + "a", String(repeating: "u", count: 300),
                     "src_endpoint.ip", "ünï.cödé", "unmapped.loa"]
        for path in paths {
            let checked = (try? FieldPath(path)).flatMap { $0.first(in: e.payload) }
            #expect(e[path] == checked, "\(path)")
        }
    }

    @Test("strings with escapes after plain text parse like those without")
    func escapesMidString() throws {
        let v = try EventValue.parse(#"{"a":"plain","b":"left\nright \u00e9\\ end","c":"\"q\"","d":"終端\t機"}"#)
        #expect(v["a"] == "plain" && v["b"] == "left\nright é\\ end" && v["c"] == "\"q\"" && v["d"] == "終端\t機")
    }

    static func projection(_ paths: String...) throws -> EventProjection {
        EventProjection(paths: try paths.map { try FieldPath($0) })
    }

    @Test("a projected event answers every path exactly as the full parse does, inside the projection or not")
    func projectedAgrees() throws {
        let p = try Self.projection("user.name", "auth_factors.factor_type", "unmapped.decision", "src_endpoint.ip", "class_uid")
        let full = try DetectionEvent(id: "e1", time: Date(timeIntervalSince1970: 0), json: Self.signIn)
        let projected = try DetectionEvent(id: "e1", time: Date(timeIntervalSince1970: 0), json: Self.signIn, projection: p)
        // Only the wanted members are built.
        #expect(projected.payload["message"] == nil && projected.payload["is_mfa"] == nil && projected.payload["ratio"] == nil)
        #expect(projected.payload["unmapped"]?["loa"] == nil && projected.payload["unmapped"]?["decision"] == full.payload["unmapped"]?["decision"])
        let covered = ["user.name", "auth_factors.factor_type", "unmapped.decision.device.managed", "unmapped.decision", "src_endpoint.ip",
                       "class_uid", "user.name.first", "unmapped.decision.nope"]
        for path in covered {
            #expect(projected[path] == full[path], "\(path)")
            #expect(projected.values(try FieldPath(path)) == full.values(try FieldPath(path)), "\(path)")
        }
        #expect(p.fallbackCount == 0, "covered paths are answered from the projected tree")
        let outside = ["message", "user", "user.uid", "unmapped.loa", "auth_factors", "ratio", "is_mfa", "unmapped", "nope"]
        for path in outside {
            #expect(projected[path] == full[path], "\(path)")
            #expect(projected.values(try FieldPath(path)) == full.values(try FieldPath(path)), "\(path)")
        }
        #expect(p.fallbackCount > 0, "paths outside the projection are answered by a full parse, and counted")
        #expect(projected.userName == "alice" && projected.sourceIP == "203.0.113.7" && projected.isFailedSignIn)
    }

    /// A small deterministic generator (xorshift64*) so a failing case can be replayed from its seed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
    }

    /// Member names from a small vocabulary (so random paths and projections meet), including the accessors' names.
    static let names = ["user", "name", "uid", "actor", "session", "src_endpoint", "ip", "device", "unmapped", "decision", "class_uid",
                        "a", "b", "location", "country", "metadata", "log_name"]

    static func randomValue(_ g: inout Seeded, depth: Int) -> String {
        let pick = Int(g.next() % (depth > 3 ? 5 : 8))
        switch pick {
        case 0: return "\"s\(g.next() % 5)\""
        case 1: return String(Int(g.next() % 2000) - 1000)
        case 2: return g.next() % 2 == 0 ? "true" : "null"
        case 3: return "1.5"
        case 4: return "\"x\\u00e9\""
        case 5, 6: return randomObject(&g, depth: depth + 1)
        default:
            let n = Int(g.next() % 3)
            return "[" + (0..<n).map { _ in g.next() % 3 == 0 ? randomValue(&g, depth: depth + 1) : randomObject(&g, depth: depth + 1) }
                .joined(separator: ",") + "]"
        }
    }

    static func randomObject(_ g: inout Seeded, depth: Int) -> String {
        var used = Set<String>()
        var members: [String] = []
        for _ in 0..<Int(g.next() % 5) {
            let name = names[Int(g.next() % UInt64(names.count))]
            guard used.insert(name).inserted else { continue }
            members.append("\"\(name)\":\(randomValue(&g, depth: depth))")
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func randomPath(_ g: inout Seeded) -> String {
        (0..<(1 + Int(g.next() % 4))).map { _ in names[Int(g.next() % UInt64(names.count))] }.joined(separator: ".")
    }

    @Test("projected events answer like the full parse: random events, projections and paths (accessors, look-ups, payload)")
    func projectedAgreesRandomly() throws {
        var g = Seeded(state: 0x9E37_79B9_7F4A_7C15)
        for round in 0..<400 {
            let json = Self.randomObject(&g, depth: 0)
            let wanted = (0..<Int(g.next() % 6)).map { _ in Self.randomPath(&g) }
            let p = EventProjection(paths: try wanted.map { try FieldPath($0) })
            let full = try DetectionEvent(id: "e", time: Date(timeIntervalSince1970: 0), json: json)
            let projected = try DetectionEvent(id: "e", time: Date(timeIntervalSince1970: 0), json: json, projection: p)
            let context = "round \(round): \(json) projected on \(wanted)"
            // The slots rebuild exactly the tree the projected parse builds.
            #expect(projected.payload == (try EventValue.parse(bytes: Array(json.utf8), projection: p)), "\(context)")
            #expect(projected.classUID == full.classUID && projected.userName == full.userName && projected.sourceIP == full.sourceIP
                    && projected.deviceUID == full.deviceUID && projected.sessionUID == full.sessionUID
                    && projected.actionID == full.actionID, "\(context)")
            for path in wanted + (0..<8).map({ _ in Self.randomPath(&g) }) {
                #expect(projected[path] == full[path], "\(path) in \(context)")
                let fieldPath = try FieldPath(path)
                #expect(projected.values(fieldPath) == full.values(fieldPath), "\(path) in \(context)")
            }
        }
    }

    @Test("members outside the projection are still checked: malformed JSON anywhere is refused")
    func projectedStrict() throws {
        let p = try Self.projection("user.name")
        for bad in [#"{"user":{"name":"a"},"x":[1,2,]}"#, #"{"user":{"name":"a"},"x":"\q"}"#, #"{"user":{"name":"a"},"x":01}"#,
                    #"{"user":{"name":"a"},"x":{"y" 1}}"#, #"{"user":{"name":"a"},"x":tru}"#, #"{"user":{"name":"a"},"x":"\#u{01}"}"#,
                    #"{"user":{"name":"a"},"x":"open}"#, #"{"user":{"name":"a"}} trailing"#, #"{"user":{"name":"a","name":"b"}}"#,
                    #"{"user":{"name":"a"},"x":"\ud8"}"#, "{\"x\":" + String(repeating: "[", count: EventLimits.maxDepth) + "]}"] {
            #expect(throws: VisibilityError.self, "\(bad)") { _ = try DetectionEvent(id: "x", time: Date(), json: bad, projection: p) }
        }
        // Escaped member names are compared decoded.
        let e = try DetectionEvent(id: "x", time: Date(), json: #"{"us\u0065r":{"name":"ann"}}"#, projection: p)
        #expect(e.userName == "ann" && e["user.name"] == "ann")
    }

    @Test("the network prefix quick path and the hour/weekday arithmetic agree with CIDR and Calendar")
    func quickPathsAgree() throws {
        var rng = SystemRandomNumberGenerator()
        var addresses = ["10.1.2.3", "0.0.0.0", "255.255.255.255", "192.168.010.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d",
                         "2001:db8::1", "::ffff:10.1.2.3", "", "1.2.3.", ".1.2.3", "01.2.3.4", "1.2.3.04", "1.2.3.0"]
        for _ in 0..<2000 { addresses.append((0..<4).map { _ in String(Int.random(in: 0...300, using: &rng)) }.joined(separator: ".")) }
        for ip in addresses {
            let general: String? = CIDR.isAddress(ip) ? CIDR(ip + (ip.contains(":") ? "/48" : "/24"))?.description : nil
            #expect(UserBaseline.prefix(of: ip) == general, "\(ip)")
        }
        for zone in ["Asia/Taipei", "Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"] {
            let tz = try #require(TimeZone(identifier: zone))
            var configuration = DetectionConfiguration()
            configuration.timeZone = tz
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = tz
            for _ in 0..<3000 {
                let date = Date(timeIntervalSince1970: Double.random(in: -1e9...4e9, using: &rng).rounded(.down))
                let c = calendar.dateComponents([.hour, .weekday], from: date)
                let mine = configuration.hourAndWeekday(date)
                #expect(mine.hour == c.hour && mine.weekday == c.weekday, "\(zone) \(date)")
            }
        }
    }
}
