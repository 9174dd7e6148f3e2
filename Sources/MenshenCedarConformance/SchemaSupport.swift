import MenshenCedar

/// The schema/validator facade of MenshenCedar serves as the runner's schema support.
extension CedarSchemaServices: ConformanceSchemaSupport {}

extension ConformanceRunner {
    /// A runner with schema-directed parsing, `shouldValidate` checks and request validation.
    public static func withSchema(useIndex: Bool = true) -> ConformanceRunner {
        ConformanceRunner(schemaSupport: CedarSchemaServices(), useIndex: useIndex)
    }
}
