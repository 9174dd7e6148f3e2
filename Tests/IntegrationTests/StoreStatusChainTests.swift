import Foundation
import MenshenStorage
import MenshenStorageSQLite
import Testing

/// `menshen store status` checks the event chain page by page (flat memory on a long
/// log): a break after the first page, and one exactly at a page boundary, are
/// still found at the right sequence.
@Suite struct StoreStatusChainTests {
    static func event(_ n: Int) -> NewEvent {
        NewEvent(id: UUID(), time: Date(timeIntervalSince1970: 1_795_000_000 + Double(n)), classUID: 3002, severityID: 1,
                 payloadJSON: #"{"class_uid":3002,"n":\#(n)}"#)
    }

    @Test("the chain check of store status finds breaks beyond and at page boundaries")
    func pagedChainCheck() async throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("menshen-data").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let path = data + "/menshen.sqlite"
        let store = try SQLiteStore(path: path)
        for start in stride(from: 1, through: 2_500, by: 500) {
            _ = try await store.appendEvents((start..<start + 500).map(Self.event), hasher: EventChain.hasher)
        }
        try await store.close()

        var r = try await Harness.runAsync(["store", "status", "--data", data])
        #expect(r.status == 0 && r.out.contains("event chain:     intact (2500 records)"), "\(r)")

        let tamper = try SQLiteStore(path: path)
        try tamper.unsafeExecute("DROP TRIGGER IF EXISTS events_no_update")
        try tamper.unsafeExecute("DROP TRIGGER IF EXISTS events_no_delete")
        try tamper.unsafeExecute("UPDATE events SET payload = replace(payload, '\"n\":1500', '\"n\":1501') WHERE seq = 1500")
        try await tamper.close()
        r = try await Harness.runAsync(["store", "status", "--data", data])
        #expect(r.status == 1 && r.out.contains("event chain:     BROKEN at sequence 1500"), "\(r)")

        let again = try SQLiteStore(path: path)
        try again.unsafeExecute("DELETE FROM events WHERE seq = 1001")
        try await again.close()
        r = try await Harness.runAsync(["store", "status", "--data", data])
        #expect(r.status == 1 && r.out.contains("event chain:     BROKEN at sequence 1002"), "\(r)")
    }
}
