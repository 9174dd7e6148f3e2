import Foundation
import Logging
import MenshenCore
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Synchronization
import Testing

/// What every node reads about the detections from the shared cursor, and what it tells the operator (log lines, and
/// the age of the oldest unexamined event for `/metrics`), on a real SQLite file.
@Suite("Detections lag: what every node sees of them")
struct DetectionLagTests {
    @Test("no cursor: a warning, once; the first unexamined event 11 minutes old: a warning naming it; caught up: a notice; nothing after the cursor: no lag")
    func lagAndWarnings() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let log = CapturedLog()
        let ages = Mutex<[TimeInterval]>([])
        let watch = DetectionLagWatch(store: store, clock: FixedClock(now), logger: log.logger, interval: .seconds(60), runsHere: false,
                                      onAge: { age in ages.withLock { $0.append(age) } })
        func lastAge() -> TimeInterval? { ages.withLock { $0.last } }
        func append(at time: Date) async throws -> Int64 {
            let e = NewEvent(id: UUID(), time: time, classUID: 6001, payloadJSON: #"{"class_uid":6001}"#)
            return try #require(try await store.appendEvents([e], hasher: EventChain.hasher).last?.sequence)
        }
        func warnings() -> [String] { log.all.filter { $0.hasPrefix("warning") } }

        #expect(try await DetectionLag.read(store, now: now) == .neverRan(first: nil))
        var state = await watch.check(after: nil)
        #expect(lastAge() == 0, "an empty log: nothing waits")
        state = await watch.check(after: state)
        #expect(warnings().count == 1, "warned once while nothing changed: \(log.all)")
        #expect(warnings().first?.contains("no node has run the detections on this database") == true)
        #expect(warnings().first?.contains("response.detections_enabled is off here") == true)

        let old = try await append(at: now.addingTimeInterval(-11 * 60))
        #expect(try await DetectionLag.read(store, now: now) == .neverRan(first: now.addingTimeInterval(-11 * 60)))
        state = await watch.check(after: state)
        #expect(lastAge() == 660, "never examined: the log's first event has waited 11 minutes")
        try await store.saveCursor(named: DetectionService.cursorName, sequence: old - 1, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .behind(cursor: old - 1, event: old, time: now.addingTimeInterval(-11 * 60)))
        state = await watch.check(after: state)
        #expect(lastAge() == 660)
        state = await watch.check(after: state)
        #expect(warnings().count == 2, "\(log.all)")
        #expect(warnings().last?.contains("the detections are behind the event log") == true)
        #expect(warnings().last?.contains("first_unexamined_event=\(old)") == true, "\(warnings().last ?? "")")

        let recent = try await append(at: now.addingTimeInterval(-9 * 60))
        try await store.saveCursor(named: DetectionService.cursorName, sequence: old, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .keepingUp(cursor: old, unexamined: now.addingTimeInterval(-9 * 60)))
        state = await watch.check(after: state)
        #expect(lastAge() == 540)
        #expect(log.all.last?.hasPrefix("notice the detections keep up with the event log again") == true, "\(log.all)")
        let lines = log.all.count
        _ = await watch.check(after: state)
        #expect(log.all.count == lines, "nothing more while they keep up")

        try await store.saveCursor(named: DetectionService.cursorName, sequence: recent, at: now)
        #expect(try await DetectionLag.read(store, now: now) == .keepingUp(cursor: recent, unexamined: nil))
        _ = await watch.check(after: state)
        #expect(lastAge() == 0, "every event examined")
        try await store.close()
    }

    @Test("on a node that may run the detections itself: the gauge from the first reading, no warning in the first interval, and none naming the key")
    func nodeThatRunsThem() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path)
        let now = Date()
        _ = try await store.appendEvents([NewEvent(id: UUID(), time: now.addingTimeInterval(-30), classUID: 6001, payloadJSON: #"{"class_uid":6001}"#)],
                                         hasher: EventChain.hasher)
        let log = CapturedLog()
        let ages = Mutex<[TimeInterval]>([])
        let watch = DetectionLagWatch(store: store, clock: SystemClock(), logger: log.logger, interval: .milliseconds(300), runsHere: true,
                                      onAge: { age in ages.withLock { $0.append(age) } })
        let task = Task { try? await watch.run() }
        while ages.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(ages.withLock { $0[0] } >= 30, "the first reading at once: \(ages.withLock { $0 })")
        #expect(log.all.isEmpty, "nothing logged at the first reading: \(log.all)")
        while ages.withLock({ $0.count < 2 }) { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        await task.value
        let warnings = log.all.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 1 && warnings[0].contains("no node has run the detections on this database: nothing is detected"), "\(log.all)")
        #expect(!warnings[0].contains("response.detections_enabled"), "this node may run them: \(warnings[0])")
        try await store.close()
    }
}
