import Foundation
import MenshenCedar
@testable import MenshenPolicyEngine
import MenshenTestSupport
import Testing

/// The decision point remembers decisions keyed by what its policies can read (``PolicyDecisionPoint/memoizes``).
/// These tests hold its answers against evaluation every time (`memoizeDecisions: false`) over request streams in
/// which each request is one of a few boundary requests, as it is or with one or two inputs changed, so that every
/// input is seen both repeated and changed.
@Suite("Decision memo")
struct DecisionMemoTests {
    typealias Base = PolicyDecisionPointTests

    /// Reads the session's amr and age, the path and method, the country and the device's posture age.
    static let readsMore = """
        @id("path-and-factors")
        permit (principal in Group::"staff", action, resource)
        when {
          context.request.path like "/accounts*" && context.session.amr.contains("hwk") &&
          context.session.age_seconds < 3600 && context.network.country != "KP" && context.request.method != "DELETE"
        };

        @id("posture")
        forbid (principal, action, resource) when { context.device.known && context.device.posture_age_seconds > 3600 };
        """

    /// Reads the weekday (and not the hour).
    static let weekend = """
        @id("weekend-restricted")
        forbid (principal, action, resource) when { context.time.weekday >= 6 && resource.classification == "restricted" };
        """

    /// Reads whole records (`context.session` chosen by `if`), presence (`has`) and set operations.
    static let recordsAndPresence = """
        @id("whole-session")
        permit (principal in Group::"staff", action == Action::"read", resource)
        when {
          (if context.risk.score > 50 then context.session else context.session).loa >= 2 &&
          context.session has amr && context.session.amr.containsAll(["hwk"]) && context.network has zone
        };
        """

    /// One input changed at random, from domains small enough that values repeat.
    static func mutate(_ r: inout AccessRequest, _ pick: (Int) -> Int) {
        let noncompliant = AccessRequest.Device(enrolled: true, managed: true, compliant: false, hardwareBound: false, external: false,
                                                postureAgeSeconds: 4000, maxVulnerabilitySeverity: 3)
        func one<T>(_ xs: [T]) -> T { xs[pick(xs.count)] }
        switch pick(22) {
        case 0: r.principal.id = one(["alice", "bob", "carol"])
        case 1: r.principal.groups = one([["staff"], ["staff", "branch-ops"], ["vendors"], [], ["staff", "staff"]])
        case 2: r.principal.roles = one([[:], ["auditor": "sensitive"]])
        case 3: r.principal.disabled = one([false, false, true])
        case 4: r.session.levelOfAssurance = one([1, 2, 3, 4])
        case 5: r.session.factorAgeSeconds = one([0, 60, 899, 901, 5000])
        case 6: r.session.amr = one([["hwk", "user"], ["pwd"], []])
        case 7: r.session.ageSeconds = one([600, 4000])
        case 8: r.device = one([nil, Base.compliant, noncompliant])
        // 08:00, 10:00, 10:00:29.999, 10:00:30.001, 17:59, 18:00 on a Wednesday in Taipei; 10:00 on the Saturday.
        case 9: r.context.time = Base.office.addingTimeInterval(one([-7200, 0, 29.999, 30.001, 28_740, 28_800, 259_200]))
        case 10: r.context.timeZone = one(["Asia/Taipei", "UTC", "Nowhere/Atlantis"])
        case 11: r.context.sourceIP = one(["203.0.113.7", "10.0.0.1", "not-an-ip"])
        case 12: r.context.networkZone = one(["internet", "vendor-jump"])
        case 13: r.context.country = one(["TW", "KP", ""])
        case 14: r.context.method = one(["GET", "POST", "DELETE", "get"])
        case 15: r.context.path = one(["/accounts", "/accounts/1", "/admin"])
        case 16: r.context.riskScore = one([0, 80, 81, 95])
        case 17: r.context.grantActive = one([true, false])
        case 18: r.resource.applicationID = one(["branch-portal", "core-maintenance"])
        case 19: r.resource.classification = one(["confidential", "restricted"])
        case 20: r.isExport = one([false, true])
        default: r.principal.kind = one(["internal", "vendor"])
        }
    }

    /// Requests near the policies' boundaries: a vendor inside its window, a fresh-factor write, a staff read, an
    /// auditor's read-only access, a restricted application needing LoA 3, a risky user.
    static let bases: [AccessRequest] = [
        Base.request(groups: ["vendors"], loa: 3, app: "core-maintenance", zone: "vendor-jump", grant: true),
        Base.request(method: "POST"),
        Base.request(groups: ["staff"], loa: 2),
        Base.request(groups: [], roles: ["auditor": "sensitive"], loa: 3),
        Base.request(loa: 2, classification: "restricted"),
        Base.request(risk: 81),
    ]

    /// Decisions of `memoized` and of `evaluated` over a stream of `count` requests, each one of ``bases`` as it is
    /// (half of them) or with one or two inputs changed; returns the distinct outcomes seen. A changed input that
    /// the key left out would be answered with the base's remembered decision.
    static func compare(_ memoized: PolicyDecisionPoint, _ evaluated: PolicyDecisionPoint, count: Int, seed: UInt64) -> Set<String> {
        var generator = SeededGenerator(seed: seed)
        let pick: (Int) -> Int = { n in Int(generator.next() % UInt64(n)) }
        var outcomes = Set<String>()
        for i in 0..<count {
            var r = bases[pick(bases.count)]
            if pick(2) == 1 { for _ in 0...pick(2) { mutate(&r, pick) } }
            let expected = evaluated.decide(r)
            let got = memoized.decide(r)
            #expect(got == expected, "request \(i): \(r)")
            if got != expected { break }
            outcomes.insert("\(expected.effect) \(expected.reasons.map(\.rawValue)) \(expected.obligations)")
        }
        return outcomes
    }

    /// A policy set for the differential test, and how varied its outcomes must be.
    struct DifferentialCase: Sendable, CustomTestStringConvertible {
        var name: String
        var documents: [String]
        var seed: UInt64
        var minimumOutcomes: Int
        var testDescription: String { name }
    }

    @Test("remembered decisions are evaluation's", arguments: [
        // Allow, deny for several reasons, step-up, read-only, alerts and invalid requests all occur.
        DifferentialCase(name: "LoA, factor age, device, hour, weekday, zone, risk and grant",
                         documents: [Base.baseline, Base.scenarios, weekend], seed: 0x2026_1129, minimumOutcomes: 8),
        DifferentialCase(name: "path, method, amr, session age, country and posture age",
                         documents: [Base.baseline, readsMore], seed: 0x0D0C, minimumOutcomes: 4),
        DifferentialCase(name: "a whole record chosen by if, presence and set operations",
                         documents: [Base.baseline, recordsAndPresence], seed: 0x5E55, minimumOutcomes: 4),
    ])
    func differential(_ c: DifferentialCase) throws {
        let docs = c.documents.enumerated().map { ("doc\($0.offset).cedar", $0.element) }
        let memoized = try PolicyDecisionPoint(documents: docs)
        #expect(memoized.memoizes)
        let outcomes = Self.compare(memoized, try PolicyDecisionPoint(documents: docs, memoizeDecisions: false), count: 8000, seed: c.seed)
        #expect(outcomes.count >= c.minimumOutcomes, "\(outcomes)")
        // Requests repeated what was decided before: fewer remembered decisions than requests.
        #expect(memoized.memoizedDecisions > 100 && memoized.memoizedDecisions < 4500, "\(memoized.memoizedDecisions)")
    }

    @Test("the key's table of the context is the context the decision point builds: every record and member, no more")
    func shapeIsTheContext() throws {
        for device in [nil, Base.compliant] {
            let input = try #require(CedarInput(Base.request(device: device), actions: []))
            var built: [String: [String]?] = [:]
            for (name, value) in input.request.context {
                guard case .record(let members) = value else { Issue.record("context.\(name) is not a record"); continue }
                built[name] = .some(members.keys.sorted())
            }
            let shape = DecisionMemo.Projection.contextShape
            #expect(Set(built.keys) == Set(shape.keys))
            for (name, members) in shape {
                // A record keyed whole (the device) has its members listed nowhere; the others list exactly the built ones.
                if let members { #expect(members.sorted() == built[name].flatMap { $0 }, "context.\(name)") }
            }
        }
    }

    @Test("a read the key's table does not know turns the memo off (fail closed for a context attribute added later)")
    func unknownReadsNotMemoized() throws {
        let set = try CedarParser.parsePolicySet("""
            permit (principal, action, resource) when { context.session.loa >= 1 && context.request has host };
            """)
        #expect(DecisionMemo.Projection(ContextReads(set)) == nil)
        let other = try CedarParser.parsePolicySet("""
            permit (principal, action, resource) when { context has tenant };
            """)
        #expect(DecisionMemo.Projection(ContextReads(other)) == nil)
        let known = try CedarParser.parsePolicySet("""
            permit (principal, action, resource) when { context.session.loa >= 1 && context has device && context.request.path like "/a*" };
            """)
        #expect(DecisionMemo.Projection(ContextReads(known)) != nil)
    }

    @Test("a long path is decided without the memo: large client-chosen keys do not fill the table")
    func longPathNotRemembered() throws {
        let pdp = try PolicyDecisionPoint(documents: [("baseline.cedar", Base.baseline), ("more.cedar", Self.readsMore)])
        var request = Base.request(groups: ["staff"], loa: 2)
        request.context.path = "/accounts/" + String(repeating: "a", count: DecisionMemo.Projection.maxKeyText)
        #expect(pdp.decide(request).effect == .allow)
        #expect(pdp.memoizedDecisions == 0)
        request.context.path = "/accounts/short"
        #expect(pdp.decide(request).effect == .allow)
        #expect(pdp.memoizedDecisions == 1)
    }

    @Test("a set that uses context as a whole, or reads the instant, is not memoized; nor is a decision point built not to")
    func notMemoized() throws {
        let whole = try PolicyDecisionPoint(documents: [("whole.cedar", """
            permit (principal, action, resource) when { context == context && context.session.loa >= 1 };
            """)])
        #expect(!whole.memoizes)
        _ = whole.decide(Base.request())
        #expect(whole.memoizedDecisions == 0)
        let instant = try PolicyDecisionPoint(documents: [("b.cedar", Base.baseline), ("cut-off.cedar", """
            forbid (principal, action, resource) when { context.time.now > datetime("2026-11-25T02:00:30Z") };
            """)])
        #expect(!instant.memoizes)
        #expect(instant.decide(Base.request(time: Base.office)).reasons == [.noMatchingPermit])
        #expect(instant.decide(Base.request(time: Base.office.addingTimeInterval(30.001))).reasons == [.forbidden])
        let off = try PolicyDecisionPoint(documents: [("b.cedar", Base.baseline)], memoizeDecisions: false)
        #expect(!off.memoizes)
    }

    @Test("a disabled user, a removed group or a raised risk is a new key: the next decision sees it")
    func revocationIsANewKey() throws {
        let pdp = try Base.pdp()
        let request = Base.request(loa: 3)
        #expect(pdp.decide(request).effect == .allow)
        #expect(pdp.decide(request).effect == .allow)   // remembered
        var disabled = request; disabled.principal.disabled = true
        #expect(pdp.decide(disabled).effect == .deny)
        var removed = request; removed.principal.groups = []
        #expect(pdp.decide(removed).effect == .deny)
        var risky = request; risky.context.riskScore = 95
        #expect(pdp.decide(risky).effect == .deny)
        #expect(pdp.decide(request).effect == .allow)
    }
}
