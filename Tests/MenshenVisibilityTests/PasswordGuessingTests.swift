import Foundation
import Testing

@Suite("Detection: password guessing (T1110.001)")
struct PasswordGuessingTests {
    @Test("six wrong passwords for one account from rotating addresses within five minutes fire once")
    func fires() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        for n in 0..<6 {
            h.events.advance(50)
            try await h.events.passwordFailure("alice", from: "203.0.113.\(20 + n % 3)")
        }
        try await h.feed()
        let f = h.fired(RuleID.passwordGuessing)
        #expect(f.count == 1)
        #expect(f.first?.user == "alice" && f.first?.evidence.count == 5)
        #expect(f.first?.techniques.map(\.uid) == ["T1110.001"] && f.first?.techniques.first?.tactics.map(\.uid) == ["TA0006"])
    }

    @Test("a user mistyping twice, and failures spread over an hour, stay quiet")
    func quiet() async throws {
        var h = try Harness()
        try await h.normalTraffic()
        try await h.events.passwordFailure("carol", from: "198.51.100.12")
        try await h.events.passwordFailure("carol", from: "198.51.100.12")
        try await h.events.signIn("carol", from: "198.51.100.12")
        for _ in 0..<6 {
            h.events.advance(15 * 60)
            try await h.events.passwordFailure("dave", from: "198.51.100.13")
        }
        try await h.feed()
        #expect(h.fired(RuleID.passwordGuessing).isEmpty)
    }
}
