import Foundation
import Testing
@testable import MenshenIdentity

/// Cross-check against py_webauthn (`pip install webauthn`): the same
/// software-authenticator outputs must be accepted or rejected by both.
@Suite("WebAuthn cross-check with py_webauthn")
struct WebAuthnOracleTests {
    struct Case {
        var name: String
        var json: [String: Any]
        var ours: Bool
    }

    static let rpID = "bank.example.tw"
    static let origin = "https://login.bank.example.tw"
    static let challenge: [UInt8] = Array(100..<132)

    static func registrationCase(_ name: String, _ response: RegistrationResponse, verifier: RegistrationVerifier,
                                 requireUV: Bool = true, challenge: [UInt8] = challenge) -> Case {
        let ours = (try? verifier.verify(response, expectedChallenge: challenge).get()) != nil
        let credential: [String: Any] = [
            "id": Base64URL.encode(response.credentialID), "rawId": Base64URL.encode(response.credentialID), "type": "public-key",
            "clientExtensionResults": [String: Any](),
            "response": ["clientDataJSON": Base64URL.encode(response.clientDataJSON),
                         "attestationObject": Base64URL.encode(response.attestationObject), "transports": response.transports],
        ]
        return Case(name: name, json: ["kind": "registration", "credential": credential, "challenge": Base64URL.encode(challenge), "require_uv": requireUV], ours: ours)
    }

    static func authenticationCase(_ name: String, _ response: AuthenticationResponse, stored: StoredCredential, verifier: AuthenticationVerifier,
                                   requireUV: Bool = true) -> Case {
        let ours = (try? verifier.verify(response, expectedChallenge: challenge, credential: stored).get()) != nil
        var inner: [String: Any] = ["clientDataJSON": Base64URL.encode(response.clientDataJSON),
                                    "authenticatorData": Base64URL.encode(response.authenticatorData),
                                    "signature": Base64URL.encode(response.signature)]
        if let handle = response.userHandle { inner["userHandle"] = Base64URL.encode(handle) }
        let credential: [String: Any] = [
            "id": Base64URL.encode(response.credentialID), "rawId": Base64URL.encode(response.credentialID), "type": "public-key",
            "clientExtensionResults": [String: Any](), "response": inner,
        ]
        return Case(name: name, json: ["kind": "authentication", "credential": credential, "challenge": Base64URL.encode(challenge),
                                       "require_uv": requireUV, "public_key": Base64URL.encode(stored.publicKeyCOSE), "sign_count": Int(stored.signCount)], ours: ours)
    }

    static func cases() throws -> [Case] {
        let configuration = RelyingPartyConfiguration(rpID: rpID, allowedOrigins: [origin])
        let register = RegistrationVerifier(configuration: configuration)
        let authenticate = AuthenticationVerifier(configuration: configuration)
        var cases: [Case] = []
        let up = SoftwareAuthenticator.up, uv = SoftwareAuthenticator.uv
        for kind in SoftwareAuthenticator.Kind.allCases {
            var a = try SoftwareAuthenticator(kind: kind, seed: UInt64(kind.rawValue.count))
            cases.append(registrationCase("none \(kind)", try a.register(challenge: challenge), verifier: register))
            cases.append(registrationCase("packed self \(kind)", try a.register(challenge: challenge, attestation: .packedSelf), verifier: register))
            let credential = try register.verify(try a.register(challenge: challenge), expectedChallenge: challenge).get()
            var stored = StoredCredential(credential, userHandle: Array("user-1".utf8))
            cases.append(authenticationCase("assertion \(kind)", try a.assert(challenge: challenge), stored: stored, verifier: authenticate))
            stored.signCount = 4
            cases.append(authenticationCase("sign-count regression \(kind)", try a.assert(challenge: challenge, counter: 3), stored: stored, verifier: authenticate))
        }
        var a = try SoftwareAuthenticator(kind: .p256, seed: 77)
        let ca = try TestAttestationCA(aaguid: a.aaguid)
        cases.append(registrationCase("packed x5c", try a.register(challenge: challenge, attestation: .packedX5C(ca)), verifier: register))
        cases.append(registrationCase("wrong origin", try a.register(origin: "https://evil.example", challenge: challenge), verifier: register))
        cases.append(registrationCase("wrong rp id", try a.register(rpID: "evil.example", challenge: challenge), verifier: register))
        cases.append(registrationCase("wrong challenge", try a.register(challenge: [1, 2, 3, 4]), verifier: register))
        cases.append(registrationCase("wrong type", try a.register(challenge: challenge, type: "webauthn.get"), verifier: register))
        cases.append(registrationCase("missing UV", try a.register(challenge: challenge, flags: up), verifier: register))
        cases.append(registrationCase("missing UP", try a.register(challenge: challenge, flags: uv), verifier: register))
        cases.append(registrationCase("BS without BE", try a.register(challenge: challenge, flags: up | uv | SoftwareAuthenticator.bs), verifier: register))
        cases.append(registrationCase("BE and BS", try a.register(challenge: challenge, flags: up | uv | SoftwareAuthenticator.be | SoftwareAuthenticator.bs), verifier: register))
        cases.append(registrationCase("packed self alg mismatch", try a.register(challenge: challenge, attestation: .packedSelf, attestationAlgorithm: -257), verifier: register))
        let credential = try register.verify(try a.register(challenge: challenge), expectedChallenge: challenge).get()
        var stored = StoredCredential(credential, userHandle: Array("user-1".utf8))
        cases.append(authenticationCase("both counters zero", try a.assert(challenge: challenge, counter: 0), stored: stored, verifier: authenticate))
        cases.append(authenticationCase("assertion missing UV", try a.assert(challenge: challenge, flags: up), stored: stored, verifier: authenticate))
        cases.append(authenticationCase("assertion wrong origin", try a.assert(origin: "https://evil.example", challenge: challenge), stored: stored, verifier: authenticate))
        cases.append(authenticationCase("assertion wrong type", try a.assert(challenge: challenge, type: "webauthn.create"), stored: stored, verifier: authenticate))
        cases.append(authenticationCase("assertion wrong rp id", try a.assert(rpID: "evil.example", challenge: challenge), stored: stored, verifier: authenticate))
        var bad = try a.assert(challenge: challenge)
        bad.signature[bad.signature.count - 1] ^= 1
        cases.append(authenticationCase("assertion bad signature", bad, stored: stored, verifier: authenticate))
        stored.signCount = 10
        cases.append(authenticationCase("counter equal", try a.assert(challenge: challenge, counter: 10), stored: stored, verifier: authenticate))
        cases.append(authenticationCase("counter increased", try a.assert(challenge: challenge, counter: 11), stored: stored, verifier: authenticate))
        return cases
    }

    static let script = #"""
    import json, sys, base64
    from webauthn import verify_registration_response, verify_authentication_response
    def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    for case in json.load(sys.stdin):
        try:
            if case["kind"] == "registration":
                verify_registration_response(credential=json.dumps(case["credential"]), expected_challenge=b64(case["challenge"]),
                    expected_rp_id="bank.example.tw", expected_origin="https://login.bank.example.tw", require_user_verification=case["require_uv"])
            else:
                verify_authentication_response(credential=json.dumps(case["credential"]), expected_challenge=b64(case["challenge"]),
                    expected_rp_id="bank.example.tw", expected_origin="https://login.bank.example.tw",
                    credential_public_key=b64(case["public_key"]), credential_current_sign_count=case["sign_count"],
                    require_user_verification=case["require_uv"])
            print("accept")
        except Exception as e:
            print("reject " + type(e).__name__ + ": " + str(e).replace("\n", " "))
    """#

    @Test("py_webauthn accepts and rejects the same registrations and assertions as we do")
    func crossCheck() throws {
        if let message = Oracle.missing(Oracle.pythonHas("webauthn"), "python3 with py_webauthn (pip install webauthn)") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        let cases = try Self.cases()
        let input = String(decoding: try JSONSerialization.data(withJSONObject: cases.map(\.json)), as: UTF8.self)
        let output = try Oracle.run(["python3", "-c", Self.script], stdin: input)
        #expect(output.status == 0, "\(output.stderr)")
        let verdicts = output.stdout.split(separator: "\n").map(String.init)
        try #require(verdicts.count == cases.count, "\(output.stdout)\n\(output.stderr)")
        var accepted = 0
        for (testCase, verdict) in zip(cases, verdicts) {
            let oracleAccepts = verdict == "accept"
            if oracleAccepts { accepted += 1 }
            #expect(testCase.ours == oracleAccepts, "\(testCase.name): ours \(testCase.ours ? "accept" : "reject"), py_webauthn \(verdict)")
        }
        print("py_webauthn cross-check: \(cases.count) cases, \(accepted) accepted by both, \(cases.count - accepted) rejected by both")
        #expect(accepted >= 10 && cases.count - accepted >= 10)
    }
}
