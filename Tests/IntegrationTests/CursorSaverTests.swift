import Foundation
import Logging
import MenshenCore
@testable import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// The detections cursor's writer (``CursorSaver``) on a real SQLite file: it saves the last sequence looked at, never an
/// older one, and calls that come while a save is under way are folded into it.
@Suite("Detections cursor saver (real SQLite)")
struct CursorSaverTests {
    @Test("saves the newest sequence noted; an older note never moves it back; nothing is written when nothing is new")
    func savesNewest() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cursor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("m.sqlite").path)
        let clock = FixedClock(Date(timeIntervalSince1970: 1_800_000_000))
        let saver = CursorSaver(store: store, clock: clock, logger: Logger(label: "test"))

        await saver.saveIfBehind()
        #expect(try await store.cursor(named: DetectionService.cursorName) == nil, "nothing noted, nothing saved")
        await saver.note(7)
        await saver.note(12)
        await saver.note(9)   // out of order: the newest stays
        await saver.saveIfBehind()
        #expect(try await store.cursor(named: DetectionService.cursorName) == 12)

        // Many callers at once while notes keep coming: the end state is the newest note, whatever the interleaving.
        await withTaskGroup(of: Void.self) { group in
            for n in Int64(13)...60 {
                group.addTask {
                    await saver.note(n)
                    await saver.saveIfBehind()
                }
            }
        }
        await saver.saveIfBehind()
        #expect(try await store.cursor(named: DetectionService.cursorName) == 60)

        // Called from a cancelled task (shutdown): the write still happens — the store refuses a cancelled task's own write.
        await saver.note(75)
        let cancelled = Task {
            try? await Task.sleep(for: .seconds(30))   // ends at once when cancelled
            await saver.saveIfBehind()
        }
        cancelled.cancel()
        await cancelled.value
        #expect(try await store.cursor(named: DetectionService.cursorName) == 75, "not saved from a cancelled task")

        // A value written by someone else (an operator's reset) is not overwritten when nothing new was looked at.
        try await store.saveCursor(named: DetectionService.cursorName, sequence: 3, at: clock.now())
        await saver.saveIfBehind()
        #expect(try await store.cursor(named: DetectionService.cursorName) == 3)
    }
}
