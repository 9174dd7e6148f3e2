import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage
import MenshenStorageSQLite
import MenshenVisibility
import Testing

/// The HTTPS webhook export against a real HTTPS receiver (`scripts/webhook-export-receiver.py`: Python's
/// `http.server` over `ssl`, certificates from a throwaway `openssl` CA) on real SQLite stores of events
/// written by the real producers: every event exactly once and byte for byte under no failures; nothing
/// lost while the receiver is down or misbehaves (500, 429 with Retry-After, garbage, a hang, a 4xx, a lost
/// acknowledgement), with the cursor never past an unacknowledged batch; wrong CA and missing client
/// certificate refused. Back-off and timeouts make it slow, so `Timed…`: scripts/test runs it alone.
@Suite("Timed webhook export", .serialized)
struct TimedWebhookExportTests {
    static let clock = FixedClock(Date(timeIntervalSince1970: 1_795_399_200))

    /// A fresh SQLite store, a temporary directory and the PKI in it.
    static func setUp() async throws -> (SQLiteStore, URL, WebhookTestPKI) {
        let dir = try Harness.tempDir()
        let pki = try await Harness.offPool { try WebhookTestPKI.make(in: dir) }
        return (try SQLiteStore(path: dir.appendingPathComponent("menshen.sqlite").path), dir, pki)
    }

    /// The body the exporter must send for these events: the JSON Lines export's line for each, in order.
    static func expectedBody(_ events: [StoredEvent]) -> String {
        #"{"events":["# + events.map(AuditEventText.jsonLine).joined(separator: ",") + "]}"
    }

    @Test("no failures: every event exactly once, in order, byte for byte as the JSON Lines line, with the bearer token and batch headers")
    func exactlyOnce() async throws {
        let (store, dir, pki) = try await Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki)
        defer { receiver.stop() }
        let events = try await NastyEvents.append(120, to: store, clock: Self.clock)
        let bySequence = Dictionary(uniqueKeysWithValues: events.map { ($0.sequence, $0) })
        // 16 KiB bodies: the 400-character names make some batches split by size before 25 events.
        let settings = WebhookExportSettings.test(port: receiver.port, pki: pki, batchSize: 25, maxBatchBytes: 16_384)
        let running = RunningWebhookExporter(try WebhookExporter(store: store, settings: settings, clock: Self.clock))
        let done = try await running.waitAcknowledged(events.last?.sequence ?? 0)
        try await Task.sleep(for: .milliseconds(300))
        await running.stop()
        #expect(done, "\(running.exporter.status)")

        let requests = receiver.requests
        #expect(requests.flatMap(\.events).map(\.sequence) == events.map(\.sequence), "every event once, in order")
        #expect(requests.flatMap(\.events).map(\.id) == events.map { $0.event.id.uuidString.lowercased() })
        #expect(requests.count > 120 / 25, "some requests were cut by size: \(requests.map(\.events.count))")
        for r in requests {
            let batch = r.events.compactMap { bySequence[$0.sequence] }
            #expect(r.body == Self.expectedBody(batch), "the body is the stored events' lines, byte for byte")
            #expect(r.body.utf8.count <= 16_384 || r.events.count == 1)
            let range = "\(r.events.first?.sequence ?? -1)-\(r.events.last?.sequence ?? -1)"
            #expect(r.headers["authorization"] == "Bearer test-token-0123456789")
            #expect(r.headers["content-type"] == "application/json")
            #expect(r.headers["x-menshen-batch"] == range && r.headers["idempotency-key"] == "menshen-\(range)")
            #expect(r.headers["user-agent"] == "Menshen/\(MenshenCore.version)")
        }
        // Each event as the receiver parsed it carries the stored fields and the OCSF event as stored.
        let first = try #require(requests.first)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [String: Any])
        let one = try #require((parsed["events"] as? [[String: Any]])?.first)
        let stored = events[0]
        #expect(one["hash"] as? String == stored.hash && one["prev_hash"] as? String == stored.previousHash)
        #expect(one["class_uid"] as? Int == stored.event.classUID)
        let ocsf = try #require(try JSONSerialization.jsonObject(with: Data(stored.event.payloadJSON.utf8)) as? NSDictionary)
        #expect((one["event"] as? NSDictionary) == ocsf)
        #expect(try await store.cursor(named: "export.webhook") == events.last?.sequence)
        let status = running.exporter.status
        #expect(status.eventsDelivered == 120 && status.failedAttempts == 0 && status.batchesDelivered == requests.count, "\(status)")
        try await store.close()
    }

    @Test("receiver down, then up, and an acknowledgement lost: nothing lost, duplicates only of that batch (de-duplicated by id), restart resumes")
    func receiverDown() async throws {
        let (store, dir, pki) = try await Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try Harness.freePort()
        let events = try await NastyEvents.append(60, to: store, clock: Self.clock)
        let settings = WebhookExportSettings.test(port: port, pki: pki, batchSize: 25)
        let running = RunningWebhookExporter(try WebhookExporter(store: store, settings: settings, clock: Self.clock))

        // Nothing listens: the export keeps trying (each attempt retries the connection for its 1 s timeout, then backs off
        // 0.1 s doubling to 0.5 s), never moving the cursor.
        try await Task.sleep(for: .seconds(4))
        let down = running.exporter.status
        #expect(down.acknowledgedSequence == 0 && down.eventsDelivered == 0, "\(down)")
        #expect(down.failedAttempts >= 2 && down.failedAttempts <= 20, "keeps trying, backing off instead of spinning: \(down.failedAttempts) attempts in 4 s")
        #expect(down.lastError?.contains("Connection refused") == true, "\(down.lastError ?? "")")
        #expect(try await store.cursor(named: "export.webhook") ?? 0 == 0)

        // Up, but the first request's answer is lost (the receiver reads it, then closes without answering).
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki, port: port, answers: ["drop"])
        defer { receiver.stop() }
        #expect(try await running.waitAcknowledged(events.last?.sequence ?? 0))
        await running.stop()
        let received = receiver.requests.flatMap(\.events)
        let ids = received.map(\.id)
        #expect(Set(ids) == Set(events.map { $0.event.id.uuidString.lowercased() }), "every event arrived")
        let dropped = receiver.requests.first?.events.map(\.id) ?? []
        #expect(receiver.requests.first?.answer == "drop" && dropped.count == 25)
        #expect(ids.count - Set(ids).count == dropped.count, "the only duplicates are the batch whose answer was lost")
        #expect(receiver.acknowledged.map(\.sequence) == events.map(\.sequence), "the acknowledged requests hold every event once, in order")
        #expect(try await store.cursor(named: "export.webhook") == events.last?.sequence)

        // A new exporter (as after a restart) sends only what came after the saved cursor.
        let more = try await NastyEvents.append(5, to: store, clock: Self.clock, offset: 60)
        let before = receiver.requests.count
        let again = RunningWebhookExporter(try WebhookExporter(store: store, settings: settings, clock: Self.clock))
        #expect(try await again.waitAcknowledged(more.last?.sequence ?? 0))
        await again.stop()
        #expect(receiver.requests.dropFirst(before).flatMap(\.events).map(\.sequence) == more.map(\.sequence))
        try await store.close()
    }

    @Test("500, 429 with Retry-After, garbage, a hang past the timeout and a 400: retried with back-off, the cursor stays until a 2xx, nothing lost")
    func misbehavingReceiver() async throws {
        let (store, dir, pki) = try await Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki, answers: ["500", "429:1", "garbage", "hang", "400"])
        defer { receiver.stop() }
        let events = try await NastyEvents.append(30, to: store, clock: Self.clock)
        let log = CapturedLog()
        let settings = WebhookExportSettings.test(port: receiver.port, pki: pki, batchSize: 10, maxBackoff: .seconds(2))
        let running = RunningWebhookExporter(try WebhookExporter(store: store, settings: settings, clock: Self.clock, logger: log.logger))
        // While the first batch is not acknowledged, neither the exporter nor the saved cursor moves.
        var cursorsSeen: Set<Int64> = []
        let deadline = ContinuousClock.now + .seconds(30)
        // Sample first, then keep the sample only if no 2xx had been answered yet: the receiver records a request before
        // answering it, so a cursor that moved on an acknowledgement always finds that "ok" in the log.
        while ContinuousClock.now < deadline {
            let sample = [try await store.cursor(named: "export.webhook") ?? 0, running.exporter.status.acknowledgedSequence]
            if receiver.requests.contains(where: { $0.answer == "ok" }) { break }
            cursorsSeen.formUnion(sample)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(cursorsSeen == [0], "never past the unacknowledged batch: \(cursorsSeen)")
        #expect(try await running.waitAcknowledged(events.last?.sequence ?? 0))
        await running.stop()

        let requests = receiver.requests
        #expect(requests.prefix(6).map(\.answer) == ["500", "429:1", "garbage", "hang", "400", "ok"])
        #expect(requests.prefix(6).allSatisfy { $0.headers["x-menshen-batch"] == "1-10" }, "the same batch each time")
        #expect(requests.prefix(6).allSatisfy { $0.body == requests[0].body })
        if requests.count >= 6 {
            #expect(requests[2].time - requests[1].time >= 0.95, "Retry-After: 1 honoured")
            #expect(requests[4].time - requests[3].time >= 0.95, "the hang was abandoned after the 1 s timeout")
            for i in 1..<5 { #expect(requests[i].time > requests[i - 1].time + 0.09, "a back-off between attempts") }
        }
        #expect(receiver.acknowledged.map(\.sequence) == events.map(\.sequence), "every event acknowledged once, in order")
        let status = running.exporter.status
        #expect(status.failedAttempts == 5 && status.rejections == 1, "\(status)")
        #expect(log.all.contains { $0.hasPrefix("error") && $0.contains("rejected") && $0.contains("HTTP 400") }, "\(log.all)")
        #expect(log.all.contains { $0.contains("HTTP 500") } && log.all.contains { $0.contains("HTTP 429") })
        #expect(try await store.cursor(named: "export.webhook") == events.last?.sequence)

        // A Retry-After far beyond the cap waits only the cap (2 s here), an HTTP date is read too.
        #expect(WebhookExportTests.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: "Wed, 21 Oct 2015 07:27:00 GMT") == .seconds(60))
        let capped = try await WebhookExportReceiver.start(dir: dir, pki: pki, answers: ["429:3600"])
        defer { capped.stop() }
        let more = try await NastyEvents.append(3, to: store, clock: Self.clock, offset: 30)
        let second = RunningWebhookExporter(try WebhookExporter(store: store, settings: WebhookExportSettings.test(port: capped.port, pki: pki, maxBackoff: .seconds(2)),
                                                                clock: Self.clock))
        #expect(try await second.waitAcknowledged(more.last?.sequence ?? 0, timeout: .seconds(20)))
        await second.stop()
        let gap = capped.requests.count >= 2 ? capped.requests[1].time - capped.requests[0].time : 0
        #expect(gap >= 1.9 && gap < 15, "Retry-After: 3600 capped at max_backoff: \(gap) s")
        try await store.close()
    }

    @Test("an answer cut off after a 200 head is no acknowledgement (sent again); a flood of an answer is read only to 64 KiB and acknowledges")
    func cutAndFloodedAnswers() async throws {
        let (store, dir, pki) = try await Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki, answers: ["short", "big"])
        defer { receiver.stop() }
        let events = try await NastyEvents.append(30, to: store, clock: Self.clock)
        let running = RunningWebhookExporter(try WebhookExporter(store: store, settings: .test(port: receiver.port, pki: pki, batchSize: 10),
                                                                 clock: Self.clock))
        #expect(try await running.waitAcknowledged(events.last?.sequence ?? 0))
        await running.stop()
        let requests = receiver.requests
        #expect(requests.map(\.answer) == ["short", "big", "ok", "ok"], "\(requests.map(\.answer))")
        #expect(requests.prefix(2).allSatisfy { $0.headers["x-menshen-batch"] == "1-10" }, "the cut answer's batch was sent again")
        #expect(receiver.acknowledged.map(\.sequence) == events.map(\.sequence))
        let status = running.exporter.status
        #expect(status.failedAttempts == 1 && status.batchesDelivered == 3, "\(status)")
        try await store.close()
    }

    @Test("a receiver certificate from another CA: nothing delivered, the cursor unchanged, a clear error; mutual TLS needs the client certificate")
    func tlsRefusals() async throws {
        let (store, dir, pki) = try await Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let events = try await NastyEvents.append(20, to: store, clock: Self.clock)
        let receiver = try await WebhookExportReceiver.start(dir: dir, pki: pki)
        defer { receiver.stop() }
        let log = CapturedLog()
        let wrong = RunningWebhookExporter(try WebhookExporter(store: store, settings: .test(port: receiver.port, pki: pki, caFile: pki.otherCAFile),
                                                               clock: Self.clock, logger: log.logger))
        try await Task.sleep(for: .seconds(3))
        await wrong.stop()
        let status = wrong.exporter.status
        #expect(receiver.requests.isEmpty, "no request got through")
        #expect(status.acknowledgedSequence == 0 && status.failedAttempts >= 1, "\(status)")
        #expect(try await store.cursor(named: "export.webhook") ?? 0 == 0)
        #expect(status.lastError?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(status.lastError ?? "")")
        #expect(log.all.contains { $0.hasPrefix("warning") && $0.contains("CERTIFICATE_VERIFY_FAILED") }, "\(log.all.prefix(3))")

        // Mutual TLS: without a client certificate the receiver refuses the handshake; with one from its CA it takes every event.
        let strict = try await WebhookExportReceiver.start(dir: dir, pki: pki, clientCA: pki.caFile)
        defer { strict.stop() }
        let anonymous = RunningWebhookExporter(try WebhookExporter(store: store, settings: .test(port: strict.port, pki: pki), clock: Self.clock))
        try await Task.sleep(for: .seconds(3))
        await anonymous.stop()
        #expect(strict.requests.isEmpty && !strict.tlsErrors.isEmpty && anonymous.exporter.status.acknowledgedSequence == 0)
        let mutual = RunningWebhookExporter(try WebhookExporter(store: store, settings: .test(port: strict.port, pki: pki, client: true), clock: Self.clock))
        #expect(try await mutual.waitAcknowledged(events.last?.sequence ?? 0))
        await mutual.stop()
        #expect(strict.acknowledged.map(\.sequence) == events.map(\.sequence))
        try await store.close()
    }
}
