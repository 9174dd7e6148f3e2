import Foundation
import Testing

@Suite("Detection: dormant account suddenly active (T1078)")
struct DormantAccountTests {
    @Test("a sign-in sixty days after the last activity fires; so does one after a seeded last activity")
    func fires() async throws {
        var h = try Harness()
        try await h.events.signIn("alice", from: "198.51.100.10", session: "s1")
        await h.events.access("alice", from: "198.51.100.10", session: "s1")
        h.events.advance(60 * 86_400)
        try await h.events.signIn("alice", from: "203.0.113.50", session: "s2")
        try await h.feed()
        let f = h.fired(RuleID.dormantAccount)
        #expect(f.count == 1 && f.first?.user == "alice" && f.first?.message.contains("after 60 days") == true)
        #expect(f.first?.techniques.map(\.uid) == ["T1078"])

        var restarted = try Harness()
        restarted.engine.seedLastSeen(user: "bob", at: RealEvents.monday10.addingTimeInterval(-90 * 86_400))
        try await restarted.events.signIn("bob", from: "198.51.100.11", session: "s3")
        try await restarted.feed()
        #expect(restarted.fired(RuleID.dormantAccount).count == 1)
    }

    @Test("daily users, a first sign-in and a return after two weeks' leave stay quiet")
    func quiet() async throws {
        var h = try Harness()
        for _ in 0..<10 {
            try await h.normalTraffic()
            h.events.advance(86_400)
        }
        h.events.advance(14 * 86_400)
        try await h.events.signIn("alice", from: "198.51.100.10", session: "back")
        try await h.events.signIn("newhire", from: "198.51.100.20", session: "first")
        try await h.feed()
        #expect(h.fired(RuleID.dormantAccount).isEmpty)
    }
}
