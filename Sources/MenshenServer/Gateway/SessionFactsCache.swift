import Foundation
import MenshenPolicyAdministrator
import MenshenStorage
import MenshenVisibility
import Synchronization

/// What the gate read from the store about one signed-in session — the
/// session, its user, the user's groups, the tiers of the session's active
/// roles and the user's risk contributions — kept so that the session's next requests are decided without
/// reading the store again, for exactly as long as the store would give the
/// same answer:
///
/// - no access change committed since the store's access generation read
///   *before* the facts were read may concern the session's user
///   (``CommittedAccessGeneration``). Every revocation, user change, membership
///   or role change, risk score written, by any process on this database,
///   advances that generation; a store that says whose access each change
///   concerned (``CommittedAccessGeneration/accessChanges(after:)``: SQLite)
///   lets the facts stand through changes to other users' access, and any
///   change it cannot attribute (a role edited, a group deleted, changes it no
///   longer keeps) voids them all, as every change does with a store that does not say;
/// - the session must still be within its idle and absolute expiry as read;
/// - at most `maxAge` (the session manager's touch interval), so activity is
///   still written back and the idle expiry extended by the regular path.
///
/// Bounded to `capacity` sessions: when full it is emptied and refills.
final class SessionFactsCache: Sendable {
    struct Facts: Sendable {
        let session: ActiveSession
        let groups: [String]
        /// Active role → risk tier (`standard`, `sensitive`, `privileged`).
        let roleTiers: [String: String]
        /// The user's risk contributions as stored (``RiskScoreStore``; points as added): the score is
        /// computed from them at each request's time, so it decays while remembered.
        var risk: [RiskScore.Contribution] = []
    }

    private struct Entry: Sendable {
        let facts: Facts
        /// The access generation the facts are known to hold at (moved on when later changes did not concern them).
        var generation: Int64
        let validUntil: Date
    }

    static let defaultCapacity = 100_000

    let source: any CommittedAccessGeneration
    let maxAge: TimeInterval
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])
    private let log = Mutex(AccessChangeLog())

    init(source: any CommittedAccessGeneration, maxAge: TimeInterval, capacity: Int = SessionFactsCache.defaultCapacity) {
        self.source = source
        self.maxAge = max(0, maxAge)
        self.capacity = max(1, capacity)
    }

    /// The committed access generation now; read it before reading the facts it will vouch for.
    func generationNow() -> Int64? { source.committedAccessGeneration() }

    /// The remembered facts, if they are still what the store holds.
    func facts(idHash: String, now: Date) -> Facts? {
        guard let generation = source.committedAccessGeneration() else { return nil }
        let found: (facts: Facts, generation: Int64)? = entries.withLock { e in
            guard let entry = e[idHash] else { return nil }
            guard now < entry.validUntil, entry.generation <= generation else {
                e[idHash] = nil
                return nil
            }
            return (entry.facts, entry.generation)
        }
        guard let found else { return nil }
        if found.generation == generation { return found.facts }
        // Changes were committed since: the facts stand only if none of them concerned this session's user.
        guard unconcerned(found.facts.session.user.id.rawValue, after: found.generation, through: generation) else {
            entries.withLock { e in if e[idHash]?.generation == found.generation { e[idHash] = nil } }
            return nil
        }
        entries.withLock { e in
            if e[idHash]?.generation == found.generation { e[idHash]?.generation = generation }
        }
        return found.facts
    }

    /// Whether no access change in (`after`, `through`] concerned `user`, from what the store says of them; false
    /// when that is not known.
    private func unconcerned(_ user: String, after: Int64, through: Int64) -> Bool {
        if let known = log.withLock({ $0.unconcerned(user, after: after, through: through) }) { return known }
        // Not read that far yet: one read for every session (the log is shared), from where the log ends.
        let from = log.withLock { l in l.through.flatMap { after >= l.floor ? $0 : nil } } ?? after
        guard let read = source.accessChanges(after: from) else { return false }
        return log.withLock { l in
            l.merge(read)
            return l.unconcerned(user, after: after, through: through) ?? false
        }
    }

    /// Remembers facts read while the store's access generation was `generation`.
    func remember(_ facts: Facts, idHash: String, generation: Int64, now: Date) {
        let record = facts.session.record
        let until = min(record.idleExpiresAt, record.absoluteExpiresAt, now.addingTimeInterval(maxAge))
        guard now < until else { return }
        entries.withLock { e in
            if e.count >= capacity, e[idHash] == nil { e.removeAll(keepingCapacity: true) }
            e[idHash] = Entry(facts: facts, generation: generation, validUntil: until)
        }
    }

    /// Forgets everything (the next request of every session reads the store).
    func removeAll() { entries.withLock { $0.removeAll(keepingCapacity: true) } }

    var count: Int { entries.withLock { $0.count } }
}

/// The access changes this gateway has read from the store (``AccessChanges``), shared by all remembered sessions:
/// every change in (`floor`, `through`], with the user each concerned — so that after a change the store is read once,
/// not once per session. Keeps the last ``AccessChanges/kept``.
struct AccessChangeLog: Sendable {
    private(set) var floor: Int64 = 0
    /// The last generation read; nil before the first read.
    private(set) var through: Int64?
    private var changes: [AccessChanges.Change] = []

    /// Whether no change in (`after`, `through`] concerned `user`: nil when the log has not been read that far, false
    /// when it does not reach back to `after` or a change concerned the user or may concern anyone.
    func unconcerned(_ user: String, after: Int64, through end: Int64) -> Bool? {
        guard let through, end <= through else { return nil }
        guard after >= floor else { return false }
        // The first change after `after` (changes are in order of generation).
        var low = 0, high = changes.count
        while low < high {
            let mid = (low + high) / 2
            if changes[mid].generation <= after { low = mid + 1 } else { high = mid }
        }
        for change in changes[low...] {
            if change.generation > end { break }
            guard let concerned = change.userID, concerned != user else { return false }
        }
        return true
    }

    /// Adds what was read. A read that is incomplete, or leaves a gap after what is known, starts the log afresh at what
    /// it can vouch for; one that overlaps what is known adds only the newer changes.
    mutating func merge(_ read: AccessChanges) {
        if let through, read.through <= through { return }
        if !read.complete {
            floor = read.through; through = read.through; changes = []
            return
        }
        if let through, read.after <= through, read.after >= floor {
            changes.append(contentsOf: read.changes.lazy.filter { $0.generation > through })
        } else {
            floor = read.after; changes = read.changes
        }
        through = read.through
        if changes.count > AccessChanges.kept {
            let dropped = changes.count - AccessChanges.kept
            floor = changes[dropped - 1].generation
            changes.removeFirst(dropped)
        }
    }
}

/// Whose session each session id hash is, as this gateway read it: what lets a sweep after access changes ask again
/// only about the long-lived connections of the users they concerned. A session's user never changes (an edit that
/// moves a session to another user is a change that may concern anyone), so an entry is never stale; bounded to
/// `capacity` sessions, emptied when full (a connection whose session is not known here is always asked).
final class SessionOwners: Sendable {
    static let defaultCapacity = 100_000
    let capacity: Int
    private let owners = Mutex<[String: String]>([:])

    init(capacity: Int = SessionOwners.defaultCapacity) { self.capacity = max(1, capacity) }

    func record(_ idHash: String, user: String) {
        owners.withLock { o in
            guard o[idHash] != user else { return }
            if o.count >= capacity { o.removeAll(keepingCapacity: true) }
            o[idHash] = user
        }
    }

    func user(of idHash: String) -> String? { owners.withLock { $0[idHash] } }
}
