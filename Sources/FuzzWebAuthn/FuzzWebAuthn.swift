// libFuzzer target: everything a browser or authenticator sends that WebAuthn
// verification parses — CBOR (both key orders), COSE keys, authenticator data,
// clientDataJSON, attestation objects and whole assertions. The body lives in
// MenshenIdentity (`UntrustedInputExercise.webAuthn`) so a unit test runs it
// in CI too. Any input must be accepted or refused with a typed error.
import MenshenIdentity

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebAuthn(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    UntrustedInputExercise.webAuthn(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
