import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MenshenCore
import MenshenStorage
@testable import MenshenStorageSQLite
import Synchronization
import Testing

/// The SQLite store answers "which access generation is committed now" from the
/// wal-index header when nothing was committed since its last read. These cases
/// check that answer against a fresh read after every kind of write by another
/// connection (what another process does: the command line, an administrator's SQL).
@Suite("SQLite committed access generation")
struct WALCommitWatchTests {
    /// A new, empty directory for a test's database files (the caller removes it).
    static func newDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-wal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("never stale: after any write by another connection it equals a fresh read; without commits it reads nothing")
    func neverStale() async throws {
        let dir = try Self.newDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)
        let t0 = Date(timeIntervalSince1970: 1_795_000_000)
        try await other.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        try await other.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        try await other.createGroup(GroupRecord(id: "audit", displayName: "Audit"))

        try await other.createDevice(DeviceRecord(id: "laptop-1", ownerID: "amy", displayName: "laptop-1", deviceClass: .managed, platform: "linux",
                                                  hardwareBound: true, compliant: true, complianceReasons: [], lastPostureAt: t0, enrolledAt: t0))

        var sessions: [String] = []
        var generator = SystemRandomNumberGenerator()
        var accessChanges = 0, deviceChanges = 0
        for step in 0..<300 {
            switch Int.random(in: 0..<11, using: &generator) {
            case 0: try await other.addMember("amy", to: "staff"); accessChanges += 1
            case 1: try await other.removeMember("amy", from: "staff"); accessChanges += 1
            case 2:
                let hash = SecretHash.sha256Hex("s\(step)")
                try await other.createSession(SessionRecord(idHash: hash, userID: "amy", createdAt: t0, idleExpiresAt: t0.addingTimeInterval(60),
                                                            absoluteExpiresAt: t0.addingTimeInterval(600), levelOfAssurance: 1, amr: ["pwd"]))
                sessions.append(hash)
            case 3:
                if let hash = sessions.randomElement(using: &generator) {
                    _ = try await other.touchSession(idHash: hash, lastSeenAt: t0.addingTimeInterval(Double(step)), idleExpiresAt: t0.addingTimeInterval(900))
                }
            case 4:
                if let hash = sessions.popLast() { _ = try await other.revokeSession(idHash: hash, at: t0, reason: "test"); accessChanges += 1 }
            case 5:
                _ = try await other.appendEvents([NewEvent(id: UUID(), time: t0, classUID: 3001, payloadJSON: "{}")], hasher: EventChain.hasher)
            case 6:
                var amy = try #require(try await store.user("amy"))
                amy.displayName = "Amy \(step)"
                try await store.updateUser(amy); accessChanges += 1
            case 7:
                // This store's own events (the decision audit): the generation known before may be carried over them.
                _ = try await store.appendEvents([NewEvent(id: UUID(), time: t0, classUID: 6001, payloadJSON: "{}")], hasher: EventChain.hasher)
            case 8, 9:
                // A posture report (the device counter), by another connection or by this store.
                let writer = step % 2 == 0 ? other : store
                var laptop = try #require(try await writer.device("laptop-1"))
                laptop.lastPostureAt = t0.addingTimeInterval(Double(step))
                #expect(try await writer.updateDevice(laptop, expectedVersion: laptop.version))
                deviceChanges += 1
            default: break   // nothing committed
            }
            let fast = store.committedGenerations()
            let truth = try await other.changeGenerations()
            #expect(fast == CommittedGenerations(access: truth.access, device: truth.device), "step \(step)")
            #expect(store.committedAccessGeneration() == truth.access, "step \(step)")
        }
        #expect(accessChanges > 20, "the walk changed access many times")
        #expect(deviceChanges > 20, "the walk changed devices many times")

        // With no commit in between, the answer comes from the header, not the database.
        let reads = store.databaseGenerationReads.load(ordering: .relaxed)
        let g = store.committedAccessGeneration()
        for _ in 0..<1000 { #expect(store.committedAccessGeneration() == g) }
        #expect(store.databaseGenerationReads.load(ordering: .relaxed) <= reads + 1, "1,000 unchanged looks read the database at most once")
        try await other.addMember("amy", to: "audit")   // a new membership: one access change
        #expect(store.committedAccessGeneration() == (g ?? 0) + 1, "and the next commit is seen at once")
        try await other.close()
        try await store.close()
        #expect(store.committedAccessGeneration() == nil, "a closed store vouches for nothing")
    }

    @Test("the counters are read without a pooled reader: with every reader of the pool held, a change by another connection is still seen at once")
    func noPooledReaderNeeded() async throws {
        let dir = try Self.newDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)
        try await other.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Date(timeIntervalSince1970: 1)))
        try await other.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        let before = try #require(store.committedGenerations())

        // Every reader of the gateway's pool busy (the requests a change sent the slow way), on threads of their own.
        let release = DispatchSemaphore(value: 0), held = DispatchSemaphore(value: 0)
        let holders = (0..<SQLiteStore.pooledReaders).map { _ in
            Thread {
                _ = try? store.holdingPooledReader { held.signal(); release.wait() }
            }
        }
        holders.forEach { $0.start() }
        var allHeld = true
        for _ in holders { if held.wait(timeout: .now() + 10) == .timedOut { allHeld = false } }
        #expect(allHeld, "the pool's readers were not all taken")

        try await other.addMember("amy", to: "staff")   // an access change: the next look must read the database
        let answer = Mutex<CommittedGenerations??>(nil)
        let asked = DispatchSemaphore(value: 0)
        Thread { answer.withLock { $0 = .some(store.committedGenerations()) }; asked.signal() }.start()
        let answeredInTime = asked.wait(timeout: .now() + 3) == .success
        for _ in holders { release.signal() }
        if !answeredInTime { asked.wait() }
        #expect(answeredInTime, "the look waited for a pooled reader")
        #expect(answer.withLock { $0 } == .some(CommittedGenerations(access: before.access + 1, device: before.device)))
        try await other.close()
        try await store.close()
    }

    /// POSIX record locks this process holds on a file, from /proc/locks.
    static func locksHeld(onInodeOf path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return -1 }
        let me = String(getpid()), inode = ":\(info.st_ino) "
        // Read to the end: /proc files report size 0, and a read sized from that can stop at the first page —
        // in a parallel run the system holds hundreds of locks and ours may come later.
        // The most of five reads: /proc/locks is read a page at a time, and while other tests take and drop locks the
        // list can shift between pages, so one read can miss a line (a CI run once saw none of ours). A lock held all
        // along is in at least one read; a dropped one is in none after it was dropped.
        var most = -1
        for _ in 0..<5 {
            guard let handle = FileHandle(forReadingAtPath: "/proc/locks") else { return -1 }
            defer { try? handle.close() }
            let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
            most = max(most, text.split(separator: "\n")
                .filter { $0.contains(" POSIX ") && $0.split(separator: " ").contains(Substring(me)) && ($0 + " ").contains(inode) }.count)
        }
        return most
    }

    @Test("the store's own event appends keep the known generation without a database read; others' changes are still seen at once")
    func ownAppends() async throws {
        let dir = try Self.newDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        let other = try SQLiteStore(path: file)   // another process
        let t0 = Date(timeIntervalSince1970: 1_795_000_000)
        try await other.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: t0))
        try await other.createGroup(GroupRecord(id: "staff", displayName: "Staff"))
        func event() -> NewEvent { NewEvent(id: UUID(), time: t0, classUID: 6001, payloadJSON: "{}") }

        // Appends one after another: after the first look, none of them makes a look read the database.
        let g = store.committedAccessGeneration()
        let reads = store.databaseGenerationReads.load(ordering: .relaxed)
        for _ in 0..<200 {
            _ = try await store.appendEvents([event()], hasher: EventChain.hasher)
            #expect(store.committedAccessGeneration() == g)
        }
        #expect(store.databaseGenerationReads.load(ordering: .relaxed) == reads, "200 own appends, no database read")
        // Another process's append is not this store's: it is read once.
        _ = try await other.appendEvents([event()], hasher: EventChain.hasher)
        #expect(store.committedAccessGeneration() == g)
        #expect(store.databaseGenerationReads.load(ordering: .relaxed) == reads + 1)

        // Appends running all along while another process changes access: every change is seen by the next look.
        let appender = Task {
            for _ in 0..<400 { _ = try await store.appendEvents([event(), event()], hasher: EventChain.hasher) }
        }
        for i in 0..<60 {
            if i % 2 == 0 { try await other.addMember("amy", to: "staff") } else { try await other.removeMember("amy", from: "staff") }
            let truth = try await other.changeGenerations().access
            #expect(store.committedAccessGeneration() == truth, "change \(i)")
        }
        try await appender.value
        #expect(store.committedAccessGeneration() == (g ?? 0) + 60)
        try await other.close()
        try await store.close()
    }

    @Test("watching the wal-index keeps SQLite's locks on the -shm file (closing any descriptor of it would drop them)")
    func locksKept() async throws {
        let dir = try Self.newDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("menshen.sqlite").path
        let store = try SQLiteStore(path: file)
        try await store.createUser(UserRecord(id: "amy", displayName: "Amy", createdAt: Date()))
        let before = try Self.locksHeld(onInodeOf: file + "-shm")
        #expect(before > 0, "SQLite holds its shared-memory lock while connections are open")
        for _ in 0..<3 { _ = store.committedAccessGeneration() }   // opens the watch
        try await store.createUser(UserRecord(id: "bo", displayName: "Bo", createdAt: Date()))
        _ = store.committedAccessGeneration()
        #expect(try Self.locksHeld(onInodeOf: file + "-shm") >= before, "no lock was dropped by the watch")
        try await store.close()
    }

    @Test("a malformed or missing wal-index is \"unknown\", never a stale answer")
    func unknownHeader() throws {
        let dir = try Self.newDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.sqlite").path
        #expect(WALCommitWatch(databasePath: path) == nil, "no -shm file")
        try Data(count: 50).write(to: URL(fileURLWithPath: path + "-shm"))
        #expect(WALCommitWatch(databasePath: path) == nil, "too short to hold the header")
        var bytes = [UInt8](repeating: 0, count: 4096)
        for i in 0..<48 { bytes[i] = UInt8(i); bytes[48 + i] = UInt8(i) }
        bytes[12] = 0; bytes[48 + 12] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: path + "-shm"))
        #expect(WALCommitWatch(databasePath: path)?.header() == nil, "not initialised")
        bytes[12] = 1; bytes[48 + 12] = 1
        try Data(bytes).write(to: URL(fileURLWithPath: path + "-shm"))
        let watch = try #require(WALCommitWatch(databasePath: path))
        #expect(watch.header() != nil, "two equal initialised copies")
        bytes[20] ^= 0xFF   // the first copy differs from the second: a commit in progress
        try Data(bytes).write(to: URL(fileURLWithPath: path + "-shm"))
        #expect(watch.header() == nil)
    }
}
