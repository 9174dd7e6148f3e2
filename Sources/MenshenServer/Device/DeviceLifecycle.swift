import Foundation
import MenshenCore
import MenshenStorage

/// The operator's hand on the device inventory (principle 2.2: prompt action on
/// a device), the one implementation behind `menshen device quarantine|release|retire`
/// and the `quarantine_device` playbook step.
///
/// Every change is a compare-and-set on the device's version (a concurrent
/// writer makes it fail with nothing changed) and advances the store's access
/// counter, so every gateway node decides the device's next request on the new
/// state. Each change is recorded (``record(before:after:activity:by:reason:revoke:)``):
/// an OCSF Entity Management event (3004) naming the actor; quarantine and
/// retire end the owner's sessions at once; a device that was compliant and no
/// longer is also gets a Compliance Finding (2003).
public struct DeviceLifecycle: Sendable {
    /// Who makes a change: the name in the 3004 event's `actor.user`, its OCSF user type, and the application.
    public struct Actor: Sendable, Equatable {
        public var name: String
        public var type: DeviceEvents.ActorType
        public var application: String
        public init(name: String, type: DeviceEvents.ActorType, application: String) {
            self.name = name; self.type = type; self.application = application
        }

        /// An operator at the command line (the OS account running `menshen device`): type Admin.
        public static func `operator`(_ name: String) -> Actor { Actor(name: name, type: .admin, application: "menshen device") }

        /// A playbook step answering a detection: `playbook:<name>`, type System.
        public static func playbook(_ name: String) -> Actor {
            Actor(name: "playbook:\(name)", type: .system, application: "menshen detections")
        }
    }

    /// What ``quarantine(_:reason:by:)`` did.
    public enum QuarantineResult: Sendable, Equatable {
        /// The device was active and is quarantined now; `sessionsRevoked` of its owner's sessions were ended.
        case quarantined(DeviceRecord, sessionsRevoked: Int)
        /// The device was quarantined already: nothing was changed and nothing recorded.
        case alreadyQuarantined(DeviceRecord)
    }

    /// Longest reason kept with a quarantined or retired device.
    public static let maxReasonLength = 200

    /// Whether `reason` may be kept with a device: not blank, at most ``maxReasonLength`` characters.
    public static func isValidReason(_ reason: String) -> Bool {
        !reason.trimmingCharacters(in: .whitespaces).isEmpty && reason.count <= maxReasonLength
    }

    let store: any MenshenStore
    let clock: any WallClock
    let random: any RandomSource

    public init(store: any MenshenStore, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.clock = clock; self.random = random
    }

    /// The device `id`, or a clear error: a malformed id is `invalidInput`, an unknown one `notFound` ("no device …").
    public func device(_ id: String) async throws -> DeviceRecord {
        guard IdentifierSyntax.isValid(id) else {
            throw StoreError(.invalidInput, "\"\(id.prefix(40))\" is not a device id (1–128 characters from A–Z a–z 0–9 . _ @ -)")
        }
        guard let device = try await store.device(DeviceID(id)) else { throw StoreError(.notFound, "no device \(id)") }
        return device
    }

    /// Applies `change` with compare-and-set; a concurrent writer makes it fail rather than overwrite.
    public func update(_ device: DeviceRecord, _ change: (inout DeviceRecord) -> Void) async throws -> DeviceRecord {
        var updated = device
        change(&updated)
        updated.updatedAt = clock.now()
        guard try await store.updateDevice(updated, expectedVersion: device.version) else {
            throw StoreError(.conflict, "device \(device.id.rawValue) changed meanwhile; nothing was changed, try again")
        }
        return updated
    }

    /// Records a life-cycle change (OCSF 3004, `activity` 12 Suspend, 13 Resume, 7 Unenroll) and, when `revoke`, ends
    /// the owner's sessions first; a device that was compliant and no longer is also gets a Compliance Finding (2003).
    /// Returns the number of sessions ended.
    @discardableResult
    public func record(before: DeviceRecord, after: DeviceRecord, activity: Int, by actor: Actor, reason: String?, revoke: Bool) async throws -> Int {
        let events = DeviceEvents(store: store, clock: clock, random: random)
        let revoked = revoke ? try await DeviceAuthority.revokeSessions(of: after, store: store, at: clock.now()) : 0
        try await events.entityManagement(device: after, activity: activity, actor: actor.name, actorType: actor.type,
                                          application: actor.application, comment: reason, sessionsRevoked: revoked)
        if before.compliant && !after.compliant {
            try await events.complianceChanged(device: after, reasons: after.complianceReasons, sessionsRevoked: revoked, source: nil)
        }
        return revoked
    }

    /// Quarantines the device `id`: from its next request it reaches nothing but remediation. It becomes non-compliant
    /// with `quarantined: <reason>` kept on it, its owner's sessions end, and the change is recorded (3004 Suspend,
    /// and 2003 when it was compliant).
    ///
    /// Refused with nothing changed: a malformed id or reason (`invalidInput`), an unknown device (`notFound`), a
    /// retired device or a concurrent change (`conflict`). A device already quarantined is left as it is
    /// (``QuarantineResult/alreadyQuarantined(_:)``). When the device was quarantined but recording it failed, the
    /// error says that the device is quarantined.
    public func quarantine(_ id: String, reason: String, by actor: Actor) async throws -> QuarantineResult {
        guard Self.isValidReason(reason) else {
            throw StoreError(.invalidInput, "the reason must be 1–\(Self.maxReasonLength) characters")
        }
        let d = try await device(id)
        switch d.state {
        case .retired: throw StoreError(.conflict, "device \(id) is retired; a retired device cannot be quarantined or come back")
        case .quarantined: return .alreadyQuarantined(d)
        case .active: break
        }
        let after = try await update(d) {
            $0.state = .quarantined
            $0.compliant = false
            $0.complianceReasons = ["quarantined: " + reason]
        }
        do {
            let revoked = try await record(before: d, after: after, activity: 12, by: actor, reason: reason, revoke: true)
            return .quarantined(after, sessionsRevoked: revoked)
        } catch {
            let code = (error as? StoreError)?.code ?? .backend
            throw StoreError(code, "device \(id) is quarantined, but ending its owner's sessions or recording the change failed: \(error)")
        }
    }
}
