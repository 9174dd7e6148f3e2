import MenshenCore
import Foundation

/// Revoked device certificates by serial number. A value: revoking returns a
/// new list, which the caller stores and hands to the next verifier.
/// Entries can be dropped once the certificate they revoke has expired
/// (``pruned(at:)``), which keeps the list as short as certificates are.
public struct DeviceRevocationList: Sendable, Hashable, Codable {
    /// Why a certificate was revoked (the RFC 5280 §5.3.1 reasons Menshen uses).
    public enum Reason: String, Sendable, Hashable, Codable {
        case unspecified
        case keyCompromise = "key_compromise"
        /// A renewal replaced it.
        case superseded
        /// The device was retired.
        case cessationOfOperation = "cessation_of_operation"
        /// The device was quarantined.
        case certificateHold = "certificate_hold"
    }

    public struct Entry: Sendable, Hashable, Codable {
        /// Lower-case hex, no separators.
        public var serialNumber: String
        public var deviceID: DeviceID
        public var revokedAt: Date
        public var reason: Reason
        /// The certificate's own expiry: after it the entry is no longer needed.
        public var notValidAfter: Date

        enum CodingKeys: String, CodingKey {
            case reason
            case serialNumber = "serial_number"
            case deviceID = "device_id"
            case revokedAt = "revoked_at"
            case notValidAfter = "not_valid_after"
        }
    }

    /// Entries by serial number.
    public private(set) var entries: [String: Entry]

    public init() { entries = [:] }

    /// The list with `certificate` revoked from `time` (an existing entry for
    /// the serial keeps its earlier time).
    public func revoking(_ certificate: IssuedDeviceCertificate, at time: Date, reason: Reason = .unspecified) -> DeviceRevocationList {
        revoking(serialNumber: certificate.serialNumber, deviceID: certificate.deviceID, notValidAfter: certificate.notValidAfter,
                 at: time, reason: reason)
    }

    /// The list with the certificate of a verified connection revoked.
    public func revoking(_ certificate: VerifiedDeviceCertificate, at time: Date, reason: Reason = .unspecified) -> DeviceRevocationList {
        revoking(serialNumber: certificate.serialNumber, deviceID: certificate.deviceID, notValidAfter: certificate.notValidAfter,
                 at: time, reason: reason)
    }

    /// The list with a serial (hex, any case, colons allowed) revoked.
    public func revoking(serialNumber: String, deviceID: DeviceID, notValidAfter: Date, at time: Date,
                         reason: Reason = .unspecified) -> DeviceRevocationList {
        let serial = Self.normalized(serialNumber)
        var copy = self
        if copy.entries[serial] == nil {
            copy.entries[serial] = Entry(serialNumber: serial, deviceID: deviceID, revokedAt: time, reason: reason, notValidAfter: notValidAfter)
        }
        return copy
    }

    /// The entry for a serial number, if it is revoked.
    public func entry(serialNumber: String) -> Entry? { entries[Self.normalized(serialNumber)] }

    /// Every revoked serial of one device (for retiring or quarantining it).
    public func entries(for device: DeviceID) -> [Entry] {
        entries.values.filter { $0.deviceID == device }.sorted { $0.serialNumber < $1.serialNumber }
    }

    /// The list without entries for certificates that have expired by `time`.
    public func pruned(at time: Date) -> DeviceRevocationList {
        var copy = self
        copy.entries = entries.filter { $0.value.notValidAfter >= time }
        return copy
    }

    static func normalized(_ serial: String) -> String {
        serial.lowercased().filter { $0 != ":" }
    }
}
