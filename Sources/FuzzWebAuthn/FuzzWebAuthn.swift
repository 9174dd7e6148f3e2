// libFuzzer target: everything a browser or authenticator sends that WebAuthn
// verification parses — CBOR (both key orders), COSE keys, authenticator data,
// clientDataJSON, attestation objects and whole assertions. Any input must be
// accepted or refused with a typed error; nothing may crash, hang or overflow.
import MenshenIdentity

private let configuration = RelyingPartyConfiguration(rpID: "localhost", allowedOrigins: ["http://localhost:8080"])
private let challenge: [UInt8] = Array(repeating: 7, count: 32)
/// A well-formed clientDataJSON for the fixed challenge, so attestation objects get past the client-data checks.
private let clientData: [UInt8] = Array(#"{"type":"webauthn.create","challenge":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","origin":"http://localhost:8080"}"#.utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebAuthn(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let mode = data[0] % 6
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch mode {
    case 0:
        _ = try? CBORDecoder().decode(input)
        _ = try? CBORDecoder(mapKeyOrder: .ctap2Canonical).decode(input)
    case 1:
        _ = try? COSEPublicKey(bytes: input)
    case 2:
        _ = try? AuthenticatorData(bytes: input)
    case 3:
        _ = try? CollectedClientData(json: input)
        let response = AuthenticationResponse(credentialID: [1, 2, 3], clientDataJSON: input, authenticatorData: [], signature: [])
        let stored = StoredCredential(credentialID: [1, 2, 3], publicKeyCOSE: [], signCount: 0, backupEligible: false, backupState: false,
                                      userHandle: [])
        _ = AuthenticationVerifier(configuration: configuration).verify(response, expectedChallenge: challenge, credential: stored)
    case 4:
        let response = RegistrationResponse(credentialID: [1, 2, 3], clientDataJSON: clientData, attestationObject: input)
        _ = RegistrationVerifier(configuration: configuration).verify(response, expectedChallenge: challenge)
    default:
        // Split the input into authenticator data and signature for a full assertion check.
        let cut = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
        let authData = Array(input[..<cut]), signature = Array(input[cut...])
        let response = AuthenticationResponse(credentialID: [1, 2, 3], clientDataJSON: clientData, authenticatorData: authData,
                                              signature: signature)
        let stored = StoredCredential(credentialID: [1, 2, 3], publicKeyCOSE: signature, signCount: 5, backupEligible: false,
                                      backupState: false, userHandle: [9])
        _ = AuthenticationVerifier(configuration: configuration).verify(response, expectedChallenge: challenge, credential: stored)
    }
    return 0
}
