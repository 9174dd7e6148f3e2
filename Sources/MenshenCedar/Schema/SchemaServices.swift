/// A small facade bundling the schema and validator entry points the conformance
/// runner needs: load a schema (human or JSON format) as entity-JSON type hints,
/// validate a policy set in strict mode, and validate a request. Its method
/// signatures match `ConformanceSchemaSupport` in MenshenCedarConformance, so the
/// runner can adopt it with an empty extension.
public struct CedarSchemaServices: Sendable {
    public init() {}

    /// Parses a schema; `format` is "cedar" (default) or "json".
    public func loadSchema(_ text: String, format: String) throws -> any EntityJSONTypeHints {
        try parseSchema(text, format: format)
    }

    /// Parses a schema; `format` is "cedar" (default) or "json".
    public func parseSchema(_ text: String, format: String) throws(CedarError) -> Schema {
        let r = format == "json" ? Schema.parse(json: text) : Schema.parse(cedar: text)
        switch r {
        case .success(let s): return s
        case .failure(let e): throw e
        }
    }

    /// Strict-mode validation: true iff the policies validate without errors.
    /// Returns false if `schema` was not produced by `loadSchema`.
    public func validates(_ policies: PolicySet, schema: any EntityJSONTypeHints) -> Bool {
        guard let s = schema as? Schema else { return false }
        return Validator(schema: s).validate(policies).passed
    }

    /// Request validation; nil when valid, else the error message.
    public func validateRequest(_ request: Request, schema: any EntityJSONTypeHints) -> String? {
        guard let s = schema as? Schema else { return "schema was not loaded by CedarSchemaServices" }
        return s.validateRequest(request)?.message
    }
}
