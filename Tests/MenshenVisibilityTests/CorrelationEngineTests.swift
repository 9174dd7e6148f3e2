import Foundation
import MenshenVisibility
import Testing

@Suite("Detection engine: correlations, windows, bounded state, findings, risk")
struct CorrelationEngineTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_399_200)

    static let base = """
        title: Failure
        name: failure
        logsource: {product: menshen, category: authentication}
        detection: {s: {status_id: 2}, condition: s}
        level: low
        ---
        title: Success
        name: success
        logsource: {product: menshen, category: authentication}
        detection: {s: {status_id: 1}, condition: s}
        level: low

        """

    static func engine(_ correlation: String, configuration: DetectionConfiguration = .init()) throws -> DetectionEngine {
        let set = try SigmaRuleSet.load(files: [("base.yml", base), ("corr.yml", correlation)])
        return DetectionEngine(rules: set, detectors: [], configuration: configuration)
    }

    static func auth(_ status: Int, user: String = "alice", ip: String = "203.0.113.7", at seconds: Double, id: String? = nil) -> DetectionEvent {
        DetectionEvent(id: id ?? "e\(Int(seconds))-\(user)-\(ip)-\(status)", time: t0.addingTimeInterval(seconds), payload: [
            "class_uid": 3002, "activity_id": 1, "status_id": .int(Int64(status)),
            "user": ["name": .string(user)], "src_endpoint": ["ip": .string(ip)],
        ])
    }

    static func correlation(_ type: String, rules: [String] = ["failure"], groupBy: String = "user.name", timespan: String = "10m",
                            condition: String? = "gte: 5", extra: String = "") -> String {
        """
        title: Correlated
        id: 6a0c2f7e-1b9e-4c52-9d8a-0f1e2d3c4b5a
        level: high
        tags: [attack.credential-access, attack.t1110.001]
        correlation:
            type: \(type)
            rules: [\(rules.joined(separator: ", "))]
            group-by: [\(groupBy)]
            timespan: \(timespan)
        \(condition.map { "    condition: {\($0)}" } ?? "")
        \(extra)
        """
    }

    @Test("event_count gte: fires on the fifth match within the window, once per burst; slow matches never fire")
    func eventCount() throws {
        var e = try Self.engine(Self.correlation("event_count"))
        var findings = (0..<4).flatMap { e.process(Self.auth(2, at: Double($0) * 60)) }
        #expect(findings.isEmpty)
        findings = e.process(Self.auth(2, at: 300))
        #expect(findings.count == 1)
        let f = try #require(findings.first)
        #expect(f.title == "Correlated" && f.user == "alice" && f.level == .high && f.evidence.count == 5)
        #expect(f.firstTime == Self.t0 && f.lastTime == Self.t0.addingTimeInterval(300))
        #expect(f.message.contains("5 matching events within 10m for user.name=alice"))
        // The burst is consumed: the next four matches do not fire again.
        #expect((1...4).flatMap { e.process(Self.auth(2, at: 300 + Double($0))) }.isEmpty)
        // Successes are not failures; another user is another group.
        #expect((0..<10).flatMap { e.process(Self.auth(1, at: 400 + Double($0))) }.allSatisfy { $0.title == "Success" })
        #expect((0..<4).flatMap { e.process(Self.auth(2, user: "bob", at: 500 + Double($0))) }.isEmpty)
        // Matches 3 minutes apart never have 5 within 10 minutes.
        var slow = try Self.engine(Self.correlation("event_count"))
        #expect((0..<20).flatMap { slow.process(Self.auth(2, at: Double($0) * 180)) }.isEmpty)
    }

    @Test("value_count: distinct values of the field per group")
    func valueCount() throws {
        var e = try Self.engine(Self.correlation("value_count", groupBy: "src_endpoint.ip", condition: "gte: 3, field: user.name"))
        // One user failing many times from one source: one distinct value.
        #expect((0..<10).flatMap { e.process(Self.auth(2, user: "alice", at: Double($0))) }.isEmpty)
        #expect(e.process(Self.auth(2, user: "bob", at: 20)).isEmpty)
        let f = e.process(Self.auth(2, user: "carol", at: 30))
        #expect(f.count == 1 && f.first?.sourceIP == "203.0.113.7" && f.first?.groupBy == ["src_endpoint.ip": "203.0.113.7"])
        #expect(f.first?.message.contains("3 distinct user.name") == true)
    }

    @Test("temporal fires when all rules matched within the span; temporal_ordered also needs the order")
    func temporal() throws {
        var t = try Self.engine(Self.correlation("temporal", rules: ["failure", "success"], timespan: "1h", condition: nil))
        #expect(t.process(Self.auth(1, at: 0)).isEmpty)
        #expect(t.process(Self.auth(2, at: 60)).count == 1, "success then failure within 1h")
        var late = try Self.engine(Self.correlation("temporal", rules: ["failure", "success"], timespan: "1h", condition: nil))
        #expect(late.process(Self.auth(2, at: 0)).isEmpty)
        #expect(late.process(Self.auth(1, at: 3601)).isEmpty, "outside the span")
        var ordered = try Self.engine(Self.correlation("temporal_ordered", rules: ["failure", "success"], timespan: "1h", condition: nil))
        #expect(ordered.process(Self.auth(1, at: 0)).isEmpty)
        #expect(ordered.process(Self.auth(2, at: 10)).isEmpty, "failure after success is the wrong order")
        #expect(ordered.process(Self.auth(1, at: 20)).count == 1, "failure then success")
    }

    @Test("lt thresholds are judged when the window closes")
    func lessThan() throws {
        var e = try Self.engine(Self.correlation("event_count", condition: "lt: 3"))
        #expect(e.process(Self.auth(2, at: 0)).isEmpty)
        #expect(e.process(Self.auth(2, at: 60)).isEmpty)
        #expect(e.advance(to: Self.t0.addingTimeInterval(300)).isEmpty, "window still open")
        let closed = e.advance(to: Self.t0.addingTimeInterval(601))
        #expect(closed.count == 1 && closed.first?.message.contains("2 matching events") == true)
        var many = try Self.engine(Self.correlation("event_count", condition: "lt: 3"))
        _ = (0..<5).flatMap { many.process(Self.auth(2, at: Double($0))) }
        #expect(many.advance(to: Self.t0.addingTimeInterval(700)).isEmpty, "5 is not fewer than 3")
    }

    @Test("state is bounded: groups per correlation are capped, oldest evicted; expired groups are dropped")
    func bounded() throws {
        var config = DetectionConfiguration()
        config.maxGroupsPerCorrelation = 50
        var e = try Self.engine(Self.correlation("event_count"), configuration: config)
        for i in 0..<1000 { _ = e.process(Self.auth(2, user: "u\(i)", at: Double(i) / 10)) }
        #expect((e.correlationGroupCounts.values.max() ?? 0) <= 50)
        // The newest group survived eviction: four more matches for it fire.
        let fired = (0..<4).flatMap { e.process(Self.auth(2, user: "u999", at: 100 + Double($0))) }
        #expect(fired.count == 1)
        _ = e.advance(to: Self.t0.addingTimeInterval(10_000))
        #expect(e.correlationGroupCounts.values.allSatisfy { $0 == 0 })
    }

    @Test("rules consumed by a correlation do not fire alone; other rules fire once per user and source per suppression period")
    func generation() throws {
        var e = try Self.engine(Self.correlation("event_count"))
        // `failure` feeds the correlation (generate: false); `success` is free-standing.
        #expect(e.process(Self.auth(2, at: 0)).isEmpty)
        let first = e.process(Self.auth(1, at: 1))
        #expect(first.count == 1 && first.first?.title == "Success")
        #expect(e.process(Self.auth(1, at: 2)).isEmpty, "suppressed")
        #expect(e.process(Self.auth(1, ip: "198.51.100.9", at: 3)).count == 1, "another source")
        #expect(e.process(Self.auth(1, at: 700)).count == 1, "after the suppression period")
        var g = try Self.engine(Self.correlation("event_count", extra: "    generate: true"))
        #expect(g.process(Self.auth(2, at: 0)).map(\.title) == ["Failure"])
    }

    @Test("a bad rule set is refused and the previous set keeps running with its windows")
    func reloadAllOrNothing() throws {
        var e = try Self.engine(Self.correlation("event_count"))
        _ = (0..<4).flatMap { e.process(Self.auth(2, at: Double($0))) }
        #expect(throws: VisibilityError.self) {
            try e.loadRules(files: [("good.yml", Self.base), ("bad.yml", Self.correlation("event_count", rules: ["nonexistent"]))])
        }
        #expect(e.rules.correlations.count == 1)
        #expect(e.process(Self.auth(2, at: 5)).count == 1, "the window kept its four matches")
        // A good set replaces it.
        try e.loadRules(files: [("base.yml", Self.base)])
        #expect(e.rules.correlations.isEmpty)
    }

    @Test("correlation refusals name the rule and the problem")
    func correlationRefusals() {
        let cases: [(String, String)] = [
            (Self.correlation("event_count", rules: ["nonexistent"]), "no detection rule has the name or id \"nonexistent\""),
            (Self.correlation("value_sum"), "correlation.type \"value_sum\" is not supported"),
            (Self.correlation("event_count", condition: nil), "needs condition"),
            (Self.correlation("value_count"), "needs condition.field"),
            (Self.correlation("event_count", timespan: "10x"), "unit must be"),
            (Self.correlation("event_count", timespan: "400d"), "longer than 31 days"),
            (Self.correlation("event_count", condition: "about: 5"), "is not one of gt"),
            (Self.correlation("temporal", condition: nil), "needs at least two rules"),
            (Self.correlation("event_count", groupBy: "user..name"), "empty segment"),
        ]
        for (yaml, expected) in cases {
            do throws(VisibilityError) {
                _ = try SigmaRuleSet.load(files: [("base.yml", Self.base), ("corr.yml", yaml)])
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.message.contains(expected), "\(error.message) should mention \(expected)")
                #expect(error.message.hasPrefix("corr.yml, rule \"Correlated\" (id 6a0c2f7e-1b9e-4c52-9d8a-0f1e2d3c4b5a)"), "\(error.message)")
            }
        }
    }

    @Test("a finding is an OCSF 2004 Detection Finding with ATT&CK technique, tactic, severity and evidence")
    func ocsfShape() throws {
        var e = try Self.engine(Self.correlation("event_count"))
        let f = try #require((0..<5).flatMap { e.process(Self.auth(2, at: Double($0), id: "ev\($0)")) }.first)
        let o = f.ocsf
        #expect(o["class_uid"] == 2004 && o["type_uid"] == 200_401 && o["category_uid"] == 2 && o["activity_id"] == 1)
        #expect(o["severity_id"] == 4, "level high")
        #expect(o["time"] == .int(Int64(Self.t0.timeIntervalSince1970 * 1000) + 4000))
        let info = try #require(o["finding_info"])
        #expect(info["uid"]?.stringValue == f.uid && info["title"] == "Correlated")
        #expect(info["analytic"]?["uid"] == "6a0c2f7e-1b9e-4c52-9d8a-0f1e2d3c4b5a")
        let attack = try #require(info["attacks"]?.arrayValue?.first)
        #expect(attack["technique"]?["uid"] == "T1110" && attack["sub_technique"]?["uid"] == "T1110.001")
        #expect(attack["sub_technique"]?["name"] == "Password Guessing" && attack["tactic"]?["uid"] == "TA0006")
        #expect(info["related_events"]?.arrayValue?.compactMap { $0["uid"]?.stringValue } == ["ev0", "ev1", "ev2", "ev3", "ev4"])
        #expect(o["evidences"]?.arrayValue?.first?["actor"]?["user"]?["name"] == "alice")
        #expect(o["metadata"]?["version"] == "1.8.0" && o["metadata"]?["product"]?["name"] == "Menshen")
        // Deterministic uid: the same input gives the same finding.
        var again = try Self.engine(Self.correlation("event_count"))
        #expect((0..<5).flatMap { again.process(Self.auth(2, at: Double($0), id: "ev\($0)")) }.first?.uid == f.uid)
    }

    @Test("a single-event finding names the event's device (device.uid), read within the projection, in OCSF evidences")
    func findingDevice() throws {
        let set = try SigmaRuleSet.load(files: [("base.yml", Self.base)])
        var e = DetectionEngine(rules: set, detectors: [], configuration: .init())
        let json = #"{"class_uid":3002,"activity_id":1,"status_id":1,"user":{"name":"alice"},"src_endpoint":{"ip":"203.0.113.7"},"#
            + #""device":{"uid":"dev-0001","type_id":0}}"#
        let event = try DetectionEvent(id: "ev-dev", time: Self.t0, json: json, projection: e.projection)
        #expect(event.deviceUID == "dev-0001")
        let f = try #require(e.process(event).first { $0.title == "Success" })
        #expect(f.device == "dev-0001")
        #expect(e.projection.fallbackCount == 0, "device.uid is read within the projection")
        let device = try #require(f.ocsf["evidences"]?.arrayValue?.first?["device"])
        #expect(device["uid"] == "dev-0001" && device["type_id"] == 0)
        // An event without a device makes a finding without one, and no device object.
        let g = try #require(e.process(Self.auth(2, at: 1)).first { $0.title == "Failure" })
        #expect(g.device == nil && g.ocsf["evidences"]?.arrayValue?.first?["device"] == nil)
    }

    @Test("risk score: points by level, linear decay over 24 hours, capped at 100")
    func risk() throws {
        var e = try Self.engine(Self.correlation("event_count"))
        _ = (0..<5).flatMap { e.process(Self.auth(2, at: Double($0))) }
        let at = Self.t0.addingTimeInterval(4)
        #expect(e.riskScore(for: "alice", at: at).value == 35, "one high finding")
        #expect(e.riskScore(for: "alice", at: at.addingTimeInterval(12 * 3600)).value == 18, "half decayed (17.5 rounds to 18)")
        #expect(e.riskScore(for: "alice", at: at.addingTimeInterval(24 * 3600)).value == 0)
        #expect(e.riskScore(for: "bob", at: at).value == 0)
        for burst in 1...5 { _ = (0..<5).flatMap { e.process(Self.auth(2, at: Double(burst * 10 + $0))) } }
        let capped = e.riskScore(for: "alice", at: Self.t0.addingTimeInterval(60))
        #expect(capped.value == 100 && capped.contributions.count == 6)
        #expect(e.riskScores(at: Self.t0.addingTimeInterval(60)) == ["alice": 100])
    }
}
