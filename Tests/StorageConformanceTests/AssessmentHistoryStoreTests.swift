import Foundation
import MenshenCore
import MenshenStorage
import Testing

/// The assessment history (migration 14) on every backend: saved documents
/// come back byte for byte with their SHA-256, newest first (by generation
/// time, then by order of saving), bounded; bad records are refused with
/// nothing stored; the SQL backends refuse edits and deletions.
@Suite("Assessment history store")
struct AssessmentHistoryStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func record(_ id: String, at offset: TimeInterval, level: Int = 1) -> AssessmentHistoryRecord {
        AssessmentHistoryRecord(id: id, generatedAt: t0.addingTimeInterval(offset), windowStart: t0.addingTimeInterval(offset - 30 * 86400),
                                windowEnd: t0.addingTimeInterval(offset), overallLevel: level,
                                json: #"{"id":"\#(id)","organisation":"台灣示範銀行","overallLevel":\#(level)}"#)
    }

    @Test("save, latest, list newest first and bounded, get by id", arguments: Backend.available)
    func roundTrip(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            #expect(try await s.latestAssessment() == nil)
            try await s.saveAssessment(Self.record("first", at: 0))
            #expect(try await s.latestAssessment() == Self.record("first", at: 0))
            try await s.saveAssessment(Self.record("second", at: 100, level: 2))
            #expect(try await s.latestAssessment()?.id == "second")
            try await s.saveAssessment(Self.record("backdated", at: 50))
            try await s.saveAssessment(Self.record("same-time", at: 100, level: 3))
            #expect(try await s.assessments(limit: 10).map(\.id) == ["same-time", "second", "backdated", "first"],
                    "by generation time, then the later saved")
            #expect(try await s.latestAssessment()?.id == "same-time")
            #expect(try await s.assessments(limit: 2).map(\.id) == ["same-time", "second"])
            #expect(try await s.assessments(limit: 0).isEmpty)
            let second = try #require(try await s.assessment(id: "second"))
            #expect(second == Self.record("second", at: 100, level: 2) && second.isIntact)
            #expect(second.sha256 == SecretHash.sha256Hex(second.json))
            #expect(try await s.assessment(id: "nope") == nil)
            await #expect(throws: StoreError(.conflict, "")) { try await s.saveAssessment(Self.record("first", at: 500)) }
            #expect(try await s.latestAssessment()?.id == "same-time", "the refused duplicate stored nothing")
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("bad ids, levels, windows, oversized documents and wrong hashes are refused with nothing stored", arguments: Backend.available)
    func badInput(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            let s = f.store
            for bad in ["", "Upper", "a b", String(repeating: "a", count: 65)] {
                var r = Self.record("x", at: 0); r.id = bad
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveAssessment(r) }
            }
            for level in [-1, 5] {
                await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveAssessment(Self.record("lvl", at: 0, level: level)) }
            }
            var r = Self.record("window", at: 0); r.windowStart = r.windowEnd.addingTimeInterval(1)
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveAssessment(r) }
            let big = AssessmentHistoryRecord(id: "big", generatedAt: Self.t0, windowStart: Self.t0, windowEnd: Self.t0, overallLevel: 0,
                                              json: String(repeating: " ", count: AssessmentHistoryLimits.maxDocumentBytes + 1))
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveAssessment(big) }
            r = Self.record("hash", at: 0); r.json += " "
            await #expect(throws: StoreError(.invalidInput, "")) { try await s.saveAssessment(r) }
            #expect(try await s.assessments(limit: 100).isEmpty)
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }

    @Test("the database refuses editing or deleting stored assessments", arguments: Backend.available.filter { $0 != .memory })
    func appendOnly(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        do {
            try await f.store.saveAssessment(Self.record("first", at: 0))
            for sql in ["UPDATE assessments SET overall_level = 4", "UPDATE assessments SET document = '{}'", "DELETE FROM assessments"] {
                await #expect(throws: (any Error).self, "\(sql)") { try await ChangeFeedTests.execute(backend, f, sql) }
            }
            #expect(try await f.store.latestAssessment() == Self.record("first", at: 0))
        } catch { await f.cleanup(); throw error }
        await f.cleanup()
    }
}
