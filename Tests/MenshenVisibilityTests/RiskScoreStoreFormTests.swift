import Foundation
import MenshenVisibility
import Testing

/// The stored form of a user's risk (what the detection service writes and
/// the gateway reads, `RiskScore.encode`/`decode`) and the engine's side of
/// it: the score computed from stored contributions equals the engine's own at
/// every age, contributions added from outside are clamped and reported as
/// changes, and malformed stored text is refused whole.
@Suite("Risk score: stored form")
struct RiskScoreStoreFormTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    @Test("round trip: the score read back from the text equals the engine's at every age, including decay and the cap")
    func roundTrip() throws {
        var e = try DetectionEngine.builtIn()
        e.addRisk(user: "amy", source: "rule-a", reason: "Password spraying from one source", points: 35, time: Self.t0)
        e.addRisk(user: "amy", source: "playbook:watch", reason: "raised by playbook watch", points: 30, time: Self.t0.addingTimeInterval(600))
        e.addRisk(user: "bo", source: "rule-b", reason: "b", points: 20, time: Self.t0)
        #expect(e.takeRiskChanges() == ["amy", "bo"])
        #expect(e.takeRiskChanges().isEmpty, "changes are taken once")
        let text = try RiskScore.encode(e.riskContributions(for: "amy"))
        let read = try RiskScore.decode(text)
        #expect(read.map(\.points) == [35, 30])
        let ages: [TimeInterval] = [0, 600, 3600, 43_200, 82_800, 87_000, 172_800]
        for age in ages {
            let at = Self.t0.addingTimeInterval(age)
            #expect(RiskScore(user: "amy", contributions: read, at: at) == e.riskScore(for: "amy", at: at), "at +\(age) s")
        }
        #expect(RiskScore(user: "amy", contributions: read, at: Self.t0.addingTimeInterval(600)).value == 65)
        #expect(RiskScore(user: "amy", contributions: read, at: Self.t0.addingTimeInterval(24 * 3600 + 600)).value == 0)
        e.addRisk(user: "amy", source: "x", reason: "x", points: 250, time: Self.t0.addingTimeInterval(700))
        let capped = RiskScore(user: "amy", contributions: try RiskScore.decode(try RiskScore.encode(e.riskContributions(for: "amy"))),
                               at: Self.t0.addingTimeInterval(700))
        #expect(capped.value == 100, "the score is capped at 100 and one contribution at 100 points")
        #expect(e.riskContributions(for: "amy").last?.points == 100)
    }

    @Test("malformed stored text is refused whole", arguments: [
        "", "{}", "[1]", #"[{"source":"a","reason":"b","points":101,"time":0}]"#,
        #"[{"source":"a","reason":"b","points":-1,"time":0}]"#, #"[{"source":"a","reason":"b","points":"10","time":0}]"#,
        #"[{"source":"a","points":10,"time":0}]"#, #"[{"source":"a","reason":"b","points":10}]"#,
        String(repeating: "[", count: 100_000), "[" + Array(repeating: #"{"source":"a","reason":"b","points":1,"time":0}"#, count: 65).joined(separator: ",") + "]",
        #"[{"source":""# + String(repeating: "s", count: 201) + #"","reason":"b","points":1,"time":0}]"#,
        #"[{"source":"a","reason":"b","points":1,"time":0}] x"#,
    ])
    func malformed(_ text: String) {
        #expect(throws: VisibilityError.self) { _ = try RiskScore.decode(text) }
    }

    @Test("a signal the engine does not keep (same kind within the hour) is not reported as a change")
    func unchangedNotReported() throws {
        var e = try DetectionEngine.builtIn()
        e.addRisk(user: "amy", source: "behaviour:new-network", reason: "r", points: 5, time: Self.t0)
        #expect(e.takeRiskChanges() == ["amy"])
        e.addRisk(user: "amy", source: "behaviour:new-network", reason: "r", points: 5, time: Self.t0.addingTimeInterval(60))
        #expect(e.takeRiskChanges().isEmpty)
        #expect(e.riskScore(for: "amy", at: Self.t0.addingTimeInterval(60)).value == 5)
    }
}
