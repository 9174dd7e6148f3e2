import Foundation
import MenshenCore
import MenshenStorage
import MenshenTestSupport
import Testing

/// `searchEvents` on every backend against ``EventQuery/matches(_:)``, the reference meaning: random
/// logs and random queries (time ranges, classes, users by column or in the payload, substrings with
/// quotes, CJK and SQL metacharacters), both orders, cursors and limits must give exactly the
/// reference's records in the reference's order.
@Suite("Event search")
struct EventSearchTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let users = ["alice", "bob", "王小明", "o'neil", "x\"y"]
    static let words = ["deny", "allow", "payroll", "薪資", "'; DROP TABLE events; --", "100%_off", "a\\b", "\"outcome\":\"deny\"", "Deny"]
    static let classes = [3002, 3001, 6001, 2004, 5001]

    static func log(_ g: inout SeededGenerator, count: Int) -> [NewEvent] {
        (0..<count).map { i in
            let cls = classes.randomElement(using: &g) ?? 3002
            let columnUser = Bool.random(using: &g) ? users.randomElement(using: &g) : nil
            let payloadUser = users.randomElement(using: &g) ?? "alice"
            let w = (0..<2).map { _ in words.randomElement(using: &g) ?? "" }
            let payload = (try? EventJSON.encode(["class_uid": cls, "user": ["name": payloadUser], "message": w.joined(separator: " "), "n": i] as [String: Any])) ?? "{}"
            // Times are not in sequence order (buffered writers), which the range filters must not assume.
            let time = t0.addingTimeInterval(Double(i * 10 + Int.random(in: -40...40, using: &g)) + 0.001 * Double(Int.random(in: 0...999, using: &g)))
            return NewEvent(id: UUID(), time: time, classUID: cls, severityID: 1, userID: columnUser.map(UserID.init), payloadJSON: payload)
        }
    }

    static func query(_ g: inout SeededGenerator) -> EventQuery {
        var q = EventQuery()
        if Int.random(in: 0..<3, using: &g) == 0 { q.since = t0.addingTimeInterval(Double(Int.random(in: -100...2000, using: &g)) + 0.5) }
        if Int.random(in: 0..<3, using: &g) == 0 { q.until = t0.addingTimeInterval(Double(Int.random(in: 0...3000, using: &g))) }
        if Bool.random(using: &g) { q.classUIDs = Array(classes.shuffled(using: &g).prefix(Int.random(in: 1...3, using: &g))) }
        if Int.random(in: 0..<3, using: &g) == 0 {
            let u = users.randomElement(using: &g) ?? "alice"
            q.userID = u
            if Bool.random(using: &g) { q.userInPayload = "\"\(u)\"" }
        }
        for _ in 0..<Int.random(in: 0...2, using: &g) { q.payloadContains.append(words.randomElement(using: &g) ?? "deny") }
        return q
    }

    @Test("random queries, both orders, cursors and limits agree with the reference on every backend", arguments: Backend.available)
    func differential(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            var g = SeededGenerator(seed: 20_261_126)
            _ = try await f.store.appendEvents(Self.log(&g, count: 300), hasher: EventChain.hasher)
            let all = try await f.store.events(after: 0, limit: 1000)
            #expect(all.count == 300)
            var nonEmpty = 0
            for round in 0..<150 {
                let q = Self.query(&g)
                let order: EventOrder = Bool.random(using: &g) ? .oldestFirst : .newestFirst
                let cursor: Int64? = Bool.random(using: &g) ? Int64.random(in: 0...310, using: &g) : nil
                let limit = [1, 7, 50, 1000].randomElement(using: &g) ?? 50
                let candidates = order == .oldestFirst ? all.filter { $0.sequence > (cursor ?? 0) } : all.reversed().filter { $0.sequence < (cursor ?? .max) }
                let expected = Array(candidates.filter(q.matches).prefix(limit))
                let got = try await f.store.searchEvents(q, order: order, after: cursor, limit: limit)
                #expect(got.map(\.sequence) == expected.map(\.sequence), "round \(round): \(q) \(order) after \(String(describing: cursor)) limit \(limit)")
                #expect(got == expected, "round \(round): records must come back whole")
                if !expected.isEmpty { nonEmpty += 1 }
            }
            // The generator must exercise matches, not only empty results.
            #expect(nonEmpty > 60, "\(nonEmpty) queries of 150 had results")
            // A substring is exact: case and SQL wildcards count as themselves.
            let upper = try await f.store.searchEvents(EventQuery(payloadContains: ["Deny"]), order: .oldestFirst, after: nil, limit: 1000)
            #expect(upper.allSatisfy { EventQuery.contains($0.event.payloadJSON, "Deny") } && !upper.isEmpty)
            let percent = try await f.store.searchEvents(EventQuery(payloadContains: ["0%_o"]), order: .oldestFirst, after: nil, limit: 1000)
            #expect(percent.allSatisfy { $0.event.payloadJSON.contains("100%_off") })
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("queries beyond the bounds are refused before reading", arguments: Backend.available)
    func bounds(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let bad = [
                EventQuery(payloadContains: [""]),
                EventQuery(payloadContains: ["a\u{0}b"]),
                EventQuery(payloadContains: [String(repeating: "x", count: EventQuery.maxTermBytes + 1)]),
                EventQuery(payloadContains: Array(repeating: "x", count: EventQuery.maxTerms + 1)),
                EventQuery(classUIDs: Array(1...(EventQuery.maxClasses + 1))),
                EventQuery(userID: ""),
            ]
            for q in bad {
                await #expect(throws: StoreError(.invalidInput, "")) { _ = try await f.store.searchEvents(q, order: .newestFirst, after: nil, limit: 10) }
            }
            let maxed = EventQuery(classUIDs: Array(1...EventQuery.maxClasses), payloadContains: Array(repeating: "x", count: EventQuery.maxTerms))
            #expect(try await f.store.searchEvents(maxed, order: .newestFirst, after: nil, limit: 10).isEmpty)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
