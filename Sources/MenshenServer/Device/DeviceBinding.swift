import Foundation
import MenshenCore
import MenshenDevice
import MenshenEnforcementPoint
import MenshenPolicyEngine
import MenshenStorage
import Synchronization
import X509

/// The gateway's device half (FSC principles 2.1, 2.4): the client
/// certificate a connection presented in its TLS handshake → the enrolled
/// device and its attributes for the decision (`AccessRequest.device`).
///
/// The TLS layer only proves that the client holds the certificate's key
/// (``GatewayTLS``); trust is decided here, so that every refusal can be
/// reported with its reason:
///
/// 1. ``DeviceCertificateVerifier`` against the device CA at `now` (another
///    CA, a bad signature, not yet valid or expired, wrong usage, no device
///    identity — each its own refusal code);
/// 2. the store must know the certificate (issued by us: same serial, device
///    and fingerprint) and it must not be revoked;
/// 3. the store must know the device.
///
/// A refused certificate means *no device* (exactly as if none had been
/// presented) and one OCSF Authentication event (``DeviceEvents``) saying why;
/// it never denies by itself — policies decide what a request without a
/// device may do. Compliance is read from the device record and only counts
/// while the posture behind it is younger than the class's
/// `max_posture_age_seconds` (``CompliancePolicy``): a device that stops
/// reporting stops being compliant; a class without a baseline is never compliant.
///
/// Results are remembered per certificate fingerprint while the store's
/// committed device generation (every device, posture, certificate or
/// certificate revocation change advances it, and so does deleting a
/// device's owner, which clears the device's owner) is unchanged and the
/// certificate is current, so a connection's requests cost one dictionary
/// look-up. Access changes (users, sessions, memberships, risk) do not void
/// them: nothing here reads them — whether the device's owner is the
/// request's user is worked out per request. Stores that cannot tell their
/// generations cheaply (PostgreSQL) are read on every request.
public final class DeviceBinding: Sendable {
    /// What a request's connection says about its device.
    public enum Resolution: Sendable, Equatable {
        /// No client certificate was presented.
        case absent
        /// A verified certificate of a known device.
        case device(DeviceFacts)
        /// A certificate was presented and refused: `code` is the machine-readable reason
        /// (``DeviceCertificateRefusal/code``, or `unknown_certificate`, `unknown_device`, `revoked`).
        case refused(code: String)

        /// The attributes for the decision at `now` (nil: no device).
        public func attributes(at now: Date) -> AccessRequest.Device? {
            if case .device(let facts) = self { facts.attributes(at: now) } else { nil }
        }
    }

    /// What the store said about a device, turned into attributes at decision time
    /// (so posture age and staleness follow the clock, not the cache).
    public struct DeviceFacts: Sendable, Equatable {
        public let deviceID: DeviceID
        public let serialNumber: String
        public let record: DeviceRecord
        /// The class's `max_posture_age_seconds`; nil when the class has no baseline (never compliant).
        public let maxPostureAge: TimeInterval?
        public let certificateNotAfter: Date

        /// Fail closed: compliant only while active, reported compliant, the posture younger
        /// than the class's limit and the certificate current.
        public func attributes(at now: Date) -> AccessRequest.Device {
            var compliant = false
            if record.state == .active, record.compliant, let last = record.lastPostureAt, let maxPostureAge, now <= certificateNotAfter {
                compliant = now.timeIntervalSince(last) <= maxPostureAge
            }
            let age = record.lastPostureAt.map { Self.seconds(now.timeIntervalSince($0)) } ?? DeviceAttributes.noPostureAgeSeconds
            return AccessRequest.Device(
                enrolled: record.state != .retired, managed: record.deviceClass == .managed, compliant: compliant,
                hardwareBound: record.hardwareBound, external: record.deviceClass != .managed, postureAgeSeconds: age,
                // Never reported: nothing was scanned, which counts as critical.
                maxVulnerabilitySeverity: record.lastPostureAt == nil ? 4 : min(4, max(0, record.maxVulnerabilitySeverity)))
        }

        static func seconds(_ interval: TimeInterval) -> Int {
            guard interval.isFinite, interval > 0 else { return 0 }
            return interval >= Double(Int32.max) ? Int(Int32.max) : Int(interval)
        }
    }

    /// Connection attributes (set by ``GatewayTLS``) this reads.
    public static let fingerprintAttribute = "tls.client.sha256", certificateAttribute = "tls.client.der"
    /// Most accepted certificates remembered; when full that memory is emptied and refills.
    public static let capacity = 10_000
    /// Most refused certificates remembered, apart from the accepted ones: a client presenting a fresh self-signed
    /// certificate on every connection fills (and empties) only this memory, never the one of real devices.
    public static let refusalCapacity = 10_000
    /// Refusal events: at most ``ReportBudget/burst`` at once and ``ReportBudget/perSecond`` after that, on top of the
    /// one-per-certificate limit; the next event written says how many were not (`unreported_before`).
    public struct ReportBudget: Sendable {
        public var burst: Double = 100
        public var perSecond: Double = 1
        public init(burst: Double = 100, perSecond: Double = 1) { self.burst = burst; self.perSecond = perSecond }
    }
    /// A refusal is re-checked at least this often (a not-yet-valid certificate becomes valid).
    static let refusalMemory: TimeInterval = 300
    /// An accepted certificate is re-read at least this often even while the generation is unchanged.
    static let acceptanceMemory: TimeInterval = 3600
    /// At most one refusal event per certificate in this time (a client retrying cannot flood the log).
    static let eventInterval: TimeInterval = 300

    let store: any MenshenStore
    let verifier: DeviceCertificateVerifier
    /// The running compliance baselines (reloadable; see ``DeviceRulesService``, which empties the memory on a change).
    let rules: DeviceRulesState
    let generation: (any CommittedAccessGeneration)?
    let events: DeviceEvents?

    private struct Entry: Sendable {
        let resolution: Resolution
        /// The device generation read before the store was.
        let generation: Int64
        let validUntil: Date
    }
    private let entries = Mutex<[String: Entry]>([:])
    private let refusals = Mutex<[String: Entry]>([:])
    /// Bumped by ``removeAll()``: a result checked under rules replaced meanwhile is not remembered.
    private let epoch = Atomic<Int>(0)
    private let capacities: (accepted: Int, refused: Int)
    private let budget: ReportBudget
    /// Refusal events: when each certificate was last reported; the budget's tokens and when they were counted; how
    /// many refusals the budget kept from being reported since the last event.
    private let reported = Mutex<(last: [String: Date], tokens: Double, at: Date?, unreported: Int)>(([:], 0, nil, 0))
    /// Called between reading a certificate's records and remembering the result (tests: a rules reload there).
    let afterCheck: (@Sendable () async -> Void)?

    /// - Parameters:
    ///   - caCertificate: the device CA the certificates must chain to.
    ///   - compliance: the baselines whose `max_posture_age_seconds` bounds how long a compliant result counts.
    ///   - events: where refusals are reported; nil reports nothing.
    public convenience init(store: any MenshenStore, caCertificate: Certificate, compliance: CompliancePolicy, events: DeviceEvents?) {
        self.init(store: store, caCertificate: caCertificate, rules: DeviceRulesState(DeviceRules(compliance: compliance, advisories: nil)),
                  events: events)
    }

    ///   - rules: the running device rules, shared with the posture service.
    public convenience init(store: any MenshenStore, caCertificate: Certificate, rules: DeviceRulesState, events: DeviceEvents?) {
        self.init(store: store, caCertificate: caCertificate, rules: rules, events: events, capacities: (Self.capacity, Self.refusalCapacity),
                  budget: ReportBudget(), afterCheck: nil)
    }

    /// With other memory sizes and refusal-event budget (tests).
    init(store: any MenshenStore, caCertificate: Certificate, rules: DeviceRulesState, events: DeviceEvents?,
         capacities: (accepted: Int, refused: Int), budget: ReportBudget, afterCheck: (@Sendable () async -> Void)?) {
        self.capacities = (max(1, capacities.accepted), max(1, capacities.refused))
        self.budget = budget
        self.afterCheck = afterCheck
        self.store = store
        self.verifier = DeviceCertificateVerifier(caCertificate: caCertificate)
        self.rules = rules
        self.generation = store as? any CommittedAccessGeneration
        self.events = events
    }

    /// The remembered resolution for a request, if the store still vouches for it; `.absent` without a certificate.
    /// Never reads the store (for the gate's decision on the event loop).
    public func remembered(_ request: GateRequest, now: Date) -> Resolution? {
        guard let fingerprint = request.connectionAttributes[Self.fingerprintAttribute] else { return .absent }
        guard let current = generation?.committedGenerations()?.device else { return nil }
        if let known = Self.look(fingerprint, in: entries, generation: current, now: now) { return known }
        return Self.look(fingerprint, in: refusals, generation: current, now: now)
    }

    private static func look(_ fingerprint: String, in memory: borrowing Mutex<[String: Entry]>, generation: Int64, now: Date) -> Resolution? {
        memory.withLock { e in
            guard let entry = e[fingerprint] else { return nil }
            guard entry.generation == generation, now < entry.validUntil else {
                e[fingerprint] = nil
                return nil
            }
            return entry.resolution
        }
    }

    /// Remembers a result unless ``removeAll()`` ran since `epochBefore` (checked under the lock: it bumps the epoch
    /// before it empties the memories).
    private func remember(_ entry: Entry, for fingerprint: String, in memory: borrowing Mutex<[String: Entry]>, capacity: Int, epochBefore: Int) {
        memory.withLock { e in
            guard epoch.load(ordering: .sequentiallyConsistent) == epochBefore else { return }
            if e.count >= capacity, e[fingerprint] == nil { e.removeAll(keepingCapacity: true) }
            e[fingerprint] = entry
        }
    }

    /// Verifies the request's client certificate and reads its device; reports a refusal.
    /// Throws only when the store fails.
    public func resolve(_ request: GateRequest, now: Date) async throws -> Resolution {
        if let known = remembered(request, now: now) { return known }
        guard let fingerprint = request.connectionAttributes[Self.fingerprintAttribute] else { return .absent }
        // Read the generation before the store, so a change made meanwhile voids what is remembered; and the epoch,
        // so a result checked under compliance rules that were replaced meanwhile (``removeAll()``) is not kept.
        let before = generation?.committedGenerations()?.device
        let epochBefore = epoch.load(ordering: .sequentiallyConsistent)
        let (resolution, detail, certificate) = try await check(request.connectionAttributes[Self.certificateAttribute], now: now)
        await afterCheck?()
        if let before {
            switch resolution {
            case .device(let facts):
                let until = min(facts.certificateNotAfter, now.addingTimeInterval(Self.acceptanceMemory))
                remember(Entry(resolution: resolution, generation: before, validUntil: until), for: fingerprint, in: entries,
                         capacity: capacities.accepted, epochBefore: epochBefore)
            default:
                remember(Entry(resolution: resolution, generation: before, validUntil: now.addingTimeInterval(Self.refusalMemory)),
                         for: fingerprint, in: refusals, capacity: capacities.refused, epochBefore: epochBefore)
            }
        }
        if case .refused(let code) = resolution, let events, let unreportedBefore = shouldReport(fingerprint, now: now) {
            do {
                try await events.certificateRefused(code: code, detail: detail, certificate: certificate, fingerprint: fingerprint,
                                                    source: request.clientAddress, requestID: request.requestID, unreportedBefore: unreportedBefore)
            } catch {
                // Not written: this refusal and the ones it was to report are counted again, so the next event says so.
                reported.withLock { $0.unreported += unreportedBefore + 1 }
                throw error
            }
        }
        return resolution
    }

    /// The verdict on one presented certificate (base64 DER), with a human-readable detail and the parsed certificate.
    func check(_ base64: String?, now: Date) async throws -> (Resolution, String, Certificate?) {
        guard let base64, base64.utf8.count <= DeviceCertificateVerifier.maxCertificateBytes * 2,
              let der = Data(base64Encoded: base64) else {
            return (.refused(code: "malformed"), "the certificate did not reach the gate", nil)
        }
        let parsed = try? Certificate(derEncoded: Array(der))
        switch await verifier.verify(Array(der), at: now) {
        case .refused(let refusal):
            return (.refused(code: refusal.code), refusal.description, parsed)
        case .accepted(let certificate):
            guard let record = try await store.deviceCertificate(serial: certificate.serialNumber),
                  record.deviceID == certificate.deviceID, record.fingerprint == certificate.fingerprint else {
                return (.refused(code: "unknown_certificate"), "serial \(certificate.serialNumber) was not issued to \(certificate.deviceID) by this Menshen", parsed)
            }
            if let revokedAt = record.revokedAt {
                return (.refused(code: "revoked"), "revoked: serial \(record.serial) at \(revokedAt) (\(record.revokedReason ?? "unspecified"))", parsed)
            }
            guard let device = try await store.device(certificate.deviceID) else {
                return (.refused(code: "unknown_device"), "no device \(certificate.deviceID) in the inventory", parsed)
            }
            // (The store's and the compliance policy's device classes are two enums with the same raw values.)
            let maxAge = rules.current.compliance.classes.first { $0.key.rawValue == device.deviceClass.rawValue }
                .map { TimeInterval($0.value.maxPostureAgeSeconds) }
            return (.device(DeviceFacts(deviceID: certificate.deviceID, serialNumber: certificate.serialNumber, record: device,
                                        maxPostureAge: maxAge, certificateNotAfter: certificate.notValidAfter)), "accepted", parsed)
        }
    }

    /// Whether to write an event for this refusal: nil when the certificate was reported less than ``eventInterval`` ago
    /// (not counted: it was reported) or when the budget is spent (counted as unreported); otherwise how many refusals
    /// the budget kept from being reported since the last event.
    private func shouldReport(_ fingerprint: String, now: Date) -> Int? {
        reported.withLock { r in
            if let last = r.last[fingerprint], now.timeIntervalSince(last) < Self.eventInterval, now >= last { return nil }
            let elapsed = r.at.map { max(0, now.timeIntervalSince($0)) } ?? .infinity
            r.tokens = min(budget.burst, r.tokens + elapsed * budget.perSecond)
            r.at = now
            guard r.tokens >= 1 else {
                r.unreported += 1
                return nil
            }
            r.tokens -= 1
            if r.last.count >= capacities.refused { r.last.removeAll(keepingCapacity: true) }
            r.last[fingerprint] = now
            defer { r.unreported = 0 }
            return r.unreported
        }
    }

    /// Forgets every remembered certificate, and every result being checked now (device rules were replaced).
    public func removeAll() {
        epoch.add(1, ordering: .sequentiallyConsistent)
        entries.withLock { $0.removeAll(keepingCapacity: true) }
        refusals.withLock { $0.removeAll(keepingCapacity: true) }
    }
}
