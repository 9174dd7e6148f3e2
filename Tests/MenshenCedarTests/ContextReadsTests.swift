import MenshenCedar
import Testing

@Suite("Context reads: what of `context` a policy set can read")
struct ContextReadsTests {
    static func reads(_ texts: [String]) throws -> ContextReads {
        ContextReads(try texts.map { try CedarParser.parseExpression($0) })
    }

    @Test("attribute chains on context are paths; has reads the attribute it tests", arguments: [
        ("context.session.loa >= 2", [["session", "loa"]]),
        ("context has session", [["session"]]),
        ("context.session has loa && context.session.loa > 1", [["session", "loa"]]),
        ("context[\"time\"][\"hour\"] < 9", [["time", "hour"]]),
        ("context.time.now > datetime(\"2026-11-25T02:00:30Z\")", [["time", "now"]]),
        ("context.session == {\"loa\": 1}", [["session"]]),
        ("(if principal.x then context.session else context.device).loa == 1", [["session"], ["device"]]),
        ("principal.loa > 1 && resource.context.x && principal has context", []),
        ("context.network.ip.isInRange(ip(\"10.0.0.0/8\")) || context.request.path like \"/a*\"", [["network", "ip"], ["request", "path"]]),
    ])
    func paths(text: String, expected: [[String]]) throws {
        let r = try Self.reads([text])
        #expect(!r.everything)
        #expect(r.paths == Set(expected))
    }

    @Test("context used as a whole reads everything", arguments: [
        "context == {}",
        "[context].contains(context)",
        "(if true then context else context).session.loa > 1",
        "{\"c\": context}.c.session.loa > 1",
    ])
    func everything(text: String) throws {
        let r = try Self.reads([text])
        #expect(r.everything)
        #expect(r.reads(["anything", "at", "all"]))
    }

    @Test("a path is read when a read path leads to it or through it")
    func readsByPrefix() throws {
        let r = try Self.reads(["context.session.loa >= 2", "context has device", "context.time.hour < 9"])
        #expect(r.reads(["session", "loa"]))
        #expect(r.reads(["session"]))              // part of the session record is read
        #expect(!r.reads(["session", "amr"]))
        #expect(r.reads(["device", "compliant"]))   // the whole device record may be read
        #expect(r.reads(["time", "hour"]))
        #expect(!r.reads(["time", "now"]))
        #expect(!r.reads(["risk", "score"]))
    }

    @Test("a policy set's reads come from every condition of its policies, not from the scope")
    func policySet() throws {
        let set = try CedarParser.parsePolicySet("""
            permit (principal == User::"context", action, resource) when { context.session.loa >= 2 } unless { context.risk.score > 80 };
            forbid (principal, action, resource) when { principal.disabled };
            """)
        let r = ContextReads(set)
        #expect(!r.everything)
        #expect(r.paths == [["session", "loa"], ["risk", "score"]])
    }
}
