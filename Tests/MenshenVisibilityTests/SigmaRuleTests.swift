import Foundation
@testable import MenshenVisibility
import Testing

@Suite("Sigma detection rules: loading, modifiers, conditions, refusals")
struct SigmaRuleTests {
    static func rule(_ detection: String, category: String = "authentication") -> String {
        """
        title: Test rule
        id: 11111111-2222-4333-8444-555555555555
        status: test
        level: high
        tags:
            - attack.credential-access
            - attack.t1110.003
        logsource:
            product: menshen
            category: \(category)
        detection:
        \(detection.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
        """
    }

    static func load(_ detection: String, category: String = "authentication") throws -> SigmaDetectionRule {
        let set = try SigmaRuleSet.load(files: [("test.yml", rule(detection, category: category))])
        return try #require(set.detections.first)
    }

    static func event(_ json: String) throws -> DetectionEvent {
        try DetectionEvent(id: "e", time: Date(timeIntervalSince1970: 0), json: json)
    }

    static let failed = try! event("""
        {"class_uid":3002,"activity_id":1,"status_id":2,"status_detail":"Wrong Password","user":{"name":"alice.chen"},
         "src_endpoint":{"ip":"203.0.113.7"},"auth_factors":[{"factor_type":"pwd"}],"is_mfa":false,"unmapped":{"loa":1,"idp":"local"},
         "message":"sign-in failed: wrong password"}
        """)

    @Test("metadata, level and ATT&CK tags are read")
    func metadata() throws {
        let r = try Self.load("selection:\n    status_id: 2\ncondition: selection")
        #expect(r.metadata.title == "Test rule" && r.metadata.level == .high && r.metadata.status == .test)
        #expect(r.metadata.level.severityID == 4)
        let t = try #require(r.metadata.techniques.first)
        #expect(t.uid == "T1110.003" && t.name == "Password Spraying" && t.parentUID == "T1110" && t.tactics.map(\.uid) == ["TA0006"])
        #expect(r.logsource.classUID == 3002)
    }

    @Test("maps are AND, lists are OR, strings match case-insensitively with wildcards")
    func mapsAndLists() throws {
        let e = Self.failed
        #expect(try Self.load("s:\n    status_id: 2\n    user.name: alice.chen\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    status_id: 2\n    user.name: bob\ncondition: s").matches(e), "AND: one field fails")
        #expect(try Self.load("s:\n    user.name:\n        - bob\n        - alice.chen\ncondition: s").matches(e), "OR over values")
        #expect(try Self.load("s:\n    - user.name: bob\n    - status_id: 2\ncondition: s").matches(e), "OR over maps")
        #expect(try Self.load("s:\n    status_detail: wrong password\ncondition: s").matches(e), "case-insensitive")
        #expect(try !Self.load("s:\n    status_detail|cased: wrong password\ncondition: s").matches(e), "cased")
        #expect(try Self.load("s:\n    user.name: 'ali*en'\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    user.name: 'alice?chen'\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    user.name: 'alice\\?chen'\ncondition: s").matches(e), "escaped wildcard is literal")
        #expect(try Self.load("s:\n    auth_factors.factor_type: PWD\ncondition: s").matches(e), "array elements")
        #expect(try Self.load("s:\n    is_mfa: false\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    is_mfa: true\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    unmapped.loa: '1'\ncondition: s").matches(e), "a quoted number matches the number's text")
    }

    @Test("string modifiers: contains, startswith, endswith, all")
    func stringModifiers() throws {
        let e = Self.failed
        #expect(try Self.load("s:\n    message|contains: FAILED\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    message|contains: succeeded\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    message|startswith: sign-in\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    message|startswith: failed\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    message|endswith: password\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    message|contains|all:\n        - sign-in\n        - wrong\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    message|contains|all:\n        - sign-in\n        - passkey\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    message|contains:\n        - sign-in\n        - passkey\ncondition: s").matches(e))
    }

    @Test("re, cidr, numeric comparisons, exists and null")
    func otherModifiers() throws {
        let e = Self.failed
        #expect(try Self.load("s:\n    user.name|re: '^[a-z]+\\.[a-z]+$'\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    user.name|re: '^[a-z]+$'\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    status_detail|re|i: '^wrong'\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    status_detail|re: '^wrong'\ncondition: s").matches(e), "re is case-sensitive without i")
        #expect(try Self.load("s:\n    src_endpoint.ip|cidr: 203.0.113.0/24\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    src_endpoint.ip|cidr: 10.0.0.0/8\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    status_id|gt: 1\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    status_id|gt: 2\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    status_id|gte: 2\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    unmapped.loa|lt: 2\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    unmapped.loa|lte: 0.5\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    session.uid|exists: false\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    user.name|exists: false\ncondition: s").matches(e))
        #expect(try Self.load("s:\n    session.uid: null\ncondition: s").matches(e))
        #expect(try !Self.load("s:\n    user.name: null\ncondition: s").matches(e))
    }

    @Test("conditions: and, or, not, parentheses, 1 of, all of them, precedence")
    func conditions() throws {
        let e = Self.failed
        let base = "yes1:\n    status_id: 2\nyes2:\n    user.name: alice.chen\nno1:\n    user.name: bob\n_no2:\n    status_id: 1\n"
        func c(_ cond: String) throws -> Bool { try Self.load(base + "condition: \(cond)").matches(e) }
        #expect(try c("yes1 and yes2"))
        #expect(try !c("yes1 and no1"))
        #expect(try c("no1 or yes2"))
        #expect(try c("yes1 and not no1"))
        #expect(try !c("not yes1"))
        #expect(try c("no1 or yes1 and yes2"), "and binds tighter than or")
        #expect(try !c("(no1 or yes1) and _no2"))
        #expect(try c("no1 or (yes1 and not _no2)"))
        #expect(try c("1 of yes*"))
        #expect(try c("all of yes*"))
        #expect(try !c("all of them"), "them includes no1")
        #expect(try c("1 of them"))
        #expect(try c("not 1 of _no*"))
        #expect(try c("not not yes1"))
        // A list of conditions is OR.
        #expect(try Self.load(base + "condition:\n    - no1\n    - yes1").matches(e))
        // `them` leaves out identifiers starting with `_`.
        let only = "_hidden:\n    status_id: 2\nshown:\n    user.name: bob\n"
        #expect(try !Self.load(only + "condition: 1 of them").matches(e))
    }

    @Test("the logsource category restricts a rule to its OCSF class")
    func logsourceClass() throws {
        let r = try Self.load("s:\n    status_id: 2\ncondition: s", category: "account_change")
        #expect(!r.matches(Self.failed))
    }

    @Test("malformed rules are refused with the file, the rule and what is wrong")
    func refusals() throws {
        let cases: [(String, String)] = [
            ("s:\n    status_id|base64: x\ncondition: s", "unknown or unsupported modifier \"base64\""),
            ("s:\n    status_id: 2\ncondition: s and t", "unknown search identifier \"t\""),
            ("s:\n    status_id: 2\ncondition: (s", "missing ')'"),
            ("s:\n    status_id: 2\ncondition: s or", "ends where an identifier"),
            ("s:\n    status_id: 2\ncondition: 1 of x*", "matches no search identifier"),
            ("s:\n    status_id: 2\ncondition: s | count() > 5", "aggregations"),
            ("s:\n    status_id: 2", "condition is missing"),
            ("s:\n    - keyword\ncondition: s", "keyword (full-text) searches are not supported"),
            ("s:\n    status_id|gt: high\ncondition: s", "gt needs a number"),
            ("s:\n    src_endpoint.ip|cidr: 10.0.0.0/33\ncondition: s", "is not a CIDR block"),
            ("s:\n    user.name|re: '(a+)+$'\ncondition: s", "catastrophic backtracking"),
            ("s:\n    user.name|re: '(a|aa)*b'\ncondition: s", "catastrophic backtracking"),
            ("s:\n    user.name|re: '(x)\\1'\ncondition: s", "back-references"),
            ("s:\n    user.name|re: '[unclosed'\ncondition: s", "does not compile"),
            ("s:\n    user.name|re: '\(String(repeating: "a", count: 300))'\ncondition: s", "longer than 256"),
            ("s:\n    user.name|contains|re: x\ncondition: s", "cannot be combined"),
            ("s:\n    user.name|i: x\ncondition: s", "only with re"),
            ("s:\n    user..name: x\ncondition: s", "empty segment"),
            ("s:\n    user.name: []\ncondition: s", "needs 1 to"),
            ("s:\n    status_id: 2\ncondition: " + String(repeating: "(", count: 20) + "s" + String(repeating: ")", count: 20), "nested deeper"),
            ("s:\n    status_id: 2\ncondition: " + String(repeating: "not ", count: 20) + "s", "nested deeper"),
        ]
        for (detection, expected) in cases {
            do throws(VisibilityError) {
                _ = try SigmaRuleSet.load(files: [("rules/bad.yml", Self.rule(detection))])
                Issue.record("accepted: \(detection)")
            } catch {
                #expect(error.message.contains(expected), "\(error.message) should mention \(expected)")
                #expect(error.message.hasPrefix("rules/bad.yml, rule \"Test rule\" (id 11111111-2222-4333-8444-555555555555): "), "\(error.message)")
            }
        }
    }

    @Test("malformed documents and metadata are refused precisely")
    func documentRefusals() {
        let cases: [(String, String)] = [
            ("title: [unclosed", "rules/x.yml: not valid YAML: line"),
            ("- a\n- b", "a rule must be a map"),
            ("id: x\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}", "'title' is missing"),
            ("title: T\nlogsource: {product: windows}\ndetection: {s: {a: 1}, condition: s}", "logsource.product must be \"menshen\""),
            ("title: T\nlogsource: {product: menshen, category: process_creation}\ndetection: {s: {a: 1}, condition: s}", "is not one of"),
            ("title: T\nlevel: severe\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}", "level \"severe\""),
            ("title: T\nstatus: done\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}", "status \"done\""),
            ("title: T\ntags: [Attack.T1110]\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}", "lower-case"),
            ("title: T\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, s: {b: 2}, condition: s}", "duplicated key(s): 's'"),
            ("title: T\ndetection: {s: {a: 1}, condition: s}", "'logsource' is missing"),
            ("title: T\nlogsource: {product: menshen}", "'detection' is missing"),
            ("title: T\nlogsource: {product: menshen}\ndetection: {s: {a: {b: 1}}, condition: s}", "must be a scalar"),
            ("", "no rule in the file"),
        ]
        for (yaml, expected) in cases {
            #expect(throws: VisibilityError.self, "\(yaml)") { _ = try SigmaRuleSet.load(files: [("rules/x.yml", yaml)]) }
            do throws(VisibilityError) { _ = try SigmaRuleSet.load(files: [("rules/x.yml", yaml)]) } catch {
                #expect(error.message.contains(expected), "\(error.message) should mention \(expected)")
                #expect(error.message.hasPrefix("rules/x.yml"))
            }
        }
    }

    @Test("size limits: file bytes, rule count, alias expansion")
    func limits() {
        let big = "title: T\ndescription: '" + String(repeating: "x", count: RuleLimits.maxFileBytes) + "'\n"
        #expect(throws: VisibilityError(.invalidRule, "")) { _ = try SigmaRuleSet.load(files: [("big.yml", big)]) }
        let one = "title: T%d\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}\n"
        let many = (0...RuleLimits.maxRules).map { String(format: one, $0) }.joined(separator: "---\n")
        let files = stride(from: 0, to: RuleLimits.maxRules + 1, by: 100).map { start in
            ("f\(start).yml", (start..<min(start + 100, RuleLimits.maxRules + 1)).map { String(format: one, $0) }.joined(separator: "---\n"))
        }
        _ = many
        #expect(throws: VisibilityError(.limitExceeded, "")) { _ = try SigmaRuleSet.load(files: files) }
        // A billion-laughs document: each level doubles the nodes.
        var bomb = "a0: &a0 [x, x]\n"
        for i in 1...20 { bomb += "a\(i): &a\(i) [*a\(i - 1), *a\(i - 1)]\n" }
        bomb += "title: T\n"
        do throws(VisibilityError) { _ = try SigmaRuleSet.load(files: [("bomb.yml", bomb)]); Issue.record("alias bomb accepted") } catch {
            #expect(error.message.contains("YAML nodes") || error.message.contains("deeper"), "\(error.message)")
        }
    }

    @Test("a set loads all or nothing: one bad file refuses the whole set")
    func allOrNothing() throws {
        let good = ("good.yml", "title: Good\nname: good\nlogsource: {product: menshen}\ndetection: {s: {a: 1}, condition: s}\n")
        let bad = ("bad.yml", "title: Bad\nlogsource: {product: menshen}\ndetection: {s: {a|nope: 1}, condition: s}\n")
        #expect(try SigmaRuleSet.load(files: [good]).detections.count == 1)
        #expect(throws: VisibilityError.self) { _ = try SigmaRuleSet.load(files: [good, bad]) }
        // Duplicate names across files are refused too.
        #expect(throws: VisibilityError.self) { _ = try SigmaRuleSet.load(files: [good, ("again.yml", good.1)]) }
    }
}

@Suite("Sigma value matching: the ASCII byte paths agree with the character paths")
struct SigmaValueMatchingTests {
    /// A small deterministic generator (xorshift64*), so a failing case can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
    }

    static let alphabet: [String] = ["a", "B", "c", "*", "?", "\\", "\\*", "x", "Z", "é", "É", "\r", "\n", "\r\n", "ß", "1", "-", " "]

    static func text(_ g: inout Seeded, max: Int) -> String {
        (0..<Int(g.next() % UInt64(max + 1))).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] }.joined()
    }

    @Test("wildcards: bytes and characters give the same answer, cased or not, for random patterns and values")
    func wildcardPaths() {
        var g = Seeded(state: 0xD1B5_4A32_D192_ED03)
        var fast = 0
        for _ in 0..<20_000 {
            let pattern = WildcardPattern(sigma: Self.text(&g, max: 6), cased: g.next() % 2 == 0,
                                          prefixAny: g.next() % 3 == 0, suffixAny: g.next() % 3 == 0)
            let value = Self.text(&g, max: 8)
            if let tokens = pattern.asciiTokens, let answer = WildcardPattern.asciiMatch(tokens, value, cased: pattern.cased) {
                fast += 1
                #expect(answer == pattern.characterMatch(value), "\(pattern.tokens) against \(value.debugDescription)")
            }
            #expect(pattern.matches(value) == pattern.characterMatch(value))
        }
        #expect(fast > 2_000, "the byte path was taken \(fast) times")
    }

    @Test("case-insensitive equality: the ASCII comparison agrees with Foundation's")
    func equalIgnoringCase() {
        var g = Seeded(state: 0x2545_F491_4F6C_DD1D)
        for _ in 0..<20_000 {
            let a = Self.text(&g, max: 4)
            let b = g.next() % 3 == 0 ? a.uppercased() : g.next() % 2 == 0 ? a.lowercased() : Self.text(&g, max: 4)
            #expect(ValuePattern.equalIgnoringCase(a, b) == (a.caseInsensitiveCompare(b) == .orderedSame), "\(a.debugDescription) vs \(b.debugDescription)")
        }
    }
}
