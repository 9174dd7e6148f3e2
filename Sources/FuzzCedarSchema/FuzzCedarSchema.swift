// libFuzzer target: the human-readable (.cedarschema) schema parser, and validation of a
// fixed policy set against whatever schema parses.
import MenshenCedar

private let policies: PolicySet? = try? CedarParser.parsePolicySet("""
    permit (principal, action, resource) when { principal has name && principal.name like "a*" };
    forbid (principal is User, action in Action::"view", resource) unless { context has ip && context.ip.isLoopback() };
    permit (principal in Group::"g", action, resource) when { resource.hasTag("k") && resource.getTag("k") == 1 };
    """)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCedarSchema(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if case .success(let schema) = Schema.parse(cedar: text) {
        if let policies { _ = Validator(schema: schema).validate(policies) }
        _ = try? EntityJSON.entities(.array([]), hints: schema)
    }
    return 0
}
