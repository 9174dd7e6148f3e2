import Foundation
import Testing

@Suite("Detection: privileged access outside business hours (T1078)")
struct PrivilegedAccessOutsideHoursTests {
    @Test("an admin role at 23:30 on a Monday, and a restricted application on a Saturday morning, fire")
    func fires() async throws {
        var h = try Harness()
        h.events.at(RealEvents.monday10.addingTimeInterval(13.5 * 3600))   // 23:30 Taipei
        await h.events.access("alice", from: "198.51.100.10", app: "core-banking-admin", roles: ["admin": "privileged"])
        h.events.at(RealEvents.monday10.addingTimeInterval(5 * 86_400))     // Saturday 10:00
        await h.events.access("bob", from: "198.51.100.11", app: "maintenance", classification: "restricted")
        try await h.feed()
        let f = h.fired(RuleID.privilegedOffHours)
        #expect(f.map(\.user) == ["alice", "bob"])
        #expect(f.first?.message.contains("role admin") == true && f.first?.message.contains("23:00") == true)
        #expect(f.first?.techniques.map(\.uid) == ["T1078"])
    }

    @Test("an admin at 10:00 on a Monday, a denied night attempt, and ordinary night work stay quiet")
    func quiet() async throws {
        var h = try Harness()
        await h.events.access("alice", from: "198.51.100.10", roles: ["admin": "privileged"])
        h.events.at(RealEvents.monday10.addingTimeInterval(13 * 3600))
        await h.events.access("alice", from: "198.51.100.10", outcome: .deny, roles: ["admin": "privileged"])
        await h.events.access("carol", from: "198.51.100.12", roles: ["teller": "standard"])
        try await h.feed()
        #expect(h.fired(RuleID.privilegedOffHours).isEmpty)
    }
}
