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
///
/// - a change of a device's compliance → Compliance Finding (2003): activity 1
///   Create (`status_id` 1 New, `compliance.status_id` 3 Fail, the failed
///   controls as `compliance.checks` and `requirements`) when it turns
///   non-compliant, 3 Close (`status_id` 4 Resolved, Pass) when it is compliant
///   again; one `finding_info.uid` per device (`device-compliance:<id>`), so a
///   SIEM pairs them. The sessions revoked because of it are counted in
///   `unmapped.device_compliance.sessions_revoked`.
/// - the inventory's life cycle → Entity Management (3004) on the device as
///   `entity` (type "Device"): 6 Enroll (the owner as actor), 12 Suspend
///   (`menshen device quarantine`), 13 Resume (release), 7 Unenroll (retire),
///   3 Update (a certificate renewal, the old and new serials in `comment`),
///   the operator (the OS account running the command, type Admin) or the
///   playbook (`playbook:<name>`, type System, from a `quarantine_device`
///   step) as `actor.user` and the reason as `comment`.
public struct DeviceEvents: Sendable {
    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.clock = clock; self.random = random
    }

    static let suspicious: Set<String> = ["other_ca", "bad_signature", "revoked", "unknown_certificate", "unknown_device", "malformed"]

    /// A presented device certificate the gateway refused.
    /// - Parameter unreportedBefore: refusals before this one that the rate limit kept from being reported one by one.
    public func certificateRefused(code: String, detail: String, certificate: Certificate?, fingerprint: String,
                                   source: String?, requestID: String, unreportedBefore: Int = 0) async throws {
        let severity = Self.suspicious.contains(code) ? 3 : 2
        var event = base(classUID: 3002, categoryUID: 3, activity: 1, severity: severity)
        let deviceID = certificate.flatMap(Self.deviceName)
        event["user"] = ["uid": deviceID.map { "device:\($0)" } ?? "sha256:\(fingerprint)",
                         "name": String((certificate.map { $0.subject.description } ?? deviceID ?? "unknown device").prefix(256))]
        event["status_id"] = 2
        event["status"] = "Failure"
        event["status_detail"] = String("device certificate refused: \(code): \(detail)".prefix(1024))
            + (unreportedBefore > 0 ? " (\(unreportedBefore) refusals before this one were not reported one by one: rate limit)" : "")
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
        if unreportedBefore > 0 { unmapped["unreported_before"] = unreportedBefore }
        event["unmapped"] = ["device_certificate": unmapped]
        event["message"] = "device certificate refused (\(code))"
        try await append(event, classUID: 3002, severity: severity)
    }

    /// An enrolment (activity 1) or an evaluated posture report (activity 2).
    public func inventory(device: DeviceRecord, activity: Int, success: Bool, detail: String, source: String?,
                          tpmEKFingerprint: String? = nil) async throws {
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
        if let tpmEKFingerprint { posture["tpm_ek_certificate_sha256"] = tpmEKFingerprint }
        event["unmapped"] = ["posture": posture]
        event["message"] = activity == 1 ? "device \(device.id.rawValue) enrolled" : "posture of \(device.id.rawValue): \(detail.prefix(200))"
        try await append(event, classUID: 5001, severity: event["severity_id"] as? Int ?? 1, user: device.ownerID)
    }

    /// A posture report that was refused (replayed, tampered, stale, from an unknown certificate…), or a
    /// certificate renewal (codes starting `renewal_`).
    public func postureRefused(device: DeviceID, code: String, source: String?) async throws {
        let severity = code == "stale" || code == "nonce_expired" ? 2 : 3
        var event = base(classUID: 5001, categoryUID: 5, activity: 2, severity: severity)
        event["device"] = ["uid": String(device.rawValue.prefix(128)), "type_id": 0, "type": "Unknown"]
        event["status_id"] = 2
        event["status"] = "Failure"
        // Renewal refusals share the class and the device's posture history; their wording says what was refused.
        let what = code.hasPrefix("renewal_") ? "certificate renewal" : "posture report"
        event["status_detail"] = "\(what) refused: \(code)"
        event["service"] = nil
        var posture: [String: Any] = ["refusal": code]
        if let source, !source.isEmpty { posture["source_ip"] = source }
        event["unmapped"] = ["posture": posture]
        event["message"] = "\(what) of \(device.rawValue.prefix(128)) refused (\(code))"
        try await append(event, classUID: 5001, severity: severity)
    }

    /// The guideline principle every compliance finding refers to.
    static let standard = "FSC Zero Trust Architecture Reference Guideline for the Financial Industry (2024), 2.2 device compliance"

    /// A device's compliance changed: turned non-compliant (`reasons` are the failed controls) or compliant again.
    public func complianceChanged(device: DeviceRecord, reasons: [String], sessionsRevoked: Int, source: String?) async throws {
        let failing = !device.compliant
        let severity = failing ? (device.state == .active ? 3 : 4) : 1
        var event = base(classUID: 2003, categoryUID: 2, activity: failing ? 1 : 3, severity: severity)
        event["service"] = nil
        let id = String(device.id.rawValue.prefix(128))
        let controls = reasons.prefix(50).map { String($0.prefix(200)) }
        event["finding_info"] = [
            "uid": "device-compliance:\(id)",
            "title": failing ? "Device \(id) is not compliant" : "Device \(id) is compliant again",
            "types": ["Device compliance"],
            "desc": failing ? "failed controls: " + controls.joined(separator: ", ") : "every control of its class's baseline passes",
        ]
        event["compliance"] = [
            "standards": [Self.standard],
            "control": "device compliance baseline (\(device.deviceClass.rawValue))",
            "status_id": failing ? 3 : 1, "status": failing ? "Fail" : "Pass",
            "requirements": controls,
            "checks": controls.map { ["name": $0, "status_id": 3, "status": "Fail"] as [String: Any] },
        ]
        event["resources"] = [["uid": id, "name": String(device.displayName.prefix(200)), "type": "Device"]]
        event["status_id"] = failing ? 1 : 4
        event["status"] = failing ? "New" : "Resolved"
        var detail: [String: Any] = ["device_id": id, "class": device.deviceClass.rawValue, "state": device.state.rawValue,
                                     "sessions_revoked": sessionsRevoked]
        if let owner = device.ownerID { detail["owner"] = owner.rawValue }
        if let source, !source.isEmpty { detail["source_ip"] = source }
        event["unmapped"] = ["device_compliance": detail]
        event["message"] = failing ? "device \(id) is not compliant: \(controls.joined(separator: ", ").prefix(300))" : "device \(id) is compliant again"
        try await append(event, classUID: 2003, severity: severity, user: device.ownerID)
    }

    /// Who made a life-cycle change, as the OCSF user type of `actor.user`.
    public enum ActorType: Int, Sendable {
        /// The device's own user (an enrolment, a renewal): 1 User.
        case user = 1
        /// An operator at the command line: 2 Admin.
        case admin = 2
        /// Menshen itself, e.g. a playbook step answering a detection: 3 System.
        case system = 3

        var name: String { switch self { case .user: "User"; case .admin: "Admin"; case .system: "System" } }
    }

    /// The inventory's life cycle on a device: 6 Enroll, 12 Suspend (quarantine), 13 Resume (release), 7 Unenroll (retire).
    /// - Parameters:
    ///   - actor: who did it (the device's owner for an enrolment, the OS account of an operator's command).
    ///   - actorIsOperator: an operator at the command line (OCSF user type Admin) rather than the device's user.
    public func entityManagement(device: DeviceRecord, activity: Int, actor: String, actorIsOperator: Bool, application: String,
                                 comment: String?, sessionsRevoked: Int = 0, source: String? = nil) async throws {
        try await entityManagement(device: device, activity: activity, actor: actor, actorType: actorIsOperator ? .admin : .user,
                                   application: application, comment: comment, sessionsRevoked: sessionsRevoked, source: source)
    }

    /// The inventory's life cycle on a device, with the actor's OCSF user type given (``ActorType``: a playbook is System).
    public func entityManagement(device: DeviceRecord, activity: Int, actor: String, actorType: ActorType, application: String,
                                 comment: String?, sessionsRevoked: Int = 0, source: String? = nil) async throws {
        let severity = activity == 12 || activity == 7 ? 3 : 1
        var event = base(classUID: 3004, categoryUID: 3, activity: activity, severity: severity)
        event["service"] = nil
        let id = String(device.id.rawValue.prefix(128))
        event["entity"] = ["uid": id, "name": String(device.displayName.prefix(200)), "type": "Device"]
        event["actor"] = [
            "user": ["name": String(actor.prefix(128)), "type_id": actorType.rawValue, "type": actorType.name],
            "app_name": application,
        ] as [String: Any]
        if let comment, !comment.isEmpty { event["comment"] = String(comment.prefix(500)) }
        event["status_id"] = 1
        event["status"] = "Success"
        var detail: [String: Any] = ["device_id": id, "class": device.deviceClass.rawValue, "state": device.state.rawValue,
                                     "hardware_bound": device.hardwareBound, "sessions_revoked": sessionsRevoked]
        if let owner = device.ownerID { detail["owner"] = owner.rawValue }
        if let source, !source.isEmpty { detail["source_ip"] = source }
        event["unmapped"] = ["device": detail]
        let verb = [6: "enrolled", 12: "quarantined", 13: "released", 7: "retired", 3: "renewed its certificate"][activity] ?? "changed"
        event["message"] = "device \(id) \(verb) by \(actor.prefix(128))"
        try await append(event, classUID: 3004, severity: severity, user: device.ownerID)
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
