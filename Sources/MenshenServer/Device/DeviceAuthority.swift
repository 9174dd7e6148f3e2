import Crypto
import Foundation
import MenshenConfig
import MenshenCore
import MenshenDevice
import MenshenStorage
import X509

/// The server side of enrolment and posture (FSC principles 2.1, 2.2): one-time
/// enrolment tokens, certificates from the persisted device CA for CSRs,
/// posture nonces and signed posture reports evaluated with the compliance
/// policy into the device record (compare-and-set, which advances the access
/// generation, so the gateway's next request from the device sees it).
///
/// Everything untrusted is checked before anything is stored: a malformed CSR
/// or report changes nothing (an enrolment token is only consumed once the CSR
/// has produced a certificate).
public struct DeviceAuthority: Sendable {
    public static let tokenKind = "device-enrolment", nonceKind = "device-posture-nonce"
    /// Every enrolment token starts with this.
    public static let tokenPrefix = "mde_"
    /// Enrolment tokens live one hour unless the operator says otherwise; at most a week.
    public static let defaultTokenLifetime: TimeInterval = 3600, maxTokenLifetime: TimeInterval = 7 * 86_400
    /// Nonces live as long as a report may be old (``PostureVerifier/maxReportAge``).
    public static let nonceLifetime: TimeInterval = 600
    /// Largest stored posture JSON; larger reports (long package lists) are evaluated but not kept whole.
    public static let maxStoredPostureBytes = 256 * 1024

    /// Most vulnerability findings kept with a device (the highest first); the severity counts them all.
    public static let maxStoredFindings = 500

    public let store: any MenshenStore
    public let ca: DeviceCA
    /// The compliance baselines and advisories, reloadable (``DeviceRulesLoader``).
    public let rules: DeviceRulesState
    public let clock: any WallClock
    public let random: any RandomSource
    let events: DeviceEvents
    let verifier: PostureVerifier
    /// The TPM manufacturers' CAs for hardware-bound enrolment (`device.tpm_ca_file`); nil refuses TPM enrolment.
    public var tpmAnchors: TPMTrustAnchors?
    /// Bounds on unauthenticated nonce requests (per node).
    public let nonceLimiter: DeviceNonceLimiter

    /// The running compliance baselines.
    public var compliance: CompliancePolicy { rules.current.compliance }

    public init(store: any MenshenStore, ca: DeviceCA, rules: DeviceRulesState, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.ca = ca; self.rules = rules; self.clock = clock; self.random = random
        self.events = DeviceEvents(store: store, clock: clock, random: random)
        self.verifier = PostureVerifier()
        self.nonceLimiter = DeviceNonceLimiter()
    }

    /// Fixed baselines and no advisory database (packages unscanned).
    public init(store: any MenshenStore, ca: DeviceCA, compliance: CompliancePolicy, clock: any WallClock, random: any RandomSource) {
        self.init(store: store, ca: ca, rules: DeviceRulesState(DeviceRules(compliance: compliance, advisories: nil)), clock: clock, random: random)
    }

    // MARK: The CA

    /// Opens the sealed device CA at `path`, or creates it there (mode 0600) when it does not exist
    /// and `mayCreate` (SQLite: one node). Its key is sealed under a key derived (HKDF-SHA256) from the
    /// identity secrets key, like TOTP seeds, so a copy of the file alone does not yield the CA key.
    public static func loadOrCreateCA(path: String, secretsKey: [UInt8], organisation: String, mayCreate: Bool,
                                      clock: any WallClock, random: any RandomSource) throws -> DeviceCA {
        let kek = keyEncryptionKey(secretsKey)
        let fm = FileManager.default
        if let data = fm.contents(atPath: path) {
            guard data.count <= 64 * 1024 else { throw DeviceAuthorityError("\(path): not a sealed device CA (too large)") }
            do {
                return try DeviceCA(sealed: try JSONDecoder().decode(SealedDeviceCA.self, from: data), keyEncryptionKey: kek)
            } catch {
                throw DeviceAuthorityError("\(path): the device CA does not open: \(error)")
            }
        }
        guard mayCreate else { throw DeviceAuthorityError("\(path): no device CA (create it on the SQLite node, then copy the file)") }
        let name = DeviceCAName(commonName: "Menshen Device CA", organization: String(organisation.prefix(64)).isEmpty ? nil : String(organisation.prefix(64)))
        let (ca, sealed) = try DeviceCA.create(name: name, now: clock.now(), keyEncryptionKey: kek, random: random)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard fm.createFile(atPath: path, contents: try encoder.encode(sealed), attributes: [.posixPermissions: 0o600]) else {
            throw DeviceAuthorityError("\(path): cannot create the device CA file")
        }
        return ca
    }

    static func keyEncryptionKey(_ secretsKey: [UInt8]) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secretsKey), info: Array("menshen device CA key-encryption key v1".utf8),
                                         outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }

    // MARK: Enrolment

    /// What an enrolment token stands for (kept, hashed, as single-use flow state).
    struct TokenGrant: Codable {
        var user: String
        var deviceClass: String
        var name: String
        var hardwareBound: Bool
        enum CodingKeys: String, CodingKey {
            case user, name
            case deviceClass = "class"
            case hardwareBound = "hardware_bound"
        }
    }

    /// A one-time enrolment token for `user`'s next device of `deviceClass`; only its SHA-256 is stored.
    public func issueEnrolmentToken(user: UserID, deviceClass: StoreDeviceClass, name: String, hardwareBound: Bool,
                                    lifetime: TimeInterval = defaultTokenLifetime) async throws -> (token: String, expiresAt: Date) {
        guard lifetime > 0, lifetime <= Self.maxTokenLifetime else { throw DeviceAuthorityError("the token lifetime must be 1 s to 7 days") }
        guard try await store.user(user) != nil else { throw StoreError(.notFound, "no user \(user.rawValue)") }
        guard !name.isEmpty, name.count <= 200 else { throw DeviceAuthorityError("the device name must be 1–200 characters") }
        // A fixed prefix: base64url may start with "-", which a command line would read as an option;
        // it also lets secret scanners recognise a leaked token.
        let token = Self.tokenPrefix + random.token(byteCount: 32)
        let now = clock.now()
        let grant = TokenGrant(user: user.rawValue, deviceClass: deviceClass.rawValue, name: name, hardwareBound: hardwareBound)
        try await store.createFlowState(FlowStateRecord(idHash: SecretHash.sha256Hex(token), kind: Self.tokenKind, userID: user,
                                                        data: String(decoding: try JSONEncoder().encode(grant), as: UTF8.self),
                                                        createdAt: now, expiresAt: now.addingTimeInterval(lifetime)))
        return (token, now.addingTimeInterval(lifetime))
    }

    public struct Enrolled: Sendable {
        public let device: DeviceRecord
        public let certificate: IssuedDeviceCertificate
    }

    /// Enrols a device: the CSR (PEM or DER, P-256, signature verified) must make a certificate
    /// first; then the token is consumed (once, atomically), and the device and its certificate are
    /// stored. A bad CSR leaves the token usable; a bad token stores nothing.
    public func enrol(token: String, csr: [UInt8], platform: String, source: String?) async throws -> Enrolled {
        guard token.utf8.count >= 16, token.utf8.count <= 256 else { throw DeviceAuthorityError(.invalidToken, "the enrolment token is not valid") }
        let platform = String(platform.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }.prefix(32))
        let now = clock.now()
        let id = DeviceID("d-" + random.bytes(8).map { String(format: "%02x", $0) }.joined())
        let issued: IssuedDeviceCertificate
        do { issued = try ca.issue(csr: csr, for: id, now: now, random: random) } catch {
            throw DeviceAuthorityError(.badCSR, "\(error)")
        }
        guard let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(token), kind: Self.tokenKind, at: now),
              let grant = try? JSONDecoder().decode(TokenGrant.self, from: Data(state.data.utf8)),
              let deviceClass = StoreDeviceClass(rawValue: grant.deviceClass)
        else { throw DeviceAuthorityError(.invalidToken, "the enrolment token is unknown, used or expired") }
        // A token issued for a hardware-bound device demands TPM evidence (enrolTPM): put it back, unchanged, and refuse.
        if grant.hardwareBound {
            try await store.createFlowState(state)
            try await events.enrolmentRefused(code: "hardware_required", detail: "the token requires a TPM-held key; no TPM evidence", source: source)
            throw DeviceEnrolmentRefusal(code: "hardware_required", "this token is for a hardware-bound device: enrol with the key in a TPM (menshen agent enrol --tpm)")
        }
        // Without TPM evidence the key is a software key, whatever the token says.
        let record = DeviceRecord(id: id, ownerID: UserID(grant.user), displayName: grant.name, deviceClass: deviceClass,
                                  platform: platform.isEmpty ? "unknown" : platform, hardwareBound: false, enrolledAt: now)
        // One transaction: never a device without its certificate, or a certificate without its device.
        try await store.createDevice(record, certificate: DeviceCertificateRecord(
            serial: issued.serialNumber, deviceID: id, fingerprint: SHA256.hash(data: issued.der).map { String(format: "%02x", $0) }.joined(),
            publicKeyFingerprint: SHA256.hash(data: issued.certificate.publicKey.subjectPublicKeyInfoBytes).map { String(format: "%02x", $0) }.joined(),
            notBefore: issued.notValidBefore, notAfter: issued.notValidAfter))
        try await events.inventory(device: record, activity: 1, success: true, detail: "enrolled (\(grant.deviceClass))", source: source)
        try await events.entityManagement(device: record, activity: 6, actor: grant.user, actorIsOperator: false,
                                          application: "menshen agent enrol (POST /device/enrol)", comment: "one-time enrolment token", source: source)
        return Enrolled(device: record, certificate: issued)
    }

    // MARK: Certificate status

    /// The revocation status of a device certificate, as `GET /device/status/{serial}` answers it:
    /// `good` (issued, not revoked, within its validity), `revoked` (with time and reason),
    /// `expired`, or `unknown` (never issued by this CA). The statement is signed by the device
    /// CA (``DeviceCA/signStatement(_:)``) over its exact JSON bytes, at the time asked.
    public func certificateStatus(serial: String) async throws -> (status: String, statement: [UInt8], signature: [UInt8]) {
        let serial = serial.lowercased()
        guard !serial.isEmpty, serial.utf8.count <= 64, serial.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw DeviceAuthorityError(.badRequest, "a certificate serial is lower-case hexadecimal, at most 64 digits")
        }
        let now = clock.now()
        let record = try await store.deviceCertificate(serial: serial)
        let status: String
        switch record {
        case nil: status = "unknown"
        case let r? where r.revokedAt != nil: status = "revoked"
        case let r? where now >= r.notAfter: status = "expired"
        default: status = "good"
        }
        let time = ISO8601DateFormatter()
        var fields: [String: Any] = ["serial": serial, "status": status, "produced_at": time.string(from: now),
                                     "issuer": ca.certificate.subject.description]
        if let r = record {
            fields["device_id"] = r.deviceID.rawValue
            fields["not_after"] = time.string(from: r.notAfter)
            if let at = r.revokedAt { fields["revoked_at"] = time.string(from: at); fields["revocation_reason"] = r.revokedReason ?? "" }
        }
        let statement = Array(try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
        return (status, statement, try ca.signStatement(statement))
    }

    // MARK: Renewal

    /// The outcome of a renewal: the new certificate, or a refusal code.
    public enum RenewalOutcome: Sendable {
        case renewed(IssuedDeviceCertificate)
        case refused(code: String)
    }

    /// Renews a device certificate (`POST /device/renew`): `certificateDER` must pass the gateway's
    /// checks (our CA, current, known to the store, not revoked, device not retired) and `signature`
    /// must be its key's over `csr` (``DeviceRenewal``); the CSR (same key or a new P-256 key) then
    /// gets a certificate like an enrolment's. The new certificate is stored first and the current one
    /// revoked as superseded after it, so the device is never left without a valid certificate and a
    /// replayed request is refused (its certificate is revoked). A malformed CSR throws (nothing
    /// stored); an untrustworthy request is refused with an event.
    public func renew(certificateDER: [UInt8], csr: [UInt8], signature: [UInt8], source: String?) async throws -> RenewalOutcome {
        let now = clock.now()
        let current: VerifiedDeviceCertificate
        switch await DeviceCertificateVerifier(caCertificate: ca.certificate).verify(certificateDER, at: now) {
        case .refused(let refusal):
            return .refused(code: "certificate_\(refusal.code)")
        case .accepted(let c): current = c
        }
        guard let stored = try await store.deviceCertificate(serial: current.serialNumber), stored.deviceID == current.deviceID,
              stored.fingerprint == current.fingerprint, stored.revokedAt == nil else {
            try await events.postureRefused(device: current.deviceID, code: "renewal_certificate_revoked_or_unknown", source: source)
            return .refused(code: "certificate_revoked_or_unknown")
        }
        guard let device = try await store.device(current.deviceID), device.state != .retired else {
            try await events.postureRefused(device: current.deviceID, code: "renewal_unknown_device", source: source)
            return .refused(code: "unknown_device")
        }
        guard DeviceRenewal.isValid(signature: signature, csr: csr, key: current.signingKey) else {
            try await events.postureRefused(device: current.deviceID, code: "renewal_bad_signature", source: source)
            return .refused(code: "bad_signature")
        }
        let issued: IssuedDeviceCertificate
        do { issued = try ca.issue(csr: csr, for: current.deviceID, now: now, random: random) } catch {
            throw DeviceAuthorityError(.badCSR, "\(error)")
        }
        let sameKey = issued.certificate.publicKey == current.certificate.publicKey
        try await store.addDeviceCertificate(DeviceCertificateRecord(
            serial: issued.serialNumber, deviceID: current.deviceID, fingerprint: SHA256.hash(data: issued.der).map { String(format: "%02x", $0) }.joined(),
            publicKeyFingerprint: SHA256.hash(data: issued.certificate.publicKey.subjectPublicKeyInfoBytes).map { String(format: "%02x", $0) }.joined(),
            notBefore: issued.notValidBefore, notAfter: issued.notValidAfter))
        _ = try await store.revokeDeviceCertificate(serial: current.serialNumber, at: now, reason: "superseded by \(issued.serialNumber)")
        try await events.entityManagement(device: device, activity: 3, actor: device.ownerID?.rawValue ?? device.id.rawValue, actorIsOperator: false,
                                          application: "menshen agent renew (POST /device/renew)",
                                          comment: "certificate \(current.serialNumber) superseded by \(issued.serialNumber) (\(sameKey ? "same key" : "new key"))",
                                          source: source)
        return .renewed(issued)
    }

    // MARK: Posture

    /// A nonce for the device's next report (single use, ``nonceLifetime``). Only for a device in the inventory,
    /// and within ``nonceLimiter``'s bounds (per source address, per device), else `.rateLimited` with `retryAfter`.
    public func nonce(for device: DeviceID, source: String? = nil) async throws -> String {
        let now = clock.now()
        if let wait = nonceLimiter.admitSource(source, at: now) {
            throw DeviceAuthorityError(.rateLimited, "too many nonce requests from this address; retry in \(wait) s", retryAfter: wait)
        }
        guard DeviceID.validated(device.rawValue) != nil, let record = try await store.device(device), record.state != .retired else {
            throw DeviceAuthorityError(.unknownDevice, "no such device")
        }
        if let wait = nonceLimiter.reserve(device: device.rawValue, expiry: now.addingTimeInterval(Self.nonceLifetime), at: now) {
            throw DeviceAuthorityError(.rateLimited, "the device has \(nonceLimiter.settings.outstandingPerDevice) unused nonces; report with one or retry in \(wait) s",
                                       retryAfter: wait)
        }
        let nonce = random.token(byteCount: 32)
        try await store.createFlowState(FlowStateRecord(idHash: SecretHash.sha256Hex(nonce), kind: Self.nonceKind, userID: nil,
                                                        data: device.rawValue, createdAt: now, expiresAt: now.addingTimeInterval(Self.nonceLifetime)))
        return nonce
    }

    /// The outcome of one report.
    public enum ReportOutcome: Sendable, Equatable {
        case evaluated(compliant: Bool, reasons: [String])
        case refused(code: String)
    }

    /// Verifies a signed report (the envelope bytes) from the holder of `certificateDER` (a device certificate
    /// that must pass the gateway's checks), evaluates it and stores the result. Malformed input throws
    /// (nothing stored); a well-formed but untrustworthy report is refused with an event.
    public func report(envelope: [UInt8], certificateDER: [UInt8], source: String?) async throws -> ReportOutcome {
        let unverified: UnverifiedPostureReport
        do { unverified = try UnverifiedPostureReport.parse(envelope: envelope) } catch {
            throw DeviceAuthorityError(.badReport, "\(error)")
        }
        let now = clock.now()
        let certificate: VerifiedDeviceCertificate
        switch await DeviceCertificateVerifier(caCertificate: ca.certificate).verify(certificateDER, at: now) {
        case .refused(let refusal):
            try await events.postureRefused(device: unverified.claimed.deviceID, code: "certificate_\(refusal.code)", source: source)
            return .refused(code: "certificate_\(refusal.code)")
        case .accepted(let c): certificate = c
        }
        guard let stored = try await store.deviceCertificate(serial: certificate.serialNumber), stored.deviceID == certificate.deviceID,
              stored.fingerprint == certificate.fingerprint, stored.revokedAt == nil else {
            try await events.postureRefused(device: certificate.deviceID, code: "certificate_revoked_or_unknown", source: source)
            return .refused(code: "certificate_revoked_or_unknown")
        }
        switch try await verifier.verify(unverified, certificate: certificate, nonces: FlowStateNonces(store: store), now: now) {
        case .refused(let refusal):
            try await events.postureRefused(device: certificate.deviceID, code: refusal.code, source: source)
            return .refused(code: refusal.code)
        case .verified(let posture):
            nonceLimiter.redeemed(device: certificate.deviceID.rawValue)
            // One snapshot of the rules for the whole evaluation; the scan does not depend on the device record.
            let rules = self.rules.current
            let compliance = rules.compliance
            let scan = rules.advisories?.scan(posture.report.packages, ecosystem: posture.report.os.packageEcosystem ?? "")
            // Unscanned (no advisory database, or an ecosystem without a version order we implement)
            // counts as critical, as in DeviceAttributes: a severity policy fails closed.
            let severity = scan.flatMap { $0.ecosystemSupported ? $0.maxSeverity : nil } ?? .critical
            let findings = (scan?.findings ?? []).prefix(Self.maxStoredFindings).map {
                DeviceFindingRecord(advisoryID: String($0.advisoryID.prefix(128)), package: String($0.package.prefix(256)),
                                    installedVersion: String($0.installedVersion.prefix(256)), fixedVersion: $0.fixedVersion.map { String($0.prefix(256)) },
                                    severity: $0.severity.rawValue)
            }
            for _ in 0..<3 {
                guard let device = try await store.device(certificate.deviceID) else {
                    try await events.postureRefused(device: certificate.deviceID, code: "unknown_device", source: source)
                    return .refused(code: "unknown_device")
                }
                guard let deviceClass = compliance.classes.keys.first(where: { $0.rawValue == device.deviceClass.rawValue })
                    ?? ComplianceDeviceClass.allCases.first(where: { $0.rawValue == device.deviceClass.rawValue }) else {
                    return .refused(code: "unknown_class")
                }
                let result = compliance.evaluate(deviceClass: deviceClass, posture: posture, scan: scan, now: now)
                var updated = device
                updated.compliant = result.compliant && device.state == .active
                updated.complianceReasons = result.reasons.map(\.code.rawValue) + (device.state == .active ? [] : [device.state.rawValue])
                updated.postureJSON = unverified.reportBytes.count <= Self.maxStoredPostureBytes
                    ? String(decoding: unverified.reportBytes, as: UTF8.self) : nil
                // Never later than now: a clock running ahead (within the allowed skew) must not stretch compliance.
                updated.lastPostureAt = min(posture.collectedAt, now)
                updated.platform = String(posture.report.os.name.prefix(32))
                updated.maxVulnerabilitySeverity = severity.rawValue
                updated.vulnerabilityFindings = Array(findings)
                updated.updatedAt = now
                if try await store.updateDevice(updated, expectedVersion: device.version) {
                    try await events.inventory(device: updated, activity: 2, success: true,
                                               detail: updated.compliant ? "compliant" : "non-compliant: " + updated.complianceReasons.joined(separator: ","),
                                               source: source)
                    // A change of compliance is a finding; the first verdict on a new device is one too.
                    if device.lastPostureAt == nil ? !updated.compliant : updated.compliant != device.compliant {
                        let revoked = device.compliant && !updated.compliant ? try await revokeSessions(of: updated, at: now) : 0
                        try await events.complianceChanged(device: updated, reasons: updated.complianceReasons, sessionsRevoked: revoked, source: source)
                    }
                    return .evaluated(compliant: updated.compliant, reasons: updated.complianceReasons)
                }
            }
            throw DeviceAuthorityError(.conflict, "the device changed meanwhile; report again")
        }
    }
}

extension DeviceAuthority {
    /// A device that turns non-compliant ends its sessions at once (principle 2.4). Sessions are made at
    /// the portal, which sees no client certificate, so they are not bound to one device: every session
    /// of the device's owner ends, and the owner signs in again and is decided on the device's new state.
    /// A device without an owner has no sessions to end. Returns how many were revoked.
    public static func revokeSessions(of device: DeviceRecord, store: any MenshenStore, at now: Date) async throws -> Int {
        guard let owner = device.ownerID else { return 0 }
        return try await store.revokeSessions(of: owner, at: now,
                                              reason: "device \(device.id.rawValue) is not compliant: " + device.complianceReasons.joined(separator: ",").prefix(200))
    }

    func revokeSessions(of device: DeviceRecord, at now: Date) async throws -> Int {
        try await Self.revokeSessions(of: device, store: store, at: now)
    }
}

/// Posture nonces kept as single-use flow state in the store (shared by every node); taking the
/// state is atomic, so a nonce is redeemed at most once. A replayed or unknown nonce is `.unknown`.
struct FlowStateNonces: PostureNonceStore {
    let store: any MenshenStore

    func redeem(_ nonce: String, for device: DeviceID, at time: Date) async throws -> PostureNonceRedemption {
        guard nonce.utf8.count <= 256, let state = try await store.takeFlowState(idHash: SecretHash.sha256Hex(nonce), kind: DeviceAuthority.nonceKind, at: time) else {
            return .unknown
        }
        return state.data == device.rawValue ? .redeemed : .otherDevice
    }
}

public struct DeviceAuthorityError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case invalidToken = "invalid_token", badCSR = "bad_csr", badReport = "bad_report", unknownDevice = "unknown_device", conflict, other
        case rateLimited = "rate_limited"
        case badRequest = "bad_request"
    }
    public let code: Code
    public let description: String
    /// Seconds to wait (`.rateLimited`).
    public let retryAfter: Int?
    public init(_ code: Code, _ description: String, retryAfter: Int? = nil) {
        self.code = code; self.description = description; self.retryAfter = retryAfter
    }
    public init(_ description: String) { self.init(.other, description) }
}
