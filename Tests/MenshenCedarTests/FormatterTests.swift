import Foundation
import Testing
@testable import MenshenCedar

@Suite("Formatter")
struct FormatterTests {
    /// Policies with locations removed, for structural comparison.
    static func stripped(_ ps: [Policy]) -> [Policy] {
        ps.map {
            var p = $0
            p.location = nil
            p.conditions = p.conditions.map { Condition(kind: $0.kind, body: $0.body) }
            p.annotations = Annotations(p.annotations.entries.map { Annotation(key: $0.key, value: $0.value) })
            return p
        }
    }

    static func roundTrips(_ text: String) throws -> Bool {
        let set = try CedarParser.parsePolicySet(text)
        let again = try CedarParser.parsePolicySet(CedarFormatter.format(set))
        return stripped(again.staticPolicies) == stripped(set.staticPolicies) && stripped(again.templates) == stripped(set.templates)
    }

    @Test("Formatting then re-parsing gives the same policies for tricky expressions")
    func tricky() throws {
        let text = #"""
            @a @b("x\"y") permit(principal is A::B in A::G::"g", action in [Action::"a"], resource == ?resource)
            when { -(-9223372036854775808) == 1 && !(-x.y) || (if true then 1 else 2) + 3 * -4 > -5 }
            unless { (principal has "a b") && (principal has "if") && "*\u{5b2}" like "\*a*\u{5b2}" && [1, [2]].contains({"k y": 1, z: 2}) }
            when { (1 + 2) * 3 == 9 && 1 - (2 - 3) == 2 && context["x"].isEmpty() && ip("::1").isInRange(ip("::/0")) };
            """#.replacingOccurrences(of: "-x.y", with: "-context.y")
        #expect(try Self.roundTrips(text))
    }

    @Test("The benchmark and hand-written policy files round-trip through the formatter")
    func files() throws {
        var paths = ["/work/shared/bench/cedar/policies_100.cedar"]
        let root = "/work/shared/conformance/cedar/tests"
        if let en = FileManager.default.enumerator(atPath: root) {
            while let rel = en.nextObject() as? String {
                if rel.hasSuffix(".cedar") { paths.append(root + "/" + rel) }
            }
        }
        for p in paths where FileManager.default.fileExists(atPath: p) {
            #expect(try Self.roundTrips(try String(contentsOfFile: p, encoding: .utf8)), "\(p)")
        }
    }
}

@Suite("Formatter keeps policy ids")
struct FormatterIDTests {
    @Test("formatting keeps templates and static policies in source order, so re-parsed ids do not change")
    func idsSurviveFormatting() throws {
        let text = "permit (principal == ?principal, action, resource);\npermit (principal, action, resource) when { false };\n"
        let set = try CedarParser.parsePolicySet(text)
        let again = try CedarParser.parsePolicySet(CedarFormatter.format(set))
        #expect(again.templates.map(\.id) == set.templates.map(\.id))
        #expect(again.staticPolicies.map(\.id) == set.staticPolicies.map(\.id))
        #expect(set.templates.first?.id == "policy0")
    }
}
