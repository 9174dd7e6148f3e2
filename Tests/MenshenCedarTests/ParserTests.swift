import Testing
@testable import MenshenCedar

@Suite("Parser")
struct ParserTests {
    @Test("Policies get ids policy0, policy1, … in source order, and @id does not rename them")
    func policyIDs() throws {
        let set = try CedarParser.parsePolicySet("""
            @id("first") permit(principal, action, resource);
            forbid(principal, action, resource) when { false };
            """)
        #expect(set.staticPolicies.map(\.id) == ["policy0", "policy1"])
        #expect(set.staticPolicies[0].annotations["id"] == "first")
        #expect(set.staticPolicies[1].effect == .forbid)
    }

    @Test("Annotations keep source order, a bare annotation has the empty value, and duplicates are errors")
    func annotations() throws {
        let p = try CedarParser.parsePolicy(#"@b("2") @a @c("x\ny") permit(principal, action, resource);"#)
        #expect(p.annotations.entries.map(\.key) == ["b", "a", "c"])
        #expect(p.annotations["a"] == "")
        #expect(p.annotations["c"] == "x\ny")
        #expect(throws: CedarError.self) { try CedarParser.parsePolicy(#"@a("1") @a("2") permit(principal, action, resource);"#) }
    }

    @Test("Scope constraints parse ==, in, is, is-in and action lists")
    func scopes() throws {
        let p = try CedarParser.parsePolicy(#"permit(principal is NS::User in NS::Group::"g", action in [Action::"a", NS::Action::"b"], resource == Photo::"p");"#)
        #expect(p.principal == .isIn(Name(path: ["NS"], basename: "User"), .uid(EntityUID("NS::Group", "g"))))
        #expect(p.action == .inSet([EntityUID("Action", "a"), EntityUID("NS::Action", "b")]))
        #expect(p.resource == .eq(.uid(EntityUID("Photo", "p"))))
        #expect(throws: CedarError.self) { try CedarParser.parsePolicy(#"permit(principal, action == User::"x", resource);"#) }
    }

    @Test("|| binds weaker than &&, which binds weaker than relations, + and *")
    func precedence() throws {
        let e = try CedarParser.parseExpression("1 + 2 * 3 == 7 || false && true")
        guard case .or(let l, let r) = e.kind else { Issue.record("expected ||"); return }
        guard case .binary(.eq, let sum, _) = l.kind, case .binary(.add, _, let prod) = sum.kind, case .binary(.mul, _, _) = prod.kind else {
            Issue.record("bad left side"); return
        }
        guard case .and = r.kind else { Issue.record("expected &&"); return }
        #expect(try TestSupport.eval("1 + 2 * 3 == 7 || false && true") == .bool(true))
        #expect(try TestSupport.eval("2 - 3 - 4") == .long(-5))
    }

    @Test("Chained relational operators and = are rejected")
    func chainedRelations() {
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("1 < 2 < 3") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("1 = 2") }
    }

    @Test("Negative literals fold into the literal, including Int64.min, and more than four unary ops are errors")
    func unary() throws {
        #expect(try TestSupport.eval("-9223372036854775808") == .long(Int64.min))
        #expect(try TestSupport.eval("--1") == .long(1))
        #expect(try TestSupport.eval("!!!!true") == .bool(true))
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("9223372036854775808") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("!!!!!true") }
    }

    @Test("String escapes are decoded and invalid escapes are errors")
    func escapes() throws {
        #expect(try TestSupport.eval(#""a\n\t\r\\\0\'\"\u{1F600}""#) == .string("a\n\t\r\\\0'\"\u{1F600}"))
        #expect(throws: CedarError.self) { try CedarParser.parseExpression(#""\q""#) }
        #expect(try CedarParser.parseEntityUID(#"A::B::"i\"d""#) == EntityUID("A::B", "i\"d"))
    }

    @Test("like patterns treat \\* as a literal star")
    func likePatterns() throws {
        #expect(try TestSupport.eval(#""a*c" like "a\*c""#) == .bool(true))
        #expect(try TestSupport.eval(#""abc" like "a\*c""#) == .bool(false))
        #expect(try TestSupport.eval(#""abc" like "a*""#) == .bool(true))
        #expect(try TestSupport.eval(#""" like "*""#) == .bool(true))
        #expect(try TestSupport.eval(#""abcbd" like "*b*d""#) == .bool(true))
    }

    @Test("has with a path desugars into a conjunction of has checks")
    func hasPath() throws {
        let ctx: [String: Value] = ["a": .record(["b": .record(["c": .long(1)])])]
        #expect(try TestSupport.eval("context has a.b.c", context: ctx) == .bool(true))
        #expect(try TestSupport.eval("context has a.x.c", context: ctx) == .bool(false))
        #expect(try TestSupport.eval(#"context has "a""#, context: ctx) == .bool(true))
    }

    @Test("Parse errors carry line:column and render a caret excerpt")
    func errorLocations() {
        let text = "permit(principal, action, resource)\nwhen { 1 + };"
        do {
            _ = try CedarParser.parsePolicySet(text)
            Issue.record("expected an error")
        } catch {
            #expect(error.location?.line == 2)
            #expect(error.location?.column == 12)
            let r = error.rendered(source: text)
            #expect(r.contains("--> 2:12"))
            #expect(r.contains("   | when { 1 + };"))
            #expect(r.contains("   |            ^"))
        }
    }

    @Test("Unknown functions, methods and variables are parse errors")
    func unknownNames() {
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("foo(1)") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("principal.foo()") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("x") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("isIpv4(ip(\"1.2.3.4\"))") }
        #expect(throws: CedarError.self) { try CedarParser.parseExpression("{a: 1, a: 2}") }
    }

    @Test("Deep nesting is rejected with an error instead of overflowing the stack")
    func depthLimit() {
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(throws: CedarError.self) { try CedarParser.parseExpression(deep) }
        let deepJSON = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(throws: CedarError.self) { try JSONValue.parse(deepJSON) }
    }

    @Test("Templates use slots only in the scope")
    func templates() throws {
        let set = try CedarParser.parsePolicySet("""
            permit(principal == ?principal, action, resource in ?resource);
            permit(principal, action, resource);
            """)
        #expect(set.templates.map(\.id) == ["policy0"])
        #expect(set.staticPolicies.map(\.id) == ["policy1"])
        #expect(set.templates[0].slots == [.principal, .resource])
        #expect(throws: CedarError.self) { try CedarParser.parsePolicySet("permit(principal == ?resource, action, resource);") }
        #expect(throws: CedarError.self) { try CedarParser.parsePolicySet("permit(principal, action, resource) when { ?principal == principal };") }
    }
}

@Suite("Parser limits")
struct ParserLimitTests {
    @Test("Very long operator chains are rejected without crashing")
    func longChains() {
        for op in [" || ", " && ", " + ", " * "] {
            let text = Array(repeating: "1", count: 100_000).joined(separator: op)
            #expect(throws: CedarError.self) { try CedarParser.parseExpression(text) }
        }
        let path = "context has " + Array(repeating: "a", count: 100_000).joined(separator: ".")
        #expect(throws: CedarError.self) { try CedarParser.parseExpression(path) }
        let access = "context" + String(repeating: ".a", count: 100_000)
        #expect(throws: CedarError.self) { try CedarParser.parseExpression(access) }
    }

    @Test("Chains just under the depth limit still parse and evaluate")
    func chainsUnderLimit() throws {
        let text = Array(repeating: "true", count: 999).joined(separator: " && ")
        #expect(try TestSupport.eval(text) == .bool(true))
        let anyOf = Array(repeating: "false", count: 998).joined(separator: " || ") + " || true"
        #expect(try TestSupport.eval(anyOf) == .bool(true))
        #expect(throws: CedarError.self) { _ = try CedarParser.parseExpression(anyOf + " || true || true") }
        let sum = Array(repeating: "1", count: 190).joined(separator: " + ")
        #expect(try TestSupport.eval(sum) == .long(190))
        var nested = "true"
        for _ in 0..<60 { nested = "(if \(nested) then true else false)" }
        #expect(try TestSupport.eval(nested) == .bool(true))
        let tooLong = Array(repeating: "1", count: 250).joined(separator: " + ")
        #expect(throws: CedarError.self) { try CedarParser.parseExpression(tooLong) }
    }
}

@Suite("Reserved identifiers")
struct ReservedIdentifierTests {
    @Test("Reserved words cannot be attribute names, record keys or name components, but work as strings")
    func reserved() throws {
        for text in ["principal.if", "principal.in", "context has then", "context has a.like", "{if: 1}", "{true: 1}",
                     #"The::true::path::"x""#, #"__cedar::A::"x""#, "principal.__cedar"] {
            #expect(throws: CedarError.self, "\(text)") { _ = try CedarParser.parseExpression(text) }
        }
        for text in [#"principal["if"]"#, #"context has "then""#, #"{"if": 1}"#, "{principal: 1}", "context.principal"] {
            #expect(throws: Never.self, "\(text)") { _ = try CedarParser.parseExpression(text) }
        }
        let p = try CedarParser.parsePolicy(#"@if("x") permit(principal, action, resource);"#)
        #expect(p.annotations["if"] == "x")
    }
}
