import Foundation
import Testing

@Suite("Detection: session token reused from another address (T1550.004, T1539)")
struct SessionTokenReuseTests {
    @Test("a session issued to the office address and then presented from another fires")
    func fires() async throws {
        var h = try Harness()
        try await h.events.signIn("alice", from: "198.51.100.10", session: "s-alice")
        await h.events.access("alice", from: "198.51.100.10", session: "s-alice")
        h.events.advance(1800)
        await h.events.access("alice", from: "203.0.113.99", session: "s-alice")
        try await h.feed()
        let f = h.fired(RuleID.sessionReuse)
        #expect(f.count == 1)
        #expect(f.first?.user == "alice" && f.first?.sourceIP == "203.0.113.99")
        #expect(Set(f.first?.techniques.map(\.uid) ?? []) == ["T1550.004", "T1539"])
        #expect(f.first?.groupBy["session"]?.hasPrefix("s-alice") == true)
    }

    @Test("each session staying on its own address stays quiet, even when one user has two sessions")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.signIn("alice", from: "203.0.113.5", session: "s-alice-home")
        await h.events.access("alice", from: "203.0.113.5", session: "s-alice-home")
        try await h.feed()
        #expect(h.fired(RuleID.sessionReuse).isEmpty)
    }
}
