/// Parser for Cedar's JSON schema format (placeholder until the JSON reader is wired in).
enum SchemaJSONParser {
    static func parse(_ text: String) -> Result<SchemaFragment, CedarError> {
        .failure(schemaError("JSON schema format is not supported yet"))
    }
}
