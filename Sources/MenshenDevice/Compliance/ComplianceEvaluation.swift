import Foundation

/// One reason a device is not compliant, machine-readable: a code, and the
/// observed and required values as text where there are any.
public struct ComplianceReason: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, Codable, CaseIterable {
        case noPolicyForClass = "no_policy_for_class"
        case noPosture = "no_posture"
        case postureStale = "posture_stale"
        case osNotAllowed = "os_not_allowed"
        case osVersionUnreadable = "os_version_unreadable"
        case osVersionBelowMinimum = "os_version_below_minimum"
        case diskEncryptionOff = "disk_encryption_off"
        case firewallOff = "firewall_off"
        case screenLockOff = "screen_lock_off"
        case edrMissing = "edr_missing"
        case edrNotRunning = "edr_not_running"
        case edrSignaturesOutdated = "edr_signatures_outdated"
        case pendingSecurityUpdates = "pending_security_updates"
        case vulnerabilitiesNotScanned = "vulnerabilities_not_scanned"
        case packagesNotEvaluated = "packages_not_evaluated"
        case vulnerabilitySeverityTooHigh = "vulnerability_severity_too_high"
    }
    public var code: Code
    public var observed: String?
    public var required: String?

    public init(_ code: Code, observed: String? = nil, required: String? = nil) {
        self.code = code; self.observed = observed; self.required = required
    }

    public var description: String {
        var text = code.rawValue
        if let observed { text += " (observed \(observed)" + (required.map { ", required \($0)" } ?? "") + ")" }
        else if let required { text += " (required \(required))" }
        return text
    }
}

/// The verdict on one device at one time. `compliant` exactly when there
/// are no reasons; never compliant without a fresh verified posture.
public struct ComplianceResult: Sendable, Hashable, Codable {
    public var deviceClass: DeviceClass
    public var compliant: Bool
    public var reasons: [ComplianceReason]
    public var evaluatedAt: Date
    /// When the posture behind a compliant verdict becomes too old and the
    /// device stops being compliant without a new report; nil when not compliant.
    public var validUntil: Date?

    enum CodingKeys: String, CodingKey {
        case compliant, reasons
        case deviceClass = "device_class"
        case evaluatedAt = "evaluated_at"
        case validUntil = "valid_until"
    }
}

extension CompliancePolicy {
    /// Evaluates a device of `deviceClass` on its latest verified posture and
    /// the vulnerability scan of that posture's packages, at `now`. Every
    /// failed requirement is listed. No posture, a stale one, or a class
    /// without a baseline is non-compliant.
    public func evaluate(deviceClass: DeviceClass, posture: VerifiedPosture?, scan: VulnerabilityScan?, now: Date) -> ComplianceResult {
        func result(_ reasons: [ComplianceReason], validUntil: Date? = nil) -> ComplianceResult {
            ComplianceResult(deviceClass: deviceClass, compliant: reasons.isEmpty, reasons: reasons, evaluatedAt: now,
                             validUntil: reasons.isEmpty ? validUntil : nil)
        }
        guard let policy = classes[deviceClass] else { return result([ComplianceReason(.noPolicyForClass, observed: deviceClass.rawValue)]) }
        guard let posture else { return result([ComplianceReason(.noPosture)]) }
        let report = posture.report
        var reasons: [ComplianceReason] = []

        let age = posture.ageSeconds(at: now)
        if age > policy.maxPostureAgeSeconds {
            reasons.append(ComplianceReason(.postureStale, observed: "\(age)", required: "\(policy.maxPostureAgeSeconds)"))
        }

        if !policy.minimumOSVersions.isEmpty {
            if let minimum = policy.minimumOSVersions[report.os.name] {
                switch OSVersionOrder(osName: report.os.name).compare(report.os.version, minimum) {
                case nil: reasons.append(ComplianceReason(.osVersionUnreadable, observed: report.os.version, required: minimum))
                case let c? where c < 0: reasons.append(ComplianceReason(.osVersionBelowMinimum, observed: report.os.version, required: minimum))
                default: break
                }
            } else {
                reasons.append(ComplianceReason(.osNotAllowed, observed: report.os.name,
                                                required: policy.minimumOSVersions.keys.sorted().joined(separator: ",")))
            }
        }

        if policy.requireDiskEncryption, !report.diskEncryption { reasons.append(ComplianceReason(.diskEncryptionOff)) }
        if policy.requireFirewall, !report.firewall { reasons.append(ComplianceReason(.firewallOff)) }
        if policy.requireScreenLock, !report.screenLock { reasons.append(ComplianceReason(.screenLockOff)) }
        if policy.requireEDR {
            if let edr = report.edr {
                if !edr.running { reasons.append(ComplianceReason(.edrNotRunning, observed: edr.product)) }
                let maxSeconds = policy.maxEDRSignatureAgeDays * 86_400
                if edr.signatureAgeSeconds > maxSeconds {
                    reasons.append(ComplianceReason(.edrSignaturesOutdated, observed: "\(edr.signatureAgeSeconds)", required: "\(maxSeconds)"))
                }
            } else {
                reasons.append(ComplianceReason(.edrMissing))
            }
        }

        if let limit = policy.maxPendingSecurityUpdates, report.pendingSecurityUpdates > limit {
            reasons.append(ComplianceReason(.pendingSecurityUpdates, observed: "\(report.pendingSecurityUpdates)", required: "\(limit)"))
        }

        if let scan, scan.ecosystemSupported {
            if policy.requireVulnerabilityScan, !scan.unevaluated.isEmpty {
                reasons.append(ComplianceReason(.packagesNotEvaluated, observed: scan.unevaluated.prefix(5).map(\.name).joined(separator: ",")))
            }
            if scan.maxSeverity > policy.maxVulnerabilitySeverity {
                reasons.append(ComplianceReason(.vulnerabilitySeverityTooHigh, observed: scan.maxSeverity.description,
                                                required: policy.maxVulnerabilitySeverity.description))
            }
        } else if policy.requireVulnerabilityScan {
            reasons.append(ComplianceReason(.vulnerabilitiesNotScanned, observed: report.os.packageEcosystem))
        }

        let validUntil = posture.collectedAt.addingTimeInterval(TimeInterval(policy.maxPostureAgeSeconds))
        return result(reasons, validUntil: validUntil)
    }
}
