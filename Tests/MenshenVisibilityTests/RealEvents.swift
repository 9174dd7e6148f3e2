import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage
import MenshenVisibility
import Synchronization

/// Produces events with Menshen's real producers — `IdentityEvents` for sign-ins
/// and account changes, `DecisionLog` for gateway decisions — into an in-memory
/// store, and reads them back as the detection engine would. So every test
/// sequence uses exactly the field names our events carry.
final class RealEvents: Sendable {
    let store = InMemoryStore()
    let clock: FixedClock
    let identity: IdentityEvents
    let decisions: DecisionLog
    private let read = Mutex(Int64(0))

    /// 2026-11-23 10:00 Asia/Taipei, a Monday.
    static let monday10 = Date(timeIntervalSince1970: 1_795_399_200)

    init(start: Date = RealEvents.monday10) {
        clock = FixedClock(start)
        identity = IdentityEvents(store: store, clock: clock, random: SystemRandomSource())
        decisions = DecisionLog(store: store, clock: clock, random: SystemRandomSource())
    }

    func at(_ date: Date) { clock.set(date) }
    func advance(_ seconds: TimeInterval) { clock.advance(by: seconds) }
    var now: Date { clock.now() }

    /// A password-step sign-in outcome as `IdentityService.signIn` records it.
    func passwordFailure(_ user: String, from ip: String, detail: String = "wrong password") async throws {
        try await identity.authentication(.logon, user: detail == "unknown user" ? nil : UserID(user), userName: user, success: false,
                                          detail: detail, source: ip, factors: ["pwd"])
    }

    /// A second-factor failure as `IdentityService.continueSignIn` records it.
    func secondFactorFailure(_ user: String, from ip: String, method: String = "totp") async throws {
        try await identity.authentication(.logon, user: UserID(user), userName: user, success: false, detail: "wrong \(method)", source: ip)
    }

    /// A completed sign-in (password and TOTP unless told otherwise).
    func signIn(_ user: String, from ip: String, session: String = "s-default", detail: String = "password and totp",
                factors: [String] = ["pwd", "otp"]) async throws {
        try await identity.authentication(.logon, user: UserID(user), userName: user, success: true, detail: detail, source: ip,
                                          factors: factors, loa: 2, sessionHash: session + String(repeating: "0", count: 64))
    }

    func accountChange(_ change: IdentityEvents.AccountChange, _ user: String, actor: String? = nil, detail: String) async throws {
        try await identity.accountChange(change, user: UserID(user), actor: actor ?? user, detail: detail)
    }

    /// A gateway decision as the policy gate records it.
    func access(_ user: String, from ip: String, session: String = "s-default", app: String = "branch-portal",
                classification: String = "internal", method: String = "GET", export: Bool = false,
                outcome: DecisionTrail.Outcome = .allow, roles: [String: String] = [:],
                device: AccessRequest.Device? = nil, country: String = "", at time: Date? = nil) async {
        let t = time ?? now
        var trail = DecisionTrail(requestID: UUID().uuidString, time: t, mode: .proxy, method: method, host: "\(app).bank.example",
                                  path: export ? "/export.csv" : "/accounts", sourceIP: ip, outcome: outcome)
        trail.application = app
        trail.user = user
        trail.sessionHash = session + String(repeating: "0", count: 64)
        trail.access = AccessRequest(
            principal: .init(id: user, groups: ["staff"], roles: roles),
            session: .init(levelOfAssurance: 2, amr: ["pwd", "otp"], factorAgeSeconds: 60, ageSeconds: 120),
            device: device,
            context: .init(time: t, sourceIP: ip, networkZone: "internet", country: country, method: method, path: "/accounts"),
            resource: .init(applicationID: app, classification: classification), isExport: export)
        decisions.record(trail)
        await decisions.flush()
    }

    /// Every event appended since the last call, parsed in full.
    func drain() async throws -> [DetectionEvent] {
        try await drainStored().map { try DetectionEvent($0) }.sorted { $0.time < $1.time }
    }

    /// Every event appended since the last call, as stored.
    func drainStored() async throws -> [StoredEvent] {
        let after = read.withLock { $0 }
        let stored = try await store.events(after: after, limit: 1_000_000)
        if let last = stored.last { read.withLock { $0 = last.sequence } }
        return stored
    }
}


extension DetectionEngine {
    /// Processes events in order and returns every finding.
    mutating func run(_ events: [DetectionEvent]) -> [DetectionFinding] {
        events.flatMap { process($0) }
    }
}
