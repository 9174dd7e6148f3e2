import Foundation
import MenshenVisibility
import Testing

/// Ids of the built-in detections, as findings name them.
enum RuleID {
    static let passwordGuessing = "1824b297-1168-42cf-a3d8-aa709f402c50"
    static let passwordSpraying = "7557e31f-73fd-45ef-bcf2-90d0b3d083bb"
    static let credentialStuffing = "5b7ee4b4-210a-4a9e-8f9f-abc741e7cf8d"
    static let secondFactorFailures = "24d5a2eb-68b4-40f8-8a69-ef064b098e55"
    static let impossibleTravel = "1710ce38-c659-497a-b81f-8e8177383472"
    static let sessionReuse = "043b8936-e545-44b7-8e67-c2e809a27d88"
    static let privilegedOffHours = "8df99ddf-92fc-409a-b041-e2ea11eca8b9"
    static let unmanagedDevice = "2428a622-cf6c-456d-b81a-111debfcafcc"
    static let downloadVolume = "e1035cc1-5a65-4ac8-8407-366a9c58ff41"
    static let dormantAccount = "9fc7423a-cad8-4c5a-bbca-8547ff97b0fd"
    static let mfaRemoved = "a8040d23-dc93-4816-b9f5-55841e31af83"
}

/// Runs the built-in engine over what `RealEvents` produced.
///
/// Events are parsed through the engine's ``EventProjection``, as the
/// detection service reads them, and a copy of the engine (same state) runs on
/// the same events parsed in full: every test that feeds through the harness
/// also checks that the projection changes no finding and that no built-in
/// rule or detector reads a field outside it (which would cost a full parse per event).
struct Harness {
    var engine: DetectionEngine
    let events: RealEvents
    var findings: [DetectionFinding] = []

    init(start: Date = RealEvents.monday10) throws {
        engine = try DetectionEngine.builtIn()
        events = RealEvents(start: start)
    }

    /// Feeds every event produced since the last call; returns the new findings.
    @discardableResult
    mutating func feed() async throws -> [DetectionFinding] {
        let stored = try await events.drainStored()
        let projected = try stored.map { try DetectionEvent($0, projection: engine.projection) }.sorted { $0.time < $1.time }
        let full = try stored.map { try DetectionEvent($0) }.sorted { $0.time < $1.time }
        var unprojected = engine
        let new = engine.run(projected)
        #expect(unprojected.run(full) == new, "findings differ between projected and fully parsed events")
        #expect(engine.projection.fallbackCount == 0, "a built-in rule read a field outside the engine's projection")
        findings += new
        return new
    }

    func fired(_ rule: String) -> [DetectionFinding] { findings.filter { $0.ruleID == rule } }

    /// A normal working morning for several users: sign-ins with a second
    /// factor from the office network, one mistyped password, reads on the
    /// branch portal, a sign-out; all in business hours.
    mutating func normalTraffic(users: [String] = ["alice", "bob", "carol", "dave"], office: String = "198.51.100.") async throws {
        for (n, user) in users.enumerated() {
            let ip = office + String(10 + n)
            if n == 1 { try await events.passwordFailure(user, from: ip) }
            try await events.signIn(user, from: ip, session: "s-\(user)")
            for _ in 0..<5 {
                events.advance(30)
                await events.access(user, from: ip, session: "s-\(user)")
            }
            events.advance(60)
        }
        try await feed()
    }
}
