import Foundation
import MenshenVisibility
import Testing

/// Our producers do not fill OCSF `src_endpoint.location` yet (no GeoIP), and
/// the gateway leaves `unmapped.decision.context.country` empty. These tests
/// set the country through the decision context (a real producer field) and
/// add `src_endpoint.location` to real sign-in events, as a GeoIP enrichment would.
@Suite("Detection: impossible travel and new country for a user (T1078)")
struct ImpossibleTravelTests {
    static func located(_ e: DetectionEvent, country: String, lat: Double, long: Double) -> DetectionEvent {
        guard case .object(var o) = e.payload, case .object(var src)? = o["src_endpoint"] else { return e }
        src["location"] = ["country": .string(country), "lat": .double(lat), "long": .double(long)]
        o["src_endpoint"] = .object(src)
        return DetectionEvent(id: e.id, time: e.time, payload: .object(o))
    }

    @Test("Taipei then Frankfurt two hours later (coordinates) fires high")
    func coordinates() async throws {
        var h = try Harness()
        try await h.events.signIn("alice", from: "198.51.100.10", session: "s1")
        h.events.advance(2 * 3600)
        try await h.events.signIn("alice", from: "203.0.113.77", session: "s2")
        let evs = try await h.events.drain()
        #expect(evs.count == 2)
        _ = h.engine.process(Self.located(evs[0], country: "TW", lat: 25.03, long: 121.56))
        let f = h.engine.process(Self.located(evs[1], country: "DE", lat: 50.11, long: 8.68)).filter { $0.ruleID == RuleID.impossibleTravel }
        #expect(f.count == 1 && f.first?.level == .high && f.first?.user == "alice")
        #expect(f.first?.message.contains("km/h") == true)
        #expect(f.first?.techniques.map(\.uid) == ["T1078"])
    }

    @Test("a change of country within the hour (decision context) fires; a country new after a settled history fires medium")
    func countries() async throws {
        var h = try Harness()
        for _ in 0..<6 {
            await h.events.access("alice", from: "198.51.100.10", country: "TW")
            h.events.advance(600)
        }
        await h.events.access("alice", from: "203.0.113.77", country: "US")
        try await h.feed()
        let fast = h.fired(RuleID.impossibleTravel)
        #expect(fast.count == 1 && fast.first?.level == .high && fast.first?.message.contains("from TW to US") == true)

        var later = try Harness()
        for _ in 0..<6 {
            await later.events.access("bob", from: "198.51.100.11", country: "TW")
            later.events.advance(86_400)
        }
        await later.events.access("bob", from: "203.0.113.78", country: "JP")
        try await later.feed()
        let new = later.fired(RuleID.impossibleTravel)
        #expect(new.count == 1 && new.first?.level == .medium && new.first?.message.contains("first activity from JP") == true)
        #expect(later.engine.riskScore(for: "bob", at: later.events.now).contributions.contains { $0.source == "behaviour:new-country" })
    }

    @Test("Taipei to Kaohsiung in an hour, and a settled user at home, stay quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.events.signIn("alice", from: "198.51.100.10", session: "s1")
        h.events.advance(3600)
        try await h.events.signIn("alice", from: "203.0.113.77", session: "s2")
        let evs = try await h.events.drain()
        _ = h.engine.process(Self.located(evs[0], country: "TW", lat: 25.03, long: 121.56))
        #expect(h.engine.process(Self.located(evs[1], country: "TW", lat: 22.63, long: 120.30)).isEmpty)
        var home = try Harness()
        try await home.normalTraffic()
        for _ in 0..<8 { await home.events.access("carol", from: "198.51.100.12", country: "TW"); home.events.advance(3600) }
        try await home.feed()
        #expect(home.fired(RuleID.impossibleTravel).isEmpty)
    }
}
