import Foundation
import MenshenCedar

/// Decisions of one ``PolicyDecisionPoint`` remembered by everything they can depend on, so that a session's
/// next request with the same inputs is not evaluated again. Not a decision cache in the sense of "decided a
/// while ago": a decision is a function of its inputs and the policy set, and the key holds every input that
/// can change it, so a remembered decision is exactly the one evaluation would give now.
///
/// The key (``Key``) always holds the principal (id, kind, disabled, groups, roles: a revocation that disables the
/// user or removes a group is a new key), the resource (application, classification, scenario), the action, the
/// session's LoA, the source address and the time zone. Of the rest of the Cedar `context` it holds only what the
/// set's conditions read (``ContextReads``): a set that reads `context.time.hour` is keyed by the hour, not the
/// instant. A set that reads `context.time.now` (every request a new key) is not memoized. (The step-up requirement
/// is worked out from the factor's age only through the policies: when none reads it, what they allow with the
/// session's factor they allow with a fresh one, and the requirement does not depend on it.) A set that uses `context` as a whole
/// is never memoized, nor is one that reads a part of the context the key's table (``Projection/contextShape``) does
/// not know. The policy set is fixed for the decision point (a policy change builds a new one, with an empty memo).
/// Bounded (``BoundedTable``), and client-chosen texts over ``Projection/maxKeyText`` are never keys.
///
/// Texts in the key compare as Swift compares strings (canonical equivalence) while Cedar's `like` compares Unicode
/// scalars: two texts that differ only in their encoding of one character would share a key. The client-chosen texts
/// that reach a key are ASCII (the path is normalised with everything else percent-encoded, the method is a token);
/// the principal's and groups' names come from the directory.
final class DecisionMemo: Sendable {
    /// What of a request goes into the key beyond what always does.
    struct Projection: Sendable, Equatable {
        var amr = false, factorAge = false, sessionAge = false
        var device = false
        var hourAndWeekday = false
        var zone = false, country = false
        var method = false, path = false
        var risk = false, grant = false

        /// The members of each record of the Cedar context ``CedarInput`` builds (nil: the record is keyed whole). A
        /// read this table does not know — a member or record added to the context and not here — turns the memo off,
        /// so a new input is never left out of the key (`DecisionMemoTests` holds the table against ``CedarInput``).
        static let contextShape: [String: [String]?] = [
            "session": ["loa", "amr", "factor_age_seconds", "age_seconds"],
            "device": nil,
            "time": ["now", "hour", "weekday"],
            "network": ["ip", "zone", "country"],
            "request": ["method", "path"],
            "risk": ["score"],
            "grant": ["active"],
        ]

        /// Whether every value a read of `path` can reach is known to ``contextShape``.
        static func known(_ path: [String]) -> Bool {
            guard let first = path.first, let members = contextShape[first] else { return false }
            guard path.count > 1, let members else { return true }
            return members.contains(path[1])
        }

        /// Nil when the set reads `context` as a whole (nothing can be left out), reads the instant (`context.time.now`:
        /// no two requests but those of one millisecond would share a key), or reads anything ``contextShape`` does not
        /// know.
        init?(_ reads: ContextReads) {
            guard !reads.everything, !reads.reads(["time", "now"]), reads.paths.allSatisfy(Self.known) else { return nil }
            amr = reads.reads(["session", "amr"])
            factorAge = reads.reads(["session", "factor_age_seconds"])
            sessionAge = reads.reads(["session", "age_seconds"])
            device = reads.reads(["device"])
            hourAndWeekday = reads.reads(["time", "hour"]) || reads.reads(["time", "weekday"])
            zone = reads.reads(["network", "zone"])
            country = reads.reads(["network", "country"])
            method = reads.reads(["request", "method"])
            path = reads.reads(["request", "path"])
            risk = reads.reads(["risk", "score"])
            grant = reads.reads(["grant", "active"])
        }

        /// Longest client-chosen text (path, method) a key holds: a longer one is decided without the memo, so that a
        /// client sending long distinct paths cannot fill the table with large keys.
        static let maxKeyText = 512

        /// The key of a request; nil when its time cannot be placed in its time zone (evaluation denies such a
        /// request as invalid, and it is not remembered) or a text it would hold is over ``maxKeyText``.
        func key(_ r: AccessRequest) -> Key? {
            var k = Key(principal: r.principal, resource: r.resource, action: r.action, loa: r.session.levelOfAssurance,
                        sourceIP: r.context.sourceIP, timeZone: r.context.timeZone)
            if amr { k.amr = r.session.amr }
            if factorAge { k.factorAge = r.session.factorAgeSeconds }
            if sessionAge { k.sessionAge = r.session.ageSeconds }
            if device { k.device = .some(r.device) }
            if hourAndWeekday {
                guard let (hour, weekday) = LocalTime.hourAndWeekday(r.context.time, zoneIdentifier: r.context.timeZone) else { return nil }
                k.hour = hour
                k.weekday = weekday
            }
            if zone { k.zone = r.context.networkZone }
            if country { k.country = r.context.country }
            if method {
                guard r.context.method.utf8.count <= Self.maxKeyText else { return nil }
                k.method = r.context.method
            }
            if path {
                guard r.context.path.utf8.count <= Self.maxKeyText else { return nil }
                k.path = r.context.path
            }
            if risk { k.risk = r.context.riskScore }
            if grant { k.grant = r.context.grantActive }
            return k
        }
    }

    /// A field left nil is not read by the set (or, for ``device``, `.some(nil)` is "read, and no device").
    struct Key: Hashable, Sendable {
        var principal: AccessRequest.Principal
        var resource: AccessRequest.Resource
        var action: String
        var loa: Int
        /// Always held: an address that does not parse makes the request invalid whether or not it is read.
        var sourceIP: String
        var timeZone: String
        var amr: [String]?
        var factorAge: Int?
        var sessionAge: Int?
        var device: AccessRequest.Device??
        var hour: Int?
        var weekday: Int?
        var zone: String?
        var country: String?
        var method: String?
        var path: String?
        var risk: Int?
        var grant: Bool?
    }

    let projection: Projection
    let table = BoundedTable<Key, AccessDecision>(capacity: 10_000)

    init(projection: Projection) { self.projection = projection }
}
