import Foundation
import Testing
@testable import MenshenCedar
@testable import MenshenCedarConformance

@Suite("Authorizer, templates and index")
struct AuthorizerTests {
    @Test("Forbid overrides permit, erroring policies are skipped and reported, default is deny")
    func decisions() throws {
        let set = try CedarParser.parsePolicySet("""
            @reason("ok") permit(principal, action, resource);
            forbid(principal, action, resource) when { context.block };
            permit(principal, action, resource) when { 1 + "a" == 2 };
            """)
        let req = Request(principal: EntityUID("User", "a"), action: EntityUID("Action", "v"), resource: EntityUID("R", "r"),
                          context: ["block": .bool(false)])
        let r1 = Authorizer.isAuthorized(req, policies: set, entities: Entities())
        #expect(r1.decision == .allow)
        #expect(r1.reasons == ["policy0"])
        #expect(r1.annotations(of: "policy0")?["reason"] == "ok")
        #expect(r1.errors.map(\.policyID) == ["policy2"])
        var req2 = req
        req2.context = ["block": .bool(true)]
        let r2 = Authorizer.isAuthorized(req2, policies: set, entities: Entities())
        #expect(r2.decision == .deny)
        #expect(r2.reasons == ["policy1"])
        let r3 = Authorizer.isAuthorized(req, policies: PolicySet(), entities: Entities())
        #expect(r3.decision == .deny && r3.reasons.isEmpty)
    }

    @Test("Linking a template fills its slots; missing or extra slots and duplicate ids are errors")
    func linking() throws {
        var set = try CedarParser.parsePolicySet("permit(principal == ?principal, action, resource in ?resource);")
        let alice = EntityUID("User", "alice"), album = EntityUID("Album", "a")
        try set.link(templateID: "policy0", newID: "link1", values: [.principal: alice, .resource: album])
        #expect(set.linkedPolicies.first?.principal == .eq(.uid(alice)))
        #expect(throws: CedarError.self) { try set.link(templateID: "policy0", newID: "link2", values: [.principal: alice]) }
        #expect(throws: CedarError.self) { try set.link(templateID: "policy0", newID: "link1", values: [.principal: alice, .resource: album]) }
        #expect(throws: CedarError.self) { try set.link(templateID: "nope", newID: "link3", values: [:]) }
        var one = try CedarParser.parsePolicySet("permit(principal in ?principal, action, resource);")
        #expect(throws: CedarError.self) { try one.link(templateID: "policy0", newID: "x", values: [.principal: alice, .resource: album]) }
        let photo = EntityUID("Photo", "p")
        let store = try Entities([Entity(uid: photo, parents: [album])])
        let req = Request(principal: alice, action: EntityUID("Action", "view"), resource: photo)
        let resp = Authorizer.isAuthorized(req, policies: set, entities: store)
        #expect(resp.decision == .allow && resp.reasons == ["link1"])
        let other = Request(principal: EntityUID("User", "bob"), action: EntityUID("Action", "view"), resource: photo)
        #expect(Authorizer.isAuthorized(other, policies: set, entities: store).decision == .deny)
    }

    @Test("The policy index gives exactly the full-scan results on the benchmark inputs")
    func indexEqualsScan() throws {
        let dir = "/work/shared/bench/cedar"
        guard FileManager.default.fileExists(atPath: dir) else { return }
        let entities = try EntityJSON.entities(try String(contentsOfFile: dir + "/entities.json", encoding: .utf8))
        guard case .array(let reqs) = try JSONValue.parse(try String(contentsOfFile: dir + "/requests.json", encoding: .utf8)) else {
            Issue.record("bad requests.json"); return
        }
        for n in [10, 100, 1000] {
            let set = try CedarParser.parsePolicySet(try String(contentsOfFile: dir + "/policies_\(n).cedar", encoding: .utf8))
            let index = PolicyIndex(set)
            for r in reqs.prefix(n == 1000 ? 300 : 1000) {
                guard let p = r["principal"], let a = r["action"], let res = r["resource"] else { continue }
                let action = try EntityJSON.entityUID(a)
                let req = Request(principal: try EntityJSON.entityUID(p), action: action, resource: try EntityJSON.entityUID(res),
                                  context: try EntityJSON.context(r["context"] ?? .object([]), action: action))
                let a1 = Authorizer.isAuthorized(req, policies: set, entities: entities)
                let a2 = Authorizer.isAuthorized(req, index: index, entities: entities)
                #expect(a1.decision == a2.decision)
                #expect(a1.reasons == a2.reasons)
                #expect(a1.errors.map(\.policyID) == a2.errors.map(\.policyID))
            }
        }
    }

    @Test("The benchmark files pass through the conformance runner with and without the index")
    func benchConformance() {
        let dir = "/work/shared/bench/cedar"
        guard FileManager.default.fileExists(atPath: dir) else { return }
        for useIndex in [true, false] {
            let result = ConformanceRunner(useIndex: useIndex).run(paths: [dir + "/bench_100.json"])
            #expect(result.failed == 0, "\(result.mismatches.prefix(5))")
            #expect(result.passed == 1000)
        }
    }
}
