/// Feeds one untrusted byte string to every WebAuthn parser and verifier: the
/// body of the `FuzzWebAuthn` libFuzzer target, also run by a unit test on
/// random and mutated inputs in every CI run. The first byte picks the parser;
/// the rest is its input. It must return — any crash, trap or hang is a bug.
public enum UntrustedInputExercise {
    static let configuration = RelyingPartyConfiguration(rpID: "localhost", allowedOrigins: ["http://localhost:8080"])
    static let challenge: [UInt8] = Array(repeating: 7, count: 32)
    /// A well-formed clientDataJSON for the fixed challenge, so attestation objects get past the client-data checks.
    static let clientData: [UInt8] = Array(
        #"{"type":"webauthn.create","challenge":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","origin":"http://localhost:8080"}"#.utf8)

    public static func webAuthn(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let input = Array(bytes.dropFirst())
        switch selector % 6 {
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
            // Split the input into authenticator data and signature (also used as a COSE key) for a full assertion check.
            let cut = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
            let authData = Array(input[..<cut]), signature = Array(input[cut...])
            let response = AuthenticationResponse(credentialID: [1, 2, 3], clientDataJSON: clientData, authenticatorData: authData,
                                                  signature: signature)
            let stored = StoredCredential(credentialID: [1, 2, 3], publicKeyCOSE: signature, signCount: 5, backupEligible: false,
                                          backupState: false, userHandle: [9])
            _ = AuthenticationVerifier(configuration: configuration).verify(response, expectedChallenge: challenge, credential: stored)
        }
    }
}
