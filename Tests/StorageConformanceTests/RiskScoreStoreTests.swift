import Foundation
import MenshenCore
import MenshenStorage
import MenshenStoragePostgres
import MenshenStorageSQLite
import Testing

/// The per-user risk records (migration 9) on every backend: written by the
/// detection service, read by the gateway. A write is an access change (every
/// node's remembered session facts are void at once), a record goes with its
/// user, and bad input stores nothing.
@Suite("Risk score records")
struct RiskScoreStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    @Test("absent until saved, read back, replaced; each write advances the access generation (also through a second handle)",
          arguments: Backend.available)
    func roundTrip(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Self.t0))
            try await s.createUser(UserRecord(id: "bo", displayName: "Bo", createdAt: Self.t0))
            #expect(try await s.riskScore(of: "amy") == nil)
            let before = try await s.changeGenerations()
            let first = RiskScoreRecord(userID: "amy", contributions: #"[{"source":"r","reason":"x","points":35,"time":1}]"#, updatedAt: Self.t0)
            try await s.saveRiskScore(first)
            #expect(try await s.riskScore(of: "amy") == first)
            let afterFirst = try await s.changeGenerations()
            #expect(afterFirst.access > before.access && afterFirst.configuration == before.configuration, "a risk write is an access change")
            let second = RiskScoreRecord(userID: "amy", contributions: "[]", updatedAt: Self.t0.addingTimeInterval(5))
            try await s.saveRiskScore(second)
            #expect(try await s.riskScore(of: "amy") == second)
            #expect(try await s.changeGenerations().access > afterFirst.access, "a replacement is an access change too")
            #expect(try await s.riskScore(of: "bo") == nil, "users are kept apart")
            if let other = try await ChangeFeedTests.secondHandle(backend, f) {
                #expect(try await other.riskScore(of: "amy") == second, "another node reads what this one wrote")
                try await other.close()
            }
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("an unknown user and oversized text are refused and store nothing", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            try await s.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Self.t0))
            let start = try await s.changeGenerations()
            await #expect(throws: StoreError(.notFound, "")) {
                try await s.saveRiskScore(RiskScoreRecord(userID: "ghost", contributions: "[]", updatedAt: Self.t0))
            }
            #expect(try await s.riskScore(of: "ghost") == nil)
            let big = String(repeating: "x", count: RiskScoreLimits.maxContributionBytes + 1)
            await #expect(throws: StoreError(.invalidInput, "")) {
                try await s.saveRiskScore(RiskScoreRecord(userID: "amy", contributions: big, updatedAt: Self.t0))
            }
            #expect(try await s.riskScore(of: "amy") == nil)
            #expect(try await s.changeGenerations() == start, "nothing changed")
            let largest = String(repeating: "x", count: RiskScoreLimits.maxContributionBytes)
            try await s.saveRiskScore(RiskScoreRecord(userID: "amy", contributions: largest, updatedAt: Self.t0))
            #expect(try await s.riskScore(of: "amy")?.contributions == largest)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
