import Testing
@testable import MenshenCedar

@Suite("Evaluator")
struct EvaluatorTests {
    let store: Entities = {
        // Invariant for the test fixture: these uids are distinct.
        (try? Entities([
            Entity(uid: EntityUID("User", "alice"), attributes: ["age": .long(30), "tags": .set([.string("a")])],
                   parents: [EntityUID("Group", "g")], tags: ["level": .long(3)]),
            Entity(uid: EntityUID("Group", "g"), parents: [EntityUID("Group", "root")]),
        ])) ?? Entities()
    }()

    @Test("Integer overflow is an evaluation error")
    func overflow() {
        #expect(TestSupport.errorCode("9223372036854775807 + 1") == .overflow)
        #expect(TestSupport.errorCode("-9223372036854775808 - 1") == .overflow)
        #expect(TestSupport.errorCode("9223372036854775807 * 2") == .overflow)
        #expect(TestSupport.errorCode("-(-9223372036854775808)") == .overflow)
    }

    @Test("&& and || short-circuit but require booleans")
    func shortCircuit() throws {
        #expect(try TestSupport.eval("false && (1 + \"a\" == 2)") == .bool(false))
        #expect(try TestSupport.eval("true || 1") == .bool(true))
        #expect(TestSupport.errorCode("true && 1") == .typeError)
        #expect(TestSupport.errorCode("1 || true") == .typeError)
        #expect(TestSupport.errorCode("if 1 then true else false") == .typeError)
    }

    @Test("== across types is false, not an error; records and sets compare structurally")
    func equality() throws {
        #expect(try TestSupport.eval("1 == \"1\"") == .bool(false))
        #expect(try TestSupport.eval("[1, 2, 2] == [2, 1]") == .bool(true))
        #expect(try TestSupport.eval("{a: 1, b: [true]} == {b: [true], a: 1}") == .bool(true))
        #expect(try TestSupport.eval("ip(\"10.0.0.1/24\") == ip(\"10.0.0.0/24\")") == .bool(false))
        #expect(try TestSupport.eval("decimal(\"1.0\") == decimal(\"1.0000\")") == .bool(true))
    }

    @Test("in follows the transitive hierarchy; unknown entities have no ancestors")
    func hierarchy() throws {
        #expect(try TestSupport.eval(#"principal in Group::"root""#, entities: store) == .bool(true))
        #expect(try TestSupport.eval(#"principal in [Group::"x", Group::"g"]"#, entities: store) == .bool(true))
        #expect(try TestSupport.eval(#"User::"bob" in Group::"g""#, entities: store) == .bool(false))
        #expect(try TestSupport.eval(#"User::"bob" in User::"bob""#, entities: store) == .bool(true))
        #expect(TestSupport.errorCode(#"principal in [1]"#, entities: store) == .typeError)
    }

    @Test("Attribute access on missing entities or attributes errors, has returns false")
    func attributes() throws {
        #expect(try TestSupport.eval("principal.age", entities: store) == .long(30))
        #expect(TestSupport.errorCode("principal.nope", entities: store) == .missingAttribute)
        #expect(TestSupport.errorCode(#"User::"bob".age"#, entities: store) == .entityNotFound)
        #expect(try TestSupport.eval(#"User::"bob" has age"#, entities: store) == .bool(false))
        #expect(try TestSupport.eval("principal has age", entities: store) == .bool(true))
        #expect(TestSupport.errorCode("1 has age") == .typeError)
    }

    @Test("Tags are read with hasTag and getTag")
    func tags() throws {
        #expect(try TestSupport.eval(#"principal.hasTag("level")"#, entities: store) == .bool(true))
        #expect(try TestSupport.eval(#"principal.getTag("level")"#, entities: store) == .long(3))
        #expect(TestSupport.errorCode(#"principal.getTag("x")"#, entities: store) == .missingAttribute)
    }

    @Test("Set operations")
    func sets() throws {
        #expect(try TestSupport.eval("[1, 2].contains(2)") == .bool(true))
        #expect(try TestSupport.eval("[1, 2].containsAll([1])") == .bool(true))
        #expect(try TestSupport.eval("[1, 2].containsAny([3])") == .bool(false))
        #expect(try TestSupport.eval("[].isEmpty()") == .bool(true))
        #expect(TestSupport.errorCode("1.contains(1)") == .typeError)
    }

    @Test("ipaddr parsing and methods follow Cedar's rules")
    func ipaddr() throws {
        #expect(IPAddr(parsing: "127.0.0.1") != nil)
        #expect(IPAddr(parsing: "127.0.0.01") == nil)
        #expect(IPAddr(parsing: "::ffff:127.0.0.1") == nil)
        #expect(IPAddr(parsing: "10.0.0.0/33") == nil)
        #expect(IPAddr(parsing: "10.0.0.0/08") == nil)
        #expect(IPAddr(parsing: "1:2:3:4:5:6:7::") != nil)
        #expect(IPAddr(parsing: "1::2::3") == nil)
        #expect(try TestSupport.eval(#"ip("10.1.2.3").isInRange(ip("10.0.0.0/8"))"#) == .bool(true))
        #expect(try TestSupport.eval(#"ip("::1").isLoopback()"#) == .bool(true))
        #expect(try TestSupport.eval(#"ip("127.0.0.1/7").isLoopback()"#) == .bool(false))
        #expect(try TestSupport.eval(#"ip("ff02::1").isMulticast()"#) == .bool(true))
        #expect(try TestSupport.eval(#"ip("10.0.0.1").isIpv4()"#) == .bool(true))
        #expect(TestSupport.errorCode(#"ip("nope")"#) == .extensionError)
    }

    @Test("decimal has four fractional digits, Int64 range, and only method comparisons")
    func decimal() throws {
        #expect(CedarDecimal(parsing: "1.23456") == nil)
        #expect(CedarDecimal(parsing: "1") == nil)
        #expect(CedarDecimal(parsing: "-0.5")?.scaled == -5000)
        #expect(CedarDecimal(parsing: "922337203685477.5807") != nil)
        #expect(CedarDecimal(parsing: "922337203685477.5808") == nil)
        #expect(try TestSupport.eval(#"decimal("1.5").lessThan(decimal("1.51"))"#) == .bool(true))
        #expect(TestSupport.errorCode(#"decimal("1.5") < decimal("1.51")"#) == .typeError)
    }

    @Test("datetime and duration parse Cedar's formats and support < and arithmetic methods")
    func datetime() throws {
        #expect(CedarDatetime(parsing: "2024-10-15T11:38:02.101+1134")?.epochMilliseconds == CedarDatetime(parsing: "2024-10-15T00:04:02.101Z")?.epochMilliseconds)
        #expect(CedarDatetime(parsing: "2024-02-30") == nil)
        #expect(CedarDatetime(parsing: "2024-01-01T00:00:00") == nil)
        #expect(CedarDatetime(parsing: "2016-12-31T00:00:00+2400") == nil)
        #expect(CedarDuration(parsing: "1d2h3m4s5ms")?.milliseconds == 93_784_005)
        #expect(CedarDuration(parsing: "-1h")?.milliseconds == -3_600_000)
        #expect(CedarDuration(parsing: "1h1d") == nil)
        #expect(CedarDuration(parsing: "-9223372036854775808ms")?.milliseconds == Int64.min)
        #expect(CedarDuration(parsing: "9223372036854775808ms") == nil)
        #expect(CedarDuration(parsing: "106751991168d") == nil)
        #expect(CedarDuration(parsing: "") == nil)
        #expect(try TestSupport.eval(#"datetime("2024-01-01") < datetime("2024-01-02")"#) == .bool(true))
        #expect(try TestSupport.eval(#"duration("1h") <= duration("60m")"#) == .bool(true))
        #expect(try TestSupport.eval(#"datetime("1969-12-31T23:00:00Z").toTime() == duration("23h")"#) == .bool(true))
        #expect(try TestSupport.eval(#"datetime("1969-12-31T23:00:00Z").toDate() == datetime("1969-12-31")"#) == .bool(true))
        #expect(try TestSupport.eval(#"datetime("2024-01-01").offset(duration("1d")) == datetime("2024-01-02")"#) == .bool(true))
        #expect(try TestSupport.eval(#"datetime("2024-01-02").durationSince(datetime("2024-01-01")).toHours()"#) == .long(24))
        #expect(try TestSupport.eval(#"duration("-1d23h").toDays()"#) == .long(-1))
        #expect(TestSupport.errorCode(#"datetime("2024-01-01") < duration("1h")"#) == .typeError)
    }

    @Test("Deep expressions hit the evaluation depth limit instead of crashing")
    func evalDepth() throws {
        // 150 nested ifs parse within the parser limit; evaluation stays bounded.
        var text = "true"
        for _ in 0..<60 { text = "(if true then \(text) else false)" }
        #expect(try TestSupport.eval(text) == .bool(true))
    }
}
