import Testing
@testable import MenshenCedar

@Suite("Entity JSON")
struct EntityJSONTests {
    @Test("Entities parse with __entity and __extn escapes, tags, and the ancestor closure")
    func parse() throws {
        let text = #"""
        [{"uid": {"type": "User", "id": "a"}, "attrs": {"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}},
          "boss": {"__entity": {"type": "User", "id": "b"}}, "rec": {"type": "x", "id": "y"}},
          "parents": [{"type": "Group", "id": "g"}], "tags": {"t": 1}},
         {"uid": {"__entity": {"type": "Group", "id": "g"}}, "attrs": {}, "parents": [{"type": "Group", "id": "root"}]}]
        """#
        let store = try EntityJSON.entities(text)
        let a = try #require(store[EntityUID("User", "a")])
        #expect(a.attributes["boss"] == .entity(EntityUID("User", "b")))
        #expect(a.attributes["rec"] == .record(["type": .string("x"), "id": .string("y")]))
        if case .ext(.ipaddr) = a.attributes["ip"] {} else { Issue.record("expected ipaddr") }
        #expect(a.tags["t"] == .long(1))
        #expect(store.isDescendant(EntityUID("User", "a"), of: EntityUID("Group", "root")))
    }

    @Test("Duplicate uids and non-integer numbers are errors")
    func errors() {
        #expect(throws: CedarError.self) {
            try EntityJSON.entities(#"[{"uid": {"type": "A", "id": "1"}, "attrs": {}, "parents": []}, {"uid": {"type": "A", "id": "1"}, "attrs": {}, "parents": []}]"#)
        }
        #expect(throws: CedarError.self) {
            try EntityJSON.entities(#"[{"uid": {"type": "A", "id": "1"}, "attrs": {"x": 1.5}, "parents": []}]"#)
        }
    }

    struct Hints: EntityJSONTypeHints {
        func attributeType(of entityType: EntityType, attribute: String) -> JSONTypeHint? {
            attribute == "owner" ? .entity(Name(basename: "User")) : attribute == "src" ? .ipaddr : nil
        }
        func tagType(of entityType: EntityType) -> JSONTypeHint? { .datetime }
        func contextType(for action: EntityUID) -> JSONTypeHint? { .record(["when": .datetime], open: false) }
        var actionEntities: [Entity] { [Entity(uid: EntityUID("Action", "view"), parents: [EntityUID("Action", "read")])] }
    }

    @Test("Schema hints turn implicit JSON into entity references and extension values")
    func hints() throws {
        let text = #"[{"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"type": "User", "id": "u"}, "src": "1.2.3.4"}, "parents": [], "tags": {"t": "2024-01-01"}}]"#
        let store = try EntityJSON.entities(text, hints: Hints())
        let d = try #require(store[EntityUID("Doc", "d")])
        #expect(d.attributes["owner"] == .entity(EntityUID("User", "u")))
        #expect(d.attributes["src"] == .ext(.ipaddr(try #require(IPAddr(parsing: "1.2.3.4")))))
        #expect(d.tags["t"] == .ext(.datetime(try #require(CedarDatetime(parsing: "2024-01-01")))))
        #expect(store.isDescendant(EntityUID("Action", "view"), of: EntityUID("Action", "read")))
        let ctx = try EntityJSON.context(JSONValue.parse(#"{"when": "2024-01-01"}"#), action: EntityUID("Action", "view"), hints: Hints())
        #expect(ctx["when"] == .ext(.datetime(try #require(CedarDatetime(parsing: "2024-01-01")))))
    }
}
