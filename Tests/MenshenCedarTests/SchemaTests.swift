import Foundation
import Testing
@testable import MenshenCedar

private func parseCedar(_ text: String) throws -> Schema {
    switch Schema.parse(cedar: text) {
    case .success(let s): return s
    case .failure(let e): throw e
    }
}

private func parseJSON(_ text: String) throws -> Schema {
    switch Schema.parse(json: text) {
    case .success(let s): return s
    case .failure(let e): throw e
    }
}

private func cedarError(_ text: String) -> CedarError? {
    if case .failure(let e) = Schema.parse(cedar: text) { return e }
    return nil
}

private let photoSchema = """
    // A photo-sharing schema
    namespace PhotoApp {
        type Address = { street: String, zip?: String };
        @doc("users")
        entity User in [Group] = {
            name: String,
            age?: Long,
            address: Address,
            tags_: Set<String>,
            ip: ipaddr,
            manager?: User,
        };
        entity Group;
        entity Photo, Album in [Album] { owner: User, size: __cedar::Long } tags String;
        entity Color enum ["red", "green"];
        action "view", edit in [Action::"read"] appliesTo {
            principal: [User],
            resource: [Photo, Album],
            context: { mfa: Bool, when?: datetime }
        };
        action read;
    }
    """

private let photoSchemaJSON = """
    {"PhotoApp": {
      "commonTypes": {"Address": {"type": "Record", "attributes": {"street": {"type": "String"}, "zip": {"type": "String", "required": false}}}},
      "entityTypes": {
        "User": {"memberOfTypes": ["Group"], "shape": {"type": "Record", "attributes": {
            "name": {"type": "String"}, "age": {"type": "Long", "required": false},
            "address": {"type": "Address"}, "tags_": {"type": "Set", "element": {"type": "String"}},
            "ip": {"type": "Extension", "name": "ipaddr"}, "manager": {"type": "Entity", "name": "User", "required": false}}}},
        "Group": {},
        "Photo": {"memberOfTypes": ["Album"], "shape": {"type": "Record", "attributes": {"owner": {"type": "EntityOrCommon", "name": "User"}, "size": {"type": "Long"}}}, "tags": {"type": "String"}},
        "Album": {"memberOfTypes": ["Album"], "shape": {"type": "Record", "attributes": {"owner": {"type": "Entity", "name": "User"}, "size": {"type": "Long"}}}, "tags": {"type": "String"}},
        "Color": {"enum": ["red", "green"]}
      },
      "actions": {
        "view": {"memberOf": [{"id": "read"}], "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Photo", "Album"],
                 "context": {"type": "Record", "attributes": {"mfa": {"type": "Boolean"}, "when": {"type": "Extension", "name": "datetime", "required": false}}}}},
        "edit": {"memberOf": [{"id": "read", "type": "PhotoApp::Action"}], "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Photo", "Album"],
                 "context": {"type": "Record", "attributes": {"mfa": {"type": "Boolean"}, "when": {"type": "Extension", "name": "datetime", "required": false}}}}},
        "read": {}
      }
    }}
    """

@Suite("Schema parsing")
struct SchemaTests {
    @Test("The human format resolves namespaces, common types, entities, tags, enums and actions")
    func humanFormat() throws {
        let s = try parseCedar(photoSchema)
        let user = try #require(s.entityTypes[Name(qualified: "PhotoApp::User")])
        #expect(user.memberOfTypes == [Name(qualified: "PhotoApp::Group")])
        #expect(user.attributes.attributes["age"]?.required == false)
        #expect(user.attributes.attributes["address"]?.type == .record(RecordType(attributes: [
            "street": AttributeType(type: .string), "zip": AttributeType(type: .string, required: false)])))
        #expect(user.attributes.attributes["manager"]?.type == .entity(Name(qualified: "PhotoApp::User")))
        #expect(user.attributes.attributes["ip"]?.type == .ext("ipaddr"))
        #expect(user.attributes.attributes["tags_"]?.type == .set(.string))
        let photo = try #require(s.entityTypes[Name(qualified: "PhotoApp::Photo")])
        #expect(photo.tags == .string)
        #expect(photo.attributes.attributes["size"]?.type == .long)
        #expect(s.entityTypes[Name(qualified: "PhotoApp::Album")]?.descendants == [Name(qualified: "PhotoApp::Photo"), Name(qualified: "PhotoApp::Album")])
        #expect(s.entityTypes[Name(qualified: "PhotoApp::Color")]?.enumChoices == ["red", "green"])
        let view = try #require(s.actions[EntityUID("PhotoApp::Action", "view")])
        #expect(view.memberOf == [EntityUID("PhotoApp::Action", "read")])
        #expect(view.principalTypes == [Name(qualified: "PhotoApp::User")])
        #expect(view.resourceTypes.count == 2)
        #expect(view.context.attributes["when"] == AttributeType(type: .ext("datetime"), required: false))
        #expect(s.actions[EntityUID("PhotoApp::Action", "read")]?.descendants.count == 2)
        #expect(s.actions[EntityUID("PhotoApp::Action", "read")]?.principalTypes == [])
    }

    @Test("The JSON format produces the same schema as the equivalent human format")
    func jsonEquivalence() throws {
        let h = try parseCedar(photoSchema)
        let j = try parseJSON(photoSchemaJSON)
        #expect(h.entityTypes.mapValues { [$0.memberOfTypes, [$0.name]] } == j.entityTypes.mapValues { [$0.memberOfTypes, [$0.name]] })
        #expect(h.entityTypes.mapValues(\.attributes) == j.entityTypes.mapValues(\.attributes))
        #expect(h.entityTypes.mapValues(\.tags) == j.entityTypes.mapValues(\.tags))
        #expect(h.entityTypes.mapValues(\.descendants) == j.entityTypes.mapValues(\.descendants))
        #expect(h.actions.mapValues(\.context) == j.actions.mapValues(\.context))
        #expect(h.actions.mapValues(\.descendants) == j.actions.mapValues(\.descendants))
        #expect(h.actions.mapValues { Set($0.principalTypes) } == j.actions.mapValues { Set($0.principalTypes) })
    }

    @Test("Unqualified names resolve to the current namespace before the empty namespace and builtins")
    func resolution() throws {
        let s = try parseCedar("""
            entity E;
            type T = Long;
            namespace N {
                type decimal = { shadow: Bool };
                entity F;
                entity X = { h: E, a: F, b: decimal, c: __cedar::String, d: T, e: Bool, f: __cedar::decimal, g: String };
            }
            """)
        let x = try #require(s.entityTypes[Name(qualified: "N::X")]).attributes.attributes
        #expect(x["a"]?.type == .entity(Name(qualified: "N::F")))
        #expect(x["h"]?.type == .entity(Name(qualified: "E")))
        #expect(x["b"]?.type == .record(RecordType(attributes: ["shadow": AttributeType(type: .bool)])))
        #expect(x["c"]?.type == .string)
        #expect(x["d"]?.type == .long)
        #expect(x["e"]?.type == .bool)
        #expect(x["f"]?.type == .ext("decimal"))
        #expect(x["g"]?.type == .string)
    }

    @Test("Parse errors report line and column", arguments: [
        ("entity A {\n  x: Long\n  y: Long };", 3, 3),
        ("entity A;\naction \"a\" appliesTo { principal: [A], resource: [A], context: {} }\n", 3, 1),
        ("entity A = { x: $ };", 1, 17),
        ("entity A;\n  entity in;", 2, 10),
    ])
    func errorLocations(text: String, line: Int, column: Int) throws {
        let e = try #require(cedarError(text))
        #expect(e.code == .schema)
        #expect(e.location?.line == line)
        #expect(e.location?.column == column)
    }

    @Test("Semantic schema errors are reported", arguments: [
        "entity A = { b: B };",
        "entity A; entity A;",
        "type T = U; type U = T; entity A = { t: T };",
        "entity A; action a in [b] appliesTo { principal: A, resource: A }; action b in [a];",
        "entity A; action a in [nope];",
        "entity A; action a appliesTo { principal: [], resource: [A] };",
        "entity A; action a appliesTo { principal: [B], resource: [A] };",
        "type Long = String;",
        "namespace __cedar { entity A; }",
        "entity A; action a appliesTo { principal: A, resource: A, context: Long };",
        "entity A = { s: Set<> };",
        "entity A; namespace N { entity A; }",
        "entity A in [Nope];",
        "entity A = { x: Boolean };",
        "entity Action;",
        "namespace N { entity A; } namespace N { entity B; }",
        "entity A = { \"\\q\": Long };",
    ])
    func semanticErrors(text: String) {
        #expect(cedarError(text) != nil)
    }

    @Test("Bad and deeply nested input never crashes and is rejected")
    func robustness() {
        let deep = String(repeating: "Set<", count: 500) + "Long" + String(repeating: ">", count: 500)
        #expect(cedarError("entity A = { x: \(deep) };") != nil)
        for junk in ["{", "entity", "entity A = {", "action", "action \"a\" in [", "@", "\"abc", "namespace A { namespace B {} }", "entity A enum [];"] {
            #expect(cedarError(junk) != nil)
        }
        if case .success = Schema.parse(json: "{\"\": {\"entityTypes\": {\"A\": {\"shape\": 5}}}}") { Issue.record("expected failure") }
        if case .success = Schema.parse(json: "[") { Issue.record("expected failure") }
    }

    @Test("JSON schemas are checked like Cedar does", arguments: [
        #"{"": {"entityTypes": {}}}"#,
        #"{"": {"entityTypes": {}, "actions": {}, "annotations": {"doc": "x"}}}"#,
        #"{"": {"entityTypes": {"A": {"shape": {"type": "Record", "attributes": {}, "additionalAttributes": true}}}, "actions": {}}}"#,
        #"{"": {"entityTypes": {"A": {"enum": ["a"], "memberOfTypes": []}}, "actions": {}}}"#,
        #"{"": {"entityTypes": {"A": {}}, "actions": {"r": {"appliesTo": {"principalTypes": ["A"]}}}}}"#,
        #"{"": {"entityTypes": {"A": {}}, "actions": {"r": {"attributes": {}}}}}"#,
        #"{"": {"entityTypes": {"A": {"shape": {"type": "Record"}}}, "actions": {}}}"#,
        #"{"": {"entityTypes": {"A": {"shape": {"type": "Extension", "name": "nope"}}}, "actions": {}}}"#,
        #"{"": {"entityTypes": {"A": {}}, "actions": {}, "bogus": 1}}"#,
    ])
    func jsonErrors(text: String) {
        if case .success = Schema.parse(json: text) { Issue.record("expected an error for \(text)") }
    }

    @Test("JSON schemas accept null for optional action fields")
    func jsonNulls() throws {
        let s = try parseJSON(#"{"": {"entityTypes": {"A": {}}, "actions": {"r": {"memberOf": null, "appliesTo": null, "attributes": null}}}}"#)
        #expect(s.actions[EntityUID("Action", "r")]?.principalTypes == [])
    }

    @Test("A repeated attribute replaces the earlier declaration, as in Cedar")
    func repeatedAttribute() throws {
        let s = try parseCedar("entity A = { a?: String, a: Long };")
        #expect(s.entityTypes[Name(qualified: "A")]?.attributes.attributes["a"] == AttributeType(type: .long, required: true))
    }

    @Test("Escapes in quoted names are decoded")
    func escapes() throws {
        let s = try parseCedar(#"entity A = { "a\u{1c}\n": Long }; action "x\0"; action "\u{1}" in ["x\0"];"#)
        #expect(s.entityTypes[Name(qualified: "A")]?.attributes.attributes["a\u{1c}\n"] != nil)
        #expect(s.actions[EntityUID("Action", "\u{1}")]?.memberOf == [EntityUID("Action", "x\0")])
    }

    @Test("Action groups may live in another namespace")
    func crossNamespaceActionGroups() throws {
        let s = try parseCedar("""
            namespace A { action "all"; }
            namespace B { entity U; action "x" in [A::Action::"all"] appliesTo { principal: U, resource: U }; }
            """)
        #expect(s.actions[EntityUID("B::Action", "x")]?.memberOf == [EntityUID("A::Action", "all")])
        #expect(s.actions(in: [EntityUID("A::Action", "all")])?.contains(EntityUID("B::Action", "x")) == true)
    }

    @Test("The schema supplies JSON type hints and action entities")
    func hints() throws {
        let s = try parseCedar(photoSchema)
        #expect(s.attributeType(of: Name(qualified: "PhotoApp::User"), attribute: "ip") == .ipaddr)
        #expect(s.tagType(of: Name(qualified: "PhotoApp::Photo")) == .string)
        #expect(s.tagType(of: Name(qualified: "PhotoApp::User")) == nil)
        if case .record(let attrs, _)? = s.contextType(for: EntityUID("PhotoApp::Action", "view")) {
            #expect(attrs["when"] == .datetime)
        } else { Issue.record("no context type") }
        let view = s.actionEntities.first { $0.uid == EntityUID("PhotoApp::Action", "view") }
        #expect(view?.parents == [EntityUID("PhotoApp::Action", "read")])
        let ents = try EntityJSON.entities(#"[{"uid": {"type": "PhotoApp::User", "id": "a"}, "parents": [], "attrs": {"name": "A", "address": {"street": "s"}, "tags_": [], "ip": "10.0.0.1"}}]"#, hints: s)
        if case .ext(.ipaddr)? = ents[EntityUID("PhotoApp::User", "a")]?.attributes["ip"] {} else { Issue.record("ip not parsed as ipaddr") }
        #expect(ents[EntityUID("PhotoApp::Action", "view")] != nil)
    }

    @Test("The shared sample schemas parse", arguments: [
        "/work/shared/conformance/cedar/sample-data/sandbox_a/schema.cedarschema",
        "/work/shared/conformance/cedar/sample-data/sandbox_b/schema.cedarschema",
        "/work/shared/conformance/cedar/sample-data/sandbox_b/schema_exts.cedarschema",
        "/work/shared/bench/cedar/schema.cedarschema",
    ])
    func sampleSchemas(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let s = try parseCedar(text)
        #expect(!s.actions.isEmpty)
    }
}

@Suite("Request validation")
struct RequestValidationTests {
    let schema: Schema
    init() throws { schema = try parseCedar(photoSchema) }

    func req(_ p: EntityUID, _ a: String, _ r: EntityUID, _ ctx: [String: Value]) -> Request {
        Request(principal: p, action: EntityUID("PhotoApp::Action", a), resource: r, context: ctx)
    }
    let user = EntityUID("PhotoApp::User", "alice")
    let photo = EntityUID("PhotoApp::Photo", "p")

    @Test("A request allowed by appliesTo with a conforming context is valid")
    func valid() {
        #expect(schema.validateRequest(req(user, "view", photo, ["mfa": .bool(true)])) == nil)
    }

    @Test("Wrong principal or resource types, undeclared actions and bad contexts are rejected")
    func invalid() {
        #expect(schema.validateRequest(req(photo, "view", photo, ["mfa": .bool(true)])) != nil)
        #expect(schema.validateRequest(req(user, "view", user, ["mfa": .bool(true)])) != nil)
        #expect(schema.validateRequest(req(user, "nope", photo, ["mfa": .bool(true)])) != nil)
        #expect(schema.validateRequest(req(user, "read", photo, [:])) != nil)
        #expect(schema.validateRequest(req(user, "view", photo, [:])) != nil)
        #expect(schema.validateRequest(req(user, "view", photo, ["mfa": .long(1)])) != nil)
        #expect(schema.validateRequest(req(user, "view", photo, ["mfa": .bool(true), "extra": .bool(true)])) != nil)
        #expect(schema.validateRequest(req(EntityUID("Nope", "x"), "view", photo, ["mfa": .bool(true)])) != nil)
    }

    @Test("Enumerated entity ids are checked")
    func enums() throws {
        let s = try parseCedar("entity C enum [\"red\"]; action a appliesTo { principal: C, resource: C };")
        let ok = Request(principal: EntityUID("C", "red"), action: EntityUID("Action", "a"), resource: EntityUID("C", "red"))
        let bad = Request(principal: EntityUID("C", "blue"), action: EntityUID("Action", "a"), resource: EntityUID("C", "red"))
        #expect(s.validateRequest(ok) == nil)
        #expect(s.validateRequest(bad) != nil)
    }
}
