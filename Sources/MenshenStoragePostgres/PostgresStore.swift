/// MenshenStoragePostgres — the shared store for several gateway nodes, on
/// PostgreSQL through postgres-nio. Implements every `MenshenStore` protocol
/// and passes the same conformance suite as the SQLite backend.
import Foundation
import Logging
import MenshenCore
import MenshenStorage
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// Set once, when the store closes (read by the LISTEN loop).
final class ClosedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// A `MenshenStore` on PostgreSQL.
public final class PostgresStore: MenshenStore {
    public let url: PostgresURL
    private let client: PostgresClient
    /// For the LISTEN connection, which is not taken from the pool (``changes()``).
    private let listenConfiguration: PostgresConnection.Configuration
    private let runTask: Task<Void, Never>
    private let logger: Logger
    private let closed = ClosedFlag()
    /// The open change feeds' tasks (LISTEN and the counter poll) by feed: ``close()`` ends them and waits for
    /// them, so no connection of this store outlives it. A feed whose consumer ended is forgotten once its tasks
    /// have ended.
    private let feedTasks = Mutex<(next: Int, open: [Int: [Task<Void, Never>]])>((0, [:]))

    /// How many change feeds are open (asked for with ``changes()`` and neither ended by their consumer nor closed).
    public var openFeeds: Int { feedTasks.withLock { $0.open.count } }
    public var backendName: String { "postgres" }

    /// Key of the advisory lock that serialises migrations across nodes.
    static let migrationLockKey: Int64 = 0x4D45_4E53_4845_4E01
    /// Key of the advisory lock that serialises appends to the event chain.
    static let eventChainLockKey: Int64 = 0x4D45_4E53_4845_4E02

    /// Connects, applies pending migrations (serialised across nodes with an
    /// advisory lock) and starts a connection pool. An unreachable server,
    /// failed authentication or a database newer than this binary throws a
    /// `StoreError` naming the server (never its password).
    public init(url: PostgresURL, migrations: [Migration] = PostgresMigrations.all, poolSize: Int = 10,
                connectTimeout: Duration = .seconds(5), logger: Logger = Logger(label: "menshen.store.postgres")) async throws {
        self.url = url
        self.logger = logger
        let tls: PostgresConnection.Configuration.TLS
        let clientTLS: PostgresClient.Configuration.TLS
        switch url.tls {
        case .disable:
            tls = .disable; clientTLS = .disable
        case .prefer:
            tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            clientTLS = .prefer(.makeClientConfiguration())
        case .require:
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            clientTLS = .require(.makeClientConfiguration())
        }
        // One direct connection first: it gives a prompt, clear error when the
        // server is unreachable (the pool would retry silently) and runs migrations.
        var connConfig = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.username,
                                                          password: url.password, database: url.database, tls: tls)
        connConfig.options.connectTimeout = TimeAmount.nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000)
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: connConfig, id: 1, logger: logger)
        } catch {
            throw Self.map(error, url: url)
        }
        do {
            try await Self.migrate(connection, migrations: migrations, url: url, logger: logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw Self.map(error, url: url)
        }
        self.listenConfiguration = connConfig
        var config = PostgresClient.Configuration(host: url.host, port: url.port, username: url.username,
                                                  password: url.password, database: url.database, tls: clientTLS)
        config.options.maximumConnections = max(1, poolSize)
        config.options.connectTimeout = connectTimeout
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        self.runTask = Task { await client.run() }
        // Let the pool's run loop start before the first lease (postgres-nio warns otherwise).
        try? await Task.sleep(for: .milliseconds(50))
    }

    static func map(_ error: any Error, url: PostgresURL) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? PSQLError {
            if e.code == .server {
                let state = e.serverInfo?[.sqlState] ?? ""
                let message = e.serverInfo?[.message] ?? "server error"
                switch state {
                case "23505": return StoreError(.conflict, "\(url): \(message)")
                case "23503": return StoreError(.notFound, "\(url): \(message)")
                case "28000", "28P01": return StoreError(.unavailable, "\(url): authentication failed (\(message))")
                case "3D000": return StoreError(.unavailable, "\(url): \(message)")
                default: return StoreError(.backend, "\(url): \(message) (SQLSTATE \(state))")
                }
            }
            if e.code == .connectionError || e.code == .serverClosedConnection {
                return StoreError(.unavailable, "\(url): PostgreSQL is unreachable (\(e.underlying.map { "\($0)" } ?? "\(e.code)"))")
            }
            return StoreError(.backend, "\(url): \(e.code)")
        }
        if error is NIOConnectionError || error is IOError || error is ChannelError {
            return StoreError(.unavailable, "\(url): PostgreSQL is unreachable (\(error))")
        }
        if error is CancellationError { return StoreError(.unavailable, "\(url): operation cancelled") }
        return StoreError(.unavailable, "\(url): \(error)")
    }

    private static func migrate(_ c: PostgresConnection, migrations: [Migration], url: PostgresURL, logger: Logger) async throws {
        try await c.query("SELECT pg_advisory_lock(\(migrationLockKey))", logger: logger)
        do {
            try await c.query("""
                CREATE TABLE IF NOT EXISTS menshen_schema_migrations (
                  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """, logger: logger)
            var current = 0
            for try await v in try await c.query("SELECT COALESCE(MAX(version), 0) FROM menshen_schema_migrations", logger: logger)
                .decode(Int.self) { current = v }
            switch MigrationPlan.plan(current: current, known: migrations) {
            case .upToDate: break
            case .tooNew(let database, let known):
                throw MigrationPlan.tooNewError(database: database, known: known, location: "\(url)")
            case .apply(let versions):
                for v in versions {
                    guard let m = migrations.first(where: { $0.version == v }) else { continue }
                    try await c.withTransaction(logger: logger) { tx in
                        for s in m.statements { try await tx.query(PostgresQuery(unsafeSQL: s), logger: logger) }
                        try await tx.query("""
                            INSERT INTO menshen_schema_migrations(version, name, applied_at)
                            VALUES (\(m.version), \(m.name), \(StoreCoding.millis(Date())))
                            """, logger: logger)
                    }
                }
            }
        } catch {
            _ = try? await c.query("SELECT pg_advisory_unlock(\(migrationLockKey))", logger: logger)
            throw error
        }
        try await c.query("SELECT pg_advisory_unlock(\(migrationLockKey))", logger: logger)
    }

    // MARK: Query helpers

    private func run(_ q: PostgresQuery) async throws {
        do { try await client.query(q, logger: logger) } catch { throw Self.map(error, url: url) }
    }

    private func rows<each T: PostgresDecodable & Sendable>(_ q: PostgresQuery, as type: (repeat each T).Type)
        async throws -> [(repeat each T)]
    {
        do {
            var out: [(repeat each T)] = []
            for try await row in try await client.query(q, logger: logger) { out.append(try row.decode(type)) }
            return out
        } catch { throw Self.map(error, url: url) }
    }

    private func exists(_ q: PostgresQuery) async throws -> Bool {
        try await !rows(q, as: (Int.self)).isEmpty
    }

    public func ping() async throws {
        _ = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { _ = try await self.rows("SELECT 1", as: (Int.self)); return true }
            group.addTask { try await Task.sleep(for: .seconds(3)); return false }
            defer { group.cancelAll() }
            guard let ok = try await group.next(), ok else {
                throw StoreError(.unavailable, "\(self.url): PostgreSQL did not answer within 3 s")
            }
            return ok
        }
    }

    public func schemaVersion() async throws -> Int {
        try await rows("SELECT COALESCE(MAX(version), 0) FROM menshen_schema_migrations", as: (Int.self)).first ?? 0
    }

    // MARK: Changes

    public func changeGenerations() async throws -> ChangeGenerations {
        var g = ChangeGenerations(access: 0, configuration: 0)
        for (kind, value) in try await rows("SELECT kind, generation FROM change_counters", as: (String, Int64).self) {
            if let k = StoreChange(rawValue: kind) { g[k] = value }
        }
        return g
    }

    /// What one backstop read reports: the kinds whose counter moved since the `last` read, and those that moved on
    /// the read before it (`movedLastTime`), since a sequence moves before its change commits. Returns the report, in
    /// ``StoreChange/allCases`` order, and what moved now (the next read's `movedLastTime`). The first read reports nothing.
    static func backstopReport(_ now: ChangeGenerations, last: ChangeGenerations?,
                               movedLastTime: [StoreChange]) -> (report: [StoreChange], moved: [StoreChange]) {
        let moved = last.map { now.changes(since: $0) } ?? []
        return (StoreChange.allCases.filter { moved.contains($0) || movedLastTime.contains($0) }, moved)
    }

    /// LISTEN on `menshen_changes` over a connection of its own (not the pool's: held for as long as the
    /// stream is consumed, it would take a pooled connection away for good, and with `pool_size: 1` every other
    /// store call would wait forever); the triggers of migration 4 NOTIFY at commit, so a change made on any node
    /// arrives here.
    ///
    /// A LISTEN connection can die without an error reaching it (a failover, a NAT or firewall dropping the flow):
    /// it would wait for notifications forever while this node missed every change. So the connection is asked a
    /// `SELECT 1` every ``listenHeartbeat``; an answer that takes longer than ``listenHeartbeatTimeout`` closes it
    /// and a new one is made. On (re)connecting every kind is reported, since changes may have been missed
    /// meanwhile; the first retry after a loss is at once, later ones every second, until the store closes. The
    /// counters are also read every ``changeBackstopInterval``.
    public func changes() -> AsyncStream<StoreChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreChange.self, bufferingPolicy: .unbounded)   // a burst of one kind must not push out another
        let configuration = self.listenConfiguration, logger = self.logger, closed = self.closed
        let task = Task {
            var failures = 0
            while !Task.isCancelled && !closed.isSet {
                let listening = ClosedFlag()   // set once LISTEN is in place on this connection
                var connectedAt = ContinuousClock.now
                do {
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
                    connectedAt = .now
                    do {
                        // Cancelled (the feed's consumer went away): the connection is closed, which ends the LISTEN.
                        try await withTaskCancellationHandler { try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                try await connection.listen(on: "menshen_changes") { notifications in
                                    listening.set()
                                    for kind in StoreChange.allCases { continuation.yield(kind) }
                                    for try await n in notifications {
                                        if let change = StoreChange(rawValue: n.payload) { continuation.yield(change) }
                                    }
                                }
                                throw StoreError(.unavailable, "the LISTEN connection ended")
                            }
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: Self.listenHeartbeat)
                                    if closed.isSet { throw CancellationError() }
                                    guard await Self.answers(connection, within: Self.listenHeartbeatTimeout, logger: logger) else {
                                        throw StoreError(.unavailable, "the LISTEN connection did not answer within \(Self.listenHeartbeatTimeout)")
                                    }
                                }
                            }
                            try await group.next()
                        } } onCancel: {
                            connection.close().whenComplete { _ in }
                        }
                    } catch {
                        // Closed before it is let go (postgres-nio asserts that); a local close, quick on a dead network too.
                        try? await connection.close()
                        throw error
                    }
                } catch {
                    if Task.isCancelled || closed.isSet { break }
                    // A connection that listened for a while is retried at once; one that never got there, or lost its LISTEN
                    // soon after (a database too slow for the heartbeat), after 1, 2, 4, 8 s — each new LISTEN reports
                    // every kind of change, and every node then reloads and re-checks its connections.
                    failures = listening.isSet && connectedAt.duration(to: .now) >= Self.listenSettled ? 1 : failures + 1
                    logger.warning("LISTEN menshen_changes lost; reconnecting", metadata: [
                        "error": "\(String(reflecting: error))", "retry_in_seconds": "\(Self.listenRetryDelay(failures).components.seconds)"])
                }
                let delay = Self.listenRetryDelay(failures)
                if delay > .zero { try? await Task.sleep(for: delay) }
            }
            continuation.finish()
        }
        // Backstop: a LISTEN connection can die without an error reaching us (a silent network
        // drop); the trigger-maintained counters are also read every few seconds. They are sequences (migration 18),
        // which move when the change is made, not when it commits: a kind is reported on the read that sees it move
        // and again on the next one, so a change committed within an interval of its count is seen after its commit.
        let poll = Task { [self] in
            var last: ChangeGenerations?
            var movedLastTime: [StoreChange] = []
            while !Task.isCancelled && !closed.isSet {
                if let now = try? await changeGenerations() {
                    let (report, moved) = Self.backstopReport(now, last: last, movedLastTime: movedLastTime)
                    for change in report { continuation.yield(change) }
                    (last, movedLastTime) = (now, moved)
                }
                try? await Task.sleep(for: Self.changeBackstopInterval)
            }
        }
        continuation.onTermination = { _ in task.cancel(); poll.cancel() }
        // Kept until both tasks have ended (so close() waits for a feed whose consumer just ended), and only while
        // the store is open: a feed asked for once close() has begun is ended at once, not registered.
        let feed: Int? = feedTasks.withLock { f in
            guard !closed.isSet else { return nil }
            defer { f.next += 1 }
            f.open[f.next] = [task, poll]
            return f.next
        }
        guard let feed else {
            task.cancel(); poll.cancel()
            return stream
        }
        Task { [weak self] in
            await task.value
            await poll.value
            self?.feedTasks.withLock { _ = $0.open.removeValue(forKey: feed) }
        }
        return stream
    }

    /// How long ``close()`` waits for the change feeds to end.
    static let feedCloseLimit: Duration = .seconds(10)

    /// How often the change counters are read besides LISTEN.
    public static let changeBackstopInterval: Duration = .seconds(5)
    /// A LISTEN connection up this long before it was lost is retried at once.
    static let listenSettled: Duration = .seconds(30)

    /// The wait before reconnecting after `failures` losses in a row: none after the first, then 1, 2, 4, 8 s.
    public static func listenRetryDelay(_ failures: Int) -> Duration {
        failures <= 1 ? .zero : .seconds(min(8, 1 << min(3, failures - 2)))
    }

    /// How often the LISTEN connection is asked whether it is alive, and how long its answer may take.
    public static let listenHeartbeat: Duration = .seconds(1)
    public static let listenHeartbeatTimeout: Duration = .seconds(2)

    /// Whether `connection` answers `SELECT 1` within `timeout` (false at once when the caller is cancelled); if not,
    /// it is closed.
    ///
    /// Returns at the timeout without waiting for the query: a query racing the connection's close can stay
    /// unanswered for good, and a task group would wait for it — the LISTEN task, and with it `close()`, would
    /// hang (seen in the parallel test pass). The query's task is cancelled and left to end on its own.
    static func answers(_ connection: PostgresConnection, within timeout: Duration, logger: Logger) async -> Bool {
        let answered = await FirstOutcome.within(timeout) { () -> Bool in
            do {
                for try await _ in try await connection.query("SELECT 1", logger: logger) {}
                return true
            } catch {
                return false
            }
        } ?? false
        if !answered { connection.close().whenComplete { _ in } }
        return answered
    }

    /// Closes the store: the change feeds end (their streams finish, the LISTEN connection is closed) before the
    /// pool's connections do, and this returns when all of them are closed — or, for the feeds, after
    /// ``feedCloseLimit`` at most (logged): a connection library call that never returns must not hold up a
    /// shutdown.
    public func close() async throws {
        closed.set()
        let feeds = feedTasks.withLock { f in defer { f.open = [:] }; return f.open.values.flatMap { $0 } }
        for task in feeds { task.cancel() }
        if !feeds.isEmpty {
            let ended = await FirstOutcome.within(Self.feedCloseLimit) {
                for task in feeds { await task.value }
                return true
            } ?? false
            if !ended {
                logger.warning("change feeds did not end within \(Self.feedCloseLimit) of close(); closing the pool anyway")
            }
        }
        runTask.cancel()
        await runTask.value
    }

    // MARK: Directory

    public func createUser(_ u: UserRecord) async throws {
        try await run("""
            INSERT INTO users(id, display_name, email, kind, disabled, created_at, updated_at)
            VALUES (\(u.id.rawValue), \(u.displayName), \(u.email), \(u.kind.rawValue), \(u.disabled),
                    \(StoreCoding.millis(u.createdAt)), \(StoreCoding.millis(u.updatedAt)))
            """)
    }

    public func updateUser(_ u: UserRecord) async throws {
        let changed = try await rows("""
            UPDATE users SET display_name = \(u.displayName), email = \(u.email), kind = \(u.kind.rawValue),
              disabled = \(u.disabled), created_at = \(StoreCoding.millis(u.createdAt)), updated_at = \(StoreCoding.millis(u.updatedAt))
            WHERE id = \(u.id.rawValue) RETURNING 1
            """, as: (Int.self))
        if changed.isEmpty { throw StoreError(.notFound, "no user \(u.id)") }
    }

    private static let userColumns = "id, display_name, email, kind, disabled, created_at, updated_at"

    private func users(_ q: PostgresQuery) async throws -> [UserRecord] {
        try await rows(q, as: (String, String, String?, String, Bool, Int64, Int64).self).map { r in
            guard let kind = UserKind(rawValue: r.3) else { throw StoreError(.corrupt, "unknown user kind \(r.3)") }
            return UserRecord(id: UserID(r.0), displayName: r.1, email: r.2, kind: kind, disabled: r.4,
                              createdAt: StoreCoding.date(millis: r.5), updatedAt: StoreCoding.date(millis: r.6))
        }
    }

    public func user(_ id: UserID) async throws -> UserRecord? {
        try await users("SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id.rawValue)").first
    }

    public func listUsers() async throws -> [UserRecord] {
        try await users("SELECT \(unescaped: Self.userColumns) FROM users ORDER BY id")
    }

    public func createGroup(_ g: GroupRecord) async throws {
        try await run("INSERT INTO groups(id, display_name) VALUES (\(g.id.rawValue), \(g.displayName))")
    }

    public func listGroups() async throws -> [GroupRecord] {
        try await rows("SELECT id, display_name FROM groups ORDER BY id", as: (String, String).self)
            .map { GroupRecord(id: GroupID($0.0), displayName: $0.1) }
    }

    public func createRole(_ r: RoleRecord) async throws {
        try await run("INSERT INTO roles(id, display_name, risk_tier) VALUES (\(r.id.rawValue), \(r.displayName), \(r.riskTier.rawValue))")
    }

    public func listRoles() async throws -> [RoleRecord] {
        try await rows("SELECT id, display_name, risk_tier FROM roles ORDER BY id", as: (String, String, String).self).map { r in
            guard let tier = RiskTier(rawValue: r.2) else { throw StoreError(.corrupt, "unknown risk tier \(r.2)") }
            return RoleRecord(id: RoleID(r.0), displayName: r.1, riskTier: tier)
        }
    }

    public func addMember(_ user: UserID, to group: GroupID) async throws {
        try await run("""
            INSERT INTO group_members(group_id, user_id) VALUES (\(group.rawValue), \(user.rawValue)) ON CONFLICT DO NOTHING
            """)
    }

    public func removeMember(_ user: UserID, from group: GroupID) async throws {
        try await run("DELETE FROM group_members WHERE group_id = \(group.rawValue) AND user_id = \(user.rawValue)")
    }

    public func groups(of user: UserID) async throws -> [GroupID] {
        try await rows("SELECT group_id FROM group_members WHERE user_id = \(user.rawValue) ORDER BY group_id", as: (String.self))
            .map(GroupID.init)
    }

    public func assignRole(_ role: RoleID, to user: UserID) async throws {
        try await run("""
            INSERT INTO role_assignments(role_id, user_id) VALUES (\(role.rawValue), \(user.rawValue)) ON CONFLICT DO NOTHING
            """)
    }

    public func unassignRole(_ role: RoleID, from user: UserID) async throws {
        try await run("DELETE FROM role_assignments WHERE role_id = \(role.rawValue) AND user_id = \(user.rawValue)")
    }

    public func roles(of user: UserID) async throws -> [RoleID] {
        try await rows("SELECT role_id FROM role_assignments WHERE user_id = \(user.rawValue) ORDER BY role_id", as: (String.self))
            .map(RoleID.init)
    }

    // MARK: Sessions

    public func createSession(_ s: SessionRecord) async throws {
        try await run("""
            INSERT INTO sessions(id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
                                 loa, amr, attributes, revoked_at, revoked_reason)
            VALUES (\(s.idHash), \(s.userID.rawValue), \(StoreCoding.millis(s.createdAt)), \(StoreCoding.millis(s.lastSeenAt)),
                    \(StoreCoding.millis(s.idleExpiresAt)), \(StoreCoding.millis(s.absoluteExpiresAt)), \(s.levelOfAssurance),
                    \(StoreCoding.jsonArray(s.amr)), \(s.attributesJSON), \(s.revokedAt.map(StoreCoding.millis)), \(s.revokedReason))
            """)
    }

    private static let sessionColumns = """
        id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, loa, amr, attributes, revoked_at, revoked_reason
        """

    private func sessionRows(_ q: PostgresQuery) async throws -> [SessionRecord] {
        try await rows(q, as: (String, String, Int64, Int64, Int64, Int64, Int, String, String, Int64?, String?).self).map { r in
            SessionRecord(idHash: r.0, userID: UserID(r.1), createdAt: StoreCoding.date(millis: r.2),
                          lastSeenAt: StoreCoding.date(millis: r.3), idleExpiresAt: StoreCoding.date(millis: r.4),
                          absoluteExpiresAt: StoreCoding.date(millis: r.5), levelOfAssurance: r.6,
                          amr: try StoreCoding.stringArray(r.7), attributesJSON: r.8,
                          revokedAt: r.9.map(StoreCoding.date(millis:)), revokedReason: r.10)
        }
    }

    public func session(idHash: String) async throws -> SessionRecord? {
        try await sessionRows("SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE id_hash = \(idHash)").first
    }

    public func touchSession(idHash: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try await !rows("""
            UPDATE sessions SET last_seen_at = \(StoreCoding.millis(lastSeenAt)), idle_expires_at = \(StoreCoding.millis(idleExpiresAt))
            WHERE id_hash = \(idHash) RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    public func revokeSession(idHash: String, at: Date, reason: String) async throws -> Bool {
        try await !rows("""
            UPDATE sessions SET revoked_at = \(StoreCoding.millis(at)), revoked_reason = \(reason)
            WHERE id_hash = \(idHash) AND revoked_at IS NULL RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    public func revokeSessions(of user: UserID, at: Date, reason: String) async throws -> Int {
        try await rows("""
            UPDATE sessions SET revoked_at = \(StoreCoding.millis(at)), revoked_reason = \(reason)
            WHERE user_id = \(user.rawValue) AND revoked_at IS NULL RETURNING 1
            """, as: (Int.self)).count
    }

    public func sessions(of user: UserID) async throws -> [SessionRecord] {
        try await sessionRows("""
            SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE user_id = \(user.rawValue)
            ORDER BY created_at DESC, id_hash DESC
            """)
    }

    public func deleteSessions(expiredBefore date: Date, limit: Int) async throws -> Int {
        try await rows("""
            DELETE FROM sessions WHERE id_hash IN (
              SELECT id_hash FROM sessions WHERE absolute_expires_at < \(StoreCoding.millis(date)) LIMIT \(max(0, limit)) FOR UPDATE SKIP LOCKED)
            RETURNING 1
            """, as: (Int.self)).count
    }

    // MARK: Policies

    public func savePolicy(_ id: PolicyID, text: String, author: String, comment: String, at: Date) async throws -> PolicyVersionRecord {
        guard text.utf8.count <= InputLimits.maxPolicyTextBytes else {
            throw StoreError(.invalidInput, "policy \(id) is larger than \(InputLimits.maxPolicyTextBytes) bytes")
        }
        // Two nodes saving the same document at once collide on the primary key; retry with the next version.
        var attempt = 0
        while true {
            do {
                let v = try await rows("""
                    INSERT INTO policies(policy_id, version, text, author, comment, created_at)
                    SELECT \(id.rawValue), COALESCE(MAX(version), 0) + 1, \(text), \(author), \(comment), \(StoreCoding.millis(at))
                    FROM policies WHERE policy_id = \(id.rawValue)
                    RETURNING version
                    """, as: (Int.self))
                guard let version = v.first else { throw StoreError(.backend, "policy insert returned no version") }
                return PolicyVersionRecord(policyID: id, version: version, text: text, author: author, comment: comment, createdAt: at)
            } catch let e as StoreError where e.code == .conflict && attempt < 5 {
                attempt += 1
            }
        }
    }

    private func policyRows(_ q: PostgresQuery) async throws -> [PolicyVersionRecord] {
        try await rows(q, as: (String, Int, String, String, String, Int64).self).map {
            PolicyVersionRecord(policyID: PolicyID($0.0), version: $0.1, text: $0.2, author: $0.3, comment: $0.4,
                                createdAt: StoreCoding.date(millis: $0.5))
        }
    }

    public func currentPolicies() async throws -> [PolicyVersionRecord] {
        try await policyRows("""
            SELECT DISTINCT ON (policy_id) policy_id, version, text, author, comment, created_at
            FROM policies ORDER BY policy_id, version DESC
            """)
    }

    public func policyHistory(_ id: PolicyID) async throws -> [PolicyVersionRecord] {
        try await policyRows("""
            SELECT policy_id, version, text, author, comment, created_at FROM policies WHERE policy_id = \(id.rawValue) ORDER BY version
            """)
    }

    // MARK: Applications

    public func putApplication(_ a: ApplicationRecord) async throws {
        try await run("""
            INSERT INTO applications(id, display_name, host, path_prefix, upstreams, classification, scenario, updated_at)
            VALUES (\(a.id.rawValue), \(a.displayName), \(a.host), \(a.pathPrefix), \(StoreCoding.jsonArray(a.upstreams)),
                    \(a.classification), \(a.scenario), \(StoreCoding.millis(a.updatedAt)))
            ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, host = EXCLUDED.host,
              path_prefix = EXCLUDED.path_prefix, upstreams = EXCLUDED.upstreams, classification = EXCLUDED.classification,
              scenario = EXCLUDED.scenario, updated_at = EXCLUDED.updated_at
            """)
    }

    private func applicationRows(_ q: PostgresQuery) async throws -> [ApplicationRecord] {
        try await rows(q, as: (String, String, String, String, String, String, String?, Int64).self).map {
            ApplicationRecord(id: ApplicationID($0.0), displayName: $0.1, host: $0.2, pathPrefix: $0.3,
                              upstreams: try StoreCoding.stringArray($0.4), classification: $0.5, scenario: $0.6,
                              updatedAt: StoreCoding.date(millis: $0.7))
        }
    }

    private static let applicationColumns = "id, display_name, host, path_prefix, upstreams, classification, scenario, updated_at"

    public func application(_ id: ApplicationID) async throws -> ApplicationRecord? {
        try await applicationRows("SELECT \(unescaped: Self.applicationColumns) FROM applications WHERE id = \(id.rawValue)").first
    }

    public func listApplications() async throws -> [ApplicationRecord] {
        try await applicationRows("SELECT \(unescaped: Self.applicationColumns) FROM applications ORDER BY id")
    }

    public func deleteApplication(_ id: ApplicationID) async throws -> Bool {
        try await !rows("DELETE FROM applications WHERE id = \(id.rawValue) RETURNING 1", as: (Int.self)).isEmpty
    }

    // MARK: Events

    /// Events per INSERT statement when appending a batch.
    static let eventInsertChunk = 1000

    public func appendEvents(_ events: [NewEvent], hasher: @escaping EventChainHasher) async throws -> [StoredEvent] {
        for e in events where e.payloadJSON.utf8.count > InputLimits.maxEventPayloadBytes {
            throw StoreError(.invalidInput, "event \(e.id) payload exceeds \(InputLimits.maxEventPayloadBytes) bytes")
        }
        let logger = self.logger
        do {
            return try await client.withTransaction(logger: logger) { tx in
                // Serialise chain appends across every node sharing this database.
                try await tx.query("SELECT pg_advisory_xact_lock(\(Self.eventChainLockKey))", logger: logger)
                var previous = genesisEventHash
                var sequence: Int64 = 0
                for try await (seq, hash) in try await tx.query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", logger: logger)
                    .decode((Int64, String).self) { sequence = seq; previous = hash }
                var stored: [StoredEvent] = []
                stored.reserveCapacity(events.count)
                for e in events {
                    sequence += 1
                    let h = hasher(previous, e)
                    stored.append(StoredEvent(sequence: sequence, event: e, previousHash: previous, hash: h))
                    previous = h
                }
                // One statement per chunk (arrays through unnest), not one round trip per event. A user id is
                // never empty, so '' stands for NULL in the text array. A repeated id fails the unique index: nothing is stored.
                for start in stride(from: 0, to: stored.count, by: Self.eventInsertChunk) {
                    let chunk = stored[start..<min(start + Self.eventInsertChunk, stored.count)]
                    let seqs = chunk.map(\.sequence), ids = chunk.map { UUIDText.upper($0.event.id) }
                    let times = chunk.map { StoreCoding.millis($0.event.time) }
                    let classes = chunk.map { Int64($0.event.classUID) }, severities = chunk.map { Int64($0.event.severityID) }
                    let users = chunk.map { $0.event.userID?.rawValue ?? "" }, payloads = chunk.map(\.event.payloadJSON)
                    let previousHashes = chunk.map(\.previousHash), hashes = chunk.map(\.hash)
                    try await tx.query("""
                        INSERT INTO events(seq, id, time, class_uid, severity_id, user_id, payload, prev_hash, hash)
                        SELECT s, i, t, c, v, NULLIF(u, ''), p, ph, h
                        FROM unnest(\(seqs)::bigint[], \(ids)::text[], \(times)::bigint[], \(classes)::bigint[], \(severities)::bigint[],
                                    \(users)::text[], \(payloads)::text[], \(previousHashes)::text[], \(hashes)::text[])
                             AS x(s, i, t, c, v, u, p, ph, h)
                        """, logger: logger)
                }
                return stored
            }
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch {
            throw Self.map(error, url: url)
        }
    }

    private func eventRows(_ q: PostgresQuery) async throws -> [StoredEvent] {
        try await rows(q, as: (Int64, String, Int64, Int, Int, String?, String, String, String).self).map { r in
            guard let id = UUIDText.parse(r.1) else { throw StoreError(.corrupt, "event id \(r.1) is not a UUID") }
            let e = NewEvent(id: id, time: StoreCoding.date(millis: r.2), classUID: r.3, severityID: r.4,
                             userID: r.5.map(UserID.init), payloadJSON: r.6)
            return StoredEvent(sequence: r.0, event: e, previousHash: r.7, hash: r.8)
        }
    }

    private static let eventColumns = "seq, id, time, class_uid, severity_id, user_id, payload, prev_hash, hash"

    public func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent] {
        try await eventRows("SELECT \(unescaped: Self.eventColumns) FROM events WHERE seq > \(sequence) ORDER BY seq LIMIT \(max(0, limit))")
    }

    public func lastEvent() async throws -> StoredEvent? {
        try await eventRows("SELECT \(unescaped: Self.eventColumns) FROM events ORDER BY seq DESC LIMIT 1").first
    }

    /// Events a prune deletes per transaction (``pruneEvents(_:)``).
    public static let pruneChunk = 5_000

    /// Records the prune and deletes the events through its boundary, ``pruneChunk`` per transaction: the first under
    /// the event chain's lock (checked and recorded there, serialised with appends and other nodes' prunes), the rest
    /// without it, so appends go on during a large prune. See ``EventPruneStore/pruneEvents(_:)`` for what an
    /// interruption leaves.
    public func pruneEvents(_ prune: EventPruneRecord) async throws -> Int {
        try prune.validate()
        let logger = self.logger
        let chunkSize = Self.pruneChunk
        do {
            var deleted = try await client.withTransaction(logger: logger) { tx in
                // Serialised with appends and with another node's prune.
                try await tx.query("SELECT pg_advisory_xact_lock(\(Self.eventChainLockKey))", logger: logger)
                var hash: String?
                for try await h in try await tx.query("SELECT hash FROM events WHERE seq = \(prune.throughSequence)", logger: logger)
                    .decode(String.self) { hash = h }
                var previous: Int64 = 0
                for try await p in try await tx.query("SELECT COALESCE(MAX(through_seq), 0)::BIGINT FROM event_prunes", logger: logger)
                    .decode(Int64.self) { previous = p }
                guard hash == prune.throughHash, prune.throughSequence > previous else {
                    throw StoreError(.conflict, "event \(prune.throughSequence) is not in the log with that hash (or was pruned)")
                }
                // The prune row first: the delete trigger lets through only rows at or below a recorded prune.
                try await tx.query("""
                    INSERT INTO event_prunes(through_seq, through_hash, event_count, export_sha256, pruned_at)
                    VALUES (\(prune.throughSequence), \(prune.throughHash), \(prune.eventCount), \(prune.exportSHA256), \(StoreCoding.millis(prune.prunedAt)))
                    """, logger: logger)
                var deleted = 0
                for try await _ in try await tx.query("""
                    DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= \(prune.throughSequence) ORDER BY seq LIMIT \(chunkSize)) RETURNING 1
                    """, logger: logger).decode(Int.self) { deleted += 1 }
                return deleted
            }
            // Until a chunk finds nothing (not until one comes back short: another node's prune deleting the same oldest
            // rows makes a chunk short while more remain). A failure here leaves the rest to the next prune.
            var last = deleted
            while last > 0 {
                last = 0
                do {
                    try Task.checkCancellation()
                    for try await _ in try await client.query("""
                        DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= \(prune.throughSequence) ORDER BY seq LIMIT \(chunkSize)) RETURNING 1
                        """, logger: logger).decode(Int.self) { last += 1 }
                } catch {
                    logger.warning("prune: a later chunk failed; the rest is deleted by the next prune", metadata: ["error": "\(error)"])
                    break
                }
                deleted += last
            }
            return deleted
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch {
            throw Self.map(error, url: url)
        }
    }

    public func lastPrune() async throws -> EventPruneRecord? {
        try await rows("""
            SELECT through_seq, through_hash, event_count, export_sha256, pruned_at FROM event_prunes ORDER BY through_seq DESC LIMIT 1
            """, as: (Int64, String, Int64, String, Int64).self).first.map {
            EventPruneRecord(throughSequence: $0.0, throughHash: $0.1, eventCount: $0.2, exportSHA256: $0.3, prunedAt: StoreCoding.date(millis: $0.4))
        }
    }

    public func searchEvents(_ query: EventQuery, order: EventOrder, after cursor: Int64?, limit: Int) async throws -> [StoredEvent] {
        try query.validate()
        // Every condition is a bound parameter ($n); only the fixed clause texts are joined.
        var binds = PostgresBindings()
        var clauses: [String] = []
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String { binds.append(value); return "$\(binds.count)" }
        switch order {
        case .oldestFirst: clauses.append("seq > \(bind(cursor ?? 0))")
        case .newestFirst: clauses.append("seq < \(bind(cursor ?? Int64.max))")
        }
        if let since = query.since { clauses.append("time >= \(bind(StoreCoding.millis(since)))") }
        if let until = query.until { clauses.append("time < \(bind(StoreCoding.millis(until)))") }
        if !query.classUIDs.isEmpty { clauses.append("class_uid = ANY(\(bind(query.classUIDs.map { Int64($0) }))::bigint[])") }
        if let user = query.userID {
            if let text = query.userInPayload {
                clauses.append("(user_id = \(bind(user)) OR strpos(payload, \(bind(text))) > 0)")
            } else {
                clauses.append("user_id = \(bind(user))")
            }
        }
        for t in query.payloadContains { clauses.append("strpos(payload, \(bind(t))) > 0") }
        let sql = "SELECT \(Self.eventColumns) FROM events WHERE " + clauses.joined(separator: " AND ")
            + (order == .oldestFirst ? " ORDER BY seq" : " ORDER BY seq DESC") + " LIMIT \(bind(Int64(max(0, limit))))"
        return try await eventRows(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    public func eventCount() async throws -> Int {
        try await rows("SELECT COUNT(*)::BIGINT FROM events", as: (Int.self)).first ?? 0
    }

    // MARK: Audit checkpoints

    public func appendCheckpoint(_ c: AuditCheckpointRecord) async throws {
        try await run("""
            INSERT INTO audit_checkpoints(seq, key_id, event_id, hash, time, signature)
            VALUES (\(c.sequence), \(c.keyID), \(c.eventID.uuidString), \(c.hash), \(StoreCoding.millis(c.time)), \(c.signature))
            ON CONFLICT (seq, key_id) DO NOTHING
            """)
    }

    private func checkpointRows(_ q: PostgresQuery) async throws -> [AuditCheckpointRecord] {
        try await rows(q, as: (Int64, String, String, String, Int64, String).self).map { r in
            guard let id = UUID(uuidString: r.2) else { throw StoreError(.corrupt, "checkpoint event id \(r.2) is not a UUID") }
            return AuditCheckpointRecord(sequence: r.0, eventID: id, hash: r.3, time: StoreCoding.date(millis: r.4), keyID: r.1, signature: r.5)
        }
    }

    public func checkpoints(after sequence: Int64, limit: Int) async throws -> [AuditCheckpointRecord] {
        try await checkpointRows("""
            SELECT seq, key_id, event_id, hash, time, signature FROM audit_checkpoints WHERE seq > \(sequence)
            ORDER BY seq, key_id LIMIT \(max(0, limit))
            """)
    }

    public func lastCheckpoint() async throws -> AuditCheckpointRecord? {
        try await checkpointRows("SELECT seq, key_id, event_id, hash, time, signature FROM audit_checkpoints ORDER BY seq DESC, key_id DESC LIMIT 1").first
    }

    // MARK: Enrolment tokens

    public func createEnrolmentToken(_ t: EnrolmentTokenRecord) async throws {
        try await run("""
            INSERT INTO enrolment_tokens(token_hash, user_id, purpose, created_at, expires_at, used_at)
            VALUES (\(t.tokenHash), \(t.userID.rawValue), \(t.purpose), \(StoreCoding.millis(t.createdAt)),
                    \(StoreCoding.millis(t.expiresAt)), \(t.usedAt.map(StoreCoding.millis)))
            """)
    }

    public func enrolmentToken(hash: String) async throws -> EnrolmentTokenRecord? {
        try await rows("""
            SELECT token_hash, user_id, purpose, created_at, expires_at, used_at FROM enrolment_tokens WHERE token_hash = \(hash)
            """, as: (String, String, String, Int64, Int64, Int64?).self).first.map {
            EnrolmentTokenRecord(tokenHash: $0.0, userID: UserID($0.1), purpose: $0.2, createdAt: StoreCoding.date(millis: $0.3),
                                 expiresAt: StoreCoding.date(millis: $0.4), usedAt: $0.5.map(StoreCoding.date(millis:)))
        }
    }

    public func consumeEnrolmentToken(hash: String, at: Date) async throws -> Bool {
        try await !rows("""
            UPDATE enrolment_tokens SET used_at = \(StoreCoding.millis(at))
            WHERE token_hash = \(hash) AND used_at IS NULL AND expires_at > \(StoreCoding.millis(at)) RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    // MARK: Consumer cursors

    public func cursor(named name: String) async throws -> Int64? {
        try ConsumerCursorName.validate(name)
        return try await rows("SELECT sequence FROM consumer_cursors WHERE name = \(name)", as: (Int64.self)).first
    }

    public func saveCursor(named name: String, sequence: Int64, at: Date) async throws {
        try ConsumerCursorName.validate(name, sequence: sequence)
        try await run("""
            INSERT INTO consumer_cursors(name, sequence, updated_at) VALUES (\(name), \(sequence), \(StoreCoding.millis(at)))
            ON CONFLICT (name) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at
            """)
    }

    // MARK: Leases

    /// Stamped with the server's clock (`clock_timestamp()`), so the nodes' clocks need not agree.
    public func acquireLease(named name: String, holder: String, duration: Duration) async throws -> Lease {
        let millis = try LeaseLimits.validate(name: name, holder: holder, duration: duration)
        try await run("""
            WITH t AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS now)
            INSERT INTO leases(name, holder, acquired_at, expires_at) SELECT \(name), \(holder), t.now, t.now + \(millis) FROM t
            ON CONFLICT (name) DO UPDATE SET
                acquired_at = CASE WHEN leases.holder = EXCLUDED.holder AND leases.expires_at > EXCLUDED.acquired_at
                                   THEN leases.acquired_at ELSE EXCLUDED.acquired_at END,
                holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= EXCLUDED.acquired_at
            """)
        guard let lease = try await lease(named: name) else { throw StoreError(.unavailable, "lease \(name) vanished while it was taken") }
        return lease
    }

    public func releaseLease(named name: String, holder: String) async throws {
        try LeaseLimits.validateName(name); try LeaseLimits.validateHolder(holder)
        try await run("DELETE FROM leases WHERE name = \(name) AND holder = \(holder)")
    }

    public func lease(named name: String) async throws -> Lease? {
        try LeaseLimits.validateName(name)
        return try await rows("SELECT holder, acquired_at, expires_at FROM leases WHERE name = \(name)", as: (String, Int64, Int64).self).first.map {
            Lease(name: name, holder: $0.0, acquiredAt: StoreCoding.date(millis: $0.1), expiresAt: StoreCoding.date(millis: $0.2))
        }
    }

    // MARK: Risk scores

    public func saveRiskScore(_ record: RiskScoreRecord) async throws {
        try RiskScoreLimits.validate(record)
        // An unknown user violates the foreign key: `notFound`, nothing stored.
        try await run("""
            INSERT INTO risk_scores(user_id, contributions, updated_at)
            VALUES (\(record.userID.rawValue), \(record.contributions), \(StoreCoding.millis(record.updatedAt)))
            ON CONFLICT (user_id) DO UPDATE SET contributions = EXCLUDED.contributions, updated_at = EXCLUDED.updated_at
            """)
    }

    public func riskScore(of user: UserID) async throws -> RiskScoreRecord? {
        try await rows("SELECT contributions, updated_at FROM risk_scores WHERE user_id = \(user.rawValue)", as: (String, Int64).self)
            .first.map { RiskScoreRecord(userID: user, contributions: $0.0, updatedAt: StoreCoding.date(millis: $0.1)) }
    }

    // MARK: Playbook approvals

    private static let approvalColumns = "id, playbook, action, finding_uid, summary, step, state, created_at, expires_at, decided_by, decided_at"
    private typealias ApprovalRow = (String, String, String, String, String, String, String, Int64, Int64, String?, Int64?)

    private static func approval(_ r: ApprovalRow) throws -> PlaybookApprovalRecord {
        guard let state = ApprovalState(rawValue: r.6) else { throw StoreError(.corrupt, "unknown approval state") }
        return PlaybookApprovalRecord(id: r.0, playbook: r.1, action: r.2, findingUID: r.3, summary: r.4, step: r.5, state: state,
                                      createdAt: StoreCoding.date(millis: r.7), expiresAt: StoreCoding.date(millis: r.8), decidedBy: r.9,
                                      decidedAt: r.10.map(StoreCoding.date(millis:)))
    }

    public func createApproval(_ r: PlaybookApprovalRecord) async throws {
        try PlaybookApprovalLimits.validate(r)
        let inserted = try await rows("""
            INSERT INTO playbook_approvals(id, playbook, action, finding_uid, summary, step, state, created_at, expires_at, decided_by, decided_at)
            VALUES (\(r.id), \(r.playbook), \(r.action), \(r.findingUID), \(r.summary), \(r.step), \(r.state.rawValue),
                    \(StoreCoding.millis(r.createdAt)), \(StoreCoding.millis(r.expiresAt)), \(r.decidedBy), \(r.decidedAt.map(StoreCoding.millis)))
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """, as: (Int.self))
        guard !inserted.isEmpty else { throw StoreError(.conflict, "approval \(r.id) exists") }
    }

    public func approval(id: String) async throws -> PlaybookApprovalRecord? {
        try await rows("SELECT id, playbook, action, finding_uid, summary, step, state, created_at, expires_at, decided_by, decided_at FROM playbook_approvals WHERE id = \(id)",
                       as: ApprovalRow.self).first.map(Self.approval)
    }

    public func approvals(in states: [ApprovalState], limit: Int) async throws -> [PlaybookApprovalRecord] {
        try await rows("""
            SELECT id, playbook, action, finding_uid, summary, step, state, created_at, expires_at, decided_by, decided_at FROM playbook_approvals
            WHERE state = ANY(\(states.map(\.rawValue))) ORDER BY created_at, id LIMIT \(max(0, limit))
            """, as: ApprovalRow.self).map(Self.approval)
    }

    public func transitionApproval(id: String, from: ApprovalState, to: ApprovalState, by: String?, at: Date) async throws -> Bool {
        if let by, by.utf8.count > PlaybookApprovalLimits.maxTextLength { throw StoreError(.invalidInput, "approval decided by longer than \(PlaybookApprovalLimits.maxTextLength) bytes") }
        return try await !rows("""
            UPDATE playbook_approvals SET state = \(to.rawValue), decided_by = COALESCE(\(by), decided_by), decided_at = \(StoreCoding.millis(at))
            WHERE id = \(id) AND state = \(from.rawValue) RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    // MARK: Attestations

    public func createAttestation(_ r: AttestationRecord, files: [AttestationFileContent]) async throws -> AttestationRecord {
        try AttestationLimits.validate(r, files: files)
        var stored = r
        stored.files = files.map(\.info)
        let infos = stored.files
        let logger = self.logger
        do {
            // One transaction: a failure on any file rolls back the record and the files before it.
            try await client.withTransaction(logger: logger) { tx in
                var inserted = false
                for try await _ in try await tx.query("""
                    INSERT INTO attestations(id, principle_id, statement, attested_by, attested_at, expires_at, created_at, created_by)
                    VALUES (\(r.id), \(r.principleID), \(r.statement), \(r.attestedBy), \(StoreCoding.millis(r.attestedAt)),
                            \(StoreCoding.millis(r.expiresAt)), \(StoreCoding.millis(r.createdAt)), \(r.createdBy))
                    ON CONFLICT (id) DO NOTHING RETURNING 1
                    """, logger: logger).decode(Int.self) { inserted = true }
                guard inserted else { throw StoreError(.conflict, "attestation \(r.id) exists") }
                for (position, (file, info)) in zip(files, infos).enumerated() {
                    try await tx.query("""
                        INSERT INTO attestation_files(attestation_id, position, name, sha256, size, content)
                        VALUES (\(r.id), \(position), \(info.name), \(info.sha256), \(info.size), \(file.bytes))
                        """, logger: logger)
                }
            }
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch { throw Self.map(error, url: url) }
        return stored
    }

    private static let attestationColumns = """
        id, principle_id, statement, attested_by, attested_at, expires_at, revoked_at, revoked_by, revocation_reason, created_at, created_by
        """

    private func attestationRows(_ q: PostgresQuery) async throws -> [AttestationRecord] {
        let records = try await rows(q, as: (String, String, String, String, Int64, Int64, Int64?, String?, String?, Int64, String).self).map { r in
            AttestationRecord(id: r.0, principleID: r.1, statement: r.2, attestedBy: r.3, attestedAt: StoreCoding.date(millis: r.4),
                              expiresAt: StoreCoding.date(millis: r.5), revokedAt: r.6.map(StoreCoding.date(millis:)), revokedBy: r.7,
                              revocationReason: r.8, createdAt: StoreCoding.date(millis: r.9), createdBy: r.10)
        }
        guard !records.isEmpty else { return [] }
        // The files' metadata (never their bytes), in attachment order.
        var files: [String: [AttestationFileInfo]] = [:]
        for f in try await rows("""
            SELECT attestation_id, name, sha256, size FROM attestation_files WHERE attestation_id = ANY(\(records.map(\.id)))
            ORDER BY attestation_id, position
            """, as: (String, String, String, Int).self) {
            files[f.0, default: []].append(AttestationFileInfo(name: f.1, sha256: f.2, size: f.3))
        }
        return records.map { var r = $0; r.files = files[r.id] ?? []; return r }
    }

    public func attestation(id: String) async throws -> AttestationRecord? {
        try await attestationRows("SELECT \(unescaped: Self.attestationColumns) FROM attestations WHERE id = \(id)").first
    }

    public func attestations(principleID: String?, limit: Int) async throws -> [AttestationRecord] {
        let limit = max(0, min(limit, AttestationLimits.maxList))
        if let principleID {
            return try await attestationRows("""
                SELECT \(unescaped: Self.attestationColumns) FROM attestations WHERE principle_id = \(principleID) ORDER BY attested_at, id LIMIT \(limit)
                """)
        }
        return try await attestationRows("SELECT \(unescaped: Self.attestationColumns) FROM attestations ORDER BY attested_at, id LIMIT \(limit)")
    }

    public func attestationFile(attestationID: String, name: String) async throws -> AttestationFileContent? {
        try await rows("SELECT content FROM attestation_files WHERE attestation_id = \(attestationID) AND name = \(name)", as: (Data.self))
            .first.map { AttestationFileContent(name: name, bytes: $0) }
    }

    public func revokeAttestation(id: String, at: Date, by: String, reason: String) async throws -> Bool {
        try AttestationLimits.validateName(by, "revoked by")
        try AttestationLimits.validateText(reason, "the reason", max: AttestationLimits.maxReasonLength)
        return try await !rows("""
            UPDATE attestations SET revoked_at = \(StoreCoding.millis(at)), revoked_by = \(by), revocation_reason = \(reason)
            WHERE id = \(id) AND revoked_at IS NULL RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    // MARK: Cases

    public func createCase(_ r: CaseRecord) async throws {
        try CaseLimits.validate(r)
        let logger = self.logger
        do {
            try await client.withTransaction(logger: logger) { tx in
                var inserted = false
                for try await _ in try await tx.query("""
                    INSERT INTO cases(id, title, status_id, severity_id, owner, verdict_id, group_key, created_at, modified_at, last_finding_at)
                    VALUES (\(r.id), \(r.title), \(r.status.rawValue), \(r.severityID), \(r.owner), NULL, \(r.groupKey),
                            \(StoreCoding.millis(r.createdAt)), \(StoreCoding.millis(r.modifiedAt)), \(StoreCoding.millis(r.lastFindingAt)))
                    ON CONFLICT (id) DO NOTHING RETURNING 1
                    """, logger: logger).decode(Int.self) { inserted = true }
                guard inserted else { throw StoreError(.conflict, "case \(r.id) exists") }
                for (position, uid) in r.findingUIDs.enumerated() {
                    try await tx.query("""
                        INSERT INTO case_findings(case_id, position, finding_uid, attached_at)
                        VALUES (\(r.id), \(position), \(uid), \(StoreCoding.millis(r.createdAt)))
                        """, logger: logger)
                }
            }
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch { throw Self.map(error, url: url) }
    }

    private static let caseColumns = "id, title, status_id, severity_id, owner, verdict_id, group_key, created_at, modified_at, last_finding_at"

    private func caseRows(_ q: PostgresQuery) async throws -> [CaseRecord] {
        let records = try await rows(q, as: (String, String, Int, Int, String?, Int?, String, Int64, Int64, Int64).self).map { r in
            guard let status = CaseStatus(rawValue: r.2) else { throw StoreError(.corrupt, "case \(r.0) has status_id \(r.2)") }
            let verdict = try r.5.map { v in
                guard let verdict = CaseVerdict(rawValue: v) else { throw StoreError(.corrupt, "case \(r.0) has verdict_id \(v)") }
                return verdict
            }
            return CaseRecord(id: r.0, title: r.1, status: status, severityID: r.3, owner: r.4, verdict: verdict, groupKey: r.6, findingUIDs: [],
                              createdAt: StoreCoding.date(millis: r.7), modifiedAt: StoreCoding.date(millis: r.8), lastFindingAt: StoreCoding.date(millis: r.9))
        }
        guard !records.isEmpty else { return [] }
        let ids = records.map(\.id)
        var findings: [String: [String]] = [:], notes: [String: [CaseNote]] = [:]
        for f in try await rows("SELECT case_id, finding_uid FROM case_findings WHERE case_id = ANY(\(ids)) ORDER BY case_id, position",
                                as: (String, String).self) {
            findings[f.0, default: []].append(f.1)
        }
        for n in try await rows("SELECT case_id, author, created_at, text FROM case_notes WHERE case_id = ANY(\(ids)) ORDER BY case_id, position",
                                as: (String, String, Int64, String).self) {
            notes[n.0, default: []].append(CaseNote(author: n.1, time: StoreCoding.date(millis: n.2), text: n.3))
        }
        return records.map { var r = $0; r.findingUIDs = findings[r.id] ?? []; r.notes = notes[r.id] ?? []; return r }
    }

    public func caseRecord(id: String) async throws -> CaseRecord? {
        try await caseRows("SELECT \(unescaped: Self.caseColumns) FROM cases WHERE id = \(id)").first
    }

    public func cases(status: CaseStatus?, owner: CaseOwnerFilter, limit: Int) async throws -> [CaseRecord] {
        let limit = max(0, min(limit, CaseLimits.maxList))
        // NULL parameters switch a filter off.
        let statusID: Int? = status?.rawValue
        let (anyOwner, named): (Bool, String?) = switch owner {
        case .any: (true, nil)
        case .unassigned: (false, nil)
        case .named(let n): (false, n)
        }
        return try await caseRows("""
            SELECT \(unescaped: Self.caseColumns) FROM cases
            WHERE (\(statusID)::integer IS NULL OR status_id = \(statusID))
              AND (\(anyOwner) OR (\(named)::text IS NULL AND owner IS NULL) OR owner = \(named))
            ORDER BY modified_at DESC, id LIMIT \(limit)
            """)
    }

    public func openCase(groupKey: String, since: Date) async throws -> CaseRecord? {
        try await caseRows("""
            SELECT \(unescaped: Self.caseColumns) FROM cases
            WHERE group_key = \(groupKey) AND status_id IN (1, 2, 3) AND last_finding_at >= \(StoreCoding.millis(since))
            ORDER BY last_finding_at DESC, id LIMIT 1
            """).first
    }

    /// Locks the case's row (`FOR UPDATE`: changes to one case are serialised across nodes) and returns its state, its
    /// finding count, whether `finding` is attached and its note count; throws `notFound`. The counts are read by a
    /// second statement, after the lock is held: under READ COMMITTED a statement's subqueries keep the snapshot from
    /// before its lock wait, so counting in the locking statement would miss a concurrent attach that just committed.
    private static func lockCase(_ tx: PostgresConnection, _ id: String, finding: String, logger: Logger) async throws
        -> (status: CaseStatus, severity: Int, lastFinding: Int64, modified: Int64, verdict: Int?, findings: Int, attached: Bool, notes: Int)
    {
        var locked: (Int, Int, Int64, Int64, Int?)?
        for try await r in try await tx.query("""
            SELECT status_id, severity_id, last_finding_at, modified_at, verdict_id FROM cases WHERE id = \(id) FOR UPDATE
            """, logger: logger).decode((Int, Int, Int64, Int64, Int?).self) {
            locked = r   // the primary key: one row at most; the stream is read to its end
        }
        guard let r = locked else { throw StoreError(.notFound, "no case \(id)") }
        guard let status = CaseStatus(rawValue: r.0) else { throw StoreError(.corrupt, "case \(id) has status_id \(r.0)") }
        var counts = (0, false, 0)
        for try await c in try await tx.query("""
            SELECT (SELECT count(*) FROM case_findings WHERE case_id = \(id))::integer,
                   EXISTS (SELECT 1 FROM case_findings WHERE case_id = \(id) AND finding_uid = \(finding)),
                   (SELECT count(*) FROM case_notes WHERE case_id = \(id))::integer
            """, logger: logger).decode((Int, Bool, Int).self) {
            counts = c
        }
        return (status, r.1, r.2, r.3, r.4, counts.0, counts.1, counts.2)
    }

    /// Runs one change to a case in a transaction holding its row lock, then reads the case back.
    private func changeCase(_ id: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Void) async throws -> CaseRecord {
        let logger = self.logger
        do {
            try await client.withTransaction(logger: logger) { tx in try await body(tx, logger) }
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch { throw Self.map(error, url: url) }
        guard let r = try await caseRecord(id: id) else { throw StoreError(.notFound, "no case \(id)") }
        return r
    }

    public func attachFinding(caseID: String, findingUID: String, severityID: Int, findingTime: Date, at: Date) async throws -> CaseRecord {
        try CaseLimits.validateFindingUID(findingUID); try CaseLimits.validateSeverity(severityID)
        return try await changeCase(caseID) { tx, logger in
            let c = try await Self.lockCase(tx, caseID, finding: findingUID, logger: logger)
            if c.attached { return }
            guard c.status.isOpen else { throw StoreError(.conflict, "case \(caseID) is \(c.status.name); findings are attached to open cases only") }
            guard c.findings < CaseLimits.maxFindings else { throw StoreError(.conflict, "case \(caseID) holds \(CaseLimits.maxFindings) findings") }
            try await tx.query("""
                INSERT INTO case_findings(case_id, position, finding_uid, attached_at) VALUES (\(caseID), \(c.findings), \(findingUID), \(StoreCoding.millis(at)))
                """, logger: logger)
            try await tx.query("""
                UPDATE cases SET severity_id = \(CaseLimits.higherSeverity(c.severity, severityID)),
                  last_finding_at = \(max(c.lastFinding, StoreCoding.millis(findingTime))), modified_at = \(StoreCoding.millis(at))
                WHERE id = \(caseID)
                """, logger: logger)
        }
    }

    public func assignCase(id: String, owner: String?, at: Date) async throws -> CaseRecord {
        if let owner { try AttestationLimits.validateName(owner, "the owner") }
        return try await changeCase(id) { tx, logger in
            let c = try await Self.lockCase(tx, id, finding: "", logger: logger)
            guard c.status != .closed else { throw StoreError(.conflict, "case \(id) is closed; reopen it first") }
            try await tx.query("UPDATE cases SET owner = \(owner), modified_at = \(StoreCoding.millis(at)) WHERE id = \(id)", logger: logger)
        }
    }

    public func setCaseStatus(id: String, status: CaseStatus, verdict: CaseVerdict?, reopen: Bool, at: Date) async throws -> CaseRecord {
        try await changeCase(id) { tx, logger in
            let c = try await Self.lockCase(tx, id, finding: "", logger: logger)
            try CaseLimits.checkTransition(from: c.status, to: status, verdict: verdict, existing: c.verdict.flatMap(CaseVerdict.init(rawValue:)), reopen: reopen, id: id)
            let newVerdict: Int? = status.isOpen ? nil : verdict?.rawValue ?? c.verdict
            try await tx.query("""
                UPDATE cases SET status_id = \(status.rawValue), verdict_id = \(newVerdict), modified_at = \(StoreCoding.millis(at)) WHERE id = \(id)
                """, logger: logger)
        }
    }

    public func addCaseNote(id: String, note: CaseNote) async throws -> CaseRecord {
        try CaseLimits.validateNote(note)
        return try await changeCase(id) { tx, logger in
            let c = try await Self.lockCase(tx, id, finding: "", logger: logger)
            guard c.notes < CaseLimits.maxNotes else { throw StoreError(.conflict, "case \(id) holds \(CaseLimits.maxNotes) notes") }
            try await tx.query("""
                INSERT INTO case_notes(case_id, position, author, created_at, text)
                VALUES (\(id), \(c.notes), \(note.author), \(StoreCoding.millis(note.time)), \(note.text))
                """, logger: logger)
            try await tx.query("UPDATE cases SET modified_at = \(max(c.modified, StoreCoding.millis(note.time))) WHERE id = \(id)", logger: logger)
        }
    }

    // MARK: Assessment history

    public func saveAssessment(_ r: AssessmentHistoryRecord) async throws {
        try AssessmentHistoryLimits.validate(r)
        let inserted = try await rows("""
            INSERT INTO assessments(id, generated_at, window_start, window_end, overall_level, document, sha256)
            VALUES (\(r.id), \(StoreCoding.millis(r.generatedAt)), \(StoreCoding.millis(r.windowStart)), \(StoreCoding.millis(r.windowEnd)),
                    \(r.overallLevel), \(r.json), \(r.sha256))
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """, as: (Int.self))
        guard !inserted.isEmpty else { throw StoreError(.conflict, "assessment \(r.id) exists") }
    }

    private func assessmentRows(_ q: PostgresQuery) async throws -> [AssessmentHistoryRecord] {
        try await rows(q, as: (String, Int64, Int64, Int64, Int, String, String).self).map {
            AssessmentHistoryRecord(id: $0.0, generatedAt: StoreCoding.date(millis: $0.1), windowStart: StoreCoding.date(millis: $0.2),
                                    windowEnd: StoreCoding.date(millis: $0.3), overallLevel: $0.4, json: $0.5, sha256: $0.6)
        }
    }

    public func latestAssessment() async throws -> AssessmentHistoryRecord? { try await assessments(limit: 1).first }

    public func assessments(limit: Int) async throws -> [AssessmentHistoryRecord] {
        try await assessmentRows("""
            SELECT id, generated_at, window_start, window_end, overall_level, document, sha256 FROM assessments
            ORDER BY generated_at DESC, seq DESC LIMIT \(max(0, min(limit, AssessmentHistoryLimits.maxList)))
            """)
    }

    public func assessment(id: String) async throws -> AssessmentHistoryRecord? {
        try await assessmentRows("""
            SELECT id, generated_at, window_start, window_end, overall_level, document, sha256 FROM assessments WHERE id = \(id)
            """).first
    }

    // MARK: Devices

    private static let deviceColumns = """
        id, owner_id, display_name, device_class, platform, hardware_bound, state, compliant, compliance_reasons, posture,
        last_posture_at, max_vulnerability_severity, version, enrolled_at, updated_at, vulnerability_findings
        """

    public func createDevice(_ d: DeviceRecord) async throws {
        try await run(Self.insertDevice(d))
    }

    public func createDevice(_ d: DeviceRecord, certificate c: DeviceCertificateRecord) async throws {
        guard c.deviceID == d.id else { throw StoreError(.invalidInput, "certificate \(c.serial) is not for device \(d.id)") }
        let logger = self.logger
        do {
            try await client.withTransaction(logger: logger) { tx in
                try await tx.query(Self.insertDevice(d), logger: logger)
                try await tx.query(Self.insertDeviceCertificate(c), logger: logger)
            }
        } catch let e as PostgresTransactionError {
            throw Self.map(e.closureError ?? e.commitError ?? e.beginError ?? e, url: url)
        } catch { throw Self.map(error, url: url) }
    }

    private static func insertDevice(_ d: DeviceRecord) -> PostgresQuery {
        """
        INSERT INTO devices(id, owner_id, display_name, device_class, platform, hardware_bound, state, compliant, compliance_reasons,
                            posture, last_posture_at, max_vulnerability_severity, version, enrolled_at, updated_at, vulnerability_findings)
        VALUES (\(d.id.rawValue), \(d.ownerID?.rawValue), \(d.displayName), \(d.deviceClass.rawValue), \(d.platform), \(d.hardwareBound),
                \(d.state.rawValue), \(d.compliant), \(StoreCoding.jsonArray(d.complianceReasons)), \(d.postureJSON),
                \(d.lastPostureAt.map(StoreCoding.millis)), \(d.maxVulnerabilitySeverity), \(d.version),
                \(StoreCoding.millis(d.enrolledAt)), \(StoreCoding.millis(d.updatedAt)), \(StoreCoding.findingsJSON(d.vulnerabilityFindings)))
        """
    }

    private func deviceRows(_ q: PostgresQuery) async throws -> [DeviceRecord] {
        try await rows(q, as: (String, String?, String, String, String, Bool, String, Bool, String, String?, Int64?, Int, Int, Int64, Int64, String).self).map { r in
            guard let deviceClass = DeviceClass(rawValue: r.3), let state = DeviceState(rawValue: r.6) else {
                throw StoreError(.corrupt, "device with unknown class \(r.3) or state \(r.6)")
            }
            return DeviceRecord(id: DeviceID(r.0), ownerID: r.1.map(UserID.init), displayName: r.2, deviceClass: deviceClass, platform: r.4,
                                hardwareBound: r.5, state: state, compliant: r.7, complianceReasons: try StoreCoding.stringArray(r.8),
                                postureJSON: r.9, lastPostureAt: r.10.map(StoreCoding.date(millis:)), maxVulnerabilitySeverity: r.11,
                                vulnerabilityFindings: try StoreCoding.findings(r.15), version: r.12, enrolledAt: StoreCoding.date(millis: r.13), updatedAt: StoreCoding.date(millis: r.14))
        }
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? {
        try await deviceRows("SELECT \(unescaped: Self.deviceColumns) FROM devices WHERE id = \(id.rawValue)").first
    }

    public func listDevices() async throws -> [DeviceRecord] {
        try await deviceRows("SELECT \(unescaped: Self.deviceColumns) FROM devices ORDER BY id")
    }

    public func updateDevice(_ d: DeviceRecord, expectedVersion: Int) async throws -> Bool {
        try await !rows("""
            UPDATE devices SET owner_id = \(d.ownerID?.rawValue), display_name = \(d.displayName), device_class = \(d.deviceClass.rawValue),
              platform = \(d.platform), hardware_bound = \(d.hardwareBound), state = \(d.state.rawValue), compliant = \(d.compliant),
              compliance_reasons = \(StoreCoding.jsonArray(d.complianceReasons)), posture = \(d.postureJSON),
              last_posture_at = \(d.lastPostureAt.map(StoreCoding.millis)), max_vulnerability_severity = \(d.maxVulnerabilitySeverity),
              vulnerability_findings = \(StoreCoding.findingsJSON(d.vulnerabilityFindings)),
              version = \(expectedVersion + 1), enrolled_at = \(StoreCoding.millis(d.enrolledAt)), updated_at = \(StoreCoding.millis(d.updatedAt))
            WHERE id = \(d.id.rawValue) AND version = \(expectedVersion) RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    public func addDeviceCertificate(_ c: DeviceCertificateRecord) async throws {
        try await run(Self.insertDeviceCertificate(c))
    }

    private static func insertDeviceCertificate(_ c: DeviceCertificateRecord) -> PostgresQuery {
        """
        INSERT INTO device_certificates(serial, device_id, fingerprint, public_key_fingerprint, not_before, not_after, revoked_at, revoked_reason)
        VALUES (\(c.serial), \(c.deviceID.rawValue), \(c.fingerprint), \(c.publicKeyFingerprint), \(StoreCoding.millis(c.notBefore)),
                \(StoreCoding.millis(c.notAfter)), \(c.revokedAt.map(StoreCoding.millis)), \(c.revokedReason))
        """
    }

    private func deviceCertificateRows(_ q: PostgresQuery) async throws -> [DeviceCertificateRecord] {
        try await rows(q, as: (String, String, String, String, Int64, Int64, Int64?, String?).self).map { r in
            DeviceCertificateRecord(serial: r.0, deviceID: DeviceID(r.1), fingerprint: r.2, publicKeyFingerprint: r.3,
                                    notBefore: StoreCoding.date(millis: r.4), notAfter: StoreCoding.date(millis: r.5),
                                    revokedAt: r.6.map(StoreCoding.date(millis:)), revokedReason: r.7)
        }
    }

    public func deviceCertificate(serial: String) async throws -> DeviceCertificateRecord? {
        try await deviceCertificateRows("""
            SELECT serial, device_id, fingerprint, public_key_fingerprint, not_before, not_after, revoked_at, revoked_reason
            FROM device_certificates WHERE serial = \(serial)
            """).first
    }

    public func deviceCertificates(of device: DeviceID) async throws -> [DeviceCertificateRecord] {
        try await deviceCertificateRows("""
            SELECT serial, device_id, fingerprint, public_key_fingerprint, not_before, not_after, revoked_at, revoked_reason
            FROM device_certificates WHERE device_id = \(device.rawValue) ORDER BY not_before, serial
            """)
    }

    public func revokeDeviceCertificate(serial: String, at: Date, reason: String) async throws -> Bool {
        try await !rows("""
            UPDATE device_certificates SET revoked_at = \(StoreCoding.millis(at)), revoked_reason = \(reason)
            WHERE serial = \(serial) AND revoked_at IS NULL RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    public func revokeDeviceCertificates(of device: DeviceID, at: Date, reason: String) async throws -> Int {
        try await rows("""
            UPDATE device_certificates SET revoked_at = \(StoreCoding.millis(at)), revoked_reason = \(reason)
            WHERE device_id = \(device.rawValue) AND revoked_at IS NULL RETURNING 1
            """, as: (Int.self)).count
    }

    // MARK: Credentials

    public func createCredential(_ c: CredentialRecord) async throws {
        try await run("""
            INSERT INTO credentials(id, user_id, kind, label, data, version, created_at, last_used_at)
            VALUES (\(c.id), \(c.userID.rawValue), \(c.kind.rawValue), \(c.label), \(c.data), \(c.version),
                    \(StoreCoding.millis(c.createdAt)), \(c.lastUsedAt.map(StoreCoding.millis)))
            """)
    }

    private func credentialRows(_ q: PostgresQuery) async throws -> [CredentialRecord] {
        try await rows(q, as: (String, String, String, String, String, Int, Int64, Int64?).self).map { r in
            guard let kind = CredentialKind(rawValue: r.2) else { throw StoreError(.corrupt, "unknown credential kind \(r.2)") }
            return CredentialRecord(id: r.0, userID: UserID(r.1), kind: kind, label: r.3, data: r.4, version: r.5,
                                    createdAt: StoreCoding.date(millis: r.6), lastUsedAt: r.7.map(StoreCoding.date(millis:)))
        }
    }

    public func credential(id: String) async throws -> CredentialRecord? {
        try await credentialRows("""
            SELECT id, user_id, kind, label, data, version, created_at, last_used_at FROM credentials WHERE id = \(id)
            """).first
    }

    public func credentials(of user: UserID) async throws -> [CredentialRecord] {
        try await credentialRows("""
            SELECT id, user_id, kind, label, data, version, created_at, last_used_at FROM credentials
            WHERE user_id = \(user.rawValue) ORDER BY created_at, id
            """)
    }

    public func updateCredential(id: String, expectedVersion: Int, data: String, label: String, lastUsedAt: Date?) async throws -> Bool {
        try await !rows("""
            UPDATE credentials SET data = \(data), label = \(label), last_used_at = \(lastUsedAt.map(StoreCoding.millis)),
              version = version + 1
            WHERE id = \(id) AND version = \(expectedVersion) RETURNING 1
            """, as: (Int.self)).isEmpty
    }

    public func deleteCredential(id: String) async throws -> Bool {
        try await !rows("DELETE FROM credentials WHERE id = \(id) RETURNING 1", as: (Int.self)).isEmpty
    }

    public func deleteCredentials(of user: UserID, kinds: [CredentialKind]) async throws -> Int {
        try await rows("""
            DELETE FROM credentials WHERE user_id = \(user.rawValue) AND kind = ANY(\(kinds.map(\.rawValue))) RETURNING 1
            """, as: (Int.self)).count
    }

    // MARK: Flow state

    public func createFlowState(_ f: FlowStateRecord) async throws {
        try await run("""
            INSERT INTO flow_states(id_hash, kind, user_id, data, created_at, expires_at)
            VALUES (\(f.idHash), \(f.kind), \(f.userID?.rawValue), \(f.data), \(StoreCoding.millis(f.createdAt)),
                    \(StoreCoding.millis(f.expiresAt)))
            """)
    }

    public func takeFlowState(idHash: String, kind: String, at: Date) async throws -> FlowStateRecord? {
        // DELETE … RETURNING is atomic: of two nodes racing for one state, one gets it.
        try await rows("""
            DELETE FROM flow_states WHERE id_hash = \(idHash) AND kind = \(kind)
            RETURNING id_hash, kind, user_id, data, created_at, expires_at
            """, as: (String, String, String?, String, Int64, Int64).self).first.flatMap { r in
            let state = FlowStateRecord(idHash: r.0, kind: r.1, userID: r.2.map(UserID.init), data: r.3,
                                        createdAt: StoreCoding.date(millis: r.4), expiresAt: StoreCoding.date(millis: r.5))
            return at < state.expiresAt ? state : nil
        }
    }

    public func deleteFlowStates(expiredBefore date: Date) async throws -> Int {
        try await rows("DELETE FROM flow_states WHERE expires_at < \(StoreCoding.millis(date)) RETURNING 1", as: (Int.self)).count
    }
}
