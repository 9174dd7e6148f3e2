import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage
import X509

/// The device pillar's OCSF 1.8.0 events, appended to the event log:
///
/// - a refused device certificate → Authentication (3002), activity 1 Logon,
///   `status_id` 2 Failure, the refusal code in `status_detail` and
///   `unmapped.device_certificate.refusal`, the presented certificate as
///   `certificate` (serial, issuer, subject, SHA-256 fingerprint, validity),
///   the device (or, for a certificate that names none, the fingerprint) as
///   the authenticating `user` (a machine identity, as OCSF does for
///   computer accounts), `auth_protocol` "TLS client certificate".
///
/// Severity: Medium (3) when the certificate may be an attack (another CA,
/// a bad signature, revoked, unknown to us), Low (2) otherwise (expired, not
/// yet valid, wrong usage).
///
/// - an enrolment (activity 1 Log) or an evaluated posture report (activity 2
///   Collect) → Device Inventory Info (5001) with the device (`uid`, `name`,
///   `is_managed`, `is_compliant`, `is_personal`, the owner) and the result in
///   `status_detail`; a refused report → the same class with `status_id` 2
///   and the refusal code (`nonce_unknown` for a replay, `bad_signature` for a
///   tampered report, …) in `unmapped.posture.refusal`.
public struct DeviceEvents: Sendable {
    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.clock = clock; self.random = random
    }

    static let suspicious: Set<String> = ["other_ca", "bad_signature", "revoked", "unknown_certificate", "unknown_device", "malformed"]

    /// A presented device certificate the gateway refused.
    public func certificateRefused(code: String, detail: String, certificate: Certificate?, fingerprint: String,
                                   source: String?, requestID: String) async throws {
        let severity = Self.suspicious.contains(code) ? 3 : 2
        var event = base(classUID: 3002, categoryUID: 3, activity: 1, severity: severity)
        let deviceID = certificate.flatMap(Self.deviceName)
        event["user"] = ["uid": deviceID.map { "device:\($0)" } ?? "sha256:\(fingerprint)",
                         "name": String((certificate.map { $0.subject.description } ?? deviceID ?? "unknown device").prefix(256))]
        event["status_id"] = 2
        event["status"] = "Failure"
        event["status_detail"] = String("device certificate refused: \(code): \(detail)".prefix(1024))
        event["auth_protocol_id"] = 99
        event["auth_protocol"] = "TLS client certificate"
        event["is_mfa"] = false
        if let source, !source.isEmpty { event["src_endpoint"] = ["ip": source] }
        if let certificate {
            var c: [String: Any] = [
                "serial_number": Self.hex(certificate.serialNumber.bytes),
                "issuer": String(certificate.issuer.description.prefix(256)),
                "subject": String(certificate.subject.description.prefix(256)),
                "created_time": StoreCoding.millis(certificate.notValidBefore),
                "expiration_time": StoreCoding.millis(certificate.notValidAfter),
                "fingerprints": [["algorithm_id": 3, "algorithm": "SHA-256", "value": fingerprint]],
            ]
            c["version"] = "3"
            event["certificate"] = c
        }
        var unmapped: [String: Any] = ["refusal": code, "request_id": requestID, "fingerprint": fingerprint]
        if let deviceID { unmapped["device_id"] = deviceID }
        event["unmapped"] = ["device_certificate": unmapped]
        event["message"] = "device certificate refused (\(code))"
        try await append(event, classUID: 3002, severity: severity)
    }

    /// An enrolment (activity 1) or an evaluated posture report (activity 2).
    public func inventory(device: DeviceRecord, activity: Int, success: Bool, detail: String, source: String?) async throws {
        var event = base(classUID: 5001, categoryUID: 5, activity: activity, severity: device.compliant || activity == 1 ? 1 : 2)
        var d: [String: Any] = ["uid": device.id.rawValue, "name": String(device.displayName.prefix(200)), "type_id": 0, "type": "Unknown",
                                "is_managed": device.deviceClass == .managed, "is_compliant": device.compliant,
                                "is_personal": device.deviceClass == .byod]
        if let owner = device.ownerID { d["owner"] = ["uid": owner.rawValue, "name": owner.rawValue] }
        event["device"] = d
        event["status_id"] = success ? 1 : 2
        event["status"] = success ? "Success" : "Failure"
        event["status_detail"] = String(detail.prefix(1024))
        event["service"] = nil   // 5001 has neither `service` nor `src_endpoint`: the source goes in `unmapped`
        var posture: [String: Any] = ["reasons": device.complianceReasons, "state": device.state.rawValue,
                                      "hardware_bound": device.hardwareBound, "class": device.deviceClass.rawValue,
                                      "max_vulnerability_severity": device.maxVulnerabilitySeverity,
                                      "vulnerability_findings": device.vulnerabilityFindings.count]
        if let source, !source.isEmpty { posture["source_ip"] = source }
        event["unmapped"] = ["posture": posture]
        event["message"] = activity == 1 ? "device \(device.id.rawValue) enrolled" : "posture of \(device.id.rawValue): \(detail.prefix(200))"
        try await append(event, classUID: 5001, severity: event["severity_id"] as? Int ?? 1, user: device.ownerID)
    }

    /// A posture report that was refused (replayed, tampered, stale, from an unknown certificate…).
    public func postureRefused(device: DeviceID, code: String, source: String?) async throws {
        let severity = code == "stale" || code == "nonce_expired" ? 2 : 3
        var event = base(classUID: 5001, categoryUID: 5, activity: 2, severity: severity)
        event["device"] = ["uid": String(device.rawValue.prefix(128)), "type_id": 0, "type": "Unknown"]
        event["status_id"] = 2
        event["status"] = "Failure"
        event["status_detail"] = "posture report refused: \(code)"
        event["service"] = nil
        var posture: [String: Any] = ["refusal": code]
        if let source, !source.isEmpty { posture["source_ip"] = source }
        event["unmapped"] = ["posture": posture]
        event["message"] = "posture report of \(device.rawValue.prefix(128)) refused (\(code))"
        try await append(event, classUID: 5001, severity: severity)
    }

    /// The device named by a certificate's `urn:menshen:device:` SAN, if any (for the event only).
    static func deviceName(_ certificate: Certificate) -> String? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for case .uniformResourceIdentifier(let uri) in names where uri.hasPrefix("urn:menshen:device:") {
            return String(uri.dropFirst("urn:menshen:device:".count).prefix(128))
        }
        return nil
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func base(classUID: Int, categoryUID: Int, activity: Int, severity: Int) -> [String: Any] {
        [
            "class_uid": classUID, "category_uid": categoryUID, "activity_id": activity, "type_uid": classUID * 100 + activity,
            "severity_id": severity, "time": StoreCoding.millis(clock.now()),
            "service": ["name": "Menshen"],
            "metadata": ["version": IdentityEvents.ocsfVersion, "uid": random.uuid().uuidString.lowercased(),
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": IdentityEvents.productVersion]],
        ]
    }

    func append(_ event: [String: Any], classUID: Int, severity: Int, user: UserID? = nil) async throws {
        let json = try EventJSON.encode(event)
        let record = NewEvent(id: random.uuid(), time: clock.now(), classUID: classUID, severityID: severity, userID: user, payloadJSON: json)
        _ = try await store.appendEvents([record], hasher: EventChain.hasher)
    }
}
