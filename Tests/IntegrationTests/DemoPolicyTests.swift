import Foundation
import MenshenPolicyEngine
import MenshenServer
import Testing

/// The demo organisation's policies are real: they validate against
/// Menshen's Cedar schema and decide the scenarios they describe.
@Suite("Demo policies")
struct DemoPolicyTests {
    static func pdp() throws -> PolicyDecisionPoint {
        try PolicyDecisionPoint(documents: DemoOrganisation.policies.map { ("\($0.0).cedar", $0.1) })
    }

    static func request(_ user: String, groups: [String], kind: String = "internal", app: String, classification: String,
                        method: String = "GET", loa: Int = 3, factorAge: Int = 60, zone: String = "internet", grant: Bool = false,
                        hourUTC: Int = 2) -> AccessRequest {
        AccessRequest(principal: .init(id: user, kind: kind, groups: groups),
                      session: .init(levelOfAssurance: loa, amr: ["hwk"], factorAgeSeconds: factorAge, ageSeconds: 60),
                      device: .init(enrolled: true, managed: true, compliant: true, hardwareBound: true, external: false,
                                    postureAgeSeconds: 60, maxVulnerabilitySeverity: 0),
                      context: .init(time: Date(timeIntervalSince1970: 1_795_564_800 + Double(hourUTC) * 3600), sourceIP: "198.51.100.4",
                                     networkZone: zone, method: method, path: "/", grantActive: grant),
                      resource: .init(applicationID: app, classification: classification))
    }

    @Test("the demo policies validate against the Menshen schema")
    func validate() throws {
        let pdp = try Self.pdp()
        #expect(pdp.policies.policies.count >= 6)
    }

    @Test("remote work: staff read with LoA 3; a write with a stale factor asks for step-up")
    func remoteWork() throws {
        let pdp = try Self.pdp()
        #expect(pdp.decide(Self.request("alice", groups: ["staff", "branch-ops"], app: "branch-portal", classification: "confidential")).effect == .allow)
        let write = pdp.decide(Self.request("alice", groups: ["staff", "branch-ops"], app: "branch-portal", classification: "confidential",
                                            method: "POST", factorAge: 7200))
        #expect(write.effect == .stepUp)
        // LoA 2 is not enough, but the baseline names the remedy: step up to LoA 3.
        let weak = pdp.decide(Self.request("alice", groups: ["staff"], app: "branch-portal", classification: "confidential", loa: 2))
        #expect(weak.effect == .stepUp && weak.obligations.contains(.stepUp(minimumLoA: 3, maxAgeSeconds: nil)))
        // Someone outside the staff group is denied whatever they prove.
        #expect(pdp.decide(Self.request("mallory", groups: ["contractors"], app: "branch-portal", classification: "confidential")).effect == .deny)
    }

    @Test("vendor maintenance: only with a grant, in hours (Taipei), through the jump gateway, and with an alert")
    func vendor() throws {
        let pdp = try Self.pdp()
        let ok = pdp.decide(Self.request("vendor.lee", groups: ["vendors"], kind: "vendor", app: "core-maintenance",
                                         classification: "restricted", zone: "vendor-jump", grant: true))
        #expect(ok.effect == .allow && ok.obligations.contains(.alert(.medium)))
        #expect(pdp.decide(Self.request("vendor.lee", groups: ["vendors"], kind: "vendor", app: "core-maintenance",
                                        classification: "restricted", zone: "vendor-jump", grant: false)).effect == .deny)
        #expect(pdp.decide(Self.request("vendor.lee", groups: ["vendors"], kind: "vendor", app: "core-maintenance",
                                        classification: "restricted", zone: "vendor-jump", grant: true, hourUTC: 14)).effect == .deny)
    }
}
