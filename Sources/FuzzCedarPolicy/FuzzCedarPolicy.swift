// libFuzzer target: the Cedar policy parser and formatter.
// Any input must parse or fail with a CedarError, never crash; a parsed policy set
// must format to text that parses again and formats to the same text.
import MenshenCedar

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCedarPolicy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let set = try? CedarParser.parsePolicySet(text) {
        let once = CedarFormatter.format(set)
        guard let again = try? CedarParser.parsePolicySet(once) else {
            fatalError("formatted policy set does not parse again:\n\(once)")
        }
        let twice = CedarFormatter.format(again)
        if twice != once { fatalError("formatter is not idempotent:\n\(once)\n---\n\(twice)") }
    }
    _ = try? CedarParser.parseExpression(text)
    return 0
}
