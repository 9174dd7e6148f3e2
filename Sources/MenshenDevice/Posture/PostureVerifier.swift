import MenshenCore
import Crypto
import Foundation

/// A posture report whose signature, device, nonce and freshness were
/// checked by ``PostureVerifier``. Compliance is evaluated only on these.
public struct VerifiedPosture: Sendable, Hashable {
    public let deviceID: DeviceID
    public let report: PostureReport
    /// When the server accepted it.
    public let receivedAt: Date
    /// The serial of the device certificate whose key signed it (empty for ``init(uncheckedReport:receivedAt:)``).
    public let certificateSerialNumber: String

    /// When the agent measured.
    public var collectedAt: Date { report.collectedAt }

    init(report: PostureReport, receivedAt: Date, certificateSerialNumber: String) {
        self.deviceID = report.deviceID
        self.report = report
        self.receivedAt = receivedAt
        self.certificateSerialNumber = certificateSerialNumber
    }

    /// Escape hatch: a posture verified earlier and read back from the
    /// caller's own store. Never for anything that came off the network.
    public init(uncheckedReport report: PostureReport, receivedAt: Date) {
        self.init(report: report, receivedAt: receivedAt, certificateSerialNumber: "")
    }

    /// Seconds since the agent measured, at `now` (0 if `collected_at` is ahead of `now`).
    public func ageSeconds(at now: Date) -> Int {
        let age = now.timeIntervalSince(report.collectedAt)
        guard age.isFinite, age > 0 else { return 0 }
        return age >= Double(Int32.max) ? Int(Int32.max) : Int(age)
    }
}

/// Why a well-formed posture report was refused.
public enum PostureRefusal: Sendable, Hashable, CustomStringConvertible {
    /// The device certificate the report is checked against has expired since it was verified.
    case certificateExpired
    /// The signature does not verify with the key of the device's certificate.
    case badSignature
    /// The report names another device than the certificate.
    case deviceMismatch(reported: DeviceID, certified: DeviceID)
    /// The nonce is not outstanding for this device.
    case nonce(PostureNonceRedemption)
    /// Measured longer ago than the freshness window allows.
    case stale(collectedAt: Date, ageSeconds: Int)
    /// Measured in the future by more than the clock skew allowed.
    case fromTheFuture(collectedAt: Date)

    public var code: String {
        switch self {
        case .certificateExpired: "certificate_expired"
        case .badSignature: "bad_signature"
        case .deviceMismatch: "device_mismatch"
        case .nonce(let redemption):
            switch redemption {
            case .alreadyUsed: "nonce_replayed"
            case .expired: "nonce_expired"
            case .otherDevice: "nonce_other_device"
            case .unknown, .redeemed: "nonce_unknown"
            }
        case .stale: "stale"
        case .fromTheFuture: "from_the_future"
        }
    }

    public var description: String {
        switch self {
        case .deviceMismatch(let reported, let certified): "device_mismatch: report says \(reported), certificate says \(certified)"
        case .stale(let date, let age): "stale: collected \(date), \(age) s ago"
        case .fromTheFuture(let date): "from_the_future: collected \(date)"
        default: code
        }
    }
}

public enum PostureVerdict: Sendable, Hashable {
    case verified(VerifiedPosture)
    case refused(PostureRefusal)
}

/// Verifies posture reports. Checks, in this order: that the device
/// certificate is still within its validity (revocation is checked when the
/// caller verifies the certificate); the signature over the exact report bytes with the key of the certificate the device presented
/// (already verified by ``DeviceCertificateVerifier``); that the report names
/// that certificate's device; that `collected_at` is within
/// ``maxReportAge`` of now and not ahead of now by more than ``maxClockSkew``;
/// and last that the nonce is outstanding for the device (redeeming it).
public struct PostureVerifier: Sendable {
    /// How far a device clock may run ahead of ours.
    public var maxClockSkew: TimeInterval
    /// How old a measurement may be when it arrives. Keep it no longer than
    /// the nonce time to live.
    public var maxReportAge: TimeInterval

    public init(maxClockSkew: TimeInterval = 300, maxReportAge: TimeInterval = 600) {
        self.maxClockSkew = maxClockSkew
        self.maxReportAge = maxReportAge
    }

    /// Throws only when the nonce store fails; every refusal is a verdict.
    public func verify(_ report: UnverifiedPostureReport, certificate: VerifiedDeviceCertificate, nonces: any PostureNonceStore,
                       now: Date) async throws -> PostureVerdict {
        guard now <= certificate.notValidAfter else { return .refused(.certificateExpired) }
        guard Self.signatureIsValid(report.signature, over: report.reportBytes, key: certificate.signingKey) else {
            return .refused(.badSignature)
        }
        let claimed = report.claimed
        guard claimed.deviceID == certificate.deviceID else {
            return .refused(.deviceMismatch(reported: claimed.deviceID, certified: certificate.deviceID))
        }
        let age = now.timeIntervalSince(claimed.collectedAt)
        if age < -maxClockSkew { return .refused(.fromTheFuture(collectedAt: claimed.collectedAt)) }
        if age > maxReportAge {
            return .refused(.stale(collectedAt: claimed.collectedAt, ageSeconds: age >= Double(Int32.max) ? Int(Int32.max) : Int(age)))
        }
        let redemption = try await nonces.redeem(claimed.nonce, for: certificate.deviceID, at: now)
        guard redemption == .redeemed else { return .refused(.nonce(redemption)) }
        return .verified(VerifiedPosture(report: claimed, receivedAt: now, certificateSerialNumber: certificate.serialNumber))
    }

    /// Read as DER; a 64-byte signature is also tried as raw r‖s (both are accepted, see ``PostureEnvelope``).
    static func signatureIsValid(_ signature: [UInt8], over bytes: [UInt8], key: P256.Signing.PublicKey) -> Bool {
        if let der = try? P256.Signing.ECDSASignature(derRepresentation: signature), key.isValidSignature(der, for: bytes) {
            return true
        }
        if signature.count == 64, let raw = try? P256.Signing.ECDSASignature(rawRepresentation: signature) {
            return key.isValidSignature(raw, for: bytes)
        }
        return false
    }
}
