import Foundation
import MenshenCore
import MenshenPolicyAdministrator
import MenshenStorage

/// The demo organisation `menshen demo` seeds into an empty store: a few
/// staff and a vendor, groups, roles with risk tiers, two protected
/// applications and Cedar policies for the guideline's remote-work and
/// service-provider (vendor maintenance) scenarios. Seeding is idempotent:
/// a store that already has the demo administrator is left as it is.
public enum DemoOrganisation {
    public static let name = "示範銀行 Demo Bank"
    public static let administrator: UserID = "admin"

    public struct Person: Sendable {
        public var id: UserID, name: String, email: String, kind: UserKind, groups: [GroupID], roles: [RoleID]
    }

    public static let groups: [GroupRecord] = [
        GroupRecord(id: "staff", displayName: "全體員工 All staff"),
        GroupRecord(id: "branch-ops", displayName: "分行作業 Branch operations"),
        GroupRecord(id: "it-ops", displayName: "資訊維運 IT operations"),
        GroupRecord(id: "audit", displayName: "稽核 Internal audit"),
        GroupRecord(id: "security", displayName: "資安 Information security"),
        GroupRecord(id: "vendors", displayName: "委外廠商 Service providers"),
    ]

    public static let roles: [RoleRecord] = [
        RoleRecord(id: "teller", displayName: "櫃員 Teller", riskTier: .standard),
        RoleRecord(id: "auditor", displayName: "稽核員 Auditor", riskTier: .sensitive),
        RoleRecord(id: "ops-engineer", displayName: "維運工程師 Operations engineer", riskTier: .sensitive),
        RoleRecord(id: "db-admin", displayName: "資料庫管理員 Database administrator", riskTier: .privileged),
        RoleRecord(id: "security-admin", displayName: "資安管理員 Security administrator", riskTier: .privileged),
        RoleRecord(id: "vendor-maintenance", displayName: "委外維護 Vendor maintenance", riskTier: .privileged),
    ]

    public static let people: [Person] = [
        Person(id: "admin", name: "系統管理員 Administrator", email: "admin@demo-bank.example", kind: .internal,
               groups: ["staff", "security"], roles: ["security-admin"]),
        Person(id: "alice", name: "林怡君 Alice Lin", email: "alice@demo-bank.example", kind: .internal,
               groups: ["staff", "branch-ops"], roles: ["teller"]),
        Person(id: "bob", name: "陳志明 Bob Chen", email: "bob@demo-bank.example", kind: .internal,
               groups: ["staff", "it-ops"], roles: ["ops-engineer", "db-admin"]),
        Person(id: "carol", name: "王美玲 Carol Wang", email: "carol@demo-bank.example", kind: .internal,
               groups: ["staff", "audit"], roles: ["auditor"]),
        Person(id: "vendor.lee", name: "李建宏 (委外廠商) Kevin Lee, vendor", email: "kevin.lee@vendor.example", kind: .vendor,
               groups: ["vendors"], roles: ["vendor-maintenance"]),
    ]

    /// Cedar policy documents, one per guideline scenario plus baseline guardrails.
    public static let policies: [(PolicyID, String)] = [
        ("baseline", """
            // Baseline guardrails that hold for every application.
            @id("baseline-disabled-accounts")
            forbid (principal, action, resource)
            when { principal.disabled };

            @id("baseline-privileged-needs-loa3")
            @obligation("step_up:loa=3")
            forbid (principal, action, resource)
            when { resource.classification == "restricted" && context.session.loa < 3 };
            """),
        ("remote-work", """
            // Guideline scenario: remote work (遠距辦公). Staff reach the branch portal from
            // outside the perimeter only with phishing-resistant MFA and a compliant device.
            @id("remote-work-read")
            @scenario("remote-work")
            permit (principal in Group::"staff", action == Action::"read", resource == Application::"branch-portal")
            when { context.session.loa >= 3 && context.device.compliant };

            @id("remote-work-write-fresh-factor")
            @scenario("remote-work")
            @obligation("step_up:loa=3;max_age=900")
            permit (principal in Group::"branch-ops", action == Action::"write", resource == Application::"branch-portal")
            when { context.session.loa >= 3 && context.session.factor_age_seconds <= 900 && context.device.compliant };
            """),
        ("vendor-maintenance", """
            // Guideline scenario: service providers (服務供應商) — outsourced remote maintenance.
            // Only with a just-in-time grant, inside business hours, through the controlled
            // jump gateway, and every access raises an alert for the SOC.
            @id("vendor-maintenance-window")
            @scenario("service-providers")
            @alert("medium")
            permit (principal in Group::"vendors", action in [Action::"read", Action::"write"], resource == Application::"core-maintenance")
            when {
              context.session.loa >= 3 &&
              context.grant.active &&
              context.time.hour >= 9 && context.time.hour < 18 &&
              context.network.zone == "vendor-jump"
            };

            @id("vendor-no-bulk-export")
            forbid (principal in Group::"vendors", action == Action::"export", resource);
            """),
    ]

    /// The protected applications, pointed at the sample upstream.
    public static func applications(upstream: String, host: String, at: Date) -> [ApplicationRecord] {
        [
            ApplicationRecord(id: "branch-portal", displayName: "分行作業入口 Branch operations portal", host: host, pathPrefix: "/",
                              upstreams: [upstream], classification: "confidential", scenario: "remote-work", updatedAt: at),
            ApplicationRecord(id: "core-maintenance", displayName: "核心系統維護 Core system maintenance", host: host,
                              pathPrefix: "/maintenance", upstreams: [upstream], classification: "restricted",
                              scenario: "service-providers", updatedAt: at),
        ]
    }

    /// Seeds an empty store. Returns false (and changes nothing) when the demo is already there.
    @discardableResult
    public static func seed(into store: any MenshenStore, upstream: String, host: String, clock: any WallClock) async throws -> Bool {
        if try await store.user(administrator) != nil {
            // Keep the applications pointed at this run's sample upstream address.
            for app in applications(upstream: upstream, host: host, at: clock.now()) {
                if let existing = try await store.application(app.id), existing.upstreams != app.upstreams {
                    var updated = existing
                    updated.upstreams = app.upstreams
                    updated.updatedAt = clock.now()
                    try await store.putApplication(updated)
                }
            }
            return false
        }
        let now = clock.now()
        for g in groups { try await store.createGroup(g) }
        for r in roles { try await store.createRole(r) }
        for p in people {
            try await store.createUser(UserRecord(id: p.id, displayName: p.name, email: p.email, kind: p.kind, createdAt: now))
            for g in p.groups { try await store.addMember(p.id, to: g) }
            for r in p.roles { try await store.assignRole(r, to: p.id) }
        }
        for app in applications(upstream: upstream, host: host, at: now) { try await store.putApplication(app) }
        for (id, text) in policies {
            _ = try await store.savePolicy(id, text: text, author: "menshen demo", comment: "demo organisation", at: now)
        }
        return true
    }

    /// Issues a one-time enrolment link for a user; only its hash is stored.
    public static func issueEnrolmentToken(for user: UserID, store: any MenshenStore, clock: any WallClock,
                                           random: any RandomSource, validFor: TimeInterval = 24 * 3600) async throws -> String
    {
        let token = random.token(byteCount: 32)
        let now = clock.now()
        try await store.createEnrolmentToken(EnrolmentTokenRecord(tokenHash: SecretHash.sha256Hex(token), userID: user,
                                                                  purpose: "enrol", createdAt: now, expiresAt: now.addingTimeInterval(validFor)))
        try await IdentityEvents(store: store, clock: clock, random: random)
            .accountChange(.other, user: user, actor: "menshen", detail: "Enrolment link issued")
        return token
    }
}
