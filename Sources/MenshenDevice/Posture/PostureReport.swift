import MenshenCore
import Foundation

/// What a device's agent reports about itself (format 1). The JSON is
/// snake_case:
///
/// ```json
/// {
///   "format": 1,
///   "device_id": "laptop-0042",
///   "nonce": "x3Jk…",                       // issued by the server for this report
///   "collected_at": "2025-03-01T08:00:00Z",  // RFC 3339, when the agent measured
///   "os": {"name": "Debian", "version": "12.5", "package_ecosystem": "Debian:12"},
///   "kernel": "6.1.0-18-amd64",
///   "pending_security_updates": 0,
///   "disk_encryption": true,
///   "firewall": true,
///   "screen_lock": true,
///   "edr": {"product": "ClamAV", "running": true, "signature_age_seconds": 5400},
///   "packages": [{"name": "libssl3", "version": "3.0.11-1~deb12u2",
///                 "source_name": "openssl", "source_version": "3.0.11-1~deb12u2"}]
/// }
/// ```
///
/// Controls are plain booleans: an agent that cannot tell reports `false`.
/// `edr` is absent or `null` when no EDR/AV product is installed;
/// `package_ecosystem` (the OSV ecosystem of `packages`) is absent when the
/// OS has none we match. Unknown fields are ignored.
///
/// The report travels signed in a ``PostureEnvelope``; the signature covers
/// the exact bytes of this JSON, so its key order and spacing do not matter.
public struct PostureReport: Sendable, Hashable, Codable {
    public static let currentFormat = 1

    public struct OperatingSystem: Sendable, Hashable, Codable {
        /// `Debian`, `Ubuntu`, `Windows`, `macOS`, … (as the compliance policy names it).
        public var name: String
        public var version: String
        /// The OSV ecosystem of the installed packages (`Debian:12`), if any.
        public var packageEcosystem: String?

        public init(name: String, version: String, packageEcosystem: String? = nil) {
            self.name = name; self.version = version; self.packageEcosystem = packageEcosystem
        }

        enum CodingKeys: String, CodingKey {
            case name, version
            case packageEcosystem = "package_ecosystem"
        }
    }

    public struct EDR: Sendable, Hashable, Codable {
        public var product: String
        public var running: Bool
        /// Age of the signature/definition database, in seconds.
        public var signatureAgeSeconds: Int

        public init(product: String, running: Bool, signatureAgeSeconds: Int) {
            self.product = product; self.running = running; self.signatureAgeSeconds = signatureAgeSeconds
        }

        enum CodingKeys: String, CodingKey {
            case product, running
            case signatureAgeSeconds = "signature_age_seconds"
        }
    }

    public var format: Int
    public var deviceID: DeviceID
    public var nonce: String
    public var collectedAt: Date
    public var os: OperatingSystem
    public var kernel: String
    public var pendingSecurityUpdates: Int
    public var diskEncryption: Bool
    public var firewall: Bool
    public var screenLock: Bool
    public var edr: EDR?
    public var packages: [InstalledPackage]

    public init(format: Int = PostureReport.currentFormat, deviceID: DeviceID, nonce: String, collectedAt: Date, os: OperatingSystem,
                kernel: String, pendingSecurityUpdates: Int, diskEncryption: Bool, firewall: Bool, screenLock: Bool, edr: EDR?,
                packages: [InstalledPackage]) {
        self.format = format; self.deviceID = deviceID; self.nonce = nonce; self.collectedAt = collectedAt; self.os = os
        self.kernel = kernel; self.pendingSecurityUpdates = pendingSecurityUpdates; self.diskEncryption = diskEncryption
        self.firewall = firewall; self.screenLock = screenLock; self.edr = edr; self.packages = packages
    }

    enum CodingKeys: String, CodingKey {
        case format, nonce, os, kernel, firewall, edr, packages
        case deviceID = "device_id"
        case collectedAt = "collected_at"
        case pendingSecurityUpdates = "pending_security_updates"
        case diskEncryption = "disk_encryption"
        case screenLock = "screen_lock"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(Int.self, forKey: .format)
        deviceID = DeviceID(try c.decode(String.self, forKey: .deviceID))
        nonce = try c.decode(String.self, forKey: .nonce)
        let collected = try c.decode(String.self, forKey: .collectedAt)
        guard let date = RFC3339.parse(collected) else {
            throw DecodingError.dataCorruptedError(forKey: .collectedAt, in: c, debugDescription: "not an RFC 3339 date-time")
        }
        collectedAt = date
        os = try c.decode(OperatingSystem.self, forKey: .os)
        kernel = try c.decode(String.self, forKey: .kernel)
        pendingSecurityUpdates = try c.decode(Int.self, forKey: .pendingSecurityUpdates)
        diskEncryption = try c.decode(Bool.self, forKey: .diskEncryption)
        firewall = try c.decode(Bool.self, forKey: .firewall)
        screenLock = try c.decode(Bool.self, forKey: .screenLock)
        edr = try c.decodeIfPresent(EDR.self, forKey: .edr)
        packages = try c.decode([InstalledPackage].self, forKey: .packages)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(deviceID.rawValue, forKey: .deviceID)
        try c.encode(nonce, forKey: .nonce)
        try c.encode(RFC3339.format(collectedAt), forKey: .collectedAt)
        try c.encode(os, forKey: .os)
        try c.encode(kernel, forKey: .kernel)
        try c.encode(pendingSecurityUpdates, forKey: .pendingSecurityUpdates)
        try c.encode(diskEncryption, forKey: .diskEncryption)
        try c.encode(firewall, forKey: .firewall)
        try c.encode(screenLock, forKey: .screenLock)
        try c.encodeIfPresent(edr, forKey: .edr)
        try c.encode(packages, forKey: .packages)
    }

    /// The report as JSON bytes (sorted keys), what an agent signs.
    public func jsonBytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

/// Limits on a posture envelope and the report in it.
public struct PostureLimits: Sendable, Hashable {
    /// Largest envelope, in bytes.
    public var maxEnvelopeBytes: Int
    /// Largest report JSON (decoded from the envelope), in bytes.
    public var maxReportBytes: Int
    /// Most installed packages in one report (a desktop Debian has ~2 500).
    public var maxPackages: Int
    /// Longest string field (names, versions, kernel, product), in bytes.
    public var maxStringBytes: Int
    /// Deepest JSON nesting (a report needs 3).
    public var maxJSONDepth: Int

    public init(maxEnvelopeBytes: Int = 6 << 20, maxReportBytes: Int = 4 << 20, maxPackages: Int = 20_000, maxStringBytes: Int = 256,
                maxJSONDepth: Int = 8) {
        self.maxEnvelopeBytes = maxEnvelopeBytes; self.maxReportBytes = maxReportBytes; self.maxPackages = maxPackages
        self.maxStringBytes = maxStringBytes; self.maxJSONDepth = maxJSONDepth
    }
}

/// RFC 3339 date-times (`2025-03-01T08:00:00Z`, `…T08:00:00.123+08:00`).
enum RFC3339 {
    static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
