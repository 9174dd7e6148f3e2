import Foundation
import MenshenCore
import MenshenStorage

/// Builds OCSF 1.8.0 identity events and appends them to the event log.
///
/// Authentication (3002): activity 1 Logon, 2 Logoff, 99 Other — a step-up, a
/// switch into or out of privileged work, or a refused request, told apart by
/// `activity_name` (``OtherActivity``: `Step-up`, `Privileged work start`,
/// `Privileged work end`, `Bad request`);
/// Account Change (3001): 1 Create, 2 Enable, 3 Password Change, 5 Disable,
/// 10 MFA Factor Enable, 11 MFA Factor Disable, 99 Other. Every event carries `user`,
/// `service` (Menshen), `metadata.product` and `metadata.version`; sign-ins
/// add `status_id`, `status_detail`, `is_mfa`, `auth_factors`, `src_endpoint`
/// and the session uid (the hash prefix, never the id itself).
public struct IdentityEvents: Sendable {
    public static let ocsfVersion = "1.8.0"
    public static let productVersion = "0.1.0"

    public enum AuthenticationActivity: Int, Sendable { case logon = 1, logoff = 2, other = 99 }
    /// What an activity 99 (Other) authentication event records, written as its `activity_name`
    /// (the measurements of the maturity assessment count step-ups and privileged sessions by it).
    public enum OtherActivity: String, Sendable, CaseIterable {
        case stepUp = "Step-up"
        case privilegedStart = "Privileged work start"
        case privilegedEnd = "Privileged work end"
        case badRequest = "Bad request"
    }
    public enum AccountChange: Int, Sendable {
        case create = 1, enable = 2, passwordChange = 3, disable = 5, mfaFactorEnable = 10, mfaFactorDisable = 11
        /// Another account event (e.g. an enrolment link issued); `detail` becomes `activity_name`.
        case other = 99
    }

    let store: any EventStore
    let clock: any WallClock
    let random: any RandomSource

    public init(store: any EventStore, clock: any WallClock, random: any RandomSource) {
        self.store = store; self.clock = clock; self.random = random
    }

    /// A sign-in, sign-out or other authentication outcome; `other` names what an activity 99 event is
    /// (its `activity_name`; ignored for sign-in and sign-out).
    public func authentication(_ activity: AuthenticationActivity, user: UserID?, userName: String, success: Bool, detail: String,
                               source: String?, factors: [String] = [], loa: Int? = nil, sessionHash: String? = nil,
                               idp: String = "local", other: OtherActivity? = nil) async throws {
        var event = base(classUID: 3002, activity: activity.rawValue, severity: success ? 1 : 3)
        let named = activity == .other ? other : nil
        if let named { event["activity_name"] = named.rawValue }
        event["status_id"] = success ? 1 : 2
        event["status"] = success ? "Success" : "Failure"
        event["status_detail"] = detail
        event["user"] = userObject(user, name: userName)
        event["is_mfa"] = Set(factors).count >= 2 || factors.contains("mfa")
        let proven = factors.filter { $0 != "mfa" }   // `mfa` says several factors were used; it is not one
        if !proven.isEmpty { event["auth_factors"] = proven.map { ["factor_type_id": Self.factorTypeID(amr: $0), "factor_type": $0] } }
        if let source, !source.isEmpty { event["src_endpoint"] = ["ip": source] }
        if let sessionHash { event["session"] = ["uid": String(sessionHash.prefix(16))] }
        if idp != "local" { event["auth_protocol_id"] = 4; event["auth_protocol"] = "OpenID" }
        var unmapped: [String: Any] = ["idp": idp]
        if let loa { unmapped["loa"] = loa }
        event["unmapped"] = unmapped
        event["message"] = "\(named.map { $0.rawValue.lowercased() } ?? activityName(activity)) \(success ? "succeeded" : "failed"): \(detail)"
        try await append(event, user: user, severity: success ? 1 : 3)
    }

    /// OCSF `auth_factor.factor_type_id` for an RFC 8176 `amr` value: 1 SMS, 2 Security Question,
    /// 3 Phone Call, 4 Biometric, 6 Hardware Token, 7 OTP, 10 WebAuthn, 11 Password, 99 Other.
    public static func factorTypeID(amr: String) -> Int {
        switch amr {
        case "pwd": 11
        case "otp": 7
        case "hwk", "swk": 10          // passkeys: WebAuthn with a hardware- or software-held key
        case "sc": 6
        case "sms": 1
        case "tel": 3
        case "kba": 2
        case "face", "fpt", "iris", "retina", "vbm": 4
        default: 99                    // user, pin, pop, rba, wia, mca, geo, …
        }
    }

    /// An account or factor change.
    public func accountChange(_ change: AccountChange, user: UserID, actor: String, detail: String) async throws {
        var event = base(classUID: 3001, activity: change.rawValue, severity: 1)
        event["service"] = nil   // Account Change has no `service` attribute
        if change == .other { event["activity_name"] = String(detail.prefix(128)) }
        event["user"] = userObject(user, name: user.rawValue)
        event["actor"] = ["user": ["name": actor]]
        event["status_id"] = 1
        event["message"] = detail
        try await append(event, user: user, severity: 1)
    }

    private func activityName(_ a: AuthenticationActivity) -> String {
        switch a { case .logon: "sign-in"; case .logoff: "sign-out"; case .other: "authentication" }
    }

    private func userObject(_ id: UserID?, name: String) -> [String: Any] {
        var u: [String: Any] = ["name": String(name.prefix(256))]
        if let id { u["uid"] = id.rawValue }
        return u
    }

    private func base(classUID: Int, activity: Int, severity: Int) -> [String: Any] {
        [
            "class_uid": classUID, "category_uid": 3, "activity_id": activity, "type_uid": classUID * 100 + activity,
            "severity_id": severity, "time": StoreCoding.millis(clock.now()),
            "service": ["name": "Menshen"],
            "metadata": ["version": Self.ocsfVersion,
                         "product": ["name": "Menshen", "vendor_name": "Menshen project", "version": Self.productVersion]],
        ]
    }

    private func append(_ event: [String: Any], user: UserID?, severity: Int) async throws {
        let json = try EventJSON.encode(event)
        let now = clock.now()
        let record = NewEvent(id: random.eventID(at: now), time: now, classUID: event["class_uid"] as? Int ?? 0,
                              severityID: severity, userID: user, payloadJSON: json)
        _ = try await store.appendEvents([record], hasher: EventChain.hasher)
    }
}
