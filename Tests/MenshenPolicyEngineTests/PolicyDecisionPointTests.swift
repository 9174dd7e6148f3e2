import Foundation
import MenshenPolicyEngine
import MenshenTestSupport
import Testing

@Suite("Policy decision point")
struct PolicyDecisionPointTests {
    static let baseline = """
        @id("baseline-disabled-accounts")
        forbid (principal, action, resource) when { principal.disabled };

        @id("restricted-needs-loa3")
        @obligation("step_up:loa=3")
        forbid (principal, action, resource)
        when { resource.classification == "restricted" && context.session.loa < 3 };

        @id("risk-guardrail")
        @alert("high")
        forbid (principal, action, resource) when { context.risk.score > 80 };
        """

    static let scenarios = """
        @id("remote-work-read")
        permit (principal in Group::"staff", action == Action::"read", resource == Application::"branch-portal")
        when { context.session.loa >= 2 && context.device.compliant };

        @id("remote-work-write-fresh-factor")
        @obligation("step_up:loa=3;max_age=900")
        permit (principal in Group::"branch-ops", action == Action::"write", resource == Application::"branch-portal")
        when { context.session.loa >= 3 && context.session.factor_age_seconds <= 900 && context.device.compliant };

        @id("vendor-maintenance-window")
        @alert("medium")
        permit (principal in Group::"vendors", action in [Action::"read", Action::"write"], resource == Application::"core-maintenance")
        when {
          context.session.loa >= 3 && context.grant.active &&
          context.time.hour >= 9 && context.time.hour < 18 && context.network.zone == "vendor-jump"
        };

        @id("auditors-read-only")
        @obligation("read_only")
        permit (principal in Role::"auditor", action, resource == Application::"branch-portal")
        when { context.session.loa >= 3 };
        """

    static func pdp() throws -> PolicyDecisionPoint {
        try PolicyDecisionPoint(documents: [("baseline.cedar", baseline), ("scenarios.cedar", scenarios)])
    }

    /// 2026-11-25 10:00 in Taipei (02:00 UTC), a Wednesday.
    static let office = Date(timeIntervalSince1970: 1_795_572_000)

    static func request(user: String = "alice", groups: [String] = ["staff", "branch-ops"], roles: [String: String] = [:],
                        loa: Int = 3, factorAge: Int = 60, device: AccessRequest.Device? = compliant, method: String = "GET",
                        app: String = "branch-portal", classification: String = "confidential", time: Date = office,
                        zone: String = "internet", risk: Int = 0, grant: Bool = false, kind: String = "internal",
                        disabled: Bool = false, ip: String = "203.0.113.7") -> AccessRequest {
        AccessRequest(principal: .init(id: user, kind: kind, disabled: disabled, groups: groups, roles: roles),
                      session: .init(levelOfAssurance: loa, amr: ["hwk", "user"], factorAgeSeconds: factorAge, ageSeconds: 600),
                      device: device,
                      context: .init(time: time, sourceIP: ip, networkZone: zone, method: method, path: "/accounts",
                                     riskScore: risk, grantActive: grant),
                      resource: .init(applicationID: app, classification: classification))
    }

    static let compliant = AccessRequest.Device(enrolled: true, managed: true, compliant: true, hardwareBound: true, external: false,
                                                postureAgeSeconds: 120, maxVulnerabilitySeverity: 0)

    @Test("local hour and ISO weekday agree with Foundation's Calendar across zones, offsets and DST changes")
    func localTimeAgainstCalendar() throws {
        var generator = SystemRandomNumberGenerator()
        for id in ["Asia/Taipei", "UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu",
                   "Pacific/Chatham", "America/St_Johns", "Pacific/Kiritimati", "Pacific/Pago_Pago"] {
            let zone = try #require(LocalTime.zone(id))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            for _ in 0..<400 {
                // Whole seconds from 1901 to 2099, including before 1970.
                let time = Date(timeIntervalSince1970: Double(Int64.random(in: -2_170_000_000...4_070_000_000, using: &generator)))
                let parts = calendar.dateComponents([.hour, .weekday], from: time)
                let ours = LocalTime.hourAndWeekday(time, in: zone)
                #expect(ours.hour == parts.hour, "\(id) \(time)")
                #expect(ours.weekday == ((parts.weekday ?? 1) + 5) % 7 + 1, "\(id) \(time)")
                // The remembered offset (random order: earlier instants ask again).
                let remembered = LocalTime.hourAndWeekday(time, zoneIdentifier: id)
                #expect(remembered?.hour == ours.hour && remembered?.weekday == ours.weekday, "\(id) \(time)")
            }
            // Walking forward in steps of up to 3 hours over two years crosses every transition with the offset
            // remembered in between: each step must agree with the time zone asked directly.
            var time = Date(timeIntervalSince1970: Double(Int64.random(in: 0...3_900_000_000, using: &generator)))
            for _ in 0..<12_000 {
                time += Double(Int.random(in: 1...10_800, using: &generator))
                let direct = LocalTime.hourAndWeekday(time, in: zone)
                let remembered = LocalTime.hourAndWeekday(time, zoneIdentifier: id)
                #expect(remembered?.hour == direct.hour && remembered?.weekday == direct.weekday, "\(id) \(time)")
            }
        }
        #expect(LocalTime.hourAndWeekday(Date(), zoneIdentifier: "Mars/Olympus_Mons") == nil)
        #expect(LocalTime.zone("Mars/Olympus_Mons") == nil)
        // 2026-11-26 (a Thursday) 01:30 UTC is 09:30 in Taipei.
        let taipei = try #require(LocalTime.zone("Asia/Taipei"))
        let t = LocalTime.hourAndWeekday(Date(timeIntervalSince1970: 1_795_656_600), in: taipei)
        #expect(t.hour == 9 && t.weekday == 4)
    }

    @Test("a staff member with a compliant device may read the branch portal")
    func allow() throws {
        let d = try Self.pdp().decide(Self.request())
        #expect(d.effect == .allow)
        #expect(d.reasons == [.permitted])
        #expect(d.determiningPolicies == ["remote-work-read"])
    }

    @Test("no device identity means no access (fail closed on missing attributes)")
    func noDevice() throws {
        let d = try Self.pdp().decide(Self.request(device: nil))
        #expect(d.effect == .deny)
        #expect(d.reasons == [.noMatchingPermit])
    }

    @Test("a write with a stale factor demands step-up, not a plain deny")
    func stepUpForFreshFactor() throws {
        let d = try Self.pdp().decide(Self.request(factorAge: 3600, method: "POST"))
        #expect(d.effect == .stepUp)
        #expect(d.reasons == [.stepUpRequired])
        #expect(d.obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: 900)])
        #expect(d.determiningPolicies == ["remote-work-write-fresh-factor"])
    }

    @Test("a forbid carrying a step-up requirement turns into step-up when stepping up would allow")
    func stepUpFromForbid() throws {
        var r = Self.request(user: "vendor.lee", groups: ["vendors"], loa: 2, app: "core-maintenance", classification: "restricted",
                             zone: "vendor-jump", grant: true, kind: "vendor")
        let d = try Self.pdp().decide(r)
        #expect(d.effect == .stepUp)
        #expect(d.obligations.contains(.stepUp(minimumLoA: 3, maxAgeSeconds: nil)))
        // Outside the maintenance window stepping up would not help: a plain deny.
        r.context.time = Self.office.addingTimeInterval(12 * 3600)
        #expect(try Self.pdp().decide(r).effect == .deny)
    }

    @Test("vendor access inside the window is allowed and raises a medium alert")
    func alert() throws {
        let r = Self.request(user: "vendor.lee", groups: ["vendors"], app: "core-maintenance", classification: "restricted",
                             zone: "vendor-jump", grant: true, kind: "vendor")
        let d = try Self.pdp().decide(r)
        #expect(d.effect == .allow)
        #expect(d.obligations == [.alert(.medium)])
    }

    @Test("vendor access without a just-in-time grant or from the wrong network is denied")
    func vendorDenied() throws {
        let pdp = try Self.pdp()
        let base = Self.request(user: "vendor.lee", groups: ["vendors"], app: "core-maintenance", classification: "restricted",
                                zone: "vendor-jump", grant: true, kind: "vendor")
        var noGrant = base; noGrant.context.grantActive = false
        var wrongZone = base; wrongZone.context.networkZone = "internet"
        #expect(pdp.decide(noGrant).effect == .deny)
        #expect(pdp.decide(wrongZone).effect == .deny)
    }

    @Test("the hour is taken in the institution's time zone")
    func timeZone() throws {
        let base = Self.request(user: "vendor.lee", groups: ["vendors"], app: "core-maintenance", classification: "restricted",
                                zone: "vendor-jump", grant: true, kind: "vendor")
        var utc = base; utc.context.timeZone = "UTC"  // 02:00 UTC is outside 09–18
        #expect(try Self.pdp().decide(base).effect == .allow)
        #expect(try Self.pdp().decide(utc).effect == .deny)
    }

    @Test("read-only obligation allows safe methods and refuses unsafe ones")
    func readOnly() throws {
        let pdp = try Self.pdp()
        let read = pdp.decide(Self.request(user: "carol", groups: ["audit"], roles: ["auditor": "sensitive"]))
        #expect(read.effect == .allow && read.obligations == [.readOnly])
        let write = pdp.decide(Self.request(user: "carol", groups: ["audit"], roles: ["auditor": "sensitive"], method: "DELETE"))
        #expect(write.effect == .deny && write.reasons == [.readOnly])
    }

    @Test("a disabled account is denied whatever else holds; high risk is denied with an alert")
    func forbids() throws {
        let pdp = try Self.pdp()
        let disabled = pdp.decide(Self.request(disabled: true))
        #expect(disabled.effect == .deny && disabled.reasons == [.forbidden])
        #expect(disabled.determiningPolicies == ["baseline-disabled-accounts"])
        let risky = pdp.decide(Self.request(risk: 95))
        #expect(risky.effect == .deny && risky.obligations == [.alert(.high)])
    }

    @Test("an unparseable source address is denied as an invalid request")
    func invalidRequest() throws {
        let d = try Self.pdp().decide(Self.request(ip: "not-an-ip"))
        #expect(d.effect == .deny && d.reasons == [.invalidRequest])
    }

    @Test("an erroring forbid denies (fail closed) instead of being skipped")
    func erroringForbid() throws {
        let pdp = try PolicyDecisionPoint(documents: [("p.cedar", """
            permit (principal, action, resource);
            @id("overflowing-guard")
            forbid (principal, action, resource) when { context.risk.score * 9223372036854775807 > 0 };
            """)])
        let d = pdp.decide(Self.request(risk: 2))
        #expect(d.effect == .deny)
        #expect(d.reasons == [.policyError])
        #expect(d.errors["overflowing-guard"] != nil)
    }

    @Test("policies that do not validate against the Menshen schema are refused with document and line")
    func invalidPolicies() throws {
        #expect(throws: PolicyLoadError.self) {
            _ = try PolicyDecisionPoint(documents: [("ok.cedar", Self.baseline), ("typo.cedar", """
                permit (principal, action, resource)
                when { context.sesion.loa >= 3 };
                """)])
        }
        do {
            _ = try PolicyDecisionPoint(documents: [("ok.cedar", Self.baseline), ("typo.cedar", "permit (principal, action, resource)\nwhen { context.sesion.loa >= 3 };\n")])
        } catch {
            #expect(error.problems.first?.document == "typo.cedar")
            #expect(error.problems.first?.line == 2)
        }
        do {
            _ = try PolicyDecisionPoint(documents: [("syntax.cedar", "permit (principal, action resource);")])
            Issue.record("a syntax error was accepted")
        } catch {
            #expect(error.problems.first?.document == "syntax.cedar")
        }
    }

    @Test("step-up asks for the weakest requirement that would allow, not the highest any policy in scope names")
    func weakestStepUp() throws {
        // A global rule for restricted applications (LoA 4) and the internal application's own (LoA 2): a user at LoA 1
        // on the internal application is asked for LoA 2 (it asked for 4 before, which the user may have no factor for).
        let text = """
            @id("restricted-loa4")
            @obligation("step_up:loa=4;max_age=300")
            permit (principal, action, resource) when { resource.classification == "restricted" && context.session.loa >= 4 };

            @id("intranet-loa2")
            @obligation("step_up:loa=2;max_age=3600")
            permit (principal, action == Action::"read", resource == Application::"intranet") when { context.session.loa >= 2 };

            @id("intranet-admin-loa3")
            @obligation("step_up:loa=3")
            permit (principal, action == Action::"write", resource == Application::"intranet") when { context.session.loa >= 3 };
            """
        let pdp = try PolicyDecisionPoint(documents: [("loa.cedar", text)])
        let intranet = pdp.decide(Self.request(loa: 1, app: "intranet", classification: "internal"))
        #expect(intranet.effect == .stepUp)
        #expect(intranet.obligations == [.stepUp(minimumLoA: 2, maxAgeSeconds: 3600)], "\(intranet.obligations)")
        #expect(intranet.determiningPolicies == ["intranet-loa2"])
        // A write there: only the LoA-3 rule is in scope (the read rule's max_age is not asked for).
        let write = pdp.decide(Self.request(loa: 1, method: "POST", app: "intranet", classification: "internal"))
        #expect(write.obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: nil)], "\(write.obligations)")
        #expect(write.determiningPolicies == ["intranet-admin-loa3"])
        // The restricted application still asks for 4, with the tightest max_age.
        let restricted = pdp.decide(Self.request(loa: 2, app: "vault", classification: "restricted"))
        #expect(restricted.obligations == [.stepUp(minimumLoA: 4, maxAgeSeconds: 300)], "\(restricted.obligations)")
        // Nothing helps on an application no policy names: a plain deny.
        #expect(pdp.decide(Self.request(loa: 1, app: "other", classification: "internal")).effect == .deny)
    }

    @Test("when only a fresh factor would allow, the step-up asks for one younger than the session's (max_age 0 if none offered is short enough): no loop through a step-up page that finds the requirement met")
    func freshnessStepUp() throws {
        let text = """
            @id("teller-fresh")
            @obligation("step_up:loa=3")
            permit (principal, action, resource == Application::"teller")
            when { context.session.loa >= 3 && context.session.factor_age_seconds <= 900 };

            @id("vault-fresher-than-said")
            @obligation("step_up:loa=3;max_age=900")
            permit (principal, action, resource == Application::"vault")
            when { context.session.loa >= 3 && context.session.factor_age_seconds <= 300 };

            @id("ledger-as-said")
            @obligation("step_up:loa=3;max_age=900")
            permit (principal, action, resource == Application::"ledger")
            when { context.session.loa >= 3 && context.session.factor_age_seconds <= 900 };
            """
        let pdp = try PolicyDecisionPoint(documents: [("fresh.cedar", text)])
        // LoA 3 proven 20 minutes ago: the LoA is met, the freshness is not, and no max_age was offered.
        #expect(pdp.decide(Self.request(loa: 3, factorAge: 1200, app: "teller")).obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: 0)])
        // Offered 900 s, the condition says 300 s, the factor is 600 s old: 900 is already met, so 0 is asked.
        #expect(pdp.decide(Self.request(loa: 3, factorAge: 600, app: "vault")).obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: 0)])
        // Offered and condition agree: what the policy says is asked.
        #expect(pdp.decide(Self.request(loa: 3, factorAge: 1200, app: "ledger")).obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: 900)])
        // A weaker session: proving LoA 3 gives a fresh factor anyway; nothing more is asked than the annotation says.
        #expect(pdp.decide(Self.request(loa: 1, factorAge: 10, app: "teller")).obligations == [.stepUp(minimumLoA: 3, maxAgeSeconds: nil)])
    }

    @Test("unknown obligations and alert levels are refused at load time", arguments: [
        // The portal's step-up page takes max_age up to a day: a longer one could never be completed.
        #"@obligation("step_up:loa=3;max_age=100000") permit (principal, action, resource);"#,
        #"@obligation("step_up:loa=7") permit (principal, action, resource);"#,
        // A step-up that names nothing never prompts; read_only on a forbid does nothing.
        #"@obligation("step_up") permit (principal, action, resource);"#,
        #"@obligation("read_only, step_up:") permit (principal, action, resource);"#,
        #"@obligation("read_only") forbid (principal, action, resource) when { context.risk.score > 50 };"#,
        #"@obligation("stepup") permit (principal, action, resource);"#,
        #"@alert("critical") permit (principal, action, resource);"#,
        // A misspelt key drops the obligation as silently as a misspelt value.
        #"@obligations("read_only") permit (principal, action, resource);"#,
        #"@Obligation("read_only") permit (principal, action, resource);"#,
        #"@obligaton("read_only") permit (principal, action, resource);"#,
        #"@alerts("high") permit (principal, action, resource);"#,
        #"@alret("high") permit (principal, action, resource);"#,
        #"@ALERT("high") permit (principal, action, resource);"#,
    ])
    func badAnnotations(_ text: String) {
        #expect(throws: PolicyLoadError.self) { _ = try PolicyDecisionPoint(documents: [("a.cedar", text)]) }
    }

    @Test("other annotation keys are free: descriptions, owners, scenarios")
    func freeAnnotations() throws {
        let text = #"@id("p") @scenario("remote-work") @description("tellers read") @owner("ops") @alerted_by("soc") permit (principal, action, resource);"#
        _ = try PolicyDecisionPoint(documents: [("a.cedar", text)])
        do {
            _ = try PolicyDecisionPoint(documents: [("a.cedar", #"@obligatons("read_only") permit (principal, action, resource);"#)])
            Issue.record("accepted")
        } catch let error as PolicyLoadError {
            #expect(error.problems.first?.message.contains("did you mean @obligation") == true, "\(error)")
        }
    }

    @Test("obligation syntax", arguments: [
        ("read_only", Obligation.readOnly), ("step_up", .stepUp(minimumLoA: nil, maxAgeSeconds: nil)),
        ("step_up:loa=4", .stepUp(minimumLoA: 4, maxAgeSeconds: nil)),
        ("step_up:loa=2;max_age=300", .stepUp(minimumLoA: 2, maxAgeSeconds: 300)),
    ])
    func obligationSyntax(_ text: String, _ expected: Obligation) {
        #expect(Obligation(parsing: text) == expected)
        #expect(Obligation(parsing: expected.description) == expected)
    }

    @Test("methods map to Cedar actions")
    func actions() {
        for (m, a) in [("GET", "read"), ("head", "read"), ("OPTIONS", "read"), ("POST", "write"), ("DELETE", "write"), ("PATCH", "write")] {
            #expect(Self.request(method: m).action == a)
        }
        var export = Self.request(); export.isExport = true
        #expect(export.action == "export")
    }

    @Test("remembered entity sets give the decisions of fresh ones, as a principal's groups, roles, kind and state change")
    func entityReuse() throws {
        let warm = try Self.pdp()
        var generator = SeededGenerator(seed: 0x2026_1127)
        func pick<T>(_ xs: [T]) -> T { xs[Int(generator.next() % UInt64(xs.count))] }
        var effects = Set<String>()
        for _ in 0..<600 {
            let r = Self.request(user: pick(["alice", "bob", "carol"]),
                                 groups: pick([["staff"], ["staff", "branch-ops"], ["vendors"], ["audit"], [], ["staff", "staff"]]),
                                 roles: pick([[:], ["auditor": "sensitive"], ["auditor": "privileged"]]),
                                 loa: pick([1, 2, 3]), method: pick(["GET", "POST", "DELETE"]),
                                 app: pick(["branch-portal", "core-maintenance"]),
                                 classification: pick(["confidential", "restricted"]), zone: pick(["internet", "vendor-jump"]),
                                 grant: pick([true, false]), kind: pick(["internal", "vendor"]), disabled: pick([false, false, true]))
            let cold = try Self.pdp().decide(r)   // a new decision point remembers nothing
            let remembered = warm.decide(r)
            #expect(remembered == cold, "\(r.principal) \(r.resource) \(r.context.method)")
            effects.insert("\(cold.effect)/\(cold.reasons)")
        }
        // Allows, denies, step-ups and invalid requests (a group listed twice) all occurred.
        #expect(effects.count >= 5, "\(effects)")
        #expect(warm.cachedEntitySets > 10)
    }
}
