import Foundation
import Testing

@Suite("Detection: abnormal download volume against the user's baseline (T1530, T1567)")
struct AbnormalDownloadVolumeTests {
    /// Ten working days of 25–35 reads, then `reads` reads and `exports` exports on day eleven.
    static func run(reads: Int, exports: Int) async throws -> Harness {
        var h = try Harness()
        for day in 0..<10 {
            h.events.at(RealEvents.monday10.addingTimeInterval(Double(day) * 86_400))
            for _ in 0..<(25 + (day * 7) % 11) {
                await h.events.access("alice", from: "198.51.100.10")
                h.events.advance(60)
            }
        }
        h.events.at(RealEvents.monday10.addingTimeInterval(10 * 86_400))
        for _ in 0..<reads { await h.events.access("alice", from: "198.51.100.10"); h.events.advance(20) }
        for _ in 0..<exports { await h.events.access("alice", from: "198.51.100.10", export: true); h.events.advance(20) }
        try await h.feed()
        return h
    }

    @Test("150 reads and 10 exports in a day against a usual ~30 fire once")
    func fires() async throws {
        let h = try await Self.run(reads: 150, exports: 10)
        let f = h.fired(RuleID.downloadVolume)
        #expect(f.count == 1 && f.first?.user == "alice")
        #expect(Set(f.first?.techniques.map(\.uid) ?? []) == ["T1530", "T1567"])
    }

    @Test("a busier day within the user's range stays quiet")
    func quiet() async throws {
        let h = try await Self.run(reads: 40, exports: 1)
        #expect(h.fired(RuleID.downloadVolume).isEmpty)
    }
}
