import MenshenCedar

/// Helpers shared by the core engine tests.
enum TestSupport {
    static func uid(_ t: String, _ id: String) -> EntityUID { EntityUID(t, id) }

    /// Evaluates `text` as an expression with a small default request and store.
    static func eval(_ text: String, entities: Entities = Entities(), context: [String: Value] = [:]) throws -> Value {
        let e = try CedarParser.parseExpression(text)
        let req = Request(principal: uid("User", "alice"), action: uid("Action", "view"), resource: uid("Photo", "p"), context: context)
        return try Evaluator(request: req, entities: entities).evaluate(e)
    }

    /// The error code of evaluating `text`, or nil if it succeeds.
    static func errorCode(_ text: String, entities: Entities = Entities()) -> CedarError.Code? {
        do { _ = try eval(text, entities: entities); return nil } catch let e as CedarError { return e.code } catch { return .io }
    }
}
