/// MenshenStorageSQLite — the embedded default store: one SQLite file in WAL
/// mode, through GRDB. Implements every `MenshenStore` protocol and passes the
/// store conformance suite.
import Foundation
import GRDB
import MenshenCore
import MenshenStorage
import Synchronization

/// A `MenshenStore` on a single SQLite file.
public final class SQLiteStore: MenshenStore, CommittedAccessGeneration, EventAppendSignal {
    public let path: String
    /// Wakes this process's followers of the log (``EventTail``) after each commit of appended events.
    private let appendNotifier = AppendNotifier()
    /// Checkpoints the WAL on its own connection and thread (see ``startCheckpointer(busyTimeout:)``); nil when that
    /// connection could not be opened, and SQLite's automatic checkpoints on commit stay on.
    private let checkpointer = Mutex<(queue: DatabaseQueue, task: Task<Void, Never>)?>(nil)
    private let checkpoints = CheckpointCounters()

    final class CheckpointCounters: Sendable {
        /// Events appended since the last background checkpoint.
        let eventsSince = Atomic<Int>(0)
        /// How many background checkpoints ran (for tests and diagnostics).
        let runs = Atomic<Int>(0)
    }

    /// Background checkpoints run so far.
    var backgroundCheckpoints: Int { checkpoints.runs.load(ordering: .relaxed) }
    private let pool: DatabasePool
    private let watch = Mutex<WALCommitWatch?>(nil)
    /// The connection ``committedGenerations()`` reads the counters with (opened on first use; see there).
    private let generationReader = Mutex<DatabaseQueue?>(nil)
    private let knownGenerations = Mutex<(header: WALCommitWatch.Header, generations: CommittedGenerations)?>(nil)
    private let isClosed = Atomic<Bool>(false)
    /// How often ``committedGenerations()`` had to read the database (for tests and diagnostics).
    let databaseGenerationReads = Atomic<Int>(0)
    public var backendName: String { "sqlite" }

    deinit {
        // A store dropped without close(): the background checkpoints stop (their connection closes as the task
        // ends), then the connections, then (as the properties go) the -shm descriptor of the commit watch.
        checkpointer.withLock { $0?.task.cancel() }
        generationReader.withLock { r in try? r?.close(); r = nil }
        try? pool.close()
    }

    /// Page cache per connection, in KiB.
    static let cacheKiB = 16_384

    /// Opens (creating if needed) the database at `path` and applies pending
    /// migrations. A database newer than `migrations`, a corrupt or locked
    /// file throws a `StoreError` naming the file; nothing is written then.
    ///
    /// - Parameters:
    ///   - migrations: the migrations to apply; tests pass a prefix to create older databases.
    ///   - busyTimeout: how long to wait for another process' lock before failing.
    public init(path: String, migrations: [Migration] = SQLiteMigrations.all, busyTimeout: TimeInterval = 5) throws {
        self.path = path
        // An existing file is first inspected read-only, so a damaged file or one
        // from a newer Menshen is refused before anything (even the WAL switch) writes to it.
        if FileManager.default.fileExists(atPath: path) {
            try Self.inspect(path: path, migrations: migrations)
        }
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        config.label = "menshen"
        config.qos = Self.databaseQoS
        config.maximumReaderCount = Self.pooledReaders
        config.prepareDatabase { db in
            // A page cache of 16 MiB per connection (SQLite's default is 2 MiB): the event log's indexes on time
            // and user stay in memory while it is appended to and followed, instead of being read back page by
            // page with a system call each.
            try db.execute(sql: "PRAGMA cache_size = -\(Self.cacheKiB)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 8192")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw Self.map(error, path: path)
        }
        do {
            // GRDB opens WAL with synchronous=NORMAL: a commit survives a process crash but may be lost
            // (never half-applied) on power loss. FULL syncs the WAL at every commit, so an event
            // acknowledged after its commit also survives power loss (see docs/operations.md, Audit log).
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Self.migrate(pool, migrations: migrations, path: path)
        } catch {
            try? pool.close()
            throw error
        }
        startCheckpointer(busyTimeout: busyTimeout)
    }

    /// Events appended (or, without appends, seconds passed) before the WAL is checkpointed in the background.
    static let checkpointEvery = (events: 4_000, interval: Duration.seconds(1))

    /// Moves WAL checkpoints off the writer. SQLite's automatic checkpoint runs inside the commit that crosses
    /// its threshold: that commit (and every write queued behind it — sign-ins, the decision log) waits while
    /// tens of megabytes are copied into the database file and synced. Here a second connection, on its own
    /// thread, runs PASSIVE checkpoints (they never block the writer or readers) after every
    /// ``checkpointEvery`` appended events and once per interval (a checkpoint with nothing to copy costs next to
    /// nothing); the writer's automatic checkpoints are turned off only once that connection is open.
    private func startCheckpointer(busyTimeout: TimeInterval) {
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.label = "menshen-checkpoint"
        config.qos = Self.databaseQoS
        guard let queue = try? DatabaseQueue(path: path, configuration: config),
              (try? pool.writeWithoutTransaction({ db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") })) != nil
        else { return }
        // The task holds what it needs, not the store: a store dropped without close() stops it in deinit.
        let task = Task.detached { [appendNotifier, checkpoints] in await Self.runCheckpoints(queue, appendNotifier, checkpoints) }
        checkpointer.withLock { $0 = (queue, task) }
    }

    /// The dispatch quality of service of the store's database work (GRDB runs asynchronous reads and writes on
    /// dispatch queues of this QoS). GRDB's default, `userInitiated`, is meant for an app's user interface; on
    /// Linux libdispatch runs it at nice −2, above the gateway's event loops (nice 0), so every audit batch's
    /// insert, hashing and sync preempted request handling and lengthened the gateway's tail latency (a
    /// scheduler trace of `scripts/bench-gateway` row (c) showed the writer's threads at priority 118 against
    /// 120). At `default` they run beside the event loops, not above them; not below either, so the decision
    /// audit keeps up under sustained load. `SQLiteCheckpointTests.databaseWorkNotAboveRequests` checks the nice
    /// value the work runs at.
    static let databaseQoS: DispatchQoS = .default

    #if os(Linux)
    /// The nice values of the threads an asynchronous write and read run on (for tests).
    func databaseThreadNice() async throws -> (write: Int32, read: Int32) {
        // On Linux, PRIO_PROCESS with 0 names the calling thread (nice values are per thread there).
        @Sendable func nice(_: Database) -> Int32 { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }
        return (try await write(nice), try await read(nice))
    }
    #endif

    /// A PRAGMA's value on the writer connection (for tests).
    func writerPragma(_ name: String) async throws -> Int {
        try await write { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") ?? -1 }
    }

    private static func runCheckpoints(_ queue: DatabaseQueue, _ notifier: AppendNotifier, _ counters: CheckpointCounters) async {
        var generation = notifier.generation
        var last = ContinuousClock.now
        while !Task.isCancelled {
            await notifier.wait(after: generation, timeout: checkpointEvery.interval)
            generation = notifier.generation
            guard !Task.isCancelled else { return }
            // Other writes (sessions, devices) grow the WAL too: the interval covers them.
            let due = counters.eventsSince.load(ordering: .relaxed) >= checkpointEvery.events
                || ContinuousClock.now - last >= checkpointEvery.interval
            guard due else { continue }
            counters.eventsSince.store(0, ordering: .relaxed)
            last = .now
            // Busy (a checkpoint by another process) or failed: the next round tries again.
            _ = try? await queue.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            counters.runs.add(1, ordering: .relaxed)
        }
    }

    private static func inspect(path: String, migrations: [Migration]) throws {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(1)
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            let current: Int = try queue.read { db in
                guard try db.tableExists("menshen_schema_migrations") else { return 0 }
                return try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(version), 0) FROM menshen_schema_migrations") ?? 0
            }
            try queue.close()
            if case .tooNew(let database, let known) = MigrationPlan.plan(current: current, known: migrations) {
                throw MigrationPlan.tooNewError(database: database, known: known, location: path)
            }
        } catch {
            throw map(error, path: path)
        }
    }

    static func map(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        guard let db = error as? DatabaseError else {
            return StoreError(.backend, "\(path): \(error)")
        }
        switch db.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return StoreError(.corrupt, "\(path): not a Menshen database or damaged (\(db.message ?? "SQLITE_CORRUPT"))")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError(.unavailable, "\(path): database is locked by another process")
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return StoreError(.unavailable, "\(path): cannot open database (\(db.message ?? "permission denied"))")
        case .SQLITE_CONSTRAINT:
            return StoreError(.conflict, "\(path): \(db.message ?? "constraint violated")")
        default:
            return StoreError(.backend, "\(path): \(db.message ?? "\(db.resultCode)")")
        }
    }

    private static func migrate(_ pool: DatabasePool, migrations: [Migration], path: String) throws {
        do {
            try pool.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS menshen_schema_migrations (
                      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)
                    """)
            }
            let current = try pool.read { db in
                try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(version), 0) FROM menshen_schema_migrations") ?? 0
            }
            switch MigrationPlan.plan(current: current, known: migrations) {
            case .upToDate: return
            case .tooNew(let database, let known):
                throw MigrationPlan.tooNewError(database: database, known: known, location: path)
            case .apply(let versions):
                for v in versions {
                    guard let m = migrations.first(where: { $0.version == v }) else { continue }
                    try pool.write { db in
                        for s in m.statements { try db.execute(sql: s) }
                        try db.execute(sql: "INSERT INTO menshen_schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                                       arguments: [m.version, m.name, StoreCoding.millis(Date())])
                    }
                }
            }
        } catch {
            throw map(error, path: path)
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.map(error, path: path) }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch { throw Self.map(error, path: path) }
    }

    /// Runs raw SQL outside every invariant of the store. For tests that
    /// prove the database itself enforces rules (e.g. append-only events).
    public func unsafeExecute(_ sql: String) throws {
        do { try pool.write { db in try db.execute(sql: sql) } } catch { throw Self.map(error, path: path) }
    }

    /// The writer connection's `PRAGMA synchronous` (2 = FULL), for the durability tests.
    public func writerSynchronousMode() throws -> Int {
        do { return try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 } } catch { throw Self.map(error, path: path) }
    }

    public func ping() async throws { _ = try await read { db in try Int.fetchOne(db, sql: "SELECT 1") } }

    public func schemaVersion() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(version), 0) FROM menshen_schema_migrations") ?? 0 }
    }

    // MARK: Changes

    public func changeGenerations() async throws -> ChangeGenerations {
        try await read { db in
            var g = ChangeGenerations(access: 0, configuration: 0)
            for row in try Row.fetchAll(db, sql: "SELECT kind, generation FROM change_counters") {
                let kind: String = row["kind"], value: Int64 = row["generation"]
                if let k = StoreChange(rawValue: kind) { g[k] = value }
            }
            return g
        }
    }

    /// The access and device counters, read from the database only when something was committed since the
    /// last read: ``WALCommitWatch`` sees any commit by any connection in the wal-index header,
    /// without a system call. The counters are remembered only if no commit happened while they were read.
    ///
    /// The read goes through a connection of its own, never the pool's: it is made synchronously on the gateway's
    /// event loops and in the cooperative pool, and waiting there for a pooled reader — all of them busy with the
    /// requests that a change sent the slow way — held up the very threads those readers' work was queued behind (a
    /// burst of access changes stalled the gateway for seconds). A serial queue's `sync` runs the read on the calling
    /// thread; a read that meets a lock answers nil after a short wait (the caller reads the store as if nothing
    /// were remembered).
    public func committedGenerations() -> CommittedGenerations? {
        let watch = commitWatch()
        let before = watch?.header()
        if let before, let known = knownGenerations.withLock({ $0 }), known.header == before { return known.generations }
        guard let reader = counterReader() else { return nil }
        databaseGenerationReads.add(1, ordering: .relaxed)
        guard let generations = try? reader.read({ db -> CommittedGenerations? in
            var access: Int64?, device: Int64?
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT kind, generation FROM change_counters WHERE kind IN ('access', 'device')"))
            while let row = try rows.next() {
                let kind: String = row[0], value: Int64 = row[1]
                if kind == "access" { access = value } else { device = value }
            }
            // Both rows exist from migrations 4 and 18 on; a database without them vouches for nothing.
            guard let access, let device else { return nil }
            return CommittedGenerations(access: access, device: device)
        }) ?? nil else { return nil }
        if let before, watch?.header() == before {
            knownGenerations.withLock { $0 = (before, generations) }
        }
        return generations
    }

    /// Whom the access changes after `generation` concerned (`access_changes`, migration 19), read in one statement
    /// through the counters' own connection (see ``committedGenerations()``), so the counter and the changes are one
    /// snapshot. Complete only when every generation in the range is there: changes counted before migration 19, or
    /// pruned (the last ``AccessChanges/kept`` are kept), or more than that at once, leave it incomplete.
    public func accessChanges(after generation: Int64) -> AccessChanges? {
        guard let reader = counterReader() else { return nil }
        return try? reader.read { db -> AccessChanges? in
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                SELECT 1, generation, NULL FROM change_counters WHERE kind = 'access'
                UNION ALL
                SELECT 0, generation, user_id FROM (
                  SELECT generation, user_id FROM access_changes WHERE generation > ?1 ORDER BY generation LIMIT ?2)
                """), arguments: [generation, AccessChanges.kept])
            var through: Int64?
            var changes: [AccessChanges.Change] = []
            changes.reserveCapacity(16)
            while let row = try rows.next() {
                if row[0] as Int64 == 1 { through = row[1] } else { changes.append(.init(generation: row[1], userID: row[2])) }
            }
            guard let through, through >= generation else { return nil }
            return AccessChanges(after: generation, through: through, changes: changes,
                                 complete: Int64(changes.count) == through - generation)
        } ?? nil
    }

    /// This store's own commit of events only (which never changes a counter) moved the
    /// wal-index header from `before` to `after`. If it was the only commit in between — the commit
    /// counter moved by exactly one, and `before` was read under that transaction's write lock — the
    /// generations known at `before` still hold at `after`, so the gateway's next look need not
    /// read the database. Any other commit (another process, another of this store's writes) makes the
    /// counter move by more, and the next look reads as before.
    private func carryGenerations(from before: WALCommitWatch.Header, to after: WALCommitWatch.Header) {
        guard after.commitCounter == before.commitCounter &+ 1 else { return }
        knownGenerations.withLock { known in
            if let k = known, k.header == before { known = (after, k.generations) }
        }
    }

    /// The pool's reader connections (GRDB's default).
    static let pooledReaders = 5

    /// Runs `body` while holding one of the pool's reader connections (tests: every reader busy).
    func holdingPooledReader<T>(_ body: () throws -> T) throws -> T {
        try pool.unsafeRead { _ in try body() }
    }

    /// How long ``committedGenerations()`` waits for a lock before answering nil.
    static let counterReadBusyTimeout: TimeInterval = 0.05

    private func counterReader() -> DatabaseQueue? {
        generationReader.withLock { r in
            if r == nil, !isClosed.load(ordering: .sequentiallyConsistent) {
                var config = Configuration()
                config.busyMode = .timeout(Self.counterReadBusyTimeout)
                config.label = "menshen-counters"
                config.qos = Self.databaseQoS
                r = try? DatabaseQueue(path: path, configuration: config)
            }
            return r
        }
    }

    private func commitWatch() -> WALCommitWatch? {
        watch.withLock { w in
            if w == nil, !isClosed.load(ordering: .sequentiallyConsistent) { w = WALCommitWatch(databasePath: path) }
            return w
        }
    }

    /// Polls the trigger-maintained counters: sees changes made by other processes
    /// (e.g. `menshen user disable`) within ``changePollInterval``.
    public func changes() -> AsyncStream<StoreChange> { pollingChanges(every: Self.changePollInterval) }
    public static let changePollInterval: Duration = .milliseconds(250)

    public func close() async throws {
        isClosed.store(true, ordering: .sequentiallyConsistent)
        if let (queue, task) = checkpointer.withLock({ c in defer { c = nil }; return c }) {
            task.cancel()
            await task.value
            try? queue.close()
        }
        let reader = generationReader.withLock { r in defer { r = nil }; return r }
        try? reader?.close()
        do { try pool.close() } catch { throw Self.map(error, path: path) }
        // The -shm descriptor is closed only after the connections (closing it earlier would drop SQLite's locks).
        watch.withLock { $0?.closeFile(); $0 = nil }
    }

    // MARK: Directory

    public func createUser(_ u: UserRecord) async throws {
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM users WHERE id = ?", [u.id.rawValue]) {
                throw StoreError(.conflict, "user \(u.id) exists")
            }
            try db.execute(sql: """
                INSERT INTO users(id, display_name, email, kind, disabled, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [u.id.rawValue, u.displayName, u.email, u.kind.rawValue, u.disabled,
                                 StoreCoding.millis(u.createdAt), StoreCoding.millis(u.updatedAt)])
        }
    }

    public func updateUser(_ u: UserRecord) async throws {
        try await write { db in
            try db.execute(sql: """
                UPDATE users SET display_name = ?, email = ?, kind = ?, disabled = ?, created_at = ?, updated_at = ?
                WHERE id = ?
                """, arguments: [u.displayName, u.email, u.kind.rawValue, u.disabled,
                                 StoreCoding.millis(u.createdAt), StoreCoding.millis(u.updatedAt), u.id.rawValue])
            if db.changesCount == 0 { throw StoreError(.notFound, "no user \(u.id)") }
        }
    }

    public func user(_ id: UserID) async throws -> UserRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id.rawValue]).map(Self.userRecord) }
    }

    public func listUsers() async throws -> [UserRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY id").map(Self.userRecord) }
    }

    static func userRecord(_ r: Row) throws -> UserRecord {
        let kindRaw: String = try r.decode(forColumn: "kind")
        guard let kind = UserKind(rawValue: kindRaw) else { throw StoreError(.corrupt, "unknown user kind \(kindRaw)") }
        return UserRecord(id: UserID(try r.decode(forColumn: "id")), displayName: try r.decode(forColumn: "display_name"),
                          email: try r.decode(forColumn: "email"), kind: kind, disabled: try r.decode(forColumn: "disabled"),
                          createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")),
                          updatedAt: StoreCoding.date(millis: try r.decode(forColumn: "updated_at")))
    }

    /// Throws `.notFound` unless `table` (a constant of this file) has a row with primary key `id`.
    static func require(_ db: Database, _ table: String, _ id: String, _ what: String) throws {
        guard try exists(db, "SELECT 1 FROM \(table) WHERE id = ?", [id]) else { throw StoreError(.notFound, "no \(what) \(id)") }
    }

    static func exists(_ db: Database, _ sql: String, _ args: StatementArguments) throws -> Bool {
        try Int.fetchOne(db, sql: sql, arguments: args) != nil
    }

    public func createGroup(_ g: GroupRecord) async throws {
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM groups WHERE id = ?", [g.id.rawValue]) {
                throw StoreError(.conflict, "group \(g.id) exists")
            }
            try db.execute(sql: "INSERT INTO groups(id, display_name) VALUES (?, ?)", arguments: [g.id.rawValue, g.displayName])
        }
    }

    public func listGroups() async throws -> [GroupRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT id, display_name FROM groups ORDER BY id").map {
                GroupRecord(id: GroupID(try $0.decode(atIndex: 0)), displayName: try $0.decode(atIndex: 1))
            }
        }
    }

    public func createRole(_ r: RoleRecord) async throws {
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM roles WHERE id = ?", [r.id.rawValue]) {
                throw StoreError(.conflict, "role \(r.id) exists")
            }
            try db.execute(sql: "INSERT INTO roles(id, display_name, risk_tier) VALUES (?, ?, ?)",
                           arguments: [r.id.rawValue, r.displayName, r.riskTier.rawValue])
        }
    }

    public func listRoles() async throws -> [RoleRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT id, display_name, risk_tier FROM roles ORDER BY id").map { row in
                let tierRaw: String = try row.decode(atIndex: 2)
                guard let tier = RiskTier(rawValue: tierRaw) else { throw StoreError(.corrupt, "unknown risk tier \(tierRaw)") }
                return RoleRecord(id: RoleID(try row.decode(atIndex: 0)), displayName: try row.decode(atIndex: 1), riskTier: tier)
            }
        }
    }

    public func addMember(_ user: UserID, to group: GroupID) async throws {
        try await write { db in
            try Self.require(db, "users", user.rawValue, "user")
            try Self.require(db, "groups", group.rawValue, "group")
            try db.execute(sql: "INSERT OR IGNORE INTO group_members(group_id, user_id) VALUES (?, ?)", arguments: [group.rawValue, user.rawValue])
        }
    }

    public func removeMember(_ user: UserID, from group: GroupID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", arguments: [group.rawValue, user.rawValue])
        }
    }

    public func groups(of user: UserID) async throws -> [GroupID] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id", arguments: [user.rawValue]).map(GroupID.init)
        }
    }

    public func assignRole(_ role: RoleID, to user: UserID) async throws {
        try await write { db in
            try Self.require(db, "users", user.rawValue, "user")
            try Self.require(db, "roles", role.rawValue, "role")
            try db.execute(sql: "INSERT OR IGNORE INTO role_assignments(role_id, user_id) VALUES (?, ?)", arguments: [role.rawValue, user.rawValue])
        }
    }

    public func unassignRole(_ role: RoleID, from user: UserID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM role_assignments WHERE role_id = ? AND user_id = ?", arguments: [role.rawValue, user.rawValue])
        }
    }

    public func roles(of user: UserID) async throws -> [RoleID] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT role_id FROM role_assignments WHERE user_id = ? ORDER BY role_id", arguments: [user.rawValue]).map(RoleID.init)
        }
    }

    // MARK: Sessions

    public func createSession(_ s: SessionRecord) async throws {
        try await write { db in
            try Self.require(db, "users", s.userID.rawValue, "user")
            if try Self.exists(db, "SELECT 1 FROM sessions WHERE id_hash = ?", [s.idHash]) { throw StoreError(.conflict, "session exists") }
            try db.execute(sql: """
                INSERT INTO sessions(id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
                                     loa, amr, attributes, revoked_at, revoked_reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [s.idHash, s.userID.rawValue, StoreCoding.millis(s.createdAt), StoreCoding.millis(s.lastSeenAt),
                                 StoreCoding.millis(s.idleExpiresAt), StoreCoding.millis(s.absoluteExpiresAt), s.levelOfAssurance,
                                 StoreCoding.jsonArray(s.amr), s.attributesJSON, s.revokedAt.map(StoreCoding.millis), s.revokedReason])
        }
    }

    static func sessionRecord(_ r: Row) throws -> SessionRecord {
        let revoked: Int64? = try r.decode(forColumn: "revoked_at")
        return SessionRecord(
            idHash: try r.decode(forColumn: "id_hash"), userID: UserID(try r.decode(forColumn: "user_id")),
            createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")),
            lastSeenAt: StoreCoding.date(millis: try r.decode(forColumn: "last_seen_at")),
            idleExpiresAt: StoreCoding.date(millis: try r.decode(forColumn: "idle_expires_at")),
            absoluteExpiresAt: StoreCoding.date(millis: try r.decode(forColumn: "absolute_expires_at")),
            levelOfAssurance: try r.decode(forColumn: "loa"), amr: try StoreCoding.stringArray(try r.decode(forColumn: "amr")),
            attributesJSON: try r.decode(forColumn: "attributes"), revokedAt: revoked.map(StoreCoding.date(millis:)),
            revokedReason: try r.decode(forColumn: "revoked_reason"))
    }

    public func session(idHash: String) async throws -> SessionRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id_hash = ?", arguments: [idHash]).map(Self.sessionRecord) }
    }

    public func touchSession(idHash: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id_hash = ?",
                           arguments: [StoreCoding.millis(lastSeenAt), StoreCoding.millis(idleExpiresAt), idHash])
            return db.changesCount > 0
        }
    }

    public func revokeSession(idHash: String, at: Date, reason: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id_hash = ? AND revoked_at IS NULL",
                           arguments: [StoreCoding.millis(at), reason, idHash])
            return db.changesCount > 0
        }
    }

    public func revokeSessions(of user: UserID, at: Date, reason: String) async throws -> Int {
        try await write { db in
            try db.execute(sql: "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
                           arguments: [StoreCoding.millis(at), reason, user.rawValue])
            return db.changesCount
        }
    }

    public func sessions(of user: UserID) async throws -> [SessionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id_hash DESC",
                             arguments: [user.rawValue]).map(Self.sessionRecord)
        }
    }

    public func deleteSessions(expiredBefore date: Date, limit: Int) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE absolute_expires_at < ? LIMIT ?)
                """, arguments: [StoreCoding.millis(date), max(0, limit)])
            return db.changesCount
        }
    }

    // MARK: Policies

    public func savePolicy(_ id: PolicyID, text: String, author: String, comment: String, at: Date) async throws -> PolicyVersionRecord {
        guard text.utf8.count <= InputLimits.maxPolicyTextBytes else {
            throw StoreError(.invalidInput, "policy \(id) is larger than \(InputLimits.maxPolicyTextBytes) bytes")
        }
        return try await write { db in
            let last = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM policies WHERE policy_id = ?", arguments: [id.rawValue]) ?? 0
            let record = PolicyVersionRecord(policyID: id, version: last + 1, text: text, author: author, comment: comment, createdAt: at)
            try db.execute(sql: "INSERT INTO policies(policy_id, version, text, author, comment, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [id.rawValue, record.version, text, author, comment, StoreCoding.millis(at)])
            return record
        }
    }

    static func policyRecord(_ r: Row) throws -> PolicyVersionRecord {
        PolicyVersionRecord(policyID: PolicyID(try r.decode(forColumn: "policy_id")), version: try r.decode(forColumn: "version"),
                            text: try r.decode(forColumn: "text"), author: try r.decode(forColumn: "author"),
                            comment: try r.decode(forColumn: "comment"),
                            createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")))
    }

    public func currentPolicies() async throws -> [PolicyVersionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT p.* FROM policies p
                JOIN (SELECT policy_id, MAX(version) AS v FROM policies GROUP BY policy_id) m
                  ON p.policy_id = m.policy_id AND p.version = m.v
                ORDER BY p.policy_id
                """).map(Self.policyRecord)
        }
    }

    public func policyHistory(_ id: PolicyID) async throws -> [PolicyVersionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM policies WHERE policy_id = ? ORDER BY version", arguments: [id.rawValue]).map(Self.policyRecord)
        }
    }

    // MARK: Applications

    public func putApplication(_ a: ApplicationRecord) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO applications(id, display_name, host, path_prefix, upstreams, classification, scenario, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, host = excluded.host,
                  path_prefix = excluded.path_prefix, upstreams = excluded.upstreams,
                  classification = excluded.classification, scenario = excluded.scenario, updated_at = excluded.updated_at
                """, arguments: [a.id.rawValue, a.displayName, a.host, a.pathPrefix, StoreCoding.jsonArray(a.upstreams),
                                 a.classification, a.scenario, StoreCoding.millis(a.updatedAt)])
        }
    }

    static func applicationRecord(_ r: Row) throws -> ApplicationRecord {
        ApplicationRecord(id: ApplicationID(try r.decode(forColumn: "id")), displayName: try r.decode(forColumn: "display_name"),
                          host: try r.decode(forColumn: "host"), pathPrefix: try r.decode(forColumn: "path_prefix"),
                          upstreams: try StoreCoding.stringArray(try r.decode(forColumn: "upstreams")),
                          classification: try r.decode(forColumn: "classification"), scenario: try r.decode(forColumn: "scenario"),
                          updatedAt: StoreCoding.date(millis: try r.decode(forColumn: "updated_at")))
    }

    public func application(_ id: ApplicationID) async throws -> ApplicationRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM applications WHERE id = ?", arguments: [id.rawValue]).map(Self.applicationRecord) }
    }

    public func listApplications() async throws -> [ApplicationRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM applications ORDER BY id").map(Self.applicationRecord) }
    }

    public func deleteApplication(_ id: ApplicationID) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM applications WHERE id = ?", arguments: [id.rawValue])
            return db.changesCount > 0
        }
    }

    // MARK: Events

    /// Appends wait here while a commit is under way; the next commit takes all of them.
    private struct PendingAppend {
        var events: [NewEvent]
        var hasher: EventChainHasher
        var continuation: CheckedContinuation<[StoredEvent], any Error>
    }
    private let pendingAppends = Mutex<(waiting: [PendingAppend], committing: Bool)>(([], false))

    /// Group commit: callers that append while another commit is under way
    /// (sign-ins, device and response events arriving together) are written in
    /// the next transaction together, one fsync for all of them instead of one
    /// each. Each caller still gets its records only after they are committed,
    /// and a batch that fails (a repeated event id) is retried alone, so one
    /// caller's conflict never fails another's append.
    public func appendEvents(_ events: [NewEvent], hasher: @escaping EventChainHasher) async throws -> [StoredEvent] {
        for e in events where e.payloadJSON.utf8.count > InputLimits.maxEventPayloadBytes {
            throw StoreError(.invalidInput, "event \(e.id) payload exceeds \(InputLimits.maxEventPayloadBytes) bytes")
        }
        guard !events.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            let lead = pendingAppends.withLock { state in
                state.waiting.append(PendingAppend(events: events, hasher: hasher, continuation: continuation))
                if state.committing { return false }
                state.committing = true
                return true
            }
            if lead { Task { await self.commitPendingAppends() } }
        }
    }

    public var appendGeneration: Int { appendNotifier.generation }

    public func waitForAppends(after generation: Int, timeout: Duration) async {
        await appendNotifier.wait(after: generation, timeout: timeout)
    }

    /// After a commit of `count` appended events: counted towards the next background checkpoint, and the log's
    /// followers woken.
    private func committed(_ count: Int) {
        checkpoints.eventsSince.add(count, ordering: .relaxed)
        appendNotifier.signal()
    }

    /// Commits waiting appends, group by group, until none is left.
    private func commitPendingAppends() async {
        while true {
            let group: [PendingAppend] = pendingAppends.withLock { state in
                let taken = state.waiting
                state.waiting = []
                if taken.isEmpty { state.committing = false }
                return taken
            }
            guard !group.isEmpty else { return }
            let batches = group.map { ($0.events, $0.hasher) }
            let watch = commitWatch()
            do {
                let (stored, before) = try await write { db in
                    let stored = try batches.map { try Self.insertEvents($0.0, hasher: $0.1, db: db) }
                    // Read after this transaction's writes, so under its write lock: the header of the last commit before ours.
                    return (stored, watch?.header())
                }
                if let before, let after = watch?.header() { carryGenerations(from: before, to: after) }
                committed(stored.reduce(0) { $0 + $1.count })
                for (pending, records) in zip(group, stored) { pending.continuation.resume(returning: records) }
            } catch where group.count > 1 {
                // One batch spoilt the group's transaction (nothing of it is stored): each batch again on its own.
                for pending in group {
                    let (events, hasher) = (pending.events, pending.hasher)
                    do {
                        let records = try await write { db in try Self.insertEvents(events, hasher: hasher, db: db) }
                        committed(records.count)
                        pending.continuation.resume(returning: records)
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            } catch {
                group[0].continuation.resume(throwing: error)
            }
        }
    }

    /// Inserts one batch at the chain's head, inside the caller's write transaction.
    private static func insertEvents(_ events: [NewEvent], hasher: EventChainHasher, db: Database) throws -> [StoredEvent] {
        // SQLite serialises writers; the write transaction makes the chain head read and the appends atomic.
        let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"))
        var previous: String = try head?.decode(atIndex: 1) ?? genesisEventHash
        var sequence: Int64 = try head?.decode(atIndex: 0) ?? 0
        var stored: [StoredEvent] = []
        stored.reserveCapacity(events.count)
        // One prepared statement for the batch; the unique index on `id` refuses a repeated event
        // (and the transaction then stores none of the batch).
        let insert = try db.cachedStatement(sql: """
            INSERT INTO events(seq, id, time, class_uid, severity_id, user_id, payload, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for e in events {
            sequence += 1
            let h = hasher(previous, e)
            do {
                try insert.execute(arguments: [sequence, UUIDText.upper(e.id), StoreCoding.millis(e.time), e.classUID, e.severityID,
                                               e.userID?.rawValue, e.payloadJSON, previous, h])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError(.conflict, "event \(e.id) already stored")
            }
            stored.append(StoredEvent(sequence: sequence, event: e, previousHash: previous, hash: h))
            previous = h
        }
        return stored
    }

    /// The event columns in the order ``storedEvent(_:)`` reads them (by index: GRDB's look-up by name
    /// folds the name's case for every column of every row).
    static let eventColumns = "seq, id, time, class_uid, severity_id, user_id, payload, prev_hash, hash"

    static func storedEvent(_ r: Row) throws -> StoredEvent {
        let idText: String = try r.decode(atIndex: 1)
        guard let id = UUIDText.parse(idText) else { throw StoreError(.corrupt, "event id \(idText) is not a UUID") }
        let user: String? = try r.decode(atIndex: 5)
        let e = NewEvent(id: id, time: StoreCoding.date(millis: try r.decode(atIndex: 2)), classUID: try r.decode(atIndex: 3),
                         severityID: try r.decode(atIndex: 4), userID: user.map(UserID.init), payloadJSON: try r.decode(atIndex: 6))
        return StoredEvent(sequence: try r.decode(atIndex: 0), event: e, previousHash: try r.decode(atIndex: 7), hash: try r.decode(atIndex: 8))
    }

    public func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent] {
        try await read { db in
            var out: [StoredEvent] = []
            out.reserveCapacity(min(max(0, limit), 10_000))
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT \(Self.eventColumns) FROM events WHERE seq > ? ORDER BY seq LIMIT ?"),
                                           arguments: [sequence, max(0, limit)])
            while let row = try rows.next() { out.append(try Self.storedEvent(row)) }
            return out
        }
    }

    public func lastEvent() async throws -> StoredEvent? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT \(Self.eventColumns) FROM events ORDER BY seq DESC LIMIT 1").map(Self.storedEvent) }
    }

    /// Events a prune deletes per transaction (``pruneEvents(_:)``).
    public static let pruneChunk = 5_000

    /// Records the prune and deletes the events through its boundary, ``pruneChunk`` per transaction, pausing 100 ms
    /// between chunks: the write lock is let go between them long enough for a writer of another process to get it
    /// (SQLite's busy handler sleeps up to 100 ms between tries), so appends — the gateway's decisions, which with
    /// `audit.when_unwritten: refuse` pause access when they wait too long — go on during a large prune, run here
    /// or by `menshen audit prune`. See ``EventPruneStore/pruneEvents(_:)`` for what an interruption leaves.
    public func pruneEvents(_ prune: EventPruneRecord) async throws -> Int {
        try prune.validate()
        let chunk = "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT \(Self.pruneChunk))"
        var deleted = try await write { db in
            let hash = try String.fetchOne(db, sql: "SELECT hash FROM events WHERE seq = ?", arguments: [prune.throughSequence])
            let previous = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(through_seq), 0) FROM event_prunes") ?? 0
            guard hash == prune.throughHash, prune.throughSequence > previous else {
                throw StoreError(.conflict, "event \(prune.throughSequence) is not in the log with that hash (or was pruned)")
            }
            // The prune row first: the delete trigger lets through only rows at or below a recorded prune.
            try db.execute(sql: """
                INSERT INTO event_prunes(through_seq, through_hash, event_count, export_sha256, pruned_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [prune.throughSequence, prune.throughHash, prune.eventCount, prune.exportSHA256, StoreCoding.millis(prune.prunedAt)])
            try db.execute(sql: chunk, arguments: [prune.throughSequence])
            return db.changesCount
        }
        // Until a chunk finds nothing (not until one comes back short: rows another process deleted meanwhile make a
        // chunk short while more remain). A failure here leaves the rest to the next prune (the prune is recorded).
        var last = deleted
        while last > 0 {
            do {
                try await Task.sleep(for: .milliseconds(100))
                last = try await write { db in
                    try db.execute(sql: chunk, arguments: [prune.throughSequence])
                    return db.changesCount
                }
            } catch { break }
            deleted += last
        }
        return deleted
    }

    public func lastPrune() async throws -> EventPruneRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM event_prunes ORDER BY through_seq DESC LIMIT 1").map { r in
                EventPruneRecord(throughSequence: try r.decode(forColumn: "through_seq"), throughHash: try r.decode(forColumn: "through_hash"),
                                 eventCount: try r.decode(forColumn: "event_count"), exportSHA256: try r.decode(forColumn: "export_sha256"),
                                 prunedAt: StoreCoding.date(millis: try r.decode(forColumn: "pruned_at")))
            }
        }
    }

    public func searchEvents(_ query: EventQuery, order: EventOrder, after cursor: Int64?, limit: Int) async throws -> [StoredEvent] {
        try query.validate()
        // Every condition is a bound parameter; only the fixed clause texts are joined.
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        switch order {
        case .oldestFirst: clauses.append("seq > ?"); arguments.append(cursor ?? 0)
        case .newestFirst: clauses.append("seq < ?"); arguments.append(cursor ?? Int64.max)
        }
        if let since = query.since { clauses.append("time >= ?"); arguments.append(StoreCoding.millis(since)) }
        if let until = query.until { clauses.append("time < ?"); arguments.append(StoreCoding.millis(until)) }
        if !query.classUIDs.isEmpty {
            clauses.append("class_uid IN (" + query.classUIDs.map { _ in "?" }.joined(separator: ", ") + ")")
            arguments += query.classUIDs.map { $0 }
        }
        if let user = query.userID {
            if let text = query.userInPayload {
                clauses.append("(user_id = ? OR instr(payload, ?) > 0)"); arguments += [user, text]
            } else {
                clauses.append("user_id = ?"); arguments.append(user)
            }
        }
        for t in query.payloadContains { clauses.append("instr(payload, ?) > 0"); arguments.append(t) }
        arguments.append(max(0, limit))
        let sql = "SELECT \(Self.eventColumns) FROM events WHERE " + clauses.joined(separator: " AND ")
            + (order == .oldestFirst ? " ORDER BY seq LIMIT ?" : " ORDER BY seq DESC LIMIT ?")
        let bound = StatementArguments(arguments)
        return try await read { db in try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.storedEvent) }
    }

    public func eventCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }

    // MARK: Audit checkpoints

    public func appendCheckpoint(_ c: AuditCheckpointRecord) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO audit_checkpoints(seq, key_id, event_id, hash, time, signature) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(seq, key_id) DO NOTHING
                """, arguments: [c.sequence, c.keyID, c.eventID.uuidString, c.hash, StoreCoding.millis(c.time), c.signature])
        }
    }

    static func checkpointRecord(_ r: Row) throws -> AuditCheckpointRecord {
        let idText: String = try r.decode(forColumn: "event_id")
        guard let id = UUID(uuidString: idText) else { throw StoreError(.corrupt, "checkpoint event id \(idText) is not a UUID") }
        return AuditCheckpointRecord(sequence: try r.decode(forColumn: "seq"), eventID: id, hash: try r.decode(forColumn: "hash"),
                                     time: StoreCoding.date(millis: try r.decode(forColumn: "time")), keyID: try r.decode(forColumn: "key_id"),
                                     signature: try r.decode(forColumn: "signature"))
    }

    public func checkpoints(after sequence: Int64, limit: Int) async throws -> [AuditCheckpointRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_checkpoints WHERE seq > ? ORDER BY seq, key_id LIMIT ?",
                             arguments: [sequence, max(0, limit)]).map(Self.checkpointRecord)
        }
    }

    public func lastCheckpoint() async throws -> AuditCheckpointRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_checkpoints ORDER BY seq DESC, key_id DESC LIMIT 1").map(Self.checkpointRecord)
        }
    }

    // MARK: Enrolment tokens

    public func createEnrolmentToken(_ t: EnrolmentTokenRecord) async throws {
        try await write { db in
            try Self.require(db, "users", t.userID.rawValue, "user")
            if try Self.exists(db, "SELECT 1 FROM enrolment_tokens WHERE token_hash = ?", [t.tokenHash]) { throw StoreError(.conflict, "token exists") }
            try db.execute(sql: """
                INSERT INTO enrolment_tokens(token_hash, user_id, purpose, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [t.tokenHash, t.userID.rawValue, t.purpose, StoreCoding.millis(t.createdAt),
                                 StoreCoding.millis(t.expiresAt), t.usedAt.map(StoreCoding.millis)])
        }
    }

    public func enrolmentToken(hash: String) async throws -> EnrolmentTokenRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM enrolment_tokens WHERE token_hash = ?", arguments: [hash]).map { r in
                let used: Int64? = try r.decode(forColumn: "used_at")
                return EnrolmentTokenRecord(tokenHash: try r.decode(forColumn: "token_hash"), userID: UserID(try r.decode(forColumn: "user_id")),
                                            purpose: try r.decode(forColumn: "purpose"),
                                            createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")),
                                            expiresAt: StoreCoding.date(millis: try r.decode(forColumn: "expires_at")),
                                            usedAt: used.map(StoreCoding.date(millis:)))
            }
        }
    }

    public func consumeEnrolmentToken(hash: String, at: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE enrolment_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                           arguments: [StoreCoding.millis(at), hash, StoreCoding.millis(at)])
            return db.changesCount > 0
        }
    }

    // MARK: Consumer cursors

    public func cursor(named name: String) async throws -> Int64? {
        try ConsumerCursorName.validate(name)
        return try await read { db in try Int64.fetchOne(db, sql: "SELECT sequence FROM consumer_cursors WHERE name = ?", arguments: [name]) }
    }

    public func saveCursor(named name: String, sequence: Int64, at: Date) async throws {
        try ConsumerCursorName.validate(name, sequence: sequence)
        try await write { db in
            try db.execute(sql: """
                INSERT INTO consumer_cursors(name, sequence, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence, updated_at = excluded.updated_at
                """, arguments: [name, sequence, StoreCoding.millis(at)])
        }
    }

    // MARK: Leases

    public func acquireLease(named name: String, holder: String, duration: Duration) async throws -> Lease {
        let millis = try LeaseLimits.validate(name: name, holder: holder, duration: duration)
        return try await write { db in
            // One machine's processes share the database and its clock.
            let now = StoreCoding.millis(Date())
            try db.execute(sql: """
                INSERT INTO leases(name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET
                    acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > excluded.acquired_at
                                       THEN leases.acquired_at ELSE excluded.acquired_at END,
                    holder = excluded.holder, expires_at = excluded.expires_at
                WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at
                """, arguments: [name, holder, now, now + millis])
            guard let lease = try Self.lease(db, named: name) else { throw StoreError(.unavailable, "lease \(name) vanished while it was taken") }
            return lease
        }
    }

    public func releaseLease(named name: String, holder: String) async throws {
        try LeaseLimits.validateName(name); try LeaseLimits.validateHolder(holder)
        try await write { db in try db.execute(sql: "DELETE FROM leases WHERE name = ? AND holder = ?", arguments: [name, holder]) }
    }

    public func lease(named name: String) async throws -> Lease? {
        try LeaseLimits.validateName(name)
        return try await read { db in try Self.lease(db, named: name) }
    }

    private static func lease(_ db: Database, named name: String) throws -> Lease? {
        try Row.fetchOne(db, sql: "SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?", arguments: [name]).map {
            Lease(name: name, holder: $0["holder"], acquiredAt: StoreCoding.date(millis: $0["acquired_at"]),
                  expiresAt: StoreCoding.date(millis: $0["expires_at"]))
        }
    }

    // MARK: Risk scores

    public func saveRiskScore(_ record: RiskScoreRecord) async throws {
        try RiskScoreLimits.validate(record)
        try await write { db in
            try Self.require(db, "users", record.userID.rawValue, "user")
            try db.execute(sql: """
                INSERT INTO risk_scores(user_id, contributions, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(user_id) DO UPDATE SET contributions = excluded.contributions, updated_at = excluded.updated_at
                """, arguments: [record.userID.rawValue, record.contributions, StoreCoding.millis(record.updatedAt)])
        }
    }

    public func riskScore(of user: UserID) async throws -> RiskScoreRecord? {
        try await read { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT contributions, updated_at FROM risk_scores WHERE user_id = ?", arguments: [user.rawValue])
            else { return nil }
            return RiskScoreRecord(userID: user, contributions: try r.decode(forColumn: "contributions"),
                                   updatedAt: StoreCoding.date(millis: try r.decode(forColumn: "updated_at")))
        }
    }

    // MARK: Playbook approvals

    public func createApproval(_ r: PlaybookApprovalRecord) async throws {
        try PlaybookApprovalLimits.validate(r)
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM playbook_approvals WHERE id = ?", [r.id]) { throw StoreError(.conflict, "approval \(r.id) exists") }
            try db.execute(sql: """
                INSERT INTO playbook_approvals(id, playbook, action, finding_uid, summary, step, state, created_at, expires_at, decided_by, decided_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.id, r.playbook, r.action, r.findingUID, r.summary, r.step, r.state.rawValue, StoreCoding.millis(r.createdAt),
                                 StoreCoding.millis(r.expiresAt), r.decidedBy, r.decidedAt.map(StoreCoding.millis)])
        }
    }

    static func approval(_ row: Row) throws -> PlaybookApprovalRecord {
        guard let state = ApprovalState(rawValue: try row.decode(forColumn: "state")) else { throw StoreError(.corrupt, "unknown approval state") }
        let decidedAt: Int64? = try row.decode(forColumn: "decided_at")
        return PlaybookApprovalRecord(
            id: try row.decode(forColumn: "id"), playbook: try row.decode(forColumn: "playbook"), action: try row.decode(forColumn: "action"),
            findingUID: try row.decode(forColumn: "finding_uid"), summary: try row.decode(forColumn: "summary"), step: try row.decode(forColumn: "step"),
            state: state, createdAt: StoreCoding.date(millis: try row.decode(forColumn: "created_at")),
            expiresAt: StoreCoding.date(millis: try row.decode(forColumn: "expires_at")), decidedBy: try row.decode(forColumn: "decided_by"),
            decidedAt: decidedAt.map(StoreCoding.date(millis:)))
    }

    public func approval(id: String) async throws -> PlaybookApprovalRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM playbook_approvals WHERE id = ?", arguments: [id]).map(Self.approval) }
    }

    public func approvals(in states: [ApprovalState], limit: Int) async throws -> [PlaybookApprovalRecord] {
        guard !states.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: states.count).joined(separator: ", ")
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM playbook_approvals WHERE state IN (\(marks)) ORDER BY created_at, id LIMIT \(max(0, limit))",
                             arguments: StatementArguments(states.map(\.rawValue))).map(Self.approval)
        }
    }

    public func transitionApproval(id: String, from: ApprovalState, to: ApprovalState, by: String?, at: Date) async throws -> Bool {
        if let by, by.utf8.count > PlaybookApprovalLimits.maxTextLength { throw StoreError(.invalidInput, "approval decided by longer than \(PlaybookApprovalLimits.maxTextLength) bytes") }
        return try await write { db in
            try db.execute(sql: "UPDATE playbook_approvals SET state = ?, decided_by = COALESCE(?, decided_by), decided_at = ? WHERE id = ? AND state = ?",
                           arguments: [to.rawValue, by, StoreCoding.millis(at), id, from.rawValue])
            return db.changesCount > 0
        }
    }

    // MARK: Attestations

    public func createAttestation(_ r: AttestationRecord, files: [AttestationFileContent]) async throws -> AttestationRecord {
        try AttestationLimits.validate(r, files: files)
        var stored = r
        stored.files = files.map(\.info)
        let infos = stored.files
        try await write { db in
            // One transaction (GRDB's write): a failure on any file rolls back the record and the files before it.
            if try Self.exists(db, "SELECT 1 FROM attestations WHERE id = ?", [r.id]) { throw StoreError(.conflict, "attestation \(r.id) exists") }
            try db.execute(sql: """
                INSERT INTO attestations(id, principle_id, statement, attested_by, attested_at, expires_at, created_at, created_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.id, r.principleID, r.statement, r.attestedBy, StoreCoding.millis(r.attestedAt), StoreCoding.millis(r.expiresAt),
                                 StoreCoding.millis(r.createdAt), r.createdBy])
            for (position, (file, info)) in zip(files, infos).enumerated() {
                try db.execute(sql: "INSERT INTO attestation_files(attestation_id, position, name, sha256, size, content) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [r.id, position, info.name, info.sha256, info.size, file.bytes])
            }
        }
        return stored
    }

    static func attestationRecord(_ row: Row, files: [AttestationFileInfo]) throws -> AttestationRecord {
        let revokedAt: Int64? = try row.decode(forColumn: "revoked_at")
        return AttestationRecord(
            id: try row.decode(forColumn: "id"), principleID: try row.decode(forColumn: "principle_id"), statement: try row.decode(forColumn: "statement"),
            attestedBy: try row.decode(forColumn: "attested_by"), attestedAt: StoreCoding.date(millis: try row.decode(forColumn: "attested_at")),
            expiresAt: StoreCoding.date(millis: try row.decode(forColumn: "expires_at")), revokedAt: revokedAt.map(StoreCoding.date(millis:)),
            revokedBy: try row.decode(forColumn: "revoked_by"), revocationReason: try row.decode(forColumn: "revocation_reason"),
            createdAt: StoreCoding.date(millis: try row.decode(forColumn: "created_at")), createdBy: try row.decode(forColumn: "created_by"), files: files)
    }

    /// The files' metadata (never their bytes) of the given attestations, in attachment order.
    static func attestationFileInfos(_ db: Database, of ids: [String]) throws -> [String: [AttestationFileInfo]] {
        guard !ids.isEmpty else { return [:] }
        var out: [String: [AttestationFileInfo]] = [:]
        // In chunks, below SQLite's limit on bound parameters.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(ids.count, start + 500)])
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for row in try Row.fetchAll(db, sql: """
                SELECT attestation_id, name, sha256, size FROM attestation_files WHERE attestation_id IN (\(marks)) ORDER BY attestation_id, position
                """, arguments: StatementArguments(chunk)) {
                let id: String = try row.decode(forColumn: "attestation_id")
                out[id, default: []].append(AttestationFileInfo(name: try row.decode(forColumn: "name"), sha256: try row.decode(forColumn: "sha256"),
                                                                size: try row.decode(forColumn: "size")))
            }
        }
        return out
    }

    public func attestation(id: String) async throws -> AttestationRecord? {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM attestations WHERE id = ?", arguments: [id]) else { return nil }
            return try Self.attestationRecord(row, files: try Self.attestationFileInfos(db, of: [id])[id] ?? [])
        }
    }

    public func attestations(principleID: String?, limit: Int) async throws -> [AttestationRecord] {
        let limit = max(0, min(limit, AttestationLimits.maxList))
        return try await read { db in
            let fetched = if let principleID {
                try Row.fetchAll(db, sql: "SELECT * FROM attestations WHERE principle_id = ? ORDER BY attested_at, id LIMIT \(limit)",
                                 arguments: [principleID])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM attestations ORDER BY attested_at, id LIMIT \(limit)")
            }
            let files = try Self.attestationFileInfos(db, of: try fetched.map { try $0.decode(forColumn: "id") as String })
            return try fetched.map { row in try Self.attestationRecord(row, files: files[try row.decode(forColumn: "id") as String] ?? []) }
        }
    }

    public func attestationFile(attestationID: String, name: String) async throws -> AttestationFileContent? {
        try await read { db in
            try Data.fetchOne(db, sql: "SELECT content FROM attestation_files WHERE attestation_id = ? AND name = ?", arguments: [attestationID, name])
                .map { AttestationFileContent(name: name, bytes: $0) }
        }
    }

    public func revokeAttestation(id: String, at: Date, by: String, reason: String) async throws -> Bool {
        try AttestationLimits.validateName(by, "revoked by")
        try AttestationLimits.validateText(reason, "the reason", max: AttestationLimits.maxReasonLength)
        return try await write { db in
            try db.execute(sql: "UPDATE attestations SET revoked_at = ?, revoked_by = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL",
                           arguments: [StoreCoding.millis(at), by, reason, id])
            return db.changesCount > 0
        }
    }

    // MARK: Cases

    public func createCase(_ r: CaseRecord) async throws {
        try CaseLimits.validate(r)
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM cases WHERE id = ?", [r.id]) { throw StoreError(.conflict, "case \(r.id) exists") }
            try db.execute(sql: """
                INSERT INTO cases(id, title, status_id, severity_id, owner, verdict_id, group_key, created_at, modified_at, last_finding_at)
                VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)
                """, arguments: [r.id, r.title, r.status.rawValue, r.severityID, r.owner, r.groupKey, StoreCoding.millis(r.createdAt),
                                 StoreCoding.millis(r.modifiedAt), StoreCoding.millis(r.lastFindingAt)])
            for (position, uid) in r.findingUIDs.enumerated() {
                try db.execute(sql: "INSERT INTO case_findings(case_id, position, finding_uid, attached_at) VALUES (?, ?, ?, ?)",
                               arguments: [r.id, position, uid, StoreCoding.millis(r.createdAt)])
            }
        }
    }

    /// Reads whole cases (findings and notes included) for the rows `sql` selects from `cases`.
    static func caseRecords(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [CaseRecord] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            let id: String = try row.decode(forColumn: "id")
            let statusID: Int = try row.decode(forColumn: "status_id")
            let verdictID: Int? = try row.decode(forColumn: "verdict_id")
            guard let status = CaseStatus(rawValue: statusID) else { throw StoreError(.corrupt, "case \(id) has status_id \(statusID)") }
            let verdict = try verdictID.map { v in
                guard let verdict = CaseVerdict(rawValue: v) else { throw StoreError(.corrupt, "case \(id) has verdict_id \(v)") }
                return verdict
            }
            let findings = try String.fetchAll(db, sql: "SELECT finding_uid FROM case_findings WHERE case_id = ? ORDER BY position", arguments: [id])
            let notes = try Row.fetchAll(db, sql: "SELECT author, created_at, text FROM case_notes WHERE case_id = ? ORDER BY position",
                                         arguments: [id]).map { n in
                CaseNote(author: try n.decode(forColumn: "author"), time: StoreCoding.date(millis: try n.decode(forColumn: "created_at")),
                         text: try n.decode(forColumn: "text"))
            }
            return CaseRecord(id: id, title: try row.decode(forColumn: "title"), status: status, severityID: try row.decode(forColumn: "severity_id"),
                              owner: try row.decode(forColumn: "owner"), verdict: verdict, groupKey: try row.decode(forColumn: "group_key"),
                              findingUIDs: findings, notes: notes, createdAt: StoreCoding.date(millis: try row.decode(forColumn: "created_at")),
                              modifiedAt: StoreCoding.date(millis: try row.decode(forColumn: "modified_at")),
                              lastFindingAt: StoreCoding.date(millis: try row.decode(forColumn: "last_finding_at")))
        }
    }

    static func existingCase(_ db: Database, _ id: String) throws -> CaseRecord {
        guard let r = try caseRecords(db, "SELECT * FROM cases WHERE id = ?", [id]).first else { throw StoreError(.notFound, "no case \(id)") }
        return r
    }

    public func caseRecord(id: String) async throws -> CaseRecord? {
        try await read { db in try Self.caseRecords(db, "SELECT * FROM cases WHERE id = ?", [id]).first }
    }

    public func cases(status: CaseStatus?, owner: CaseOwnerFilter, limit: Int) async throws -> [CaseRecord] {
        let limit = max(0, min(limit, CaseLimits.maxList))
        return try await read { db in
            var conditions: [String] = [], args: [(any DatabaseValueConvertible)?] = []
            if let status { conditions.append("status_id = ?"); args.append(status.rawValue) }
            switch owner {
            case .any: break
            case .unassigned: conditions.append("owner IS NULL")
            case .named(let n): conditions.append("owner = ?"); args.append(n)
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Self.caseRecords(db, "SELECT * FROM cases \(filter) ORDER BY modified_at DESC, id LIMIT \(limit)", StatementArguments(args))
        }
    }

    public func openCase(groupKey: String, since: Date) async throws -> CaseRecord? {
        try await read { db in
            try Self.caseRecords(db, """
                SELECT * FROM cases WHERE group_key = ? AND status_id IN (1, 2, 3) AND last_finding_at >= ?
                ORDER BY last_finding_at DESC, id LIMIT 1
                """, [groupKey, StoreCoding.millis(since)]).first
        }
    }

    public func attachFinding(caseID: String, findingUID: String, severityID: Int, findingTime: Date, at: Date) async throws -> CaseRecord {
        try CaseLimits.validateFindingUID(findingUID); try CaseLimits.validateSeverity(severityID)
        return try await write { db in
            // One write transaction: two attaches to one case are serialised by SQLite's single writer.
            let r = try Self.existingCase(db, caseID)
            if r.findingUIDs.contains(findingUID) { return r }
            guard r.status.isOpen else { throw StoreError(.conflict, "case \(caseID) is \(r.status.name); findings are attached to open cases only") }
            guard r.findingUIDs.count < CaseLimits.maxFindings else { throw StoreError(.conflict, "case \(caseID) holds \(CaseLimits.maxFindings) findings") }
            try db.execute(sql: "INSERT INTO case_findings(case_id, position, finding_uid, attached_at) VALUES (?, ?, ?, ?)",
                           arguments: [caseID, r.findingUIDs.count, findingUID, StoreCoding.millis(at)])
            try db.execute(sql: "UPDATE cases SET severity_id = ?, last_finding_at = ?, modified_at = ? WHERE id = ?",
                           arguments: [CaseLimits.higherSeverity(r.severityID, severityID), StoreCoding.millis(max(r.lastFindingAt, findingTime)),
                                       StoreCoding.millis(at), caseID])
            return try Self.existingCase(db, caseID)
        }
    }

    public func assignCase(id: String, owner: String?, at: Date) async throws -> CaseRecord {
        if let owner { try AttestationLimits.validateName(owner, "the owner") }
        return try await write { db in
            let r = try Self.existingCase(db, id)
            guard r.status != .closed else { throw StoreError(.conflict, "case \(id) is closed; reopen it first") }
            try db.execute(sql: "UPDATE cases SET owner = ?, modified_at = ? WHERE id = ?", arguments: [owner, StoreCoding.millis(at), id])
            return try Self.existingCase(db, id)
        }
    }

    public func setCaseStatus(id: String, status: CaseStatus, verdict: CaseVerdict?, reopen: Bool, at: Date) async throws -> CaseRecord {
        try await write { db in
            let r = try Self.existingCase(db, id)
            try CaseLimits.checkTransition(from: r.status, to: status, verdict: verdict, existing: r.verdict, reopen: reopen, id: id)
            let newVerdict = status.isOpen ? nil : verdict ?? r.verdict
            try db.execute(sql: "UPDATE cases SET status_id = ?, verdict_id = ?, modified_at = ? WHERE id = ?",
                           arguments: [status.rawValue, newVerdict?.rawValue, StoreCoding.millis(at), id])
            return try Self.existingCase(db, id)
        }
    }

    public func addCaseNote(id: String, note: CaseNote) async throws -> CaseRecord {
        try CaseLimits.validateNote(note)
        return try await write { db in
            let r = try Self.existingCase(db, id)
            guard r.notes.count < CaseLimits.maxNotes else { throw StoreError(.conflict, "case \(id) holds \(CaseLimits.maxNotes) notes") }
            try db.execute(sql: "INSERT INTO case_notes(case_id, position, author, created_at, text) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, r.notes.count, note.author, StoreCoding.millis(note.time), note.text])
            try db.execute(sql: "UPDATE cases SET modified_at = ? WHERE id = ?", arguments: [StoreCoding.millis(max(r.modifiedAt, note.time)), id])
            return try Self.existingCase(db, id)
        }
    }

    // MARK: Assessment history

    public func saveAssessment(_ r: AssessmentHistoryRecord) async throws {
        try AssessmentHistoryLimits.validate(r)
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM assessments WHERE id = ?", [r.id]) { throw StoreError(.conflict, "assessment \(r.id) exists") }
            try db.execute(sql: """
                INSERT INTO assessments(id, generated_at, window_start, window_end, overall_level, document, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.id, StoreCoding.millis(r.generatedAt), StoreCoding.millis(r.windowStart), StoreCoding.millis(r.windowEnd),
                                 r.overallLevel, r.json, r.sha256])
        }
    }

    static func assessmentRecord(_ row: Row) throws -> AssessmentHistoryRecord {
        AssessmentHistoryRecord(
            id: try row.decode(forColumn: "id"), generatedAt: StoreCoding.date(millis: try row.decode(forColumn: "generated_at")),
            windowStart: StoreCoding.date(millis: try row.decode(forColumn: "window_start")),
            windowEnd: StoreCoding.date(millis: try row.decode(forColumn: "window_end")), overallLevel: try row.decode(forColumn: "overall_level"),
            json: try row.decode(forColumn: "document"), sha256: try row.decode(forColumn: "sha256"))
    }

    public func latestAssessment() async throws -> AssessmentHistoryRecord? { try await assessments(limit: 1).first }

    public func assessments(limit: Int) async throws -> [AssessmentHistoryRecord] {
        let limit = max(0, min(limit, AssessmentHistoryLimits.maxList))
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM assessments ORDER BY generated_at DESC, seq DESC LIMIT \(limit)").map(Self.assessmentRecord)
        }
    }

    public func assessment(id: String) async throws -> AssessmentHistoryRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM assessments WHERE id = ?", arguments: [id]).map(Self.assessmentRecord) }
    }

    // MARK: Devices

    public func createDevice(_ d: DeviceRecord) async throws {
        try await write { db in try Self.insertDevice(db, d) }
    }

    public func createDevice(_ d: DeviceRecord, certificate c: DeviceCertificateRecord) async throws {
        guard c.deviceID == d.id else { throw StoreError(.invalidInput, "certificate \(c.serial) is not for device \(d.id)") }
        // One write closure is one transaction: a failure in the second insert rolls back the first.
        try await write { db in
            try Self.insertDevice(db, d)
            try Self.insertDeviceCertificate(db, c)
        }
    }

    static func insertDevice(_ db: Database, _ d: DeviceRecord) throws {
        if let owner = d.ownerID { try Self.require(db, "users", owner.rawValue, "user") }
        if try Self.exists(db, "SELECT 1 FROM devices WHERE id = ?", [d.id.rawValue]) { throw StoreError(.conflict, "device \(d.id) exists") }
        try db.execute(sql: """
            INSERT INTO devices(id, owner_id, display_name, device_class, platform, hardware_bound, state, compliant, compliance_reasons,
                                posture, last_posture_at, max_vulnerability_severity, version, enrolled_at, updated_at, vulnerability_findings)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: Self.deviceArguments(d, version: d.version))
    }

    static func deviceArguments(_ d: DeviceRecord, version: Int) -> StatementArguments {
        [d.id.rawValue, d.ownerID?.rawValue, d.displayName, d.deviceClass.rawValue, d.platform, d.hardwareBound, d.state.rawValue,
         d.compliant, StoreCoding.jsonArray(d.complianceReasons), d.postureJSON, d.lastPostureAt.map(StoreCoding.millis),
         d.maxVulnerabilitySeverity, version, StoreCoding.millis(d.enrolledAt), StoreCoding.millis(d.updatedAt),
         StoreCoding.findingsJSON(d.vulnerabilityFindings)]
    }

    static func deviceRecord(_ r: Row) throws -> DeviceRecord {
        let classText: String = try r.decode(forColumn: "device_class"), stateText: String = try r.decode(forColumn: "state")
        guard let deviceClass = DeviceClass(rawValue: classText), let state = DeviceState(rawValue: stateText) else {
            throw StoreError(.corrupt, "device with unknown class \(classText) or state \(stateText)")
        }
        let owner: String? = try r.decode(forColumn: "owner_id"), posture: Int64? = try r.decode(forColumn: "last_posture_at")
        return DeviceRecord(
            id: DeviceID(try r.decode(forColumn: "id")), ownerID: owner.map(UserID.init), displayName: try r.decode(forColumn: "display_name"),
            deviceClass: deviceClass, platform: try r.decode(forColumn: "platform"), hardwareBound: try r.decode(forColumn: "hardware_bound"),
            state: state, compliant: try r.decode(forColumn: "compliant"),
            complianceReasons: try StoreCoding.stringArray(try r.decode(forColumn: "compliance_reasons")),
            postureJSON: try r.decode(forColumn: "posture"), lastPostureAt: posture.map(StoreCoding.date(millis:)),
            maxVulnerabilitySeverity: try r.decode(forColumn: "max_vulnerability_severity"),
            vulnerabilityFindings: try StoreCoding.findings(try r.decode(forColumn: "vulnerability_findings")),
            version: try r.decode(forColumn: "version"),
            enrolledAt: StoreCoding.date(millis: try r.decode(forColumn: "enrolled_at")),
            updatedAt: StoreCoding.date(millis: try r.decode(forColumn: "updated_at")))
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM devices WHERE id = ?", arguments: [id.rawValue]).map(Self.deviceRecord) }
    }

    public func listDevices() async throws -> [DeviceRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM devices ORDER BY id").map(Self.deviceRecord) }
    }

    public func updateDevice(_ d: DeviceRecord, expectedVersion: Int) async throws -> Bool {
        try await write { db in
            if let owner = d.ownerID { try Self.require(db, "users", owner.rawValue, "user") }
            try db.execute(sql: """
                UPDATE devices SET owner_id = ?, display_name = ?, device_class = ?, platform = ?, hardware_bound = ?, state = ?,
                  compliant = ?, compliance_reasons = ?, posture = ?, last_posture_at = ?, max_vulnerability_severity = ?,
                  vulnerability_findings = ?, version = ?, enrolled_at = ?, updated_at = ?
                WHERE id = ? AND version = ?
                """, arguments: [d.ownerID?.rawValue, d.displayName, d.deviceClass.rawValue, d.platform, d.hardwareBound, d.state.rawValue,
                                 d.compliant, StoreCoding.jsonArray(d.complianceReasons), d.postureJSON, d.lastPostureAt.map(StoreCoding.millis),
                                 d.maxVulnerabilitySeverity, StoreCoding.findingsJSON(d.vulnerabilityFindings), expectedVersion + 1, StoreCoding.millis(d.enrolledAt), StoreCoding.millis(d.updatedAt),
                                 d.id.rawValue, expectedVersion])
            return db.changesCount > 0
        }
    }

    public func addDeviceCertificate(_ c: DeviceCertificateRecord) async throws {
        try await write { db in try Self.insertDeviceCertificate(db, c) }
    }

    static func insertDeviceCertificate(_ db: Database, _ c: DeviceCertificateRecord) throws {
        try Self.require(db, "devices", c.deviceID.rawValue, "device")
        if try Self.exists(db, "SELECT 1 FROM device_certificates WHERE serial = ? OR fingerprint = ?", [c.serial, c.fingerprint]) {
            throw StoreError(.conflict, "certificate \(c.serial) exists")
        }
        try db.execute(sql: """
            INSERT INTO device_certificates(serial, device_id, fingerprint, public_key_fingerprint, not_before, not_after, revoked_at, revoked_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [c.serial, c.deviceID.rawValue, c.fingerprint, c.publicKeyFingerprint, StoreCoding.millis(c.notBefore),
                             StoreCoding.millis(c.notAfter), c.revokedAt.map(StoreCoding.millis), c.revokedReason])
    }

    static func deviceCertificateRecord(_ r: Row) throws -> DeviceCertificateRecord {
        let revoked: Int64? = try r.decode(forColumn: "revoked_at")
        return DeviceCertificateRecord(
            serial: try r.decode(forColumn: "serial"), deviceID: DeviceID(try r.decode(forColumn: "device_id")),
            fingerprint: try r.decode(forColumn: "fingerprint"), publicKeyFingerprint: try r.decode(forColumn: "public_key_fingerprint"),
            notBefore: StoreCoding.date(millis: try r.decode(forColumn: "not_before")),
            notAfter: StoreCoding.date(millis: try r.decode(forColumn: "not_after")),
            revokedAt: revoked.map(StoreCoding.date(millis:)), revokedReason: try r.decode(forColumn: "revoked_reason"))
    }

    public func deviceCertificate(serial: String) async throws -> DeviceCertificateRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM device_certificates WHERE serial = ?", arguments: [serial]).map(Self.deviceCertificateRecord)
        }
    }

    public func deviceCertificates(of device: DeviceID) async throws -> [DeviceCertificateRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM device_certificates WHERE device_id = ? ORDER BY not_before, serial",
                             arguments: [device.rawValue]).map(Self.deviceCertificateRecord)
        }
    }

    public func revokeDeviceCertificate(serial: String, at: Date, reason: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE device_certificates SET revoked_at = ?, revoked_reason = ? WHERE serial = ? AND revoked_at IS NULL",
                           arguments: [StoreCoding.millis(at), reason, serial])
            return db.changesCount > 0
        }
    }

    public func revokeDeviceCertificates(of device: DeviceID, at: Date, reason: String) async throws -> Int {
        try await write { db in
            try db.execute(sql: "UPDATE device_certificates SET revoked_at = ?, revoked_reason = ? WHERE device_id = ? AND revoked_at IS NULL",
                           arguments: [StoreCoding.millis(at), reason, device.rawValue])
            return db.changesCount
        }
    }

    // MARK: Credentials

    public func createCredential(_ c: CredentialRecord) async throws {
        try await write { db in
            try Self.require(db, "users", c.userID.rawValue, "user")
            if try Self.exists(db, "SELECT 1 FROM credentials WHERE id = ?", [c.id]) { throw StoreError(.conflict, "credential exists") }
            try db.execute(sql: """
                INSERT INTO credentials(id, user_id, kind, label, data, version, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [c.id, c.userID.rawValue, c.kind.rawValue, c.label, c.data, c.version,
                                 StoreCoding.millis(c.createdAt), c.lastUsedAt.map(StoreCoding.millis)])
        }
    }

    static func credentialRecord(_ r: Row) throws -> CredentialRecord {
        let kindText: String = try r.decode(forColumn: "kind")
        guard let kind = CredentialKind(rawValue: kindText) else { throw StoreError(.corrupt, "unknown credential kind \(kindText)") }
        let used: Int64? = try r.decode(forColumn: "last_used_at")
        return CredentialRecord(id: try r.decode(forColumn: "id"), userID: UserID(try r.decode(forColumn: "user_id")), kind: kind,
                                label: try r.decode(forColumn: "label"), data: try r.decode(forColumn: "data"),
                                version: try r.decode(forColumn: "version"),
                                createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")),
                                lastUsedAt: used.map(StoreCoding.date(millis:)))
    }

    public func credential(id: String) async throws -> CredentialRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM credentials WHERE id = ?", arguments: [id]).map(Self.credentialRecord) }
    }

    public func credentials(of user: UserID) async throws -> [CredentialRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials WHERE user_id = ? ORDER BY created_at, id",
                             arguments: [user.rawValue]).map(Self.credentialRecord)
        }
    }

    public func updateCredential(id: String, expectedVersion: Int, data: String, label: String, lastUsedAt: Date?) async throws -> Bool {
        try await write { db in
            try db.execute(sql: """
                UPDATE credentials SET data = ?, label = ?, last_used_at = ?, version = version + 1 WHERE id = ? AND version = ?
                """, arguments: [data, label, lastUsedAt.map(StoreCoding.millis), id, expectedVersion])
            return db.changesCount > 0
        }
    }

    public func deleteCredential(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM credentials WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func deleteCredentials(of user: UserID, kinds: [CredentialKind]) async throws -> Int {
        guard !kinds.isEmpty else { return 0 }
        return try await write { db in
            let marks = Array(repeating: "?", count: kinds.count).joined(separator: ", ")
            var args: [(any DatabaseValueConvertible)?] = [user.rawValue]
            args += kinds.map { $0.rawValue }
            try db.execute(sql: "DELETE FROM credentials WHERE user_id = ? AND kind IN (\(marks))", arguments: StatementArguments(args))
            return db.changesCount
        }
    }

    // MARK: Flow state

    public func createFlowState(_ f: FlowStateRecord) async throws {
        try await write { db in
            if try Self.exists(db, "SELECT 1 FROM flow_states WHERE id_hash = ?", [f.idHash]) { throw StoreError(.conflict, "flow state exists") }
            try db.execute(sql: """
                INSERT INTO flow_states(id_hash, kind, user_id, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [f.idHash, f.kind, f.userID?.rawValue, f.data, StoreCoding.millis(f.createdAt),
                                 StoreCoding.millis(f.expiresAt)])
        }
    }

    public func takeFlowState(idHash: String, kind: String, at: Date) async throws -> FlowStateRecord? {
        try await write { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT * FROM flow_states WHERE id_hash = ? AND kind = ?", arguments: [idHash, kind])
            else { return nil }
            try db.execute(sql: "DELETE FROM flow_states WHERE id_hash = ?", arguments: [idHash])
            let user: String? = try r.decode(forColumn: "user_id")
            let state = FlowStateRecord(idHash: try r.decode(forColumn: "id_hash"), kind: try r.decode(forColumn: "kind"),
                                        userID: user.map(UserID.init), data: try r.decode(forColumn: "data"),
                                        createdAt: StoreCoding.date(millis: try r.decode(forColumn: "created_at")),
                                        expiresAt: StoreCoding.date(millis: try r.decode(forColumn: "expires_at")))
            return at < state.expiresAt ? state : nil
        }
    }

    public func deleteFlowStates(expiredBefore date: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM flow_states WHERE expires_at < ?", arguments: [StoreCoding.millis(date)])
            return db.changesCount
        }
    }
}
