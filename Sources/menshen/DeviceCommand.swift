import ArgumentParser
import Foundation
import MenshenCore
import MenshenServer
import MenshenStorage

/// `menshen device …`: the device inventory (principle 2.1) and the operator's
/// hand on it — quarantine, release and retire (2.2: prompt action on a
/// non-compliant device). Every change is a compare-and-set on the device's
/// version and advances the store's device counter, so every gateway node
/// decides the device's next request on the new state. Each change is an OCSF
/// Entity Management event (3004) with the operator (the OS account running the
/// command) as actor; quarantine and retire end the owner's sessions at once,
/// and a compliant device turning non-compliant is also a Compliance Finding (2003).
/// The changes themselves are ``DeviceLifecycle`` (MenshenServer), which the
/// `quarantine_device` playbook step shares.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "The device inventory: list, show, quarantine, release, retire; enrolment tokens and the device CA.",
        subcommands: [List.self, Show.self, Quarantine.self, Release.self, Retire.self, EnrolToken.self, CA.self])

    static func validateID(_ id: String) throws {
        guard IdentifierSyntax.isValid(id) else { throw ValidationError("device id must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
    }

    static func validateReason(_ reason: String) throws {
        guard DeviceLifecycle.isValidReason(reason) else {
            throw ValidationError("--reason must be 1–\(DeviceLifecycle.maxReasonLength) characters")
        }
    }

    /// The one implementation of the inventory's changes (shared with the `quarantine_device` playbook step).
    static func lifecycle(_ db: any MenshenStore) -> DeviceLifecycle {
        DeviceLifecycle(store: db, clock: SystemClock(), random: SystemRandomSource())
    }

    /// The operator: the OS account running the command.
    static var actor: DeviceLifecycle.Actor { .operator(ProcessInfo.processInfo.userName) }

    static func requireDevice(_ db: any MenshenStore, _ id: String) async throws -> DeviceRecord {
        try await lifecycle(db).device(id)
    }

    static let severityNames = ["none", "low", "medium", "high", "critical"]

    static func severityName(_ ordinal: Int) -> String { severityNames[max(0, min(4, ordinal))] }

    /// The highest severity and every stored finding, one per line; "not scanned" when the severity is
    /// critical only because nothing could be matched (no advisory database, or an OS without one).
    static func vulnerabilities(_ d: DeviceRecord) -> String {
        guard d.lastPostureAt != nil else { return "no posture yet (counts as critical)" }
        if d.vulnerabilityFindings.isEmpty {
            return d.maxVulnerabilitySeverity >= 4 ? "packages not scanned (counts as critical)" : "no known vulnerability"
        }
        let lines = d.vulnerabilityFindings.map { f in
            "\n  - \(f.advisoryID) \(severityName(f.severity)): \(f.package) \(f.installedVersion)"
                + (f.fixedVersion.map { ", fixed in \($0)" } ?? ", no fix published")
        }
        return "highest severity \(severityName(d.maxVulnerabilitySeverity)), \(d.vulnerabilityFindings.count) finding"
            + (d.vulnerabilityFindings.count == 1 ? "" : "s") + lines.joined()
    }

    /// Records a life-cycle change (OCSF 3004, the operator as actor) and, when `revoke`, ends the owner's sessions; a
    /// device that was compliant and no longer is also gets a Compliance Finding (2003).
    static func record(_ db: any MenshenStore, before: DeviceRecord, after: DeviceRecord, activity: Int, reason: String?, revoke: Bool) async throws {
        let revoked = try await lifecycle(db).record(before: before, after: after, activity: activity, by: actor, reason: reason, revoke: revoke)
        printRevoked(revoked, of: after)
    }

    static func printRevoked(_ revoked: Int, of device: DeviceRecord) {
        if revoked > 0 { print("ended \(revoked) session\(revoked == 1 ? "" : "s") of \(device.ownerID?.rawValue ?? "-")") }
    }

    static func time(_ date: Date?) -> String { date.map { ISO8601DateFormatter().string(from: $0) } ?? "never" }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices: id, owner, class, state, compliance, last posture.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let devices = try await db.listDevices()
                for d in devices {
                    print([d.id.rawValue, d.ownerID?.rawValue ?? "-", d.deviceClass.rawValue, d.state.rawValue,
                           d.compliant ? "compliant" : "non-compliant", d.hardwareBound ? "hardware-bound" : "software-key",
                           "posture: \(DeviceCommand.time(d.lastPostureAt))"].joined(separator: "\t"))
                }
                print("\(devices.count) device\(devices.count == 1 ? "" : "s")")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one device, its compliance and its certificates.")
        @Argument(help: "Device id.") var device: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try DeviceCommand.validateID(device) }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let d = try await DeviceCommand.requireDevice(db, device)
                let certificates = try await db.deviceCertificates(of: d.id)
                let now = Date()
                let lines = certificates.map { c -> String in
                    let status = c.revokedAt.map { "revoked \(DeviceCommand.time($0)) (\(c.revokedReason ?? ""))" }
                        ?? (c.notAfter <= now ? "expired" : "valid until \(DeviceCommand.time(c.notAfter))")
                    return "\n  - serial \(c.serial): \(status), sha256 \(c.fingerprint)"
                }
                print("""
                    device:          \(d.id.rawValue)
                    name:            \(d.displayName)
                    owner:           \(d.ownerID?.rawValue ?? "-")
                    class:           \(d.deviceClass.rawValue)
                    platform:        \(d.platform)
                    key:             \(d.hardwareBound ? "hardware-bound (TPM)" : "software")
                    state:           \(d.state.rawValue)
                    compliance:      \(d.compliant ? "compliant" : "non-compliant: " + d.complianceReasons.joined(separator: ", "))
                    last posture:    \(DeviceCommand.time(d.lastPostureAt))
                    vulnerabilities: \(DeviceCommand.vulnerabilities(d))
                    enrolled:        \(DeviceCommand.time(d.enrolledAt))
                    certificates:    \(certificates.count)\(lines.joined())
                    """)
            }
        }
    }

    struct Quarantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quarantine a device: from its next request it reaches nothing but remediation.")
        @Argument(help: "Device id.") var device: String
        @Option(help: "Why (kept with the device).") var reason: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try DeviceCommand.validateID(device); try DeviceCommand.validateReason(reason) }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                switch try await DeviceCommand.lifecycle(db).quarantine(device, reason: reason, by: DeviceCommand.actor) {
                case .alreadyQuarantined: print("device \(device) is already quarantined")
                case .quarantined(let after, let revoked):
                    print("quarantined device \(device)")
                    DeviceCommand.printRevoked(revoked, of: after)
                }
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a quarantined device. It stays non-compliant until its next verified posture report.")
        @Argument(help: "Device id.") var device: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try DeviceCommand.validateID(device) }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let d = try await DeviceCommand.requireDevice(db, device)
                guard d.state == .quarantined else {
                    throw StoreError(.conflict, "device \(device) is \(d.state.rawValue), not quarantined; nothing was changed")
                }
                let after = try await DeviceCommand.lifecycle(db).update(d) {
                    $0.state = .active
                    $0.compliant = false
                    $0.complianceReasons = ["awaiting_posture"]
                }
                print("released device \(device); it becomes compliant only with its next verified posture report")
                try await DeviceCommand.record(db, before: d, after: after, activity: 13, reason: nil, revoke: false)
            }
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a device for good: its certificates are revoked and it can never come back (enrol it again as a new device).")
        @Argument(help: "Device id.") var device: String
        @Option(help: "Why (kept with the revoked certificates).") var reason: String
        @OptionGroup var store: StoreOptions

        func validate() throws { try DeviceCommand.validateID(device); try DeviceCommand.validateReason(reason) }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let d = try await DeviceCommand.requireDevice(db, device)
                // Already retired: only finish the job (a revocation that failed last time is done now).
                var after = d
                if d.state != .retired {
                    after = try await DeviceCommand.lifecycle(db).update(d) {
                        $0.state = .retired
                        $0.compliant = false
                        $0.complianceReasons = ["retired: " + reason]
                    }
                }
                let revoked = try await db.revokeDeviceCertificates(of: d.id, at: Date(), reason: "retired: " + reason)
                print("retired device \(device); \(revoked) certificate\(revoked == 1 ? "" : "s") revoked")
                if d.state != .retired {
                    try await DeviceCommand.record(db, before: d, after: after, activity: 7, reason: reason, revoke: true)
                }
            }
        }
    }
}
