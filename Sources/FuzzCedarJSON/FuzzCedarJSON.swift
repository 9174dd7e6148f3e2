// libFuzzer target: the JSON readers (JSON values, entities with and without a schema,
// request contexts, JSON schemas). Any input must parse or fail with a CedarError.
import MenshenCedar

/// A small schema so that schema-directed entity parsing is exercised too.
private let hintSchema: Schema? = try? Schema.parse(cedar: """
    entity Group; entity User in [Group] { name: String, age?: Long, ip?: ipaddr, d?: decimal, at?: datetime,
      dur?: duration, boss?: User, tags?: Set<String>, rec?: { a: Bool, b?: Set<User> } } tags String;
    action view appliesTo { principal: [User], resource: [Group], context: { ip?: ipaddr, n?: Long } };
    """).get()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCedarJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let json = try? JSONValue.parse(text) else {
        _ = try? Schema.parse(json: text).get()
        return 0
    }
    _ = try? EntityJSON.entities(json)
    if let hintSchema {
        _ = try? EntityJSON.entities(json, hints: hintSchema)
        _ = try? EntityJSON.context(json, action: EntityUID("Action", "view"), hints: hintSchema)
    }
    _ = try? EntityJSON.entityUID(json)
    _ = try? EntityJSON.value(json)
    if let schema = try? Schema.parse(json: text).get() {
        _ = schema.sortedEntityTypeNames
    }
    return 0
}
