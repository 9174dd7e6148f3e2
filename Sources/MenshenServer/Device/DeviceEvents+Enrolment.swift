import Foundation
import MenshenCore

extension DeviceEvents {
    /// A refused enrolment (TPM evidence refused, a hardware-bound token without
    /// evidence, a failed credential activation): Device Inventory Info (5001),
    /// activity 1 Log, `status_id` 2 Failure, the code in `unmapped.enrolment.refusal`.
    /// Medium severity (3): evidence that does not hold up may be an attempt to pass
    /// a software key off as hardware-bound.
    public func enrolmentRefused(code: String, detail: String, source: String?) async throws {
        var event = base(classUID: 5001, categoryUID: 5, activity: 1, severity: 3)
        // No device exists yet: OCSF wants one of uid, name, ip… — the name says so, the ip is the caller's.
        var device: [String: Any] = ["type_id": 0, "type": "Unknown", "name": "device being enrolled"]
        if let source, !source.isEmpty { device["ip"] = source }
        event["device"] = device
        event["status_id"] = 2
        event["status"] = "Failure"
        event["status_detail"] = String("enrolment refused: \(code): \(detail)".prefix(1024))
        event["service"] = nil
        var enrolment: [String: Any] = ["refusal": code]
        if let source, !source.isEmpty { enrolment["source_ip"] = source }
        event["unmapped"] = ["enrolment": enrolment]
        event["message"] = "device enrolment refused (\(code))"
        try await append(event, classUID: 5001, severity: 3)
    }
}
