import Foundation

/// The class of a device, which picks its compliance baseline.
public enum DeviceClass: String, Sendable, Hashable, Codable, CaseIterable {
    /// Owned and managed by the institution.
    case managed
    /// Staff-owned (bring your own device).
    case byod
    /// A vendor's or partner's device.
    case vendor

    /// BYOD and vendor devices are external (principle 2.3).
    public var isExternal: Bool { self != .managed }
}

/// Device compliance baselines per device class (FSC guideline principles
/// 2.2 and 2.3). Decoded from configuration with snake_case keys:
///
/// ```yaml
/// managed:
///   minimum_os_versions: {Debian: "12.5", Ubuntu: "22.04", Windows: "10.0.19045", macOS: "14.4"}
///   max_posture_age_seconds: 3600          # required, 1 s – 30 days
///   require_disk_encryption: true          # default true
///   require_firewall: true                 # default true
///   require_screen_lock: true              # default true
///   require_edr: true                      # default true: an EDR/AV product installed and running
///   max_edr_signature_age_days: 3          # default 7, 0–365
///   max_vulnerability_severity: medium     # required: none|low|medium|high|critical or 0–4
///   max_pending_security_updates: 0        # default: no limit
///   require_vulnerability_scan: true       # default true: every package must be matched
/// byod: { … }
/// vendor: { … }
/// ```
///
/// Every control defaults to required. A class left out has no baseline, so
/// its devices are never compliant. `minimum_os_versions` lists the allowed
/// operating systems: an OS not in it is refused; left empty, any OS passes
/// the OS check. Unknown keys are errors (a typo must not drop a control).
public struct CompliancePolicy: Sendable, Hashable, Decodable {
    public var classes: [DeviceClass: DeviceClassPolicy]

    /// Builds a policy from values; throws every problem ``validate()`` finds.
    public init(classes: [DeviceClass: DeviceClassPolicy]) throws(CompliancePolicyProblems) {
        self.classes = classes
        let problems = validate()
        guard problems.isEmpty else { throw CompliancePolicyProblems(problems) }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        var classes: [DeviceClass: DeviceClassPolicy] = [:]
        var problems: [CompliancePolicyError] = []
        for key in container.allKeys {
            guard let deviceClass = DeviceClass(rawValue: key.stringValue) else {
                problems.append(CompliancePolicyError(.unknownKey, path: key.stringValue, "device classes are managed, byod and vendor"))
                continue
            }
            do {
                classes[deviceClass] = try container.decode(DeviceClassPolicy.self, forKey: key)
            } catch let error as CompliancePolicyProblems {
                problems += error.problems
            }
        }
        self.classes = classes
        // A class that failed to decode is already reported; do not add "no class" on top of it.
        if !(classes.isEmpty && !problems.isEmpty) { problems += validate() }
        guard problems.isEmpty else { throw CompliancePolicyProblems(problems) }
    }

    /// Every problem in the policy (empty when it is valid).
    public func validate() -> [CompliancePolicyError] {
        guard !classes.isEmpty else {
            return [CompliancePolicyError(.missingDeviceClass, path: "(top level)", "at least one of managed, byod, vendor")]
        }
        return DeviceClass.allCases.compactMap { c in classes[c].map { (c, $0) } }.flatMap { $0.1.validate(path: $0.0.rawValue) }
    }
}

/// The baseline for one device class. See ``CompliancePolicy`` for the keys.
public struct DeviceClassPolicy: Sendable, Hashable, Decodable {
    /// Allowed operating systems and their minimum versions (by OS name as the report gives it).
    public var minimumOSVersions: [String: String]
    public var maxPostureAgeSeconds: Int
    public var requireDiskEncryption: Bool
    public var requireFirewall: Bool
    public var requireScreenLock: Bool
    public var requireEDR: Bool
    public var maxEDRSignatureAgeDays: Int
    public var maxVulnerabilitySeverity: VulnerabilitySeverity
    /// nil: no limit.
    public var maxPendingSecurityUpdates: Int?
    public var requireVulnerabilityScan: Bool

    public static let maxPostureAgeLimit = 30 * 24 * 3600

    public init(minimumOSVersions: [String: String] = [:], maxPostureAgeSeconds: Int, requireDiskEncryption: Bool = true,
                requireFirewall: Bool = true, requireScreenLock: Bool = true, requireEDR: Bool = true, maxEDRSignatureAgeDays: Int = 7,
                maxVulnerabilitySeverity: VulnerabilitySeverity, maxPendingSecurityUpdates: Int? = nil, requireVulnerabilityScan: Bool = true) {
        self.minimumOSVersions = minimumOSVersions; self.maxPostureAgeSeconds = maxPostureAgeSeconds
        self.requireDiskEncryption = requireDiskEncryption; self.requireFirewall = requireFirewall; self.requireScreenLock = requireScreenLock
        self.requireEDR = requireEDR; self.maxEDRSignatureAgeDays = maxEDRSignatureAgeDays
        self.maxVulnerabilitySeverity = maxVulnerabilitySeverity; self.maxPendingSecurityUpdates = maxPendingSecurityUpdates
        self.requireVulnerabilityScan = requireVulnerabilityScan
    }

    enum Keys: String, CodingKey, CaseIterable {
        case minimumOSVersions = "minimum_os_versions"
        case maxPostureAgeSeconds = "max_posture_age_seconds"
        case requireDiskEncryption = "require_disk_encryption"
        case requireFirewall = "require_firewall"
        case requireScreenLock = "require_screen_lock"
        case requireEDR = "require_edr"
        case maxEDRSignatureAgeDays = "max_edr_signature_age_days"
        case maxVulnerabilitySeverity = "max_vulnerability_severity"
        case maxPendingSecurityUpdates = "max_pending_security_updates"
        case requireVulnerabilityScan = "require_vulnerability_scan"
    }

    public init(from decoder: any Decoder) throws {
        let path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        let all = try decoder.container(keyedBy: AnyKey.self)
        let unknown = all.allKeys.map(\.stringValue).filter { Keys(rawValue: $0) == nil }.sorted()
        let c = try decoder.container(keyedBy: Keys.self)
        minimumOSVersions = try c.decodeIfPresent([String: String].self, forKey: .minimumOSVersions) ?? [:]
        maxPostureAgeSeconds = try c.decode(Int.self, forKey: .maxPostureAgeSeconds)
        requireDiskEncryption = try c.decodeIfPresent(Bool.self, forKey: .requireDiskEncryption) ?? true
        requireFirewall = try c.decodeIfPresent(Bool.self, forKey: .requireFirewall) ?? true
        requireScreenLock = try c.decodeIfPresent(Bool.self, forKey: .requireScreenLock) ?? true
        requireEDR = try c.decodeIfPresent(Bool.self, forKey: .requireEDR) ?? true
        maxEDRSignatureAgeDays = try c.decodeIfPresent(Int.self, forKey: .maxEDRSignatureAgeDays) ?? 7
        maxPendingSecurityUpdates = try c.decodeIfPresent(Int.self, forKey: .maxPendingSecurityUpdates)
        requireVulnerabilityScan = try c.decodeIfPresent(Bool.self, forKey: .requireVulnerabilityScan) ?? true
        // A severity by name or by ordinal.
        var problems = unknown.map { CompliancePolicyError(.unknownKey, path: path + "." + $0, "not a compliance setting") }
        let severityPath = path + "." + Keys.maxVulnerabilitySeverity.rawValue
        if let name = try? c.decode(String.self, forKey: .maxVulnerabilitySeverity) {
            guard let severity = VulnerabilitySeverity.allCases.first(where: { $0.description == name.lowercased() }) else {
                problems.append(CompliancePolicyError(.invalidSeverity, path: severityPath, "\"\(name.prefix(32))\": none, low, medium, high or critical"))
                throw CompliancePolicyProblems(problems)
            }
            maxVulnerabilitySeverity = severity
        } else {
            let ordinal = try c.decode(Int.self, forKey: .maxVulnerabilitySeverity)
            guard let severity = VulnerabilitySeverity(rawValue: ordinal) else {
                problems.append(CompliancePolicyError(.invalidSeverity, path: severityPath, "\(ordinal): 0 (none) to 4 (critical)"))
                throw CompliancePolicyProblems(problems)
            }
            maxVulnerabilitySeverity = severity
        }
        guard problems.isEmpty else { throw CompliancePolicyProblems(problems) }
    }

    /// Every problem in this class's baseline; `path` is the class name.
    public func validate(path: String) -> [CompliancePolicyError] {
        var problems: [CompliancePolicyError] = []
        func key(_ k: Keys) -> String { path + "." + k.rawValue }
        if !(1...Self.maxPostureAgeLimit).contains(maxPostureAgeSeconds) {
            problems.append(CompliancePolicyError(.valueOutOfRange, path: key(.maxPostureAgeSeconds),
                                                  "\(maxPostureAgeSeconds): 1 to \(Self.maxPostureAgeLimit) seconds"))
        }
        if !(0...365).contains(maxEDRSignatureAgeDays) {
            problems.append(CompliancePolicyError(.valueOutOfRange, path: key(.maxEDRSignatureAgeDays), "\(maxEDRSignatureAgeDays): 0 to 365 days"))
        }
        if let pending = maxPendingSecurityUpdates, pending < 0 {
            problems.append(CompliancePolicyError(.valueOutOfRange, path: key(.maxPendingSecurityUpdates), "\(pending): must not be negative"))
        }
        for (name, minimum) in minimumOSVersions.sorted(by: { $0.key < $1.key }) {
            let osPath = key(.minimumOSVersions) + "." + name
            guard !name.isEmpty, name.count <= 64 else {
                problems.append(CompliancePolicyError(.invalidOSName, path: osPath, "an OS name is 1–64 characters"))
                continue
            }
            let order = OSVersionOrder(osName: name)
            if !order.isReadable(minimum) {
                let shape = order == .debian ? "a Debian version" : "dotted numbers such as 10.0.19045"
                problems.append(CompliancePolicyError(.invalidMinimumVersion, path: osPath, "\"\(minimum.prefix(64))\" is not \(shape)"))
            }
        }
        return problems
    }
}

/// Any string key, for reading maps and spotting unknown keys.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}
