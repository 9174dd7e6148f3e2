import Foundation
import Testing
@testable import MenshenAssessment

@Suite("Assessment builder: levels, scenario view, roadmap, comparison")
struct AssessmentBuilderTests {
    let builder = AssessmentBuilder()
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    func input(_ verdicts: [String: Verdict], routes: [RouteAssessment] = [], attestations: [Attestation] = [],
               previous: Assessment? = nil) -> AssessmentBuilder.Input {
        AssessmentBuilder.Input(
            id: UUID().uuidString, generatedAt: now, windowStart: now.addingTimeInterval(-30 * 86_400), organisation: "Bank",
            producer: "test", evaluations: verdicts.mapValues { PrincipleEvaluation(verdict: $0, rationale: LocalizedText(en: "r", zhTW: "r"),
                                                                                    remedy: LocalizedText(en: "fix", zhTW: "修正")) },
            routes: routes, attestations: attestations, previous: previous)
    }

    /// Every principle of the catalog with the same verdict, with some overrides.
    func all(_ v: Verdict, except overrides: [String: Verdict] = [:]) -> [String: Verdict] {
        var d = Dictionary(uniqueKeysWithValues: PrincipleCatalog.builtIn.principles.map { ($0.id, v) })
        for (k, x) in overrides { d[k] = x }
        return d
    }

    @Test("everything met: Level IV everywhere; an unevaluated principle is 'not measurable yet' and counts as not met")
    func levels() {
        let full = builder.build(input(all(.met)))
        #expect(full.overallLevel == 4)
        #expect(full.pillars.allSatisfy { $0.level == 4 })
        #expect(full.roadmap.isEmpty)

        var missing = all(.met); missing["3.4"] = nil
        let a = builder.build(input(missing))
        #expect(a.result("3.4")?.verdict == .notMeasurable)
        #expect(a.pillars.first { $0.pillar == .network }?.level == 0)
        #expect(a.overallLevel == 0)
    }

    @Test("levels are cumulative: a Level II gap caps the pillar at I even when III and IV are met; N/A does not block")
    func cumulative() {
        let a = builder.build(input(all(.met, except: ["1.2": .partiallyMet, "2.3": .notApplicable, "5.8": .notMet])))
        let level = Dictionary(uniqueKeysWithValues: a.pillars.map { ($0.pillar, $0.level) })
        #expect(level[.identity] == 1)
        #expect(level[.device] == 4)
        #expect(level[.data] == 3)
        #expect(a.overallLevel == 1)
        let identity = a.pillars.first { $0.pillar == .identity }!
        #expect(identity.perLevel.first { $0.level == 2 }.map { [$0.satisfied, $0.total] } == [1, 2])
    }

    @Test("roadmap: lower levels first; within a level, gaps touching scenario routes first, then partial before not met")
    func roadmapOrder() {
        let route = RouteAssessment(applicationID: "core-banking", displayName: "Core", host: "core.bank", pathPrefix: "/",
                                    classification: "confidential", scenarios: ["remote-work", "service-providers"],
                                    checks: [RouteCheck(principleID: "5.1", holds: false, detail: LocalizedText(en: "no DLP", zhTW: "無 DLP"))])
        let a = builder.build(input(all(.met, except: ["4.4": .notMet, "3.4": .notMet, "5.1": .notMet, "1.1": .partiallyMet]),
                                    routes: [route]))
        #expect(a.roadmap.map(\.principleID) == ["5.1", "1.1", "3.4", "4.4"])
        #expect(a.roadmap.first?.scenarios == ["remote-work", "service-providers"])
        #expect(a.roadmap.map(\.rank) == [1, 2, 3, 4])
        #expect(a.roadmap.first?.remedy?.en == "fix")
    }

    @Test("scenario view: a principle holds for a scenario when it is met deployment-wide and no tagged route's check fails")
    func scenarios() {
        let ok = RouteAssessment(applicationID: "a", displayName: "A", host: "a", pathPrefix: "/", classification: "internal",
                                 scenarios: ["remote-work"], checks: [RouteCheck(principleID: "3.4", holds: true, detail: .init(en: "", zhTW: ""))])
        let bad = RouteAssessment(applicationID: "b", displayName: "B", host: "b", pathPrefix: "/", classification: "internal",
                                  scenarios: ["remote-work"], checks: [RouteCheck(principleID: "3.4", holds: false, detail: .init(en: "", zhTW: ""))])
        let a = builder.build(input(all(.met, except: ["1.5": .notMet]), routes: [ok, bad]))
        let remote = a.scenarios.first { $0.scenarioID == "remote-work" }!
        #expect(remote.routes == ["a", "b"])
        let p34 = remote.principles.first { $0.principleID == "3.4" }
        #expect(p34?.holds == false && p34?.failingRoutes == ["b"])
        #expect(remote.principles.first { $0.principleID == "1.5" }?.holds == false)
        #expect(remote.principles.first { $0.principleID == "1.1" }?.holds == true)
        // A scenario with no routes holds nothing: there is nothing to show it on.
        #expect(a.scenarios.first { $0.scenarioID == "cloud-access" }!.principles.allSatisfy { !$0.holds })
        #expect(a.scenarios.count == 6)
    }

    @Test("attestations are attached with their state at assessment time; comparison lists what changed")
    func attestationsAndComparison() {
        let file = Attestation.EvidenceFile(name: "pentest.pdf", sha256: String(repeating: "a", count: 64), size: 10)
        let valid = Attestation(id: "x", principleID: "4.4", statement: "pentest", attestedBy: "CISO", attestedAt: now.addingTimeInterval(-86_400),
                                expiresAt: now.addingTimeInterval(86_400), files: [file])
        let expired = Attestation(id: "y", principleID: "4.4", statement: "old", attestedBy: "CISO", attestedAt: now.addingTimeInterval(-400 * 86_400),
                                  expiresAt: now.addingTimeInterval(-35 * 86_400), files: [file])
        let first = builder.build(input(all(.met, except: ["4.4": .notMet]), attestations: [expired]))
        #expect(first.result("4.4")?.attestations.map(\.state) == [.expired])
        let second = builder.build(input(all(.met), attestations: [valid, expired], previous: first))
        #expect(second.result("4.4")?.attestations.map(\.state) == [.valid, .expired])
        #expect(second.comparison?.changes == [.init(principleID: "4.4", before: .notMet, after: .met)])
        #expect(second.comparison?.overallLevelBefore == 1)
        #expect(second.comparison?.pillarLevelsBefore["application"] == 1)
        #expect(second.overallLevel == 4)
    }
}
