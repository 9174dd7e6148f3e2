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
/// - the store's committed access generation (``CommittedAccessGeneration``)
///   must still be the one read *before* the facts were read. Every
///   revocation, user change, membership or role change, risk score written, by any process on
///   this database, advances it, so the very next request reads again;
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
        let generation: Int64
        let validUntil: Date
    }

    static let defaultCapacity = 100_000

    let source: any CommittedAccessGeneration
    let maxAge: TimeInterval
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

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
        return entries.withLock { e in
            guard let entry = e[idHash] else { return nil }
            guard entry.generation == generation, now < entry.validUntil else {
                e[idHash] = nil
                return nil
            }
            return entry.facts
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
