import Testing
@testable import MenshenCedar

@Suite("JSON policy format")
struct PolicyJSONTests {
    @Test("A JSON policy set with a template link parses to the same policies as the Cedar text")
    func jsonMatchesText() throws {
        let json = #"""
        {"staticPolicies": {"policy0": {"effect": "permit", "principal": {"op": "==", "entity": {"type": "User", "id": "a"}},
            "action": {"op": "in", "entities": [{"type": "Action", "id": "v"}, {"type": "Action", "id": "w"}]},
            "resource": {"op": "is", "entity_type": "Photo", "in": {"entity": {"type": "Album", "id": "x"}}},
            "conditions": [{"kind": "when", "body": {"&&": {"left": {"has": {"left": {"Var": "context"}, "attr": "n"}},
              "right": {">": {"left": {".": {"left": {"Var": "context"}, "attr": "n"}}, "right": {"Value": 1}}}}}},
              {"kind": "unless", "body": {"like": {"left": {"Value": "ab"}, "pattern": [{"Literal": "a"}, "Wildcard"]}}},
              {"kind": "when", "body": {"isInRange": [{"ip": [{"Value": "10.0.0.1"}]}, {"ip": [{"Value": "10.0.0.0/8"}]}]}}],
            "annotations": {"id": "first"}}},
         "templates": {"t": {"effect": "forbid", "principal": {"op": "in", "slot": "?principal"}, "action": {"op": "All"}, "resource": {"op": "All"}, "conditions": []}},
         "templateLinks": [{"templateId": "t", "newId": "link", "values": {"?principal": {"type": "Group", "id": "g"}}}]}
        """#
        let fromJSON = try PolicyJSON.parsePolicySet(json)
        let text = try CedarParser.parsePolicy(#"""
            @id("first") permit(principal == User::"a", action in [Action::"v", Action::"w"], resource is Photo in Album::"x")
            when { context has n && context.n > 1 } unless { "ab" like "a*" } when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };
            """#)
        let p = try #require(fromJSON.staticPolicies.first)
        #expect(p.principal == text.principal && p.action == text.action && p.resource == text.resource)
        #expect(p.conditions.map(\.body) == text.conditions.map(\.body))
        #expect(p.annotations["id"] == "first")
        #expect(fromJSON.linkedPolicies.first?.principal == .in(.uid(EntityUID("Group", "g"))))
        #expect(throws: CedarError.self) { try PolicyJSON.parsePolicySet(#"{"staticPolicies": {"p": {"effect": "allow"}}}"#) }
    }
}
