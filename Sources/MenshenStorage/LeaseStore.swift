import Foundation

/// A named lease: which one process, of all those sharing the store, may do a
/// job that must run in one place only (the detections and their playbooks),
/// until when. The holder renews it well before it expires; a holder that stops
/// renewing (stopped, crashed, cut off from the database) loses it at its expiry
/// and the next process to ask takes it.
///
/// The expiry is the store's business: PostgreSQL stamps leases with its own
/// clock, so the nodes' clocks never have to agree; SQLite is shared only by the
/// processes of one machine, which share its clock.
public struct Lease: Sendable, Equatable {
    public var name: String
    /// Who holds it (``LeaseLimits/validateHolder(_:)``), e.g. `host:pid:random`.
    public var holder: String
    /// When the current holder took it (kept while it renews in time).
    public var acquiredAt: Date
    /// When it lapses unless renewed.
    public var expiresAt: Date

    public init(name: String, holder: String, acquiredAt: Date, expiresAt: Date) {
        self.name = name; self.holder = holder; self.acquiredAt = acquiredAt; self.expiresAt = expiresAt
    }
}

public protocol LeaseStore: Sendable {
    /// Takes `name` for `holder`, or renews it, for `duration` from now if it is free, expired or already
    /// `holder`'s; otherwise leaves it as it is. Returns the lease as it stands after the call, which says who
    /// holds it: `holder` only if the call took or renewed it. A lease renewed after it expired, with nobody
    /// having taken it meanwhile, starts a new term (a new ``Lease/acquiredAt``).
    /// Throws `invalidInput` for a bad name, holder or duration, and changes nothing then.
    func acquireLease(named name: String, holder: String, duration: Duration) async throws -> Lease
    /// Gives `name` up if `holder` holds it (so another may take it at once); nothing otherwise.
    func releaseLease(named name: String, holder: String) async throws
    /// The lease as it stands (possibly expired), or nil when nobody ever took it or it was released.
    func lease(named name: String) async throws -> Lease?
}

/// The rules for leases, the same on every backend.
public enum LeaseLimits {
    public static let maxHolderLength = 128
    public static let minDuration: Duration = .seconds(1)
    public static let maxDuration: Duration = .seconds(3600)

    /// A name follows the rules of consumer cursor names (``ConsumerCursorName/validate(_:)``).
    public static func validateName(_ name: String) throws {
        do { try ConsumerCursorName.validate(name) } catch {
            throw StoreError(.invalidInput, "lease name must be 1–\(ConsumerCursorName.maxLength) characters of A-Z a-z 0-9 . _ : -")
        }
    }

    /// 1–128 bytes of visible ASCII (no spaces or control characters).
    public static func validateHolder(_ holder: String) throws {
        guard !holder.isEmpty, holder.utf8.count <= maxHolderLength, holder.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw StoreError(.invalidInput, "lease holder must be 1–\(maxHolderLength) visible ASCII characters")
        }
    }

    /// Checks a whole request; returns the duration in milliseconds.
    @discardableResult
    public static func validate(name: String, holder: String, duration: Duration) throws -> Int64 {
        try validateName(name)
        try validateHolder(holder)
        guard duration >= minDuration, duration <= maxDuration else {
            throw StoreError(.invalidInput, "lease duration must be between 1 second and 1 hour")
        }
        let (s, atto) = duration.components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
