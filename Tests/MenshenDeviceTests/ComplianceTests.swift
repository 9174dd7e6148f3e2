import MenshenCore
import Foundation
import MenshenPolicyEngine
import Testing
@testable import MenshenDevice

@Suite("Compliance policy")
struct ComplianceTests {
    static let now = Date(timeIntervalSince1970: 1_900_000_000)
    static let device = DeviceID("laptop-0042")

    static let policyJSON = """
        {
          "managed": {
            "minimum_os_versions": {"Debian": "12.5", "Ubuntu": "22.04", "Windows": "10.0.19045", "macOS": "14.4"},
            "max_posture_age_seconds": 3600,
            "max_edr_signature_age_days": 3,
            "max_vulnerability_severity": "medium",
            "max_pending_security_updates": 0
          },
          "byod": {
            "minimum_os_versions": {"Debian": "12.0", "Windows": "10.0.19045"},
            "max_posture_age_seconds": 7200,
            "require_edr": false,
            "require_screen_lock": true,
            "max_vulnerability_severity": 3
          }
        }
        """

    static func policy(_ json: String = policyJSON) throws -> CompliancePolicy {
        try JSONDecoder().decode(CompliancePolicy.self, from: Data(json.utf8))
    }

    static func posture(os: PostureReport.OperatingSystem = .init(name: "Debian", version: "12.10", packageEcosystem: "Debian:12"),
                        age: TimeInterval = 60, pending: Int = 0, disk: Bool = true, firewall: Bool = true, screenLock: Bool = true,
                        edr: PostureReport.EDR? = .init(product: "ClamAV", running: true, signatureAgeSeconds: 3600),
                        device: DeviceID = device) -> VerifiedPosture {
        let report = PostureReport(deviceID: device, nonce: String(repeating: "n", count: 32), collectedAt: now.addingTimeInterval(-age), os: os,
                                   kernel: "6.1.0-18-amd64", pendingSecurityUpdates: pending, diskEncryption: disk, firewall: firewall,
                                   screenLock: screenLock, edr: edr, packages: [])
        return VerifiedPosture(uncheckedReport: report, receivedAt: now.addingTimeInterval(-age))
    }

    static let clean = VulnerabilityScan(findings: [], unevaluated: [], ecosystemSupported: true)

    static func codes(_ result: ComplianceResult) -> [ComplianceReason.Code] { result.reasons.map(\.code) }

    // MARK: Decoding and validation

    @Test("The policy decodes from snake_case keys, with defaults that require every control")
    func decodes() throws {
        let p = try Self.policy()
        let managed = try #require(p.classes[.managed])
        #expect(managed.minimumOSVersions["Debian"] == "12.5")
        #expect(managed.maxPostureAgeSeconds == 3600)
        #expect(managed.requireDiskEncryption && managed.requireFirewall && managed.requireScreenLock && managed.requireEDR)
        #expect(managed.requireVulnerabilityScan)
        #expect(managed.maxEDRSignatureAgeDays == 3)
        #expect(managed.maxVulnerabilitySeverity == .medium)
        #expect(managed.maxPendingSecurityUpdates == 0)
        let byod = try #require(p.classes[.byod])
        #expect(!byod.requireEDR)
        #expect(byod.maxEDRSignatureAgeDays == 7)
        #expect(byod.maxVulnerabilitySeverity == .high)
        #expect(byod.maxPendingSecurityUpdates == nil)
        #expect(p.classes[.vendor] == nil)
        #expect(p.validate().isEmpty)
    }

    @Test("Bad values are refused with the key path; every problem is reported")
    func validation() throws {
        func problems(_ json: String) -> [CompliancePolicyError] {
            do {
                _ = try Self.policy(json)
                return []
            } catch let error as CompliancePolicyProblems {
                return error.problems
            } catch {
                return [CompliancePolicyError(.valueOutOfRange, path: "(decoding)", "\(error)")]
            }
        }
        let all = problems("""
            {"managed": {"max_posture_age_seconds": 0, "max_vulnerability_severity": "low", "max_edr_signature_age_days": 400,
                         "max_pending_security_updates": -1, "minimum_os_versions": {"Debian": "12_5", "Windows": "10.0.beta", "": "1"}},
             "byod": {"max_posture_age_seconds": 99999999, "max_vulnerability_severity": 0}}
            """)
        #expect(Set(all.map(\.path)) == ["managed.max_posture_age_seconds", "managed.max_edr_signature_age_days",
                                         "managed.max_pending_security_updates", "managed.minimum_os_versions.Debian",
                                         "managed.minimum_os_versions.Windows", "managed.minimum_os_versions.", "byod.max_posture_age_seconds"])
        #expect(all.contains(CompliancePolicyError(.invalidMinimumVersion, path: "")))
        #expect(all.contains(CompliancePolicyError(.invalidOSName, path: "")))

        let typo = problems(#"{"managed": {"max_posture_age_seconds": 60, "max_vulnerability_severity": 1, "require_firewal": false}}"#)
        #expect(typo.map(\.code) == [.unknownKey])
        #expect(typo.first?.path == "managed.require_firewal")
        #expect(problems(#"{"laptops": {"max_posture_age_seconds": 60, "max_vulnerability_severity": 1}}"#).map(\.code).contains(.unknownKey))
        #expect(problems("{}").map(\.code) == [.missingDeviceClass])
        #expect(problems(#"{"managed": {"max_posture_age_seconds": 60, "max_vulnerability_severity": "severe"}}"#).map(\.code) == [.invalidSeverity])
        #expect(problems(#"{"managed": {"max_posture_age_seconds": 60, "max_vulnerability_severity": 5}}"#).map(\.code) == [.invalidSeverity])
        // Type errors and missing required keys are decoding errors.
        #expect(throws: DecodingError.self) { try Self.policy(#"{"managed": {"max_vulnerability_severity": 1}}"#) }
        #expect(throws: DecodingError.self) { try Self.policy(#"{"managed": {"max_posture_age_seconds": "1h", "max_vulnerability_severity": 1}}"#) }
        #expect(throws: DecodingError.self) { try Self.policy(#"{"managed": {"max_posture_age_seconds": 60}}"#) }
        // Built in code, the same checks apply.
        #expect(throws: CompliancePolicyProblems.self) {
            try CompliancePolicy(classes: [.vendor: DeviceClassPolicy(maxPostureAgeSeconds: -5, maxVulnerabilitySeverity: .low)])
        }
    }

    // MARK: Evaluation

    @Test("A device meeting every requirement is compliant until its posture is too old")
    func compliant() throws {
        let posture = Self.posture()
        let result = try Self.policy().evaluate(deviceClass: .managed, posture: posture, scan: Self.clean, now: Self.now)
        #expect(result.compliant)
        #expect(result.reasons.isEmpty)
        #expect(result.validUntil == posture.collectedAt.addingTimeInterval(3600))
        // The same posture an hour later is stale.
        let later = try Self.policy().evaluate(deviceClass: .managed, posture: posture, scan: Self.clean, now: Self.now.addingTimeInterval(3541))
        #expect(Self.codes(later) == [.postureStale])
        #expect(later.validUntil == nil)
    }

    @Test("No posture, or a class without a baseline, is never compliant")
    func neverByDefault() throws {
        let p = try Self.policy()
        let none = p.evaluate(deviceClass: .managed, posture: nil, scan: Self.clean, now: Self.now)
        #expect(!none.compliant && Self.codes(none) == [.noPosture])
        let vendor = p.evaluate(deviceClass: .vendor, posture: Self.posture(), scan: Self.clean, now: Self.now)
        #expect(!vendor.compliant && Self.codes(vendor) == [.noPolicyForClass])
    }

    /// One requirement broken at a time, with the reason it must produce.
    enum Breach: String, CaseIterable, Sendable {
        case disk, firewall, screenLock, noEDR, edrStopped, edrOld, pending, stale, debianOld, debianRC, windowsOld, windowsUnreadable, freeBSD

        var code: ComplianceReason.Code {
            switch self {
            case .disk: .diskEncryptionOff
            case .firewall: .firewallOff
            case .screenLock: .screenLockOff
            case .noEDR: .edrMissing
            case .edrStopped: .edrNotRunning
            case .edrOld: .edrSignaturesOutdated
            case .pending: .pendingSecurityUpdates
            case .stale: .postureStale
            case .debianOld, .debianRC, .windowsOld: .osVersionBelowMinimum
            case .windowsUnreadable: .osVersionUnreadable
            case .freeBSD: .osNotAllowed
            }
        }

        var posture: VerifiedPosture {
            switch self {
            case .disk: ComplianceTests.posture(disk: false)
            case .firewall: ComplianceTests.posture(firewall: false)
            case .screenLock: ComplianceTests.posture(screenLock: false)
            case .noEDR: ComplianceTests.posture(edr: nil)
            case .edrStopped: ComplianceTests.posture(edr: .init(product: "X", running: false, signatureAgeSeconds: 0))
            case .edrOld: ComplianceTests.posture(edr: .init(product: "X", running: true, signatureAgeSeconds: 3 * 86_400 + 1))
            case .pending: ComplianceTests.posture(pending: 1)
            case .stale: ComplianceTests.posture(age: 3601)
            case .debianOld: ComplianceTests.posture(os: .init(name: "Debian", version: "12.4"))
            case .debianRC: ComplianceTests.posture(os: .init(name: "Debian", version: "12.5~rc1"))
            case .windowsOld: ComplianceTests.posture(os: .init(name: "Windows", version: "10.0.9999"))
            case .windowsUnreadable: ComplianceTests.posture(os: .init(name: "Windows", version: "10.0.beta"))
            case .freeBSD: ComplianceTests.posture(os: .init(name: "FreeBSD", version: "14.0"))
            }
        }
    }

    @Test("Each missing control is named, and only it", arguments: Breach.allCases)
    func singleReason(breach: Breach) throws {
        let result = try Self.policy().evaluate(deviceClass: .managed, posture: breach.posture, scan: Self.clean, now: Self.now)
        #expect(!result.compliant)
        #expect(Self.codes(result) == [breach.code])
    }

    @Test("OS versions use the right order: Debian's for Debian, numbers for the rest", arguments: [
        ("Debian", "12.10", true), ("Debian", "12.5", true), ("Debian", "13", true), ("Ubuntu", "22.04", true), ("Ubuntu", "20.04", false),
        ("Windows", "10.0.19045", true), ("Windows", "10.0.19045.3930", true), ("Windows", "10.0.22631", true), ("Windows", "10.0.2", false),
        ("macOS", "14.4", true), ("macOS", "14.10", true), ("macOS", "14.3.1", false), ("macOS", "15", true),
    ])
    func osOrder(name: String, version: String, passes: Bool) throws {
        let result = try Self.policy().evaluate(deviceClass: .managed, posture: Self.posture(os: .init(name: name, version: version)),
                                                scan: Self.clean, now: Self.now)
        #expect(result.compliant == passes, "\(name) \(version): \(result.reasons)")
    }

    @Test("The EDR signature age limit is inclusive")
    func edrEdge() throws {
        let exact = Self.posture(edr: .init(product: "X", running: true, signatureAgeSeconds: 3 * 86_400))
        #expect(try Self.policy().evaluate(deviceClass: .managed, posture: exact, scan: Self.clean, now: Self.now).compliant)
    }

    @Test("Vulnerabilities from a real scan decide by severity; unscanned or unevaluated packages fail closed")
    func vulnerabilities() throws {
        let db = try AdvisoryDatabase.load(directory: Fixtures.osv)
        let p = try Self.policy()
        let medium = db.scan([InstalledPackage(name: "curl", version: "7.88.1-10+deb12u4")], ecosystem: "Debian:12")
        let critical = db.scan([InstalledPackage(name: "libssl3", version: "3.0.11-1~deb12u1", sourceName: "openssl")], ecosystem: "Debian:12")
        #expect(p.evaluate(deviceClass: .managed, posture: Self.posture(), scan: medium, now: Self.now).compliant)
        let tooHigh = p.evaluate(deviceClass: .managed, posture: Self.posture(), scan: critical, now: Self.now)
        #expect(Self.codes(tooHigh) == [.vulnerabilitySeverityTooHigh])
        #expect(tooHigh.reasons.first?.observed == "critical" && tooHigh.reasons.first?.required == "medium")
        // BYOD allows up to high, still not critical.
        #expect(!p.evaluate(deviceClass: .byod, posture: Self.posture(), scan: critical, now: Self.now).compliant)

        #expect(Self.codes(p.evaluate(deviceClass: .managed, posture: Self.posture(), scan: nil, now: Self.now)) == [.vulnerabilitiesNotScanned])
        let windows = db.scan([InstalledPackage(name: "x", version: "1")], ecosystem: "Windows")
        #expect(Self.codes(p.evaluate(deviceClass: .managed, posture: Self.posture(), scan: windows, now: Self.now)) == [.vulnerabilitiesNotScanned])
        let odd = db.scan([InstalledPackage(name: "weird", version: "not a version")], ecosystem: "Debian:12")
        #expect(Self.codes(p.evaluate(deviceClass: .managed, posture: Self.posture(), scan: odd, now: Self.now)) == [.packagesNotEvaluated])
        // A class that does not require a scan accepts a device without one.
        let relaxed = try CompliancePolicy(classes: [.vendor: DeviceClassPolicy(maxPostureAgeSeconds: 600, requireEDR: false,
                                                                                 maxVulnerabilitySeverity: .high, requireVulnerabilityScan: false)])
        #expect(relaxed.evaluate(deviceClass: .vendor, posture: Self.posture(), scan: nil, now: Self.now).compliant)
    }

    @Test("Several failures are all listed")
    func severalReasons() throws {
        let posture = Self.posture(os: .init(name: "Debian", version: "11.9"), age: 4000, pending: 3, disk: false, firewall: false, edr: nil)
        let result = try Self.policy().evaluate(deviceClass: .managed, posture: posture, scan: nil, now: Self.now)
        #expect(Set(Self.codes(result)) == [.postureStale, .osVersionBelowMinimum, .diskEncryptionOff, .firewallOff, .edrMissing,
                                            .pendingSecurityUpdates, .vulnerabilitiesNotScanned])
        // The same device is measured against BYOD's lighter baseline.
        let byod = try Self.policy().evaluate(deviceClass: .byod, posture: posture, scan: nil, now: Self.now)
        #expect(Set(Self.codes(byod)) == [.osVersionBelowMinimum, .diskEncryptionOff, .firewallOff, .vulnerabilitiesNotScanned])
    }

    // MARK: Policy engine attributes

    @Test("Attributes for the policy engine from enrolment, posture, scan and compliance, failing closed")
    func attributes() throws {
        let posture = Self.posture(age: 120)
        let enrolment = DeviceEnrolment(deviceID: Self.device, deviceClass: .managed, hardwareBound: true)
        let compliance = try Self.policy().evaluate(deviceClass: .managed, posture: posture, scan: Self.clean, now: Self.now)
        let device = DeviceAttributes.device(enrolment: enrolment, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)
        #expect(device == AccessRequest.Device(enrolled: true, managed: true, compliant: true, hardwareBound: true, external: false,
                                               postureAgeSeconds: 120, maxVulnerabilitySeverity: 0))
        // A device that stops reporting loses compliance when its posture expires, without re-evaluation.
        let later = DeviceAttributes.device(enrolment: enrolment, posture: posture, scan: Self.clean, compliance: compliance,
                                            now: Self.now.addingTimeInterval(3481))
        #expect(!later.compliant && later.postureAgeSeconds == 3601)
        // Unknown device.
        #expect(DeviceAttributes.device(enrolment: nil, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)
                == AccessRequest.Device(enrolled: false, managed: false, compliant: false, hardwareBound: false, external: true,
                                        postureAgeSeconds: Int(Int32.max), maxVulnerabilitySeverity: 4))
        // Quarantined: enrolled, not compliant. Retired: not enrolled.
        var quarantined = enrolment
        quarantined.status = .quarantined
        let q = DeviceAttributes.device(enrolment: quarantined, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)
        #expect(q.enrolled && !q.compliant)
        var retired = enrolment
        retired.status = .retired
        #expect(!DeviceAttributes.device(enrolment: retired, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now).enrolled)
        // A BYOD device is external and unmanaged; its compliance result was for another class, so it does not count.
        let byod = DeviceEnrolment(deviceID: Self.device, deviceClass: .byod, hardwareBound: false)
        let b = DeviceAttributes.device(enrolment: byod, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)
        #expect(b.external && !b.managed && !b.compliant && !b.hardwareBound)
        // Another device's posture is ignored.
        let foreign = Self.posture(device: "someone-else")
        let f = DeviceAttributes.device(enrolment: enrolment, posture: foreign, scan: Self.clean, compliance: compliance, now: Self.now)
        #expect(!f.compliant && f.postureAgeSeconds == Int(Int32.max))
        // No scan: severity critical; a real scan's maximum otherwise.
        #expect(DeviceAttributes.device(enrolment: enrolment, posture: posture, scan: nil, compliance: compliance, now: Self.now).maxVulnerabilitySeverity == 4)
        let db = try AdvisoryDatabase.load(directory: Fixtures.osv)
        let medium = db.scan([InstalledPackage(name: "curl", version: "7.88.1-10+deb12u4")], ecosystem: "Debian:12")
        #expect(DeviceAttributes.device(enrolment: enrolment, posture: posture, scan: medium, compliance: compliance, now: Self.now).maxVulnerabilitySeverity == 2)
    }

    @Test("Cedar policies decide on the attributes: privileged routes need a managed, compliant, hardware-bound device")
    func cedarOnDeviceAttributes() throws {
        let policies = """
            @id("privileged-needs-strong-device")
            permit (principal, action, resource == Application::"treasury")
            when { context.device.managed && context.device.compliant && context.device.hardware_bound &&
                   context.device.max_vulnerability_severity <= 2 && context.device.posture_age_seconds <= 3600 };
            """
        let pdp = try PolicyDecisionPoint(documents: [("device.cedar", policies)])
        func decide(_ device: AccessRequest.Device) -> AccessDecision.Effect {
            pdp.decide(AccessRequest(
                principal: .init(id: "alice", groups: ["treasury"]),
                session: .init(levelOfAssurance: 3, amr: ["hwk"], factorAgeSeconds: 60, ageSeconds: 600), device: device,
                context: .init(time: Self.now, sourceIP: "10.0.0.5", networkZone: "hq", method: "GET", path: "/"),
                resource: .init(applicationID: "treasury", classification: "restricted"))).effect
        }
        let posture = Self.posture(age: 120)
        let compliance = try Self.policy().evaluate(deviceClass: .managed, posture: posture, scan: Self.clean, now: Self.now)
        let strong = DeviceEnrolment(deviceID: Self.device, deviceClass: .managed, hardwareBound: true)
        #expect(decide(DeviceAttributes.device(enrolment: strong, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)) == .allow)
        var software = strong
        software.hardwareBound = false
        #expect(decide(DeviceAttributes.device(enrolment: software, posture: posture, scan: Self.clean, compliance: compliance, now: Self.now)) == .deny)
        #expect(decide(DeviceAttributes.device(enrolment: strong, posture: posture, scan: Self.clean, compliance: compliance,
                                               now: Self.now.addingTimeInterval(4000))) == .deny)
        #expect(decide(DeviceAttributes.device(enrolment: nil, posture: nil, scan: nil, compliance: nil, now: Self.now)) == .deny)
    }
}
