import MenshenCore
import Foundation
import MenshenPolicyEngine

/// What the inventory knows about a device from its enrolment.
public struct DeviceEnrolment: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case active
        /// Enrolled but isolated: never compliant until released.
        case quarantined
        /// No longer enrolled.
        case retired
    }
    public var deviceID: DeviceID
    public var deviceClass: DeviceClass
    public var status: Status
    /// The device key lives in a TPM (or another non-exportable key store).
    public var hardwareBound: Bool

    public init(deviceID: DeviceID, deviceClass: DeviceClass, status: Status = .active, hardwareBound: Bool) {
        self.deviceID = deviceID; self.deviceClass = deviceClass; self.status = status; self.hardwareBound = hardwareBound
    }

    enum CodingKeys: String, CodingKey {
        case status
        case deviceID = "device_id"
        case deviceClass = "device_class"
        case hardwareBound = "hardware_bound"
    }
}

/// Fills the policy engine's device attributes (`AccessRequest.Device`).
public enum DeviceAttributes {
    /// `posture_age_seconds` when there is no posture at all: 2³¹−1 (68 years),
    /// larger than any sensible limit yet far from overflow in policy arithmetic.
    public static let noPostureAgeSeconds = Int(Int32.max)

    /// The attributes for a request from a device, at `now`. Fail closed:
    /// - no enrolment (unknown certificate): not enrolled, unmanaged, external,
    ///   not compliant, no posture, severity critical;
    /// - retired: not enrolled; quarantined: enrolled but not compliant;
    /// - `compliant` only for an active device whose compliance result is
    ///   for its current class, compliant, and still within its `validUntil`
    ///   (so a device that stops reporting stops being compliant);
    /// - a posture or result for another device is ignored;
    /// - `max_vulnerability_severity` is critical (4) without a scan or when
    ///   the scan could not evaluate the device's ecosystem.
    public static func device(enrolment: DeviceEnrolment?, posture: VerifiedPosture?, scan: VulnerabilityScan?,
                              compliance: ComplianceResult?, now: Date) -> AccessRequest.Device {
        guard let enrolment else {
            return AccessRequest.Device(enrolled: false, managed: false, compliant: false, hardwareBound: false, external: true,
                                        postureAgeSeconds: noPostureAgeSeconds, maxVulnerabilitySeverity: VulnerabilitySeverity.critical.rawValue)
        }
        let posture = posture?.deviceID == enrolment.deviceID ? posture : nil
        let compliance = compliance?.deviceClass == enrolment.deviceClass ? compliance : nil
        let enrolled = enrolment.status != .retired
        var compliant = false
        if enrolment.status == .active, posture != nil, let compliance, compliance.compliant, let validUntil = compliance.validUntil {
            compliant = now <= validUntil
        }
        let severity: VulnerabilitySeverity
        if let scan, scan.ecosystemSupported { severity = scan.maxSeverity } else { severity = .critical }
        return AccessRequest.Device(
            enrolled: enrolled, managed: enrolment.deviceClass == .managed, compliant: compliant, hardwareBound: enrolment.hardwareBound,
            external: enrolment.deviceClass.isExternal, postureAgeSeconds: posture?.ageSeconds(at: now) ?? noPostureAgeSeconds,
            maxVulnerabilitySeverity: severity.rawValue)
    }
}
