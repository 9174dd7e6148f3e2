import Foundation
import Logging
import MenshenCore
import MenshenStorage
@testable import MenshenStoragePostgres
import MenshenStorageSQLite
import PostgresNIO
import Synchronization
import Testing

/// The change feed the gateway re-checks on: the database's own triggers
/// count every committed change by kind (and, on PostgreSQL, NOTIFY every
/// node), whoever the writer is.
@Suite("Store change feed")
struct ChangeFeedTests {
    let t0 = StoreConformanceTests.t0

    /// A second handle on the same database, as another node or the command line would have.
    static func secondHandle(_ backend: Backend, _ f: Fixture) async throws -> (any MenshenStore)? {
        switch backend {
        case .memory: return nil
        case .sqlite: return try SQLiteStore(path: f.location)
        case .postgres: return try await PostgresStore(url: try PostgresURL(f.location))
        }
    }

    /// Raw SQL on the backend's database, as an administrator would run it.
    static func execute(_ backend: Backend, _ f: Fixture, _ sql: String) async throws {
        switch backend {
        case .memory: return
        case .sqlite: try (f.store as? SQLiteStore)?.unsafeExecute(sql)
        case .postgres: try await TestPostgres.execute(on: try PostgresURL(f.location), sql)
        }
    }

    /// Backends on the fixture's PostgreSQL database whose last statement was a change feed's (`LISTEN` or its
    /// `SELECT 1` heartbeat).
    static func listeningBackends(_ f: Fixture) async throws -> Int {
        let database = try PostgresURL(f.location).database ?? ""
        return try await TestPostgres.withAdmin { c in
            let rows = try await c.query(PostgresQuery(unsafeSQL: """
                SELECT count(*)::int8 FROM pg_stat_activity WHERE datname = '\(database)' AND pid <> pg_backend_pid()
                  AND (query ILIKE 'LISTEN%menshen_changes%' OR query = 'SELECT 1')
                """), logger: Logger(label: "test"))
            var n = 0
            for try await (count) in rows.decode(Int64.self) { n = Int(count) }
            return n
        }
    }

    final class Seen: Sendable {
        let changes = Mutex<[(StoreChange, UInt64)]>([])
        func count(_ c: StoreChange) -> Int { changes.withLock { $0.filter { $0.0 == c }.count } }
        func firstTime(_ c: StoreChange, after t: UInt64) -> UInt64? { changes.withLock { $0.first { $0.0 == c && $0.1 > t }?.1 } }
    }

    @Test("each kind of change advances its own counter; a session touch advances none", arguments: Backend.available)
    func generations(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        defer { Task { await f.cleanup() } }
        let s = f.store
        let start = try await s.changeGenerations()
        try await s.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        try await s.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await s.createSession(SessionRecord(idHash: "h1", userID: "amy", createdAt: t0, idleExpiresAt: t0.addingTimeInterval(600),
                                                absoluteExpiresAt: t0.addingTimeInterval(3600), levelOfAssurance: 2, amr: ["pwd"]))
        #expect(try await s.changeGenerations() == start, "creating things revokes nothing")
        _ = try await s.touchSession(idHash: "h1", lastSeenAt: t0.addingTimeInterval(5), idleExpiresAt: t0.addingTimeInterval(605))
        #expect(try await s.changeGenerations() == start, "the per-request touch is not a change")

        var last = start
        func expectAdvanced(_ kind: StoreChange, _ what: String) async throws {
            let now = try await s.changeGenerations()
            #expect(now[kind] > last[kind], "\(what)")
            for other in StoreChange.allCases where other != kind {
                #expect(now[other] == last[other], "\(what) advanced \(other.rawValue) too")
            }
            #expect(now.changes(since: last) == [kind], "\(what)")
            last = now
        }
        try await s.addMember("amy", to: "staff"); try await expectAdvanced(.access, "membership added")
        _ = try await s.revokeSession(idHash: "h1", at: t0, reason: "t"); try await expectAdvanced(.access, "session revoked")
        var amy = try #require(try await s.user("amy"))
        amy.disabled = true
        try await s.updateUser(amy); try await expectAdvanced(.access, "user disabled")
        _ = try await s.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: t0)
        try await expectAdvanced(.configuration, "policy saved")
        try await s.putApplication(ApplicationRecord(id: "wiki", displayName: "Wiki", host: "w", pathPrefix: "/", upstreams: ["http://x"],
                                                     classification: "internal", scenario: nil, updatedAt: t0))
        try await expectAdvanced(.configuration, "application saved")
        // Devices have a counter of their own (migration 18): a fleet's posture reports must not void what the gateway
        // remembers about sessions.
        try await s.createDevice(DeviceRecord(id: "phone-1", ownerID: "amy", displayName: "phone-1", deviceClass: .managed, platform: "ios",
                                              hardwareBound: true, compliant: true, complianceReasons: [], lastPostureAt: t0, enrolledAt: t0))
        try await s.addDeviceCertificate(DeviceCertificateRecord(serial: "09", deviceID: "phone-1", fingerprint: "f9", publicKeyFingerprint: "p9",
                                                                 notBefore: t0, notAfter: t0.addingTimeInterval(86_400)))
        #expect(try await s.changeGenerations() == last, "enrolling a device revokes nothing")
        var phone = try #require(try await s.device("phone-1"))
        phone.compliant = false; phone.complianceReasons = ["disk_encryption"]; phone.lastPostureAt = t0.addingTimeInterval(60)
        #expect(try await s.updateDevice(phone, expectedVersion: phone.version))
        try await expectAdvanced(.device, "a posture report")
        #expect(try await s.revokeDeviceCertificate(serial: "09", at: t0, reason: "lost"))
        try await expectAdvanced(.device, "a device certificate revoked")
        if backend != .memory {
            // Writes outside the store's methods count too: the database's triggers see them.
            try await Self.execute(backend, f, "UPDATE policies SET text = 'forbid (principal, action, resource);' WHERE policy_id = 'p'")
            try await expectAdvanced(.configuration, "a policy edited in SQL")
            try await Self.execute(backend, f, "DELETE FROM sessions")
            try await expectAdvanced(.access, "sessions deleted in SQL")
            // In-place edits (migration 16).
            try await s.createGroup(GroupRecord(id: "ops", displayName: "Ops"))
            #expect(try await s.changeGenerations() == last, "creating a group revokes nothing")
            try await Self.execute(backend, f, "UPDATE group_members SET group_id = 'ops' WHERE user_id = 'amy'")
            try await expectAdvanced(.access, "a membership moved in SQL")
            try await s.createSession(SessionRecord(idHash: "h2", userID: "amy", createdAt: t0, idleExpiresAt: t0.addingTimeInterval(600),
                                                    absoluteExpiresAt: t0.addingTimeInterval(3600), levelOfAssurance: 2, amr: ["pwd"]))
            _ = try await s.touchSession(idHash: "h2", lastSeenAt: t0.addingTimeInterval(5), idleExpiresAt: t0.addingTimeInterval(605))
            #expect(try await s.changeGenerations() == last, "a new session and its touch revoke nothing")
            try await Self.execute(backend, f, "UPDATE sessions SET absolute_expires_at = absolute_expires_at - 1000 WHERE id_hash = 'h2'")
            try await expectAdvanced(.access, "a session's expiry shortened in SQL")
            try await Self.execute(backend, f, "UPDATE sessions SET loa = 1 WHERE id_hash = 'h2'")
            try await expectAdvanced(.access, "a session's LoA lowered in SQL")
            try await s.createDevice(DeviceRecord(id: "laptop-1", ownerID: "amy", displayName: "laptop-1", deviceClass: .managed, platform: "linux",
                                                  hardwareBound: true, compliant: true, complianceReasons: [], lastPostureAt: t0, enrolledAt: t0))
            try await s.addDeviceCertificate(DeviceCertificateRecord(serial: "01", deviceID: "laptop-1", fingerprint: "ab", publicKeyFingerprint: "cd",
                                                                     notBefore: t0, notAfter: t0.addingTimeInterval(86_400)))
            last = try await s.changeGenerations()
            try await Self.execute(backend, f, "UPDATE device_certificates SET not_after = not_after + 1000")
            try await expectAdvanced(.device, "a certificate's validity extended in SQL")
            try await Self.execute(backend, f, "UPDATE device_certificates SET revoked_at = NULL")
            try await expectAdvanced(.device, "a certificate's revocation undone in SQL")
            try await Self.execute(backend, f, "DELETE FROM device_certificates")
            try await expectAdvanced(.device, "certificates deleted in SQL")
            try await Self.execute(backend, f, "UPDATE devices SET state = 'quarantined' WHERE id = 'laptop-1'")
            try await expectAdvanced(.device, "a device quarantined in SQL")
            try await Self.execute(backend, f, "DELETE FROM devices WHERE id = 'phone-1'")
            try await expectAdvanced(.device, "a device deleted in SQL")
            if backend == .postgres {
                try await Self.execute(backend, f, "TRUNCATE group_members")
                try await expectAdvanced(.access, "memberships truncated")
                try await Self.execute(backend, f, "TRUNCATE risk_scores")
                try await expectAdvanced(.access, "risk scores truncated")
                try await Self.execute(backend, f, "TRUNCATE applications")
                try await expectAdvanced(.configuration, "applications truncated")
                try await Self.execute(backend, f, "TRUNCATE devices CASCADE")
                let now = try await s.changeGenerations()
                #expect(now.device > last.device && now.access == last.access && now.configuration == last.configuration,
                        "devices (and their certificates) truncated")
            }
        }
        await f.cleanup()
    }
}

extension ChangeFeedTests {
    @Test("PostgreSQL: a transaction left open after editing a user, an application and a device (an administrator's psql) holds up no revocation, policy save or posture report through the store")
    func openTransactionHoldsNothingUp() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let f = try await Fixture.make(.postgres)
        defer { Task { await f.cleanup() } }
        let s = f.store
        try await s.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        try await s.createUser(UserRecord(id: "bob", displayName: "Bob", createdAt: t0))
        try await s.createSession(SessionRecord(idHash: "h1", userID: "bob", createdAt: t0, idleExpiresAt: t0.addingTimeInterval(600),
                                                absoluteExpiresAt: t0.addingTimeInterval(3600), levelOfAssurance: 2, amr: ["pwd"]))
        try await s.putApplication(ApplicationRecord(id: "wiki", displayName: "Wiki", host: "w", pathPrefix: "/", upstreams: ["http://x"],
                                                     classification: "internal", scenario: nil, updatedAt: t0))
        for id in ["laptop-1", "laptop-2"] {
            try await s.createDevice(DeviceRecord(id: DeviceID(id), ownerID: "bob", displayName: id, deviceClass: .managed, platform: "linux",
                                                  hardwareBound: true, enrolledAt: t0))
        }
        let start = try await s.changeGenerations()

        // The administrator's session: every kind of change made, nothing committed yet.
        let url = try PostgresURL(f.location)
        let admin = try await PostgresConnection.connect(
            configuration: .init(host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable),
            id: 11, logger: Logger(label: "test"))
        let log = Logger(label: "test")
        try await admin.query("BEGIN", logger: log)
        try await admin.query("UPDATE users SET display_name = 'Amy (editing)' WHERE id = 'amy'", logger: log)
        try await admin.query("UPDATE applications SET display_name = 'Wiki (editing)' WHERE id = 'wiki'", logger: log)
        try await admin.query("UPDATE devices SET display_name = 'laptop-2 (editing)' WHERE id = 'laptop-2'", logger: log)

        // Meanwhile, through the store (another node): a revocation, a policy save and a posture report.
        let done = Mutex<[String]>([])
        let work = Task {
            _ = try await s.revokeSession(idHash: "h1", at: t0, reason: "signed out")
            done.withLock { $0.append("revocation") }
            _ = try await s.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: t0)
            done.withLock { $0.append("policy") }
            var laptop = try #require(try await s.device("laptop-1"))
            laptop.compliant = false
            _ = try await s.updateDevice(laptop, expectedVersion: laptop.version)
            done.withLock { $0.append("posture") }
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while done.withLock({ $0.count }) < 3 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let finished = done.withLock { $0 }
        // Let go of the administrator's transaction before waiting for the store's work (it would wait on the locks).
        try await admin.query("ROLLBACK", logger: log)
        try await admin.close()
        try await work.value
        #expect(finished == ["revocation", "policy", "posture"], "held up behind the open transaction: \(finished)")
        let now = try await s.changeGenerations()
        #expect(now.access > start.access && now.configuration > start.configuration && now.device > start.device,
                "every change counted (the rolled-back ones may count too): \(start) → \(now)")
    }
}

extension ChangeFeedTests {
    @Test("PostgreSQL's backstop read reports a kind when its sequence moves and again on the next read (the change may commit after its count)")
    func backstopReportsTwice() {
        let g = { (a: Int64, c: Int64, d: Int64) in ChangeGenerations(access: a, configuration: c, device: d) }
        var last: ChangeGenerations? = nil, movedLastTime: [StoreChange] = []
        var reports: [[StoreChange]] = []
        for now in [g(5, 2, 0), g(5, 2, 0), g(6, 2, 0), g(6, 2, 0), g(6, 2, 0), g(7, 3, 1), g(8, 3, 1), g(8, 3, 1), g(8, 3, 1)] {
            let (report, moved) = PostgresStore.backstopReport(now, last: last, movedLastTime: movedLastTime)
            reports.append(report)
            (last, movedLastTime) = (now, moved)
        }
        #expect(reports == [[], [], [.access], [.access], [], [.access, .configuration, .device], [.access, .configuration, .device], [.access], []])
    }
}

/// Delivery latency of the change feed: run alone (scripts/test runs `Timed…` suites after the parallel pass).
@Suite("Store change feed latency (timed: run alone)")
struct TimedChangeFeedTests {
    let t0 = StoreConformanceTests.t0
    typealias Seen = ChangeFeedTests.Seen

    @Test("a change made through another handle (another node, the command line) reaches the feed within 1 s", arguments: Backend.available)
    func crossHandle(_ backend: Backend) async throws {
        let f = try await Fixture.make(backend)
        let other = try await ChangeFeedTests.secondHandle(backend, f)
        let writer = other ?? f.store
        try await writer.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        try await writer.createSession(SessionRecord(idHash: "h1", userID: "amy", createdAt: t0, idleExpiresAt: t0.addingTimeInterval(600),
                                                     absoluteExpiresAt: t0.addingTimeInterval(3600), levelOfAssurance: 2, amr: ["pwd"]))
        let seen = Seen()
        let feed = f.store.changes()
        let reader = Task {
            for await change in feed { seen.changes.withLock { $0.append((change, DispatchTime.now().uptimeNanoseconds)) } }
        }
        // Let the feed settle: PostgreSQL reports both kinds once LISTEN is in place; pollers read a baseline.
        let settleDeadline = Date().addingTimeInterval(10)
        if backend == .postgres {
            while seen.count(.configuration) == 0 && Date() < settleDeadline { try await Task.sleep(for: .milliseconds(20)) }
        } else {
            try await Task.sleep(for: .milliseconds(400))
        }
        let before = DispatchTime.now().uptimeNanoseconds
        _ = try await writer.revokeSession(idHash: "h1", at: t0, reason: "revoked elsewhere")
        let deadline = Date().addingTimeInterval(5)
        while seen.firstTime(.access, after: before) == nil && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let arrived = try #require(seen.firstTime(.access, after: before), "no access change arrived")
        let latency = Double(arrived - before) / 1e9
        #expect(latency < 1.0, "\(backend.rawValue): the revocation reached the feed after \(latency) s")
        print("change feed: \(backend.rawValue) delivered a revocation made through another handle in \(String(format: "%.3f", latency)) s")
        reader.cancel()
        if let other { try? await other.close() }
        await f.cleanup()
    }
}

extension TimedChangeFeedTests {
    @Test("PostgreSQL: a LISTEN connection the network silently drops (nothing closes) is noticed and replaced, and a change made meanwhile reaches the feed within seconds")
    func silentListenConnection() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let f = try await Fixture.make(.postgres)
        let url = try PostgresURL(f.location)
        let relay = try SilentRelay(to: url.host, port: url.port)
        var relayed = url
        relayed.host = "127.0.0.1"; relayed.port = relay.port
        let node = try await PostgresStore(url: relayed)
        let seen = Seen()
        let feed = node.changes()
        let reader = Task {
            for await change in feed { seen.changes.withLock { $0.append((change, DispatchTime.now().uptimeNanoseconds)) } }
        }
        let settle = Date().addingTimeInterval(10)
        while seen.count(.configuration) == 0 && Date() < settle { try await Task.sleep(for: .milliseconds(20)) }
        #expect(seen.count(.configuration) > 0, "LISTEN never started")
        // Everything this node has open to PostgreSQL goes silent: its LISTEN connection and its pool's connections.
        relay.silenceOpenConnections()
        let before = DispatchTime.now().uptimeNanoseconds
        _ = try await f.store.savePolicy("p", text: "permit (principal, action, resource);", author: "t", comment: "", at: t0)
        let deadline = Date().addingTimeInterval(12)
        while seen.firstTime(.configuration, after: before) == nil && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let arrived = seen.firstTime(.configuration, after: before)
        #expect(arrived != nil, "no change arrived within 12 s of the LISTEN connection going silent")
        if let arrived {
            let latency = Double(arrived - before) / 1e9
            // Heartbeat every 1 s, answer within 2 s, then a new connection reports both kinds.
            #expect(latency < 5, "the change reached the feed \(latency) s after the connection went silent")
            print("change feed: postgres replaced a silent LISTEN connection and delivered the change in \(String(format: "%.3f", latency)) s")
        }
        reader.cancel()
        relay.close()
        try? await node.close()
        await f.cleanup()
    }
}

@Suite("PostgreSQL LISTEN reconnection")
struct ListenRetryTests {
    @Test("close() returns only once the change feed has ended: its stream is finished and its LISTEN connection closed")
    func closeEndsTheFeed() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let f = try await Fixture.make(.postgres)
        let node = try await PostgresStore(url: try PostgresURL(f.location))
        let feed = node.changes()
        var iterator = feed.makeAsyncIterator()
        // LISTEN in place: both kinds are reported once.
        _ = await iterator.next()
        _ = await iterator.next()
        // The query below sees this node's LISTEN connection while it is open (so the check after close can fail).
        var open = 0
        for _ in 0..<40 where open == 0 {
            open = try await ChangeFeedTests.listeningBackends(f)
            if open == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(open == 1, "the LISTEN connection is not seen in pg_stat_activity")
        try await node.close()
        // Finished already: the next look returns nil at once instead of waiting for the heartbeat to notice (up to 1 s).
        let ended = Mutex<Bool>(false)
        let drain = Task {
            var it = iterator
            while await it.next() != nil {}
            ended.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(150))
        #expect(ended.withLock { $0 }, "the feed's stream was still open after close() returned")
        drain.cancel()
        // No connection of the closed node is left on the server (the backend ends as soon as the socket is closed).
        var left = -1
        for _ in 0..<20 {
            left = try await ChangeFeedTests.listeningBackends(f)
            if left == 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(left == 0, "\(left) LISTEN connection(s) still open after close()")
        await f.cleanup()
    }

    @Test("a feed its consumer ends is forgotten by the store and its LISTEN connection closed; the others stay")
    func endedFeedForgotten() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let f = try await Fixture.make(.postgres)
        let node = try await PostgresStore(url: try PostgresURL(f.location))
        let kept = node.changes()
        var keptIterator = kept.makeAsyncIterator()
        _ = await keptIterator.next()
        for round in 1...5 {
            let reader = Task {
                var it = node.changes().makeAsyncIterator()
                _ = await it.next()
            }
            // The stream and its iterator are gone once the reader ends: the feed ends. (Bounded: a reader that never
            // gets its first change fails the test instead of hanging the pass.)
            let watchdog = Task { try await Task.sleep(for: .seconds(30)); reader.cancel() }
            _ = await reader.value
            watchdog.cancel()
            // Forgotten once its LISTEN and poll tasks have ended (their connection closed): quick, but a loaded
            // parallel pass can take a second or more.
            var open = -1
            for _ in 0..<400 {
                open = node.openFeeds
                if open == 1 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(open == 1, "round \(round): \(open) feeds still held")
        }
        var listening = -1
        for _ in 0..<200 {
            listening = try await ChangeFeedTests.listeningBackends(f)
            if listening == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(listening == 1, "\(listening) LISTEN connections: the ended feeds' should be closed")
        try await node.close()
        #expect(node.openFeeds == 0)
        await f.cleanup()
    }

    @Test("after a loss the first retry is at once, then 1, 2, 4 and at most 8 s (a LISTEN lost soon after it started counts)")
    func delays() {
        #expect((0...7).map { PostgresStore.listenRetryDelay($0) } == [.zero, .zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
    }
}

@Suite("Change feed, merged for a slow consumer")
struct CoalescedChangesTests {
    @Test("what arrives while the consumer is busy becomes one batch with each kind once; nothing is lost or repeated")
    func mergesWhileBusy() async throws {
        let (source, feed) = AsyncStream.makeStream(of: StoreChange.self, bufferingPolicy: .unbounded)
        let merged = CoalescedChanges(source)
        var batches = merged.batches().makeAsyncIterator()
        feed.yield(.access)
        let first = try #require(await batches.next())
        #expect(first == [.access])
        // The consumer is busy with `first` (a sweep) for a second: 50 access changes and a configuration change arrive meanwhile.
        for _ in 0..<50 { feed.yield(.access) }
        feed.yield(.configuration)
        try await Task.sleep(for: .seconds(1))
        #expect(await batches.next() == [.access, .configuration], "one batch, each kind once")
        // Nothing more is pending: the end of the source ends the batches.
        feed.finish()
        #expect(await batches.next() == nil)
    }

    @Test("cancel ends the batches")
    func cancelEnds() async {
        let (source, feed) = AsyncStream.makeStream(of: StoreChange.self)
        let merged = CoalescedChanges(source)
        merged.cancel()
        var batches = merged.batches().makeAsyncIterator()
        #expect(await batches.next() == nil)
        feed.finish()
    }
}
