import Foundation
import Logging
import MenshenCore
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// What a node that leaves detections to another (`response.detections_enabled: false`) reads about them from the
/// shared cursor, and what it tells the operator, on a real SQLite file.
@Suite("Detections run by another node: the lag a node without them sees")
struct DetectionLagTests {
    @Test("no cursor: a warning, once; the first unexamined event 11 minutes old: a warning naming it; caught up: a notice; nothing after the cursor: no lag")
    func lagAndWarnings() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let log = CapturedLog()
        let watch = DetectionLagWatch(store: store, clock: FixedClock(now), logger: log.logger, interval: .seconds(60))
        func append(at time: Date) async throws -> Int64 {
            let e = NewEvent(id: UUID(), time: time, classUID: 6001, payloadJSON: #"{"class_uid":6001}"#)
            return try #require(try await store.appendEvents([e], hasher: EventChain.hasher).last?.sequence)
        }
        func warnings() -> [String] { log.all.filter { $0.hasPrefix("warning") } }

        #expect(try await DetectionLag.read(store, now: now) == .neverRan)
        var state = await watch.check(after: .unknown)
        state = await watch.check(after: state)
        #expect(warnings().count == 1, "warned once while nothing changed: \(log.all)")
        #expect(warnings().first?.contains("no node has run the detections on this database") == true)

        let old = try await append(at: now.addingTimeInterval(-11 * 60))
        try await store.saveCursor(named: DetectionService.cursorName, sequence: old - 1, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .behind(cursor: old - 1, event: old, time: now.addingTimeInterval(-11 * 60)))
        state = await watch.check(after: state)
        state = await watch.check(after: state)
        #expect(warnings().count == 2, "\(log.all)")
        #expect(warnings().last?.contains("the detections are behind the event log") == true)
        #expect(warnings().last?.contains("first_unexamined_event=\(old)") == true, "\(warnings().last ?? "")")

        let recent = try await append(at: now.addingTimeInterval(-9 * 60))
        try await store.saveCursor(named: DetectionService.cursorName, sequence: old, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .keepingUp(cursor: old, unexamined: true))
        state = await watch.check(after: state)
        #expect(log.all.last?.hasPrefix("notice the detections keep up with the event log again") == true, "\(log.all)")
        let lines = log.all.count
        _ = await watch.check(after: state)
        #expect(log.all.count == lines, "nothing more while they keep up")

        try await store.saveCursor(named: DetectionService.cursorName, sequence: recent, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .keepingUp(cursor: recent, unexamined: false))
        try await store.close()
    }
}
